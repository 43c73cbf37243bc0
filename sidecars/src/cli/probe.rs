//! `switchyard health` and `switchyard up --test`: ask a running gateway, as LiteLLM's
//! `litellm --health` and `litellm --test` do.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use serde_json::{json, Value};

use super::Failure;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The gateway's URL.
    #[arg(long, default_value = "http://127.0.0.1:4000", value_name = "URL")]
    url: String,
    /// Only this model group's deployments.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// The master key (or a virtual key).
    #[arg(
        long,
        env = "LITELLM_MASTER_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    key: Option<String>,
}

/// GET or POST `url`, with the key; the status and the JSON answer.
fn ask(
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
    timeout: Duration,
) -> Result<(u16, Value), Failure> {
    let client = crate::http::https().ok_or_else(|| Failure("no HTTP client".into()))?;
    let mut request = match &body {
        Some(_) => hyper::Request::post(url).header("content-type", "application/json"),
        None => hyper::Request::get(url),
    };
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        request = request.header("authorization", format!("Bearer {k}"));
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = request
        .body(Full::new(body))
        .map_err(|e| Failure(format!("bad URL {url}: {e}")))?;
    let (status, answer) = super::runtime()?
        .block_on(crate::http::call(&client, request, timeout))
        .map_err(|e| Failure(format!("{e} (is `switchyard up` running there?)")))?;
    let json =
        serde_json::from_slice(&answer).unwrap_or_else(|_| json!(String::from_utf8_lossy(&answer)));
    Ok((status.as_u16(), json))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Prints `/health`; fails when a deployment is unhealthy (for scripts and probes).
pub fn health(args: HealthArgs) -> Result<(), Failure> {
    let mut url = format!("{}/health", args.url.trim_end_matches('/'));
    if let Some(m) = &args.model {
        url.push_str("?model=");
        url.push_str(&switchyard_config::percent_encode(m));
    }
    let (status, answer) = ask(&url, args.key.as_deref(), None, Duration::from_secs(120))?;
    println!("{}", pretty(&answer));
    match (status, answer["unhealthy_count"].as_u64()) {
        (200, Some(0)) => Ok(()),
        (200, Some(n)) => Err(Failure(format!("{n} deployment(s) unhealthy"))),
        (status, _) => Err(Failure(format!("/health answered {status}"))),
    }
}

/// One chat request through the gateway, to the first model group it lists that answers
/// chat (an embedding group does not); prints the answer.
pub fn test(url: &str, key: Option<&str>) -> Result<(), Failure> {
    let base = url.trim_end_matches('/');
    let (status, models) = ask(
        &format!("{base}/v1/models"),
        key,
        None,
        Duration::from_secs(10),
    )?;
    let names: Vec<String> = models["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|m| m["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err(Failure(format!(
            "/v1/models answered {status} with no model: {}",
            pretty(&models)
        )));
    }
    let mut last = None;
    for model in names {
        let request = json!({"model": model, "messages": [{"role": "user", "content": "this is a test request, write a short poem"}]});
        println!("POST {base}/v1/chat/completions (model {model})");
        let (status, answer) = ask(
            &format!("{base}/v1/chat/completions"),
            key,
            Some(request),
            Duration::from_secs(600),
        )?;
        println!("{}", pretty(&answer));
        if status == 200 {
            return Ok(());
        }
        last = Some(status);
    }
    Err(Failure(format!(
        "no model group answered the test request (last status {})",
        last.unwrap_or(0)
    )))
}
