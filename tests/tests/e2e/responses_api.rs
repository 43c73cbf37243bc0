//! OpenAI's Responses API (`/v1/responses`) with the official openai SDK, in front of an
//! OpenAI deployment (passed through to its Responses API untouched, so
//! previous_response_id works) and of an Anthropic one (bridged through chat, checked by the
//! strict fake: instructions as the system prompt, function tools as Anthropic tools, and a
//! clear 400 for previous_response_id, as Switchyard keeps no conversations).

use serde_json::json;
use switchyard_tests::fakes::anthropic::{self, KEY, MODEL};
use switchyard_tests::{FakeProvider, StrictFake, Switchyard};

use crate::common::{deployment, openai_on, python_script, yaml, SdkReport, FAKE_KEY};

const MASTER: &str = "sk-master-of-responses";

fn run_sdk(sy: &Switchyard) -> SdkReport {
    python_script(
        "responses_sdk_check.py",
        &[
            "--base-url",
            &sy.url("/v1"),
            "--api-key",
            MASTER,
            "--model",
            "fast",
        ],
    )
}

fn common_lines(report: &SdkReport) {
    let line = |key: &str| report.line(key);
    assert_eq!(line("OBJECT"), "response");
    assert_eq!(line("STATUS"), "completed");
    assert!(!line("TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("FIRST_EVENT"), "response.created");
    assert_eq!(line("LAST_EVENT"), "response.completed");
    assert_eq!(line("STREAM_TEXT"), line("STREAM_COMPLETED_TEXT"));
    assert!(!line("STREAM_TEXT").is_empty(), "{}", report.report);
    assert_eq!(line("TOOLS_STATUS"), "completed");
    assert!(
        line("TOOL_CALL").starts_with("get_weather "),
        "{}",
        report.report
    );
}

#[test]
fn the_openai_sdk_responses_passed_through_to_openai() {
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
    let report = run_sdk(&sy);
    common_lines(&report);
    let line = |key: &str| report.line(key);
    // OpenAI's own answer, untouched.
    assert_eq!(line("MODEL"), "gpt-4o-mini-2024-07-18");
    assert_eq!(line("TEXT"), switchyard_tests::fake::RESPONSES_TEXT);
    assert_eq!(line("PREVIOUS"), "accepted resp_fake0001");

    let sent: Vec<serde_json::Value> = fake
        .requests()
        .into_iter()
        .inspect(|r| assert_eq!(r.path(), "/v1/responses"))
        .map(|r| r.json())
        .collect();
    assert_eq!(
        sent[0],
        json!({"model": "gpt-4o-mini", "input": "Say hello", "instructions": "Be brief."})
    );
    assert!(sent
        .iter()
        .any(|r| r["previous_response_id"] == "resp_fake0001"));
}

#[test]
fn the_openai_sdk_responses_bridged_to_anthropic() {
    let fake = StrictFake::start("anthropic", anthropic::handler());
    let config = json!({
        "model_list": [deployment("fast", json!({
            "model": format!("anthropic/{MODEL}"),
            "api_base": fake.url(""),
            "api_key": "os.environ/ANTHROPIC_FAKE_KEY",
        }))],
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("ANTHROPIC_FAKE_KEY", KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let report = run_sdk(&sy);
    common_lines(&report);
    let line = |key: &str| report.line(key);
    assert_eq!(line("MODEL"), "fast");
    assert_eq!(line("PREVIOUS"), "BadRequestError 400");

    let sent: Vec<serde_json::Value> = fake.requests().into_iter().map(|r| r.json()).collect();
    assert_eq!(sent[0]["system"], "Be brief.", "{sent:?}");
    assert!(
        sent.iter().any(|b| b["tools"][0]["name"] == "get_weather"),
        "{sent:?}"
    );
    fake.assert_no_violations();
}
