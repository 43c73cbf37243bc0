//! `/health`: every deployment (or a model group's) called with a minimal request of its mode,
//! through the gateway itself, so the check goes the way requests go (the provider role's
//! translation, credentials, TLS). Each call is one attempt at one deployment (the gateway's
//! health-check header, the master key's only): cooldowns do not skip it, and its failure
//! counts towards the deployment's cooldown as a request's would. With
//! `background_health_checks` the sidecar checks every `health_check_interval` seconds and
//! `/health` answers from the last round.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use switchyard_config::{ProxyConfig, HEALTH_CHECK_HEADER};

use crate::semantic::Gateway;

/// How long one deployment may take to answer its check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// LiteLLM's default health_check_interval.
pub const DEFAULT_INTERVAL_S: f64 = 300.0;

/// One deployment to check.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    group: String,
    /// litellm_params.model as written.
    model: String,
    api_base: String,
    mode: String,
}

/// The deployments of `group` (all when None).
fn targets(config: &ProxyConfig, group: Option<&str>) -> Vec<Target> {
    let Ok(resolved) = config.resolve_deployments(("127.0.0.1", 0)) else {
        return Vec::new();
    };
    resolved
        .into_iter()
        .filter_map(|r| {
            let entry = config.model_list.get(r.index)?;
            if group.is_some_and(|g| g != entry.model_name) {
                return None;
            }
            let d = &r.config;
            Some(Target {
                id: d.id.clone(),
                group: entry.model_name.clone(),
                model: entry.litellm_params.model.clone(),
                api_base: format!("{}://{}{}", d.scheme, d.authority, d.base_path),
                mode: entry
                    .model_info
                    .mode
                    .clone()
                    .unwrap_or_else(|| "chat".into()),
            })
        })
        .collect()
}

/// The path and body of a minimal request of a mode; None for modes not checked.
fn probe(mode: &str, group: &str) -> Option<(&'static str, Value)> {
    match mode {
        "chat" => Some((
            "/v1/chat/completions",
            json!({"model": group, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}),
        )),
        "completion" => Some((
            "/v1/completions",
            json!({"model": group, "prompt": "ping", "max_tokens": 1}),
        )),
        "embedding" => Some(("/v1/embeddings", json!({"model": group, "input": "ping"}))),
        _ => None,
    }
}

/// Checks one deployment: the endpoint as LiteLLM lists it, with `latency_ms`, and `error`
/// when it failed.
async fn check(client: &crate::http::Https, gateway: &Gateway, t: &Target) -> (bool, Value) {
    let mut endpoint = json!({
        "model": t.model,
        "model_name": t.group,
        "model_id": t.id,
        "api_base": t.api_base,
        "mode": t.mode,
    });
    let Some((path, body)) = probe(&t.mode, &t.group) else {
        endpoint["error"] = json!(format!(
            "mode {} is not health-checked by Switchyard",
            t.mode
        ));
        return (false, endpoint);
    };
    let url = format!("{}{path}", gateway.url.trim_end_matches('/'));
    let mut request = hyper::Request::post(&url)
        .header("content-type", "application/json")
        .header(HEALTH_CHECK_HEADER, &t.id);
    if let Some(key) = &gateway.master_key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let started = Instant::now();
    let outcome = match request.body(Full::new(Bytes::from(body.to_string()))) {
        Ok(request) => crate::http::call(client, request, CHECK_TIMEOUT).await,
        Err(e) => Err(format!("bad gateway URL {url}: {e}")),
    };
    endpoint["latency_ms"] = json!(started.elapsed().as_millis() as u64);
    match outcome {
        Ok((status, _)) if status.is_success() => (true, endpoint),
        Ok((status, answer)) => {
            let message = serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(300).collect());
            endpoint["error"] = json!(format!("{status}: {message}"));
            (false, endpoint)
        }
        Err(e) => {
            endpoint["error"] = json!(e);
            (false, endpoint)
        }
    }
}

/// Checks the deployments of `group` (all when None), all at once; LiteLLM's shape.
pub async fn run(config: &ProxyConfig, gateway: Option<&Gateway>, group: Option<&str>) -> Value {
    let Some(gateway) = gateway else {
        return json!({"error": "this sidecar does not know the gateway's URL (start it with --gateway-url): it cannot call the deployments"});
    };
    let Some(client) = crate::http::https() else {
        return json!({"error": "no HTTP client"});
    };
    let checks = targets(config, group)
        .into_iter()
        .map(|t| {
            let (client, gateway) = (client.clone(), gateway.clone());
            tokio::spawn(async move { check(&client, &gateway, &t).await })
        })
        .collect::<Vec<_>>();
    let (mut healthy, mut unhealthy) = (Vec::new(), Vec::new());
    for c in checks {
        if let Ok((ok, endpoint)) = c.await {
            match ok {
                true => healthy.push(endpoint),
                false => unhealthy.push(endpoint),
            }
        }
    }
    json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    })
}

/// The last background round, and when it finished.
#[derive(Default)]
pub struct Last {
    pub result: Option<Value>,
    pub at: Option<std::time::SystemTime>,
}

/// Checks every deployment every `interval`, keeping the last round in `last`.
pub async fn background(
    config: Arc<ProxyConfig>,
    gateway: Gateway,
    interval: Duration,
    last: Arc<Mutex<Last>>,
) {
    // The sidecar starts before Envoy: the first round waits for the gateway to listen.
    if let Some(client) = crate::http::https() {
        let url = format!("{}/health/liveliness", gateway.url.trim_end_matches('/'));
        for _ in 0..240 {
            let Ok(request) = hyper::Request::get(&url).body(Full::new(Bytes::new())) else {
                break;
            };
            match crate::http::call(&client, request, Duration::from_secs(1)).await {
                Ok((status, _)) if status.is_success() => break,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    loop {
        let result = run(&config, Some(&gateway), None).await;
        if let Ok(mut l) = last.lock() {
            l.result = Some(result);
            l.at = Some(std::time::SystemTime::now());
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn probes_by_mode() {
        assert_eq!(probe("chat", "g").unwrap().0, "/v1/chat/completions");
        assert_eq!(probe("embedding", "g").unwrap().1["input"], "ping");
        assert!(probe("image_generation", "g").is_none());
    }
}
