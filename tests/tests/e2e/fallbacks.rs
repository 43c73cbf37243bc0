//! Fallbacks as LiteLLM has them: `fallbacks` after the group's retries, straight to
//! `context_window_fallbacks` and `content_policy_fallbacks` on those errors,
//! `default_fallbacks`, fallbacks named in the request, pre-call checks that skip
//! deployments too small for the prompt; streamed requests fall back before the first byte,
//! and the answer says which model served it.

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fake::{Rule, CHAT_CONTENT};
use switchyard_tests::{
    assert_openai_error, marker, shared, Client, FakeProvider, Mode, Switchyard,
};

use crate::common::{chat, chat_stream, keyed, tries, yaml};

const POLICY_MESSAGE: &str = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.";

/// A deployment with model_info.max_input_tokens.
fn with_window(mut entry: Value, tokens: u64) -> Value {
    entry["model_info"] = json!({"max_input_tokens": tokens});
    entry
}

struct Stack {
    sy: Switchyard,
    fake: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

/// One fake: keys sk-bad* answer 500, sk-cw* a context-window error, sk-cp* a content-policy
/// refusal; others answer.
fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-bad1", Mode::Status(500)),
            Rule::key("sk-bad2", Mode::Status(500)),
            Rule::key("sk-bad3", Mode::Status(500)),
            Rule::key("sk-cw", Mode::ContextWindow),
            Rule::key("sk-cp", Mode::TextStatus(400, POLICY_MESSAGE.to_string())),
        ]));
        let config = json!({
            "model_list": [
                keyed("primary", &fake, "sk-bad1", json!({})),
                keyed("primary", &fake, "sk-bad2", json!({})),
                keyed("backup", &fake, "sk-backup", json!({})),
                keyed("dead-end", &fake, "sk-bad3", json!({})),
                keyed("small", &fake, "sk-cw", json!({})),
                keyed("large", &fake, "sk-large", json!({})),
                keyed("strict", &fake, "sk-cp", json!({})),
                keyed("lenient", &fake, "sk-lenient", json!({})),
                keyed("orphan", &fake, "sk-bad3", json!({})),
                keyed("default", &fake, "sk-default", json!({})),
                keyed("picked", &fake, "sk-picked", json!({})),
                // Pre-call checks: a small deployment and a large one in one group.
                with_window(keyed("checked", &fake, "sk-tiny", json!({})), 100),
                with_window(keyed("checked", &fake, "sk-roomy", json!({})), 100_000),
                with_window(keyed("too-small", &fake, "sk-tiny2", json!({})), 100),
            ],
            "router_settings": {
                "num_retries": 1,
                "disable_cooldowns": true,
                "enable_pre_call_checks": true,
                "fallbacks": [
                    {"primary": ["dead-end", "backup"]},
                    {"small": ["dead-end"]},
                    {"checked": ["backup"]},
                ],
                "context_window_fallbacks": [{"small": ["large"]}, {"too-small": ["large"]}],
                "content_policy_fallbacks": [{"strict": ["lenient"]}],
                "default_fallbacks": ["default"],
            },
        });
        let sy = Switchyard::start(&yaml(&config));
        Stack { sy, fake }
    })
}

fn client() -> Client {
    Client::new(&stack().sy.base_url())
}

/// The group's retries, then each fallback in order until one answers.
#[tokio::test]
async fn fallbacks_after_the_groups_retries() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("fallback");
    let reply = client()
        .post("/v1/chat/completions", &chat("primary", &m))
        .await;
    let answer = reply.expect_json(200);
    assert_eq!(
        answer["model"], "backup",
        "the answer says which model served it"
    );
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
    assert_eq!(reply.header("x-litellm-attempted-fallbacks"), Some("2"));
    assert_eq!(reply.header("x-litellm-model-group"), Some("backup"));
    assert_eq!(
        tries(&stack().fake, &m, "sk-bad1") + tries(&stack().fake, &m, "sk-bad2"),
        2,
        "1 + num_retries in primary"
    );
    assert_eq!(
        tries(&stack().fake, &m, "sk-bad3"),
        2,
        "then dead-end, with its own retry"
    );
    assert_eq!(tries(&stack().fake, &m, "sk-backup"), 1);
    let got = &s.fake.find(&m)[s.fake.find(&m).len() - 1];
    assert_eq!(
        got.json()["messages"][0]["content"],
        m.as_str(),
        "the whole request reaches the fallback"
    );
}

