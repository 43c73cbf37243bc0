//! OpenAI's Responses API (`/v1/responses`) bridged to a chat deployment, with the official
//! openai SDK: a response, a stream of typed events, function tools reaching the provider as
//! chat tools, and a clear 400 for previous_response_id (Switchyard keeps no conversations).

use serde_json::json;
use switchyard_tests::{FakeProvider, Switchyard};

use crate::common::{openai_on, python_script, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-responses";

#[test]
fn the_openai_sdk_responses_through_the_bridge() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [openai_on("fast", "gpt-4o-mini", &fake)],
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let report = python_script(
        "responses_sdk_check.py",
        &[
            "--base-url",
            &sy.url("/v1"),
            "--api-key",
            MASTER,
            "--model",
            "fast",
        ],
    );
    let line = |key: &str| report.line(key);
    assert_eq!(line("OBJECT"), "response");
    assert_eq!(line("STATUS"), "completed");
    assert_eq!(line("MODEL"), "fast");
    assert!(!line("TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("FIRST_EVENT"), "response.created");
    assert_eq!(line("LAST_EVENT"), "response.completed");
    assert_eq!(line("STREAM_TEXT"), line("STREAM_COMPLETED_TEXT"));
    assert!(!line("STREAM_TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("TOOLS_STATUS"), "completed");
    assert_eq!(line("PREVIOUS"), "BadRequestError 400");

    // The provider got chat requests: instructions as the system message, tools as chat tools.
    let chats: Vec<serde_json::Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/chat/completions"))
        .map(|r| r.json())
        .collect();
    assert_eq!(
        chats[0]["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert!(
        chats
            .iter()
            .any(|c| c["tools"][0]["function"]["name"] == "get_weather"),
        "{chats:?}"
    );
}
