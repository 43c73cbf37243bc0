//! Headers in both directions. A provider receives the headers the provider role sets and,
//! from the client, only LiteLLM's allowlist; a client sees, of a provider's headers, only
//! the documented ones, and LiteLLM's x-litellm-* headers.

use std::sync::OnceLock;

use serde_json::json;
use switchyard_tests::fake::Rule;
use switchyard_tests::{marker, shared, Client, FakeProvider, Mode, Switchyard};

use crate::common::{chat, keyed, yaml};

struct Stack {
    sy: Switchyard,
    fake: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let injected = h(&[
            ("x-switchyard-retry", "1"),
            ("x-switchyard-replan", "forged"),
            ("x-litellm-model-id", "forged"),
            ("x-envoy-upstream-service-time", "99999"),
            ("set-cookie", "session=provider"),
            ("x-ratelimit-remaining-requests", "41"),
            ("x-ratelimit-limit-tokens", "90000"),
            ("x-request-id", "req_provider_1"),
            ("openai-organization", "org-of-the-operator"),
        ]);
        let fake = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-inject", Mode::OkWithHeaders(injected.clone())),
            Rule::key("sk-inject-err", Mode::StatusWithHeaders(503, injected)),
            Rule::key("sk-first-fails", Mode::Status(500)),
        ]));
        let config = json!({
            "model_list": [
                keyed("plain", &fake, "sk-plain", json!({})),
                keyed("forwarding", &fake, "sk-forwarding", json!({})),
                keyed("injecting", &fake, "sk-inject", json!({})),
                keyed("injecting-error", &fake, "sk-inject-err", json!({})),
                keyed("retried", &fake, "sk-first-fails", json!({})),
                keyed("retried", &fake, "sk-second", json!({})),
            ],
            "router_settings": {"num_retries": 1, "disable_cooldowns": true},
            "litellm_settings": {"model_group_settings": {"forward_client_headers_to_llm_api": ["forwarding"]}},
        });
        let sy = Switchyard::start(&yaml(&config));
        Stack { sy, fake }
    })
}

const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("openai-organization", "org-of-the-client"),
    ("openai-project", "proj-of-the-client"),
    ("proxy-authorization", "Basic Y2xpZW50"),
    ("cookie", "session=client"),
    ("user-agent", "client-sdk/1.0"),
    ("x-trace-id", "trace-1"),
    ("x-stainless-os", "Linux"),
    ("x-pass-x-custom-beta", "feature-1"),
    ("x-envoy-retry-on", "5xx"),
    ("x-switchyard-plan", "7"),
    ("x-forwarded-for", "10.0.0.1"),
];

async fn send(model: &str, m: &str) -> switchyard_tests::Reply {
    let body = serde_json::to_vec(&chat(model, m)).unwrap();
    Client::new(&stack().sy.base_url())
        .with_key("sk-client-credential")
        .post_raw("/v1/chat/completions", body, CLIENT_HEADERS)
        .await
}

/// Everything a provider may receive: what the provider role sets, and Envoy's
/// x-forwarded-proto (which a fallback's internal redirect needs), nothing else.
const PROVIDER_SETS: &[&str] = &[
    "host",
    "x-forwarded-proto",
    "authorization",
    "content-type",
    "content-length",
    "accept-encoding",
    "x-custom-beta",
];