#[tokio::test]
async fn streamed_requests_fall_back_before_the_first_byte() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("fallback-stream");
    let reply = client()
        .stream("/v1/chat/completions", &chat_stream("primary", &m, true))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!reply.text().contains("error"), "{}", reply.text());
    assert_eq!(reply.content(), CHAT_CONTENT);
    assert!(reply.json_chunks().iter().all(|c| c["model"] == "backup"));
    assert_eq!(tries(&stack().fake, &m, "sk-backup"), 1);
}

/// A context-window error goes straight to context_window_fallbacks: no retry, no regular
/// fallback first.
#[tokio::test]
async fn context_window_errors_go_to_their_fallbacks() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cw");
    let reply = client()
        .post("/v1/chat/completions", &chat("small", &m))
        .await;
    assert_eq!(reply.expect_json(200)["model"], "large");
    assert_eq!(tries(&stack().fake, &m, "sk-cw"), 1);
    assert_eq!(
        tries(&stack().fake, &m, "sk-bad3"),
        0,
        "not the regular fallback"
    );
    assert_eq!(tries(&stack().fake, &m, "sk-large"), 1);
}

#[tokio::test]
async fn content_policy_errors_go_to_their_fallbacks() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cp");
    let reply = client()
        .post("/v1/chat/completions", &chat("strict", &m))
        .await;
    assert_eq!(reply.expect_json(200)["model"], "lenient");
    assert_eq!(tries(&stack().fake, &m, "sk-cp"), 1);
}

#[tokio::test]
async fn default_fallbacks_and_fallbacks_named_in_the_request() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("default");
    let reply = client()
        .post("/v1/chat/completions", &chat("orphan", &m))
        .await;
    assert_eq!(reply.expect_json(200)["model"], "default");

    let m = marker("picked");
    let mut body = chat("orphan", &m);
    body["fallbacks"] = json!(["picked"]);
    let reply = client().post("/v1/chat/completions", &body).await;
    assert_eq!(reply.expect_json(200)["model"], "picked");
    assert_eq!(tries(&stack().fake, &m, "sk-default"), 0);
    assert!(
        s.fake
            .find(&m)
            .iter()
            .all(|r| r.json().get("fallbacks").is_none()),
        "providers never see the router's parameters"
    );
}

#[tokio::test]
async fn when_every_fallback_fails_the_client_gets_the_last_error() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("all-fail");
    let mut body = chat("orphan", &m);
    body["fallbacks"] = json!(["dead-end"]);
    let reply = client().post("/v1/chat/completions", &body).await;
    assert_openai_error(&reply, 500);
    assert_eq!(reply.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(s.fake.find(&m).len(), 4, "two attempts in each group");
}

/// enable_pre_call_checks: a prompt too long for a deployment's max_input_tokens skips it;
/// too long for every deployment goes to the context_window_fallbacks.
#[tokio::test]
async fn pre_call_checks_skip_deployments_too_small_for_the_prompt() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let long = format!("{} {}", marker("long"), "word ".repeat(200));
    for _ in 0..5 {
        let m = marker("checked");
        let text = format!("{m} {long}");
        client()
            .post("/v1/chat/completions", &chat("checked", &text))
            .await
            .expect_json(200);
        assert_eq!(tries(&stack().fake, &m, "sk-tiny"), 0);
        assert_eq!(tries(&stack().fake, &m, "sk-roomy"), 1);
    }
    let m = marker("too-small");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &chat("too-small", &format!("{m} {long}")),
        )
        .await;
    assert_eq!(reply.expect_json(200)["model"], "large");
    assert_eq!(
        tries(&stack().fake, &m, "sk-tiny2"),
        0,
        "never sent where it cannot fit"
    );
    // A short prompt fits everywhere.
    let m = marker("short");
    client()
        .post("/v1/chat/completions", &chat("too-small", &m))
        .await
        .expect_json(200);
    assert_eq!(tries(&stack().fake, &m, "sk-tiny2"), 1);
}
