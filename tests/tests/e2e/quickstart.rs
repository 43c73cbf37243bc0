//! config/examples/quickstart.yaml, the README's `make run`: the built-in demo model served
//! by the sidecar answers with no provider key. And `switchyard up` stops cleanly on SIGTERM.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::artefacts::repo_root;
use switchyard_tests::switchyard::http_status;
use switchyard_tests::{marker, shared, Client, Switchyard};

use crate::common::{chat, chat_stream};

const DEMO_TEXT: &str = "This is Switchyard's demo model: no LLM was called.";

/// The quickstart's text, its first model_name, and its master_key if it sets one literally.
fn quickstart() -> (String, String, Option<String>) {
    let path = repo_root().join("config/examples/quickstart.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let config: Value = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    let model = config["model_list"][0]["model_name"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no model_list[0].model_name", path.display()))
        .to_string();
    let key = config["general_settings"]["master_key"]
        .as_str()
        .filter(|k| !k.starts_with("os.environ/"))
        .map(str::to_string);
    (text, model, key)
}

fn client(s: &Stack) -> Client {
    let client = Client::new(&s.sy.base_url());
    match &s.key {
        Some(key) => client.with_key(key),
        None => client,
    }
}

struct Stack {
    sy: Switchyard,
    model: String,
    key: Option<String>,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let (config, model, key) = quickstart();
        Stack {
            sy: Switchyard::start(&config),
            model,
            key,
        }
    })
}

#[tokio::test]
async fn quickstart_chat() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("hello");
    let answer = client(s)
        .post("/v1/chat/completions", &chat(&s.model, &m))
        .await
        .expect_json(200);
    assert_eq!(answer["model"], s.model.as_str());
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(content.starts_with(DEMO_TEXT), "{answer}");
    assert!(
        content.contains(&m),
        "the demo repeats what it was told: {answer}"
    );
}

#[tokio::test]
async fn quickstart_chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("hello");
    let reply = client(s)
        .stream("/v1/chat/completions", &chat_stream(&s.model, &m, true))
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert!(
        reply
            .json_chunks()
            .iter()
            .all(|c| c["model"] == s.model.as_str()),
        "{}",
        reply.text()
    );
    let content = reply.content();
    assert!(content.starts_with(DEMO_TEXT), "{content}");
    assert!(content.contains(&m), "{content}");
    assert!(
        reply.usage().is_some(),
        "include_usage honoured: {}",
        reply.text()
    );
}

#[test]
fn sigterm_stops_envoy_and_the_sidecar() {
    let (config, _, _) = quickstart();
    let mut sy = Switchyard::start(&config);
    let (port, admin, sidecar) = (sy.port(), sy.admin_port(), sy.sidecar_port());
    // `up` prints its banner once Envoy is ready, which may be just after the health probe.
    let banner = format!("Switchyard is listening on http://127.0.0.1:{port}");
    assert!(
        sy.wait_for_stdout(&banner, Duration::from_secs(10)),
        "the banner says where to connect:\n{}",
        sy.logs()
    );
    let status = sy.stop().expect("it stops");
    assert!(
        status.success(),
        "SIGTERM is a clean stop, got {status}:\n{}",
        sy.logs()
    );
    for (what, p) in [("listener", port), ("admin", admin), ("sidecar", sidecar)] {
        assert!(
            http_status(p, "/").is_err(),
            "the {what} port {p} still answers after stop: Envoy or the sidecar outlived `up`"
        );
    }
}
