//! The response cache's key (issue 9; the cache itself is not wired yet): which requests
//! share an answer.
//!
//! The key is the SHA-256 of the endpoint, the model group and every body parameter that
//! changes the answer, canonicalised: object keys sorted at every depth and no whitespace,
//! so two clients that write the same request differently share it. `model` is replaced by
//! the group (an alias and its group share answers). Left out, because they change how an
//! answer is delivered, routed or accounted and not what it says: [`NOT_IN_KEY`].

use serde_json::Value;
use switchyard_config::Endpoint;

use crate::digest::sha256_hex;

/// Body fields that do not change the answer.
pub const NOT_IN_KEY: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "tags",
    "caching",
    "cache",
    "timeout",
    "stream_timeout",
    "request_timeout",
    "num_retries",
    "max_retries",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "drop_params",
    "mock_response",
];

/// The cache key of a request body (a JSON object) for `group`, under `namespace` if set
/// (`<namespace>:<hex>`, as LiteLLM prefixes it). None when the body is not a JSON object.
pub fn key(
    namespace: Option<&str>,
    endpoint: Endpoint,
    group: &str,
    body: &[u8],
) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let mut canonical = String::with_capacity(body.len());
    canonical.push_str(endpoint.name());
    canonical.push('\n');
    canonical.push_str(group);
    canonical.push('\n');
    let mut names: Vec<&String> = fields
        .keys()
        .filter(|k| !NOT_IN_KEY.contains(&k.as_str()))
        .collect();
    names.sort();
    canonical.push('{');
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        write_string(&mut canonical, name);
        canonical.push(':');
        if let Some(v) = fields.get(name) {
            write_canonical(&mut canonical, v);
        }
    }
    canonical.push('}');
    let hash = sha256_hex(canonical.as_bytes());
    Some(match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}:{hash}"),
        None => hash,
    })
}

/// `v` as JSON with every object's keys sorted.
fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_canonical(out, v);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&Value::from(s).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_key(body: &str) -> String {
        key(None, Endpoint::ChatCompletions, "gpt-4o", body.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn order_and_whitespace_do_not_matter() {
        let a = chat_key(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#,
        );
        let b = chat_key(
            r#"{ "temperature": 0.2,
                 "messages": [ { "content": "hi", "role": "user" } ],
                 "model": "gpt4-alias" }"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let k = chat_key(base);
        for other in [
            r#"{"messages":[{"role":"user","content":"hello"}]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"temperature":1}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"seed":7}"#,
        ] {
            assert_ne!(chat_key(other), k, "{other}");
        }
        assert_ne!(
            key(
                None,
                Endpoint::ChatCompletions,
                "other-group",
                base.as_bytes()
            ),
            Some(k.clone()),
            "the group"
        );
        assert_ne!(
            key(None, Endpoint::Completions, "gpt-4o", base.as_bytes()),
            Some(k.clone()),
            "the endpoint"
        );
    }

    #[test]
    fn delivery_routing_and_accounting_fields_do_not() {
        let k = chat_key(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let same = chat_key(
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},
                "user":"eu-1","metadata":{"a":1},"num_retries":3,"timeout":5,"fallbacks":["x"],
                "cache":{"ttl":60},"caching":true}"#,
        );
        assert_eq!(same, k);
    }

    #[test]
    fn namespaces_prefix_the_key() {
        let body = br#"{"messages":[]}"#;
        let plain = key(None, Endpoint::ChatCompletions, "g", body).unwrap();
        let spaced = key(Some("team-a"), Endpoint::ChatCompletions, "g", body).unwrap();
        assert_eq!(spaced, format!("team-a:{plain}"));
        assert_eq!(key(None, Endpoint::ChatCompletions, "g", b"[1]"), None);
    }
}
