//! OpenAI's Responses API (`/v1/responses`) with the official openai SDK, in front of
//! OpenAI deployments (passed through to their Responses API untouched; previous_response_id,
//! retrieve, input_items and delete go to the deployment that stored the response) and of an
//! Anthropic one (bridged through chat, checked by the
//! strict fake: instructions as the system prompt, function tools as Anthropic tools, and a
//! clear 400 for previous_response_id, as Switchyard keeps no conversations).

use serde_json::json;
use switchyard_tests::fakes::anthropic::{self, KEY};
use switchyard_tests::{FakeProvider, StrictFake, Switchyard};

use crate::common::{anthropic_on, openai_on, python_script, yaml, SdkReport, FAKE_KEY};

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
    // Two deployments (two accounts) in one group: a stored response lives at one of them.
    let east = FakeProvider::start();
    let west = FakeProvider::start();
    let config = json!({
        "model_list": [openai_on("fast", "gpt-4o-mini", &east), openai_on("fast", "gpt-4o-mini", &west)],
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
    // OpenAI's own answer, untouched but for the id, which names where it is stored.
    assert_eq!(line("MODEL"), "gpt-4o-mini-2024-07-18");
    assert_eq!(line("TEXT"), switchyard_tests::fake::RESPONSES_TEXT);
    assert_eq!(line("PREVIOUS"), "accepted same");
    assert_eq!(
        line("RETRIEVED"),
        format!("same {}", switchyard_tests::fake::RESPONSES_TEXT)
    );
    assert_eq!(line("INPUT_ITEMS"), "1");
    assert_eq!(line("DELETED"), "True");

    // Every request that names the first response went where it is stored, with the
    // provider's own id.
    let asked = |fake: &FakeProvider| -> Vec<(String, String, serde_json::Value)> {
        fake.requests()
            .into_iter()
            .map(|r| {
                (
                    r.method.clone(),
                    r.path().to_string(),
                    serde_json::from_slice(&r.body).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (east, west) = (asked(&east), asked(&west));
    let first = json!({"model": "gpt-4o-mini", "input": "Say hello", "instructions": "Be brief."});
    let (home, other) = if east.iter().any(|(_, _, b)| *b == first) {
        (east, west)
    } else {
        (west, east)
    };
    assert!(home.iter().any(|(_, _, b)| *b == first), "{home:?}");
    let follow_ups = home
        .iter()
        .filter(|(_, _, b)| b["previous_response_id"] == "resp_fake0001")
        .count();
    assert_eq!(follow_ups, 4, "{home:?}");
    for (method, path) in [
        ("GET", "/v1/responses/resp_fake0001"),
        ("GET", "/v1/responses/resp_fake0001/input_items"),
        ("DELETE", "/v1/responses/resp_fake0001"),
    ] {
        assert!(
            home.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path}: {home:?}"
        );
    }
    assert!(
        !other
            .iter()
            .any(|(_, p, b)| p != "/v1/responses" || !b["previous_response_id"].is_null()),
        "{other:?}"
    );
    assert!(home
        .iter()
        .chain(&other)
        .all(|(_, p, _)| p.starts_with("/v1/responses")));
}

#[test]
fn the_openai_sdk_responses_bridged_to_anthropic() {
    let fake = StrictFake::start("anthropic", anthropic::handler());
    let config = json!({
        "model_list": [anthropic_on("fast", &fake)],
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
    // Nothing is stored where the bridge served the response.
    assert_eq!(line("RETRIEVED"), "NotFoundError 404");

    let sent: Vec<serde_json::Value> = fake.requests().into_iter().map(|r| r.json()).collect();
    assert_eq!(sent[0]["system"], "Be brief.", "{sent:?}");
    assert!(
        sent.iter().any(|b| b["tools"][0]["name"] == "get_weather"),
        "{sent:?}"
    );
    fake.assert_no_violations();
}
