//! Vertex AI access tokens minted from a service account: the JWT the sidecar signs is
//! checked by a fake token endpoint with the account's public key, as Google's would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_config::model::Secret;
use switchyard_sidecar::service::tokens::{ServiceAccount, Tokens};

const ACCOUNT: &str = include_str!("fixtures/test_service_account.json");
const PUBLIC_KEY: &str = include_str!("fixtures/test_service_account.pub.pem");

#[derive(Deserialize)]
struct Exchange {
    grant_type: String,
    assertion: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    scope: String,
}

struct Fake {
    calls: AtomicUsize,
    audience: String,
}

/// Google's token endpoint as far as the exchange goes: the grant type, a JWT signed by the
/// account's key, for this endpoint, with the cloud-platform scope.
async fn exchange(
    State(fake): State<Arc<Fake>>,
    Form(form): Form<Exchange>,
) -> (axum::http::StatusCode, Json<Value>) {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst);
    if form.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        );
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&fake.audience]);
    match jsonwebtoken::decode::<Claims>(&form.assertion, &key, &validation) {
        Ok(t)
            if t.claims.scope == "https://www.googleapis.com/auth/cloud-platform"
                && t.claims.iss.ends_with("iam.gserviceaccount.com") =>
        {
            (
                axum::http::StatusCode::OK,
                Json(
                    json!({"access_token": format!("ya29.minted-{n}"), "expires_in": 3599, "token_type": "Bearer"}),
                ),
            )
        }
        other => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "invalid_grant", "error_description": format!("{:?}", other.err())}),
            ),
        ),
    }
}

async fn fake_endpoint() -> (String, Arc<Fake>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/token", listener.local_addr().unwrap());
    let fake = Arc::new(Fake {
        calls: AtomicUsize::new(0),
        audience: uri.clone(),
    });
    let app = Router::new()
        .route("/token", post(exchange))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, fake)
}

fn account(token_uri: &str) -> ServiceAccount {
    let mut v: Value = serde_json::from_str(ACCOUNT).unwrap();
    v["token_uri"] = json!(token_uri);
    ServiceAccount::load(&Secret::Literal(v.to_string())).unwrap()
}

#[tokio::test]
async fn tokens_are_minted_once_and_cached() {
    let (uri, fake) = fake_endpoint().await;
    let tokens = Tokens::new(HashMap::from([("vertex-1".to_string(), account(&uri))]));
    let first = tokens.token("vertex-1").await.unwrap();
    assert_eq!(first.access_token, "ya29.minted-0");
    assert!(first.expires_in > 3000);
    let again = tokens.token("vertex-1").await.unwrap();
    assert_eq!(
        again.access_token, first.access_token,
        "cached until near its expiry"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    let e = tokens.token("other").await.unwrap_err();
    assert!(e.contains("no service account"), "{e}");
}

#[tokio::test]
async fn a_refused_account_is_a_clear_error() {
    let (uri, _fake) = fake_endpoint().await;
    // Another key: the endpoint cannot verify the signature.
    let mut v: Value = serde_json::from_str(ACCOUNT).unwrap();
    v["token_uri"] = json!(uri);
    v["client_email"] = json!("someone@example.com");
    let tokens = Tokens::new(HashMap::from([(
        "v".to_string(),
        ServiceAccount::load(&Secret::Literal(v.to_string())).unwrap(),
    )]));
    let e = tokens.token("v").await.unwrap_err();
    assert!(
        e.contains("refused the service account someone@example.com"),
        "{e}"
    );
}

#[test]
fn accounts_load_from_json_a_file_or_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.json");
    std::fs::write(&path, ACCOUNT).unwrap();
    let from_file = ServiceAccount::load(&Secret::Literal(path.display().to_string())).unwrap();
    assert!(from_file.client_email.starts_with("switchyard-test@"));
    assert!(
        !format!("{from_file:?}").contains("PRIVATE KEY"),
        "the key never prints"
    );
    let e = ServiceAccount::load(&Secret::Literal("/nope/sa.json".into())).unwrap_err();
    assert!(e.contains("/nope/sa.json"), "{e}");
    let e = ServiceAccount::load(&Secret::Literal("{\"x\": 1}".into())).unwrap_err();
    assert!(e.contains("not a Google service-account key"), "{e}");
    let e = ServiceAccount::load(&Secret::Env("SWITCHYARD_TEST_UNSET_SA".into())).unwrap_err();
    assert!(e.contains("SWITCHYARD_TEST_UNSET_SA"), "{e}");
}
