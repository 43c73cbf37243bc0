//! `include:` as LiteLLM reads it (proxy_server.py, `ProxyConfig._process_includes`).
//!
//! `include` is a list of file names, relative to the config's folder. Each file is read in
//! order; a list in it is appended to the config's list of the same key (model_list, above
//! all), any other key replaces the config's whole section. An `include` inside an included
//! file is read after the others, relative to the first config's folder: LiteLLM appends it to
//! the list it is going through. A file read twice is refused: LiteLLM would read it again,
//! and loop without end when files include each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::load::{parse, ConfigError, Warning, WarningKind};
use crate::model::ProxyConfig;

/// Which included file each part of a merged config came from. Empty without includes.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// model_list's entries, file by file in order: (the file, None for the config itself;
    /// how many entries).
    models: Vec<(Option<String>, usize)>,
    /// Top-level keys an included file set, and that file.
    keys: BTreeMap<String, String>,
}

impl Origins {
    /// The included file a field path of the merged config comes from, and the path within
    /// that file. None when it is the config's own.
    pub fn find(&self, path: &str) -> Option<(String, String)> {
        if let Some(rest) = path.strip_prefix("model_list[") {
            let (index, tail) = rest.split_once(']')?;
            let mut index: usize = index.parse().ok()?;
            for (file, count) in &self.models {
                if index < *count {
                    return file
                        .as_ref()
                        .map(|f| (f.clone(), format!("model_list[{index}]{tail}")));
                }
                index -= count;
            }
            return None;
        }
        let top = path.split(['.', '[']).next()?;
        self.keys.get(top).map(|f| (f.clone(), path.to_string()))
    }
}

impl ProxyConfig {
    /// An error found in the merged config, pointed at the included file its field is in.
    pub fn locate(&self, e: ConfigError) -> ConfigError {
        if e.file != self.source {
            return e;
        }
        match e.path.as_deref().and_then(|p| self.origins.find(p)) {
            Some((file, path)) => ConfigError {
                file: Some(file),
                path: Some(path),
                ..e
            },
            None => e,
        }
    }
}

/// Reads the files `config`'s `include` names into it. `file` is the config's own path (its
/// folder is where names are looked up; None: the working directory). Replaced sections are
/// added to `notes`.
pub(crate) fn read(
    config: &mut ProxyConfig,
    text: &str,
    file: Option<&str>,
    notes: &mut Vec<Warning>,
) -> Result<Origins, ConfigError> {
    let Some(list) = config.extra.remove("include") else {
        return Ok(Origins::default());
    };
    let own = file.unwrap_or("the config");
    let base = file
        .and_then(|f| Path::new(f).parent())
        .unwrap_or(Path::new(""));
    let mut queue = names(&list, file)?;
    let mut origins = Origins {
        models: vec![(None, config.model_list.len())],
        keys: BTreeMap::new(),
    };
    // Who set each top-level key last, to say when an included file replaces a section.
    let mut set_by: BTreeMap<String, String> = top_keys(text)
        .into_iter()
        .map(|k| (k, own.to_string()))
        .collect();
    let mut seen: BTreeSet<PathBuf> = file
        .and_then(|f| std::fs::canonicalize(f).ok())
        .into_iter()
        .collect();
    let mut next = 0;
    while let Some((name, includer, index)) = queue.get(next).cloned() {
        next += 1;
        // As Python's os.path.join: an absolute name stays as written.
        let path = base.join(&name);
        let shown = path.display().to_string();
        let at = |message: String| ConfigError {
            file: includer.clone(),
            path: Some(format!("include[{index}]")),
            message,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| at(format!("cannot read the included file {shown}: {e}")))?;
        if !seen.insert(std::fs::canonicalize(&path).unwrap_or(path.clone())) {
            return Err(at(format!(
                "{shown} is read already (it is the config itself, or included before); LiteLLM would read it again, without end when files include each other"
            )));
        }
        let mut included = parse(&text, Some(&shown))?;
        if let Some(nested) = included.extra.remove("include") {
            queue.extend(names(&nested, Some(&shown))?);
        }
        for key in top_keys(&text) {
            if merge(config, &mut included, &key, &shown, &mut origins) {
                if let Some(before) = set_by.insert(key.clone(), shown.clone()) {
                    notes.push(Warning {
                        file: Some(shown.clone()),
                        message: format!(
                            "replaces the whole {key} of {before}, as LiteLLM does with a section of an included file"
                        ),
                        path: key,
                        kind: WarningKind::Note,
                    });
                }
            }
        }
    }
    Ok(origins)
}

/// The file names of an `include` value: (name, the file that names it, its index there).
fn names(
    list: &Value,
    includer: Option<&str>,
) -> Result<Vec<(String, Option<String>, usize)>, ConfigError> {
    let not_a_list = || ConfigError {
        file: includer.map(str::to_string),
        path: Some("include".to_string()),
        message: "must be a list of file names, e.g. include: [models.yaml]".to_string(),
    };
    let Value::Array(items) = list else {
        return Err(not_a_list());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(name) if !name.trim().is_empty() => {
                Ok((name.clone(), includer.map(str::to_string), i))
            }
            _ => Err(not_a_list()),
        })
        .collect()
}

/// The top-level keys of a YAML file, in order (none for an empty file).
fn top_keys(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_yaml_ng::from_str::<serde_yaml_ng::Mapping>(text)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Puts `key` of an included file into the config: appends lists, replaces anything else.
/// Returns whether it replaced the config's value.
fn merge(
    config: &mut ProxyConfig,
    included: &mut ProxyConfig,
    key: &str,
    file: &str,
    origins: &mut Origins,
) -> bool {
    match key {
        "include" => return false,
        "model_list" => {
            origins
                .models
                .push((Some(file.to_string()), included.model_list.len()));
            config.model_list.append(&mut included.model_list);
            return false;
        }
        "litellm_settings" => {
            config.litellm_settings = std::mem::take(&mut included.litellm_settings)
        }
        "router_settings" => config.router_settings = std::mem::take(&mut included.router_settings),
        "general_settings" => {
            config.general_settings = std::mem::take(&mut included.general_settings)
        }
        "environment_variables" => {
            config.environment_variables = std::mem::take(&mut included.environment_variables)
        }
        // A list, appended as the other lists are.
        "credential_list" => {
            config.credential_list.append(&mut included.credential_list);
            return false;
        }
        other => match (config.extra.get_mut(other), included.extra.remove(other)) {
            (Some(Value::Array(mine)), Some(Value::Array(theirs))) => {
                mine.extend(theirs);
                return false;
            }
            (_, Some(value)) => {
                config.extra.insert(other.to_string(), value);
            }
            (_, None) => return false,
        },
    }
    origins.keys.insert(key.to_string(), file.to_string());
    true
}
