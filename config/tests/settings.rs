//! The table of every LiteLLM key (`switchyard_config::settings`) against what the code reads
//! and against README's "Config reference".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use switchyard_config::cache::CacheParams;
use switchyard_config::model::{
    GeneralSettings, LitellmParams, LitellmSettings, ModelEntry, ModelInfo, RouterSettings,
};
use switchyard_config::settings::{self, Section, Status, SECTIONS};
use switchyard_config::ProxyConfig;

/// Keys read into a field that are not acted on yet: the loader warns of them by name.
const READ_NOT_ACTED_ON: &[(&str, &str)] = &[("litellm_settings", "set_verbose")];
/// Keys acted on without a field of their own.
const HONOURED_WITHOUT_FIELD: &[(&str, &str)] = &[("top level", "include")];

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).unwrap()
}

/// README's Config reference: heading → [(key, status)], in order.
fn readme_reference() -> BTreeMap<String, Vec<(String, String)>> {
    let text = readme();
    let start = text
        .find("\n### Config reference\n")
        .expect("README has a \"### Config reference\" subsection");
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut heading = None;
    for line in text[start + 1..].lines().skip(1) {
        if line.starts_with("## ") || line.starts_with("### ") {
            break;
        }
        if let Some(h) = line.strip_prefix("#### ") {
            heading = Some(h.trim().to_string());
            out.entry(h.trim().to_string()).or_default();
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let (key, rest) = row.split_once("` | ").unwrap();
        let status = rest.strip_suffix(" |").unwrap_or(rest).to_string();
        let h = heading
            .clone()
            .expect("a table row before any #### heading");
        out.get_mut(&h).unwrap().push((key.to_string(), status));
    }
    out
}

#[test]
fn readme_lists_every_key_of_the_table_with_its_status() {
    let readme = readme_reference();
    let hint = format!(
        "README's \"### Config reference\" must hold, after its introduction:\n\n{}",
        settings::markdown()
    );
    let headings: Vec<String> = SECTIONS.iter().map(|s| settings::heading(s)).collect();
    let mut in_readme: Vec<&String> = readme.keys().collect();
    in_readme.sort();
    let mut expected: Vec<&String> = headings.iter().collect();
    expected.sort();
    assert_eq!(in_readme, expected, "sections differ\n{hint}");
    for section in SECTIONS {
        let rows = &readme[&settings::heading(section)];
        let listed: BTreeMap<&str, &str> =
            rows.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect();
        assert_eq!(listed.len(), rows.len(), "{}: a key twice", section.name);
        let table: BTreeMap<&str, String> = section
            .keys
            .iter()
            .map(|(k, s)| (*k, s.describe()))
            .collect();
        let missing: Vec<&&str> = table.keys().filter(|k| !listed.contains_key(*k)).collect();
        let extra: Vec<&&str> = listed.keys().filter(|k| !table.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: README lacks {missing:?} and has {extra:?} too many\n{hint}",
            section.name
        );
        for (key, status) in section.keys {
            let shown = listed[key];
            assert!(
                shown.starts_with(status.word()),
                "{}.{key}: README says {shown:?}, the table {:?}\n{hint}",
                section.name,
                status.word()
            );
            assert_eq!(
                shown,
                status.describe(),
                "{}.{key}: README's reason differs\n{hint}",
                section.name
            );
        }
    }
}

#[test]
fn the_table_has_each_key_once_and_says_why_it_is_not_acted_on() {
    for section in SECTIONS {
        let mut seen = std::collections::BTreeSet::new();
        for (key, status) in section.keys {
            assert!(seen.insert(key), "{}.{key} twice", section.name);
            if let Status::NotActedOn(why) | Status::Refused(why) = status {
                assert!(!why.trim().is_empty(), "{}.{key}: no reason", section.name);
                assert!(
                    !why.contains('|'),
                    "{}.{key}: a | breaks README's table",
                    section.name
                );
            }
        }
    }
}

/// A value no field of the config accepts (a list of lists of maps): a key given it loads only
/// when it is kept in `extra`, i.e. has no field.
fn has_field<T: DeserializeOwned>(base: Value, key: &str, extra: impl Fn(&T) -> bool) -> bool {
    let mut value = base;
    value[key] = json!([[{}]]);
    match serde_json::from_value::<T>(value) {
        Ok(parsed) => {
            assert!(extra(&parsed), "{key}: neither a field nor kept");
            false
        }
        Err(_) => true,
    }
}

fn is_field(section: &Section, key: &str) -> bool {
    match section.name {
        "top level" => has_field(json!({}), key, |c: &ProxyConfig| c.extra.contains_key(key)),
        "model_list[]" => has_field(
            json!({"model_name": "a", "litellm_params": {"model": "openai/x"}}),
            key,
            |e: &ModelEntry| e.extra.contains_key(key),
        ),
        "model_list[].litellm_params" => {
            has_field(json!({"model": "openai/x"}), key, |p: &LitellmParams| {
                p.extra.contains_key(key)
            })
        }
        "model_list[].model_info" => {
            has_field(json!({}), key, |i: &ModelInfo| i.extra.contains_key(key))
        }
        "litellm_settings" => has_field(json!({}), key, |s: &LitellmSettings| {
            s.extra.contains_key(key)
        }),
        "litellm_settings.cache_params" => {
            has_field(json!({}), key, |p: &CacheParams| p.extra.contains_key(key))
        }
        "router_settings" => has_field(json!({}), key, |s: &RouterSettings| {
            s.extra.contains_key(key)
        }),
        "general_settings" => has_field(json!({}), key, |s: &GeneralSettings| {
            s.extra.contains_key(key)
        }),
        other => panic!("no struct for section {other}"),
    }
}

/// Honoured keys are read into a field; kept keys are not. A key that gains a field changes
/// its status here (or joins READ_NOT_ACTED_ON, and the loader warns of it by name).
#[test]
fn honoured_keys_are_the_fields_the_loader_reads() {
    let mut wrong = Vec::new();
    for section in SECTIONS {
        for (key, status) in section.keys {
            let field = is_field(section, key);
            let honoured = *status == Status::Honoured;
            let excepted = if honoured {
                HONOURED_WITHOUT_FIELD.contains(&(section.name, key))
                    // Request parameters, kept as written and sent with each request.
                    || (section.name == settings::LITELLM_PARAMS.name
                        && switchyard_config::resolve::DEFAULT_PARAMS.contains(key))
            } else {
                READ_NOT_ACTED_ON.contains(&(section.name, key))
            };
            if field != honoured && !excepted {
                wrong.push(format!(
                    "{}.{key}: the table says {}, but it is {}a field of the config",
                    section.name,
                    status.word(),
                    if field { "" } else { "not " }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The fields a struct of model.rs or cache.rs reads from YAML, by their YAML names.
fn fields(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let mut out = Vec::new();
    let (mut skip, mut rename) = (false, None);
    for line in source[start..].lines().skip(1) {
        let line = line.trim();
        if line == "}" {
            break;
        }
        if line.starts_with("#[serde(") {
            skip |= line.contains("skip") || line.contains("flatten");
            if let Some((_, r)) = line.split_once("rename = \"") {
                rename = r.split('"').next().map(str::to_string);
            }
            continue;
        }
        if let Some(field) = line.strip_prefix("pub ") {
            let field = field.split(':').next().unwrap().trim().to_string();
            if !skip {
                out.push(rename.take().unwrap_or(field));
            }
            (skip, rename) = (false, None);
        }
    }
    out
}

/// Every field the loader reads is in the table, so README names it too.
#[test]
fn every_field_of_the_config_is_in_the_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let model = std::fs::read_to_string(dir.join("model.rs")).unwrap();
    let cache = std::fs::read_to_string(dir.join("cache.rs")).unwrap();
    let structs = [
        (&model, "ProxyConfig", &settings::TOP_LEVEL),
        (&model, "ModelEntry", &settings::MODEL_ENTRY),
        (&model, "LitellmParams", &settings::LITELLM_PARAMS),
        (&model, "ModelInfo", &settings::MODEL_INFO),
        (&model, "LitellmSettings", &settings::LITELLM_SETTINGS),
        (&model, "RouterSettings", &settings::ROUTER_SETTINGS),
        (&model, "GeneralSettings", &settings::GENERAL_SETTINGS),
        (&cache, "CacheParams", &settings::CACHE_PARAMS),
    ];
    let mut missing = Vec::new();
    for (source, name, section) in structs {
        let found = fields(source, name);
        assert!(found.len() > 1, "{name}: no fields found");
        for field in found {
            if section.status(&field).is_none() {
                missing.push(format!("{}.{field} ({name})", section.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in config/src/settings.rs: {missing:#?}"
    );
}
