//! Access tokens for Vertex AI deployments configured with a service account
//! (`vertex_credentials`, or GOOGLE_APPLICATION_CREDENTIALS): the sidecar signs a JWT with
//! the account's key (RS256) and exchanges it at the account's token endpoint, as Google's
//! client libraries do, caches the token until shortly before it expires, and hands it to
//! the filter at `/internal/v1/token/{deployment}`. The key never reaches Envoy; the filter
//! only ever holds a token that expires within the hour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use switchyard_config::model::Secret;
use switchyard_config::TokenAnswer;
use tokio::sync::Mutex;

use super::AppState;
use crate::http::{https, Https};

/// The scope Vertex AI needs.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The fields of a service-account JSON key file the exchange needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    #[serde(default = "google_token_uri")]
    pub token_uri: String,
}

fn google_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceAccount({}, <key>)", self.client_email)
    }
}

impl ServiceAccount {
    /// From `vertex_credentials`: the JSON itself, or the path of a file holding it; an
    /// `os.environ/VAR` reference is read first.
    pub fn load(source: &Secret) -> Result<ServiceAccount, String> {
        let value = source
            .resolve(&|name| std::env::var(name).ok())
            .ok_or_else(|| format!("{source:?} is not set in the environment"))?;
        let json = if value.trim_start().starts_with('{') {
            value
        } else {
            std::fs::read_to_string(value.trim()).map_err(|e| {
                format!("cannot read the service-account file {}: {e}", value.trim())
            })?
        };
        serde_json::from_str(&json).map_err(|e| {
            format!("the service-account JSON is not a Google service-account key: {e}")
        })
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "an_hour")]
    expires_in: u64,
}

fn an_hour() -> u64 {
    3600
}

struct Cached {
    token: String,
    expires_at: SystemTime,
}

/// How long a token exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// The service accounts by deployment id, and the tokens minted for them.
#[derive(Default)]
pub struct Tokens {
    accounts: HashMap<String, ServiceAccount>,
    cache: Mutex<HashMap<String, Cached>>,
    http: Option<Https>,
}

impl Tokens {
    pub fn new(accounts: HashMap<String, ServiceAccount>) -> Tokens {
        let http = if accounts.is_empty() { None } else { https() };
        Tokens {
            accounts,
            cache: Mutex::new(HashMap::new()),
            http,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// A token for the deployment: the cached one while it has time left, else a new one.
    pub async fn token(&self, deployment: &str) -> Result<TokenAnswer, String> {
        let account = self
            .accounts
            .get(deployment)
            .ok_or_else(|| format!("deployment {deployment} has no service account"))?;
        let mut cache = self.cache.lock().await;
        let now = SystemTime::now();
        if let Some(c) = cache.get(deployment) {
            if let Ok(left) = c.expires_at.duration_since(now) {
                if left > RENEW_BEFORE {
                    return Ok(TokenAnswer {
                        access_token: c.token.clone(),
                        expires_in: left.as_secs(),
                    });
                }
            }
        }
        let minted = self.mint(account, now).await?;
        cache.insert(
            deployment.to_string(),
            Cached {
                token: minted.access_token.clone(),
                expires_at: now + Duration::from_secs(minted.expires_in),
            },
        );
        Ok(TokenAnswer {
            access_token: minted.access_token,
            expires_in: minted.expires_in,
        })
    }

    async fn mint(
        &self,
        account: &ServiceAccount,
        now: SystemTime,
    ) -> Result<TokenResponse, String> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: &account.client_email,
            scope: SCOPE,
            aud: &account.token_uri,
            iat,
            exp: iat + 3600,
        };
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("the service account's private_key is not an RSA key: {e}"))?;
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| format!("cannot sign the token request: {e}"))?;
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = hyper::Request::post(&account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| format!("bad token_uri {}: {e}", account.token_uri))?;
        let unreachable =
            |e: &dyn std::fmt::Display| format!("cannot reach {}: {e}", account.token_uri);
        let response = tokio::time::timeout(EXCHANGE_TIMEOUT, http.request(request))
            .await
            .map_err(|e| unreachable(&e))?
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "{} refused the service account {} ({status}): {}",
                account.token_uri,
                account.client_email,
                body.chars().take(500).collect::<String>()
            ));
        }
        serde_json::from_str(&body)
            .map_err(|e| format!("{} answered no token: {e}", account.token_uri))
    }
}

/// `GET /internal/v1/token/{deployment}`: the deployment's current access token.
pub async fn token(
    State(state): State<AppState>,
    Path(deployment): Path<String>,
) -> Result<Json<TokenAnswer>, (StatusCode, String)> {
    state
        .tokens
        .token(&deployment)
        .await
        .map(Json)
        .map_err(|e| {
            tracing::warn!("vertex ai token for deployment {deployment}: {e}");
            (StatusCode::BAD_GATEWAY, e)
        })
}

/// The service accounts of the config's deployments. A deployment whose account cannot be
/// read is an error now, not at its first request.
pub fn from_config(state_config: &switchyard_config::ProxyConfig) -> Result<Arc<Tokens>, String> {
    let deployments = state_config
        .resolve_deployments(("127.0.0.1", 0))
        .map_err(|e| e.to_string())?;
    let mut accounts = HashMap::new();
    for d in deployments {
        if let Some(source) = &d.service_account {
            let account = ServiceAccount::load(source).map_err(|e| {
                format!(
                    "model_list[{}].litellm_params.vertex_credentials: {e}",
                    d.index
                )
            })?;
            accounts.insert(d.config.id.clone(), account);
        }
    }
    Ok(Arc::new(Tokens::new(accounts)))
}
