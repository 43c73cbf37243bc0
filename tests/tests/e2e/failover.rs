//! A model group with a failing deployment and a healthy one: every request succeeds on the
//! healthy one, streamed or not, and the client never sees the failure.

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fake::CHAT_CONTENT;
use switchyard_tests::{closed_port, marker, shared, Client, FakeProvider, Mode, Switchyard};

use crate::common::{chat, chat_stream, deployment, openai_on, yaml, FAKE_KEY};

/// Requests sent at most before the failing deployment must have been tried: the router may
/// pick either first, and may eject the failing one after it failed.
const MAX_ATTEMPTS: usize = 20;

struct Stack {
    sy: Switchyard,
    /// failover-whole: 503 first, healthy second.
    a_bad: FakeProvider,
    a_good: FakeProvider,
    /// failover-stream: the same, for streamed requests.
    b_bad: FakeProvider,
    b_good: FakeProvider,
    /// failover-refused: a closed port first, healthy second.
    c_good: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let a_bad = FakeProvider::with_mode(Mode::Status(503));
        let a_good = FakeProvider::start();
        let b_bad = FakeProvider::with_mode(Mode::Status(503));
        let b_good = FakeProvider::start();
        let c_good = FakeProvider::start();
        let refused = deployment(
            "failover-refused",
            json!({
                "model": "openai/gpt-4o-mini",
                "api_base": format!("http://127.0.0.1:{}/v1", closed_port()),
                "api_key": "os.environ/FAKE_KEY",
            }),
        );
        let config = json!({
            "model_list": [
                openai_on("failover-whole", "gpt-4o-mini", &a_bad),
                openai_on("failover-whole", "gpt-4o-mini", &a_good),
                openai_on("failover-stream", "gpt-4o-mini", &b_bad),
                openai_on("failover-stream", "gpt-4o-mini", &b_good),
                refused,
                openai_on("failover-refused", "gpt-4o-mini", &c_good),
            ],
            "router_settings": {"num_retries": 2},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("FAKE_KEY", FAKE_KEY)]);
        Stack {
            sy,
            a_bad,
            a_good,
            b_bad,
            b_good,
            c_good,
        }
    })
}

/// Sends requests until `bad` has received one (or MAX_ATTEMPTS), checking each answer.
async fn until_tried(
    bad: Option<&FakeProvider>,
    good: &FakeProvider,
    mut send: impl AsyncFnMut(&str),
) {
    for attempt in 1..=MAX_ATTEMPTS {
        let m = marker("failover");
        send(&m).await;
        assert_eq!(
            good.find(&m).len(),
            1,
            "attempt {attempt}: the healthy deployment must have served the request once"
        );
        match bad {
            Some(bad) if bad.count() > 0 => return,
            None if attempt >= 5 => return,
            _ => {}
        }
    }
    panic!("the failing deployment never received a request in {MAX_ATTEMPTS} attempts: is the group really made of both deployments?");
}

#[tokio::test]
async fn failover_on_503() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    until_tried(Some(&s.a_bad), &s.a_good, async |m| {
        let answer: Value = client
            .post("/v1/chat/completions", &chat("failover-whole", m))
            .await
            .expect_json(200);
        assert_eq!(answer["model"], "failover-whole");
        assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
    })
    .await;
    let tried = s.a_bad.requests().pop().unwrap();
    assert_eq!(tried.uri, "/v1/chat/completions");
    assert_eq!(tried.json()["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn failover_on_503_streamed() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    until_tried(Some(&s.b_bad), &s.b_good, async |m| {
        let reply = client
            .stream(
                "/v1/chat/completions",
                &chat_stream("failover-stream", m, true),
            )
            .await;
        let text = reply.text();
        assert_eq!(reply.status, 200, "body: {text}");
        assert!(
            !text.contains("error"),
            "the client sees only the healthy stream:\n{text}"
        );
        assert!(
            !text.contains("overloaded"),
            "the 503's body leaked:\n{text}"
        );
        assert_eq!(
            reply.data().last().map(String::as_str),
            Some("[DONE]"),
            "{text}"
        );
        assert!(
            reply
                .json_chunks()
                .iter()
                .all(|c| c["model"] == "failover-stream"),
            "{text}"
        );
        assert_eq!(reply.content(), CHAT_CONTENT);
        assert_eq!(
            reply.usage().map(|u| u["total_tokens"].clone()),
            Some(json!(22))
        );
    })
    .await;
    assert_eq!(s.b_bad.requests().pop().unwrap().json()["stream"], true);
}

#[tokio::test]
async fn failover_on_connection_refused() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    until_tried(None, &s.c_good, async |m| {
        let answer: Value = client
            .post("/v1/chat/completions", &chat("failover-refused", m))
            .await
            .expect_json(200);
        assert_eq!(answer["model"], "failover-refused");
    })
    .await;
}

/// A 3 MB prompt, well above Envoy's default 1 MiB buffer (which would give 413 and abandon
/// retries), still fails over whole: the healthy deployment gets every byte.
#[tokio::test]
async fn large_body_survives_failover() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    let padding = "x".repeat(3 * 1024 * 1024);
    until_tried(Some(&s.a_bad), &s.a_good, async |m| {
        let text = format!("{m} {padding}");
        let answer: Value = client
            .post("/v1/chat/completions", &chat("failover-whole", &text))
            .await
            .expect_json(200);
        assert_eq!(answer["model"], "failover-whole");
        let got = s.a_good.find(m).pop().unwrap();
        assert_eq!(
            got.json()["messages"][0]["content"].as_str().map(str::len),
            Some(text.len()),
            "the provider must receive the whole prompt"
        );
    })
    .await;
}
