//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`) with the official
//! anthropic SDK, in front of an OpenAI deployment (bridged through chat) and of an Anthropic
//! one (passed through untouched, checked by the strict fake): a message, a stream, a tool
//! call and its result, a token count, a wrong key and an upstream 429 raise what the SDK
//! raises against Anthropic itself.

use serde_json::json;
use switchyard_tests::fakes::anthropic::{self, COUNTED_TOKENS, KEY, MODEL, RATE_LIMITED};
use switchyard_tests::{FakeProvider, Mode, StrictFake, Switchyard};

use crate::common::{anthropic_on, openai_on, python_script, yaml, SdkReport, FAKE_KEY};

const MASTER: &str = "sk-master-of-messages";

fn run_sdk(sy: &Switchyard, limited_model: &str, limited_prompt: &str) -> SdkReport {
    python_script(
        "anthropic_sdk_check.py",
        &[
            "--base-url",
            &sy.base_url(),
            "--api-key",
            MASTER,
            "--model",
            "fast",
            "--limited-model",
            limited_model,
            "--limited-prompt",
            limited_prompt,
        ],
    )
}

/// What the SDK reads the same from either deployment: a message, a stream, and a tool call
/// whose result is sent back.
fn common_lines(report: &SdkReport) {
    let line = |key: &str| report.line(key);
    assert_eq!(line("TYPE"), "message");
    assert_eq!(line("STOP"), "end_turn");
    assert_eq!(line("STREAM_STOP"), "end_turn");
    assert!(!line("STREAM_TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("TOOL_STOP"), "tool_use");
    assert_eq!(line("TOOL_NAME"), "get_weather");
    assert_eq!(line("TOOL_RESULT_STOP"), "end_turn");
    assert_eq!(line("BAD_KEY"), "AuthenticationError 401");
    assert_eq!(line("LIMITED"), "RateLimitError 429");
}

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
    let report = run_sdk(&sy, "busy", "Say hello");
    common_lines(&report);
    let line = |key: &str| report.line(key);
    assert_eq!(line("MODEL"), "fast");
    assert!(!line("TEXT").is_empty(), "{}", report.report);
    // No deployment of the group counts tokens: the gateway estimates.
    let counted: u64 = line("COUNT").parse().expect("a count");
    assert!((3..50).contains(&counted), "{}", report.report);
    assert_eq!(line("MODELS"), "busy,fast", "Anthropic's model list");

    // The provider got chat requests: the system prompt as a system message, the tool as a
    // chat tool.
    let chats: Vec<serde_json::Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/chat/completions"))
        .map(|r| r.json())
        .collect();
    assert_eq!(chats[0]["messages"][0]["role"], "system", "{chats:?}");
    assert_eq!(chats[0]["max_tokens"], 64, "{chats:?}");
    assert!(chats
        .iter()
        .any(|c| c["tools"][0]["function"]["name"] == "get_weather"));
    let result = chats
        .iter()
        .filter_map(|c| c["messages"].as_array()?.last())
        .find(|m| m["role"] == "tool")
        .expect("the tool's result went on as a tool message");
    assert_eq!(result["tool_call_id"], "call_fake0001");
    assert_eq!(result["content"], "Sunny, 21 C", "{result}");
}

#[test]
fn the_anthropic_sdk_passed_through_to_anthropic() {
    let fake = StrictFake::start("anthropic", anthropic::handler());
    let config = json!({
        "model_list": [anthropic_on("fast", &fake)],
        "router_settings": {"num_retries": 0, "disable_cooldowns": true},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("ANTHROPIC_FAKE_KEY", KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let report = run_sdk(&sy, "fast", RATE_LIMITED);
    common_lines(&report);
    let line = |key: &str| report.line(key);
    // Anthropic's own answer, untouched: its model.
    assert_eq!(line("MODEL"), MODEL);
    assert_eq!(
        line("COUNT"),
        COUNTED_TOKENS.to_string(),
        "Anthropic counted"
    );

    let requests = fake.requests();
    assert!(requests
        .iter()
        .any(|r| r.uri == "/v1/messages/count_tokens"));
    // The SDK's own request reached Anthropic as it was sent, only the model changed.
    let first = requests
        .iter()
        .find(|r| r.uri == "/v1/messages")
        .expect("a message")
        .json();
    assert_eq!(
        first,
        json!({"model": MODEL, "max_tokens": 64, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello"}]})
    );
    fake.assert_no_violations();
}
