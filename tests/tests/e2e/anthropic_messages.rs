//! Anthropic's Messages API (`/v1/messages`) in front of an OpenAI deployment, with the
//! official anthropic SDK: a message, a stream, a wrong key and an upstream 429 raise what
//! the SDK raises against Anthropic itself; the provider got a chat request.

use serde_json::json;
use switchyard_tests::{FakeProvider, Mode, Switchyard};

use crate::common::{openai_on, python_script, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-messages";

#[test]
fn the_anthropic_sdk_through_the_bridge() {
    let fake = FakeProvider::start();
    let busy = FakeProvider::with_mode(Mode::Status(429));
    let config = json!({
        "model_list": [openai_on("fast", "gpt-4o-mini", &fake), openai_on("busy", "gpt-4o-mini", &busy)],
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let report = python_script(
        "anthropic_sdk_check.py",
        &[
            "--base-url",
            &sy.base_url(),
            "--api-key",
            MASTER,
            "--model",
            "fast",
            "--limited-model",
            "busy",
        ],
    );
    let line = |key: &str| report.line(key);
    assert_eq!(line("TYPE"), "message");
    assert_eq!(line("MODEL"), "fast");
    assert!(!line("TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("STOP"), "end_turn");
    assert_eq!(line("STREAM_STOP"), "end_turn");
    assert!(!line("STREAM_TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("BAD_KEY"), "AuthenticationError 401");
    assert_eq!(line("LIMITED"), "RateLimitError 429");
    assert_eq!(line("MODELS"), "busy,fast", "Anthropic's model list");

    // The provider got chat requests: the system prompt as a system message.
    let first = fake
        .requests()
        .into_iter()
        .find(|r| r.path().ends_with("/chat/completions"))
        .expect("the provider was asked");
    let body = first.json();
    assert_eq!(body["messages"][0]["role"], "system", "{body}");
    assert_eq!(body["max_tokens"], 64, "{body}");
}
