//! general_settings.master_key: which requests get in, and that the master key never
//! reaches a provider. Also the Switchyard the Python SDK test drives.

use std::sync::OnceLock;

use serde_json::json;
use switchyard_tests::{assert_openai_error, marker, shared, Client, FakeProvider, Switchyard};

use crate::common::{chat, openai_on, yaml, FAKE_KEY};

pub const MASTER_KEY: &str = "sk-1234";
pub const MODEL: &str = "auth-model";

pub struct Stack {
    pub sy: Switchyard,
    pub fake: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

/// A Switchyard with `master_key: sk-1234` serving `auth-model` from a fake provider.
pub fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = FakeProvider::start();
        let config = json!({
            "model_list": [openai_on(MODEL, "gpt-4o-mini", &fake)],
            "general_settings": {"master_key": MASTER_KEY},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("FAKE_KEY", FAKE_KEY)]);
        Stack { sy, fake }
    })
}

/// POST a chat request with these headers; returns the reply and the marker it carried.
async fn chat_with(headers: &[(&str, &str)]) -> (switchyard_tests::Reply, String) {
    let s = stack();
    let m = marker("auth");
    let body = serde_json::to_vec(&chat(MODEL, &m)).unwrap();
    let reply = Client::new(&s.sy.base_url())
        .post_raw("/v1/chat/completions", body, headers)
        .await;
    (reply, m)
}

/// The provider got the request with its own key, and no trace of the master key.
fn assert_forwarded_without_master_key(m: &str) {
    let got = stack().fake.only(m);
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );
    for (name, value) in &got.headers {
        assert!(
            !value.contains(MASTER_KEY),
            "the master key reached the provider in {name}"
        );
    }
}

#[tokio::test]
async fn no_key_is_401() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, m) = chat_with(&[]).await;
    assert_openai_error(&reply, 401);
    assert!(
        stack().fake.find(&m).is_empty(),
        "refused requests never reach a provider"
    );
}

#[tokio::test]
async fn wrong_key_is_401() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, m) = chat_with(&[("authorization", "Bearer sk-wrong")]).await;
    assert_openai_error(&reply, 401);
    assert!(stack().fake.find(&m).is_empty());
}

#[tokio::test]
async fn wrong_api_key_header_is_401() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, _) = chat_with(&[("api-key", "sk-12345")]).await;
    assert_openai_error(&reply, 401);
}

#[tokio::test]
async fn bearer_master_key_is_accepted() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, m) = chat_with(&[("authorization", &format!("Bearer {MASTER_KEY}"))]).await;
    assert_eq!(reply.expect_json(200)["model"], MODEL);
    assert_forwarded_without_master_key(&m);
}

#[tokio::test]
async fn api_key_header_is_accepted() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, m) = chat_with(&[("api-key", MASTER_KEY)]).await;
    reply.expect_json(200);
    assert_forwarded_without_master_key(&m);
}

#[tokio::test]
async fn x_api_key_header_is_accepted() {
    let _logs = stack().sy.dump_logs_on_failure();
    let (reply, m) = chat_with(&[("x-api-key", MASTER_KEY)]).await;
    reply.expect_json(200);
    assert_forwarded_without_master_key(&m);
}

#[tokio::test]
async fn liveliness_needs_no_key() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = Client::new(&s.sy.base_url())
        .get("/health/liveliness")
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
}

#[tokio::test]
async fn models_need_the_key() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = Client::new(&s.sy.base_url()).get("/v1/models").await;
    assert_openai_error(&reply, 401);
    let listed = Client::new(&s.sy.base_url())
        .with_key(MASTER_KEY)
        .get("/v1/models")
        .await
        .expect_json(200);
    assert_eq!(listed["data"][0]["id"], MODEL);
}

#[tokio::test]
async fn without_master_key_no_key_is_needed() {
    let fake = FakeProvider::start();
    let config = json!({"model_list": [openai_on("open-model", "gpt-4o-mini", &fake)]});
    let sy = Switchyard::start_with_env(&yaml(&config), &[("FAKE_KEY", FAKE_KEY)]);
    let m = marker("open");
    let reply = Client::new(&sy.base_url())
        .post("/v1/chat/completions", &chat("open-model", &m))
        .await;
    assert_eq!(reply.expect_json(200)["model"], "open-model");
    assert_eq!(
        fake.only(&m).header("authorization"),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );
}