#[tokio::test]
async fn a_provider_receives_only_its_own_headers_and_the_allowlist() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("req-headers");
    send("plain", &m).await.expect_json(200);
    let got = s.fake.only(&m);
    let names: Vec<&str> = got.headers.iter().map(|(n, _)| n.as_str()).collect();
    for name in &names {
        assert!(
            PROVIDER_SETS.contains(name),
            "{name} reached the provider: {:?}",
            got.headers
        );
    }
    assert_eq!(got.header("authorization"), Some("Bearer sk-plain"));
    assert_eq!(
        got.header("x-custom-beta"),
        Some("feature-1"),
        "x-pass- headers always pass, prefix removed"
    );
    assert_eq!(
        got.header("x-trace-id"),
        None,
        "x- headers only for groups that forward them"
    );

    let m = marker("req-headers-forwarding");
    send("forwarding", &m).await.expect_json(200);
    let got = s.fake.only(&m);
    assert_eq!(got.header("x-trace-id"), Some("trace-1"));
    assert_eq!(
        got.header("x-stainless-os"),
        None,
        "LiteLLM never forwards x-stainless-*"
    );
    for never in [
        "openai-organization",
        "openai-project",
        "proxy-authorization",
        "cookie",
        "x-envoy-retry-on",
        "x-switchyard-plan",
        "x-forwarded-for",
    ] {
        assert_eq!(got.header(never), None, "{never} reached the provider");
    }
}

#[tokio::test]
async fn a_client_sees_only_the_documented_provider_headers() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("resp-headers");
    let reply = send("injecting", &m).await;
    reply.expect_json(200);
    assert_eq!(
        s.fake.find(&m).len(),
        1,
        "a provider's x-switchyard-retry does not make Envoy retry"
    );
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("41"));
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("90000"));
    assert_eq!(
        reply.header("llm_provider-x-request-id"),
        Some("req_provider_1")
    );
    assert_ne!(reply.header("x-litellm-model-id"), Some("forged"));
    assert!(reply.header("x-litellm-model-id").is_some());
    for gone in [
        "set-cookie",
        "x-switchyard-retry",
        "x-switchyard-replan",
        "x-envoy-upstream-service-time",
        "openai-organization",
    ] {
        assert_eq!(reply.header(gone), None, "{gone} reached the client");
    }
    let envoy: Vec<_> = reply
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-envoy-"))
        .collect();
    assert!(envoy.is_empty(), "{envoy:?} reached the client");

    let m = marker("resp-headers-error");
    let reply = send("injecting-error", &m).await;
    assert_eq!(
        reply.status, 503,
        "the status is the provider's, whatever its headers say"
    );
    assert_eq!(s.fake.find(&m).len(), 2, "1 + num_retries, not more");
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(reply.header("x-switchyard-replan"), None);
}

#[tokio::test]
async fn litellm_response_headers() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    for _ in 0..4 {
        let m = marker("litellm-headers");
        let reply = send("retried", &m).await;
        reply.expect_json(200);
        let retried = s.fake.find(&m).len() - 1;
        assert_eq!(
            reply.header("x-litellm-attempted-retries"),
            Some(retried.to_string().as_str())
        );
        assert_eq!(reply.header("x-litellm-attempted-fallbacks"), Some("0"));
        assert_eq!(reply.header("x-litellm-model-group"), Some("retried"));
        assert_eq!(
            reply.header("x-litellm-model-api-base"),
            Some(s.fake.url("/v1").as_str())
        );
        let id = reply.header("x-litellm-model-id").unwrap();
        assert!(!id.is_empty());
        let total: u64 = reply
            .header("x-litellm-response-duration-ms")
            .unwrap()
            .parse()
            .unwrap();
        let overhead: u64 = reply
            .header("x-litellm-overhead-duration-ms")
            .unwrap()
            .parse()
            .unwrap();
        assert!(overhead <= total, "{overhead} > {total}");
    }
}

/// general_settings.expose_api_base: false keeps provider URLs from clients.
#[test]
fn the_api_base_header_can_be_turned_off() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [keyed("m", &fake, "sk", json!({}))],
        "general_settings": {"expose_api_base": false},
    });
    let sy = Switchyard::start(&yaml(&config));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply =
        rt.block_on(Client::new(&sy.base_url()).post("/v1/chat/completions", &chat("m", "x")));
    reply.expect_json(200);
    assert_eq!(reply.header("x-litellm-model-api-base"), None);
    assert!(reply.header("x-litellm-model-id").is_some());
}
