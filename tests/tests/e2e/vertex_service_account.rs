//! Vertex AI with a service account (`vertex_credentials`), as LiteLLM configs name it: the
//! sidecar signs a JWT with the account's key, exchanges it at the account's token endpoint
//! (a fake here), and the filter sends the minted token as the bearer of every attempt. The
//! key never reaches Envoy.

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use switchyard_tests::artefacts::repo_root;
use switchyard_tests::fakes::gemini::{self, ACCESS_TOKEN, LOCATION, PROJECT};
use switchyard_tests::{marker, shared, Client, FakeReply, StrictFake, Switchyard};

use crate::common::{deployment, yaml};

struct Stack {
    sy: Switchyard,
    google: StrictFake,
    token_endpoint: StrictFake,
    _dir: tempfile::TempDir,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

/// Google's token endpoint, for the JWT-bearer grant: a form with the grant type and a
/// signed assertion (three base64url parts; the sidecar's tests verify the signature).
fn token_endpoint() -> StrictFake {
    StrictFake::start(
        "oauth2",
        Arc::new(|r| {
            if r.method != "POST" || r.path() != "/token" {
                return Err(format!("{} {}", r.method, r.uri));
            }
            if r.header("content-type") != Some("application/x-www-form-urlencoded") {
                return Err(format!("content-type {:?}", r.header("content-type")));
            }
            let body = r.body_text();
            let form: Vec<(&str, &str)> =
                body.split('&').filter_map(|p| p.split_once('=')).collect();
            let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
            if get("grant_type") != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
                return Err(format!("grant_type {:?}", get("grant_type")));
            }
            match get("assertion") {
                Some(a) if a.split('.').count() == 3 => Ok(FakeReply::json(
                    200,
                    json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})
                        .to_string(),
                )),
                other => Err(format!("assertion {other:?}")),
            }
        }),
    )
}

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let google = StrictFake::start("gemini", gemini::handler());
        let token_endpoint = token_endpoint();
        let dir = tempfile::tempdir().unwrap();
        let mut account: Value = serde_json::from_str(
            &std::fs::read_to_string(
                repo_root().join("sidecars/tests/fixtures/test_service_account.json"),
            )
            .unwrap(),
        )
        .unwrap();
        account["token_uri"] = json!(token_endpoint.url("/token"));
        let path = dir.path().join("service-account.json");
        std::fs::write(&path, account.to_string()).unwrap();
        let config = json!({
            "model_list": [deployment("vertex", json!({
                "model": "vertex_ai/gemini-2.5-flash",
                "api_base": google.url(""),
                "vertex_project": PROJECT,
                "vertex_location": LOCATION,
                "vertex_credentials": path.display().to_string(),
            }))],
        });
        let sy = Switchyard::start(&yaml(&config));
        Stack {
            sy,
            google,
            token_endpoint,
            _dir: dir,
        }
    })
}

#[tokio::test]
async fn the_minted_token_authorizes_every_attempt() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    // The first token may still be on its way when Switchyard is ready: the answer then
    // says so (503) and the next request has it.
    let mut reply = None;
    for _ in 0..50 {
        let m = marker("vertex-sa");
        let r = client
            .post(
                "/v1/chat/completions",
                &json!({"model": "vertex", "messages": [{"role": "user", "content": m}]}),
            )
            .await;
        if r.status == 200 {
            reply = Some((r, m));
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("No access token yet"), "{}", r.text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (reply, m) = reply.expect("a token within five seconds");
    assert_eq!(reply.json()["model"], "vertex");
    let got = s.google.only(&m);
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    s.google.assert_no_violations();
    s.token_endpoint.assert_no_violations();
    assert!(
        !s.token_endpoint.requests().is_empty(),
        "the sidecar asked the account's token endpoint"
    );
    // The sidecar caches the token: one exchange however many requests and workers.
    let exchanges = s.token_endpoint.requests().len();
    for _ in 0..5 {
        let r = client
            .post(
                "/v1/chat/completions",
                &json!({"model": "vertex", "messages": [{"role": "user", "content": marker("vertex-sa-again")}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(s.token_endpoint.requests().len(), exchanges);
}
