//! The gateway role: once per request, downstream. Recognises the endpoint, authenticates,
//! reads the body once, resolves the model group and says where the request goes.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_config::{Endpoint, FilterConfig, RequestInfo};

use crate::error::ApiError;

/// What a path and method ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Liveliness,
    /// Served by the sidecar through Envoy's route; the gateway lets it pass.
    Readiness,
    Models,
    Api(Endpoint),
    NotFound,
    MethodNotAllowed,
}

pub fn classify(method: &str, path: &str) -> Route {
    let path = path.split('?').next().unwrap_or(path);
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let (route, allowed) = match path {
        "/health/liveliness" | "/health/liveness" | "/health/live" => (Route::Liveliness, "GET"),
        "/health/readiness" => (Route::Readiness, "GET"),
        "/v1/models" | "/models" => (Route::Models, "GET"),
        "/v1/chat/completions" | "/chat/completions" => {
            (Route::Api(Endpoint::ChatCompletions), "POST")
        }
        "/v1/completions" | "/completions" => (Route::Api(Endpoint::Completions), "POST"),
        "/v1/embeddings" | "/embeddings" => (Route::Api(Endpoint::Embeddings), "POST"),
        _ => return Route::NotFound,
    };
    if method == allowed || (allowed == "GET" && method == "HEAD") {
        route
    } else {
        Route::MethodNotAllowed
    }
}

/// A response the gateway gives itself, without any provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    pub status: u16,
    pub body: Vec<u8>,
}

impl From<ApiError> for Local {
    fn from(e: ApiError) -> Self {
        Local {
            status: e.status,
            body: e.body(),
        }
    }
}

/// The outcome of the request headers.
#[derive(Debug, PartialEq)]
pub enum OnHeaders {
    /// Answer now.
    Respond(Local),
    /// Read the whole body, then call [`Gateway::on_body`].
    ReadBody(Endpoint),
    /// Not for the gateway (readiness): let Envoy route it.
    PassThrough,
}

/// Where a request goes, decided from its body.
#[derive(Debug, PartialEq)]
pub struct Routed {
    pub cluster: String,
    pub timeout_ms: u64,
    pub info: RequestInfo,
}

pub struct Gateway {
    cfg: FilterConfig,
    master_key_hash: Option<[u8; 32]>,
    models_body: Vec<u8>,
}

/// The few fields the gateway needs; the rest of the body is skipped, not built.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    messages: Option<IgnoredAny>,
    #[serde(default)]
    prompt: Option<IgnoredAny>,
    #[serde(default)]
    input: Option<IgnoredAny>,
}

impl Gateway {
    /// `master_key` is the value of the VM environment variable named by the config, if any.
    pub fn new(cfg: FilterConfig, master_key: Option<&str>) -> Result<Self, String> {
        let master_key_hash = match (&cfg.master_key_env, master_key) {
            (None, _) => None,
            (Some(var), None) | (Some(var), Some("")) => {
                return Err(format!(
                    "general_settings.master_key is read from {var}, which is not set in Envoy's environment"
                ))
            }
            (Some(_), Some(key)) => Some(sha256(key.as_bytes())),
        };
        let models_body = models_list(&cfg);
        Ok(Gateway {
            cfg,
            master_key_hash,
            models_body,
        })
    }

    pub fn max_request_bytes(&self) -> u64 {
        self.cfg.max_request_bytes
    }

    pub fn is_open(&self) -> bool {
        self.master_key_hash.is_none()
    }

    /// Decides from method, path and headers. `header` looks a request header up by lowercase name.
    pub fn on_headers<'h>(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<Cow<'h, str>>,
    ) -> OnHeaders {
        let route = classify(method, path);
        match route {
            Route::Liveliness => {
                return OnHeaders::Respond(Local {
                    status: 200,
                    body: b"\"I'm alive!\"".to_vec(),
                })
            }
            Route::Readiness => return OnHeaders::PassThrough,
            Route::NotFound => {
                return OnHeaders::Respond(
                    ApiError::not_found(format!(
                        "No such endpoint: {method} {path}. Switchyard serves /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models."
                    ))
                    .into(),
                )
            }
            Route::MethodNotAllowed => {
                return OnHeaders::Respond(
                    ApiError::new(
                        405,
                        "invalid_request_error",
                        format!("Method {method} is not allowed on {path}."),
                    )
                    .into(),
                )
            }
            Route::Models | Route::Api(_) => {}
        }
        if let Err(e) = self.authenticate(&header) {
            return OnHeaders::Respond(e.into());
        }
        match route {
            Route::Models => OnHeaders::Respond(Local {
                status: 200,
                body: self.models_body.clone(),
            }),
            Route::Api(endpoint) => {
                let too_big = header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .is_some_and(|len| len > self.cfg.max_request_bytes);
                if too_big {
                    OnHeaders::Respond(ApiError::too_large(self.cfg.max_request_bytes).into())
                } else {
                    OnHeaders::ReadBody(endpoint)
                }
            }
            _ => OnHeaders::PassThrough,
        }
    }

    fn authenticate<'h>(
        &self,
        header: &impl Fn(&str) -> Option<Cow<'h, str>>,
    ) -> Result<(), ApiError> {
        let Some(expected) = &self.master_key_hash else {
            return Ok(());
        };
        let presented = header("authorization")
            .map(|v| match v {
                Cow::Borrowed(s) => Cow::Borrowed(strip_bearer(s)),
                Cow::Owned(s) => Cow::Owned(strip_bearer(&s).to_string()),
            })
            .or_else(|| header("api-key"))
            .or_else(|| header("x-api-key"))
            .or_else(|| header("x-litellm-api-key"))
            .filter(|k| !k.trim().is_empty());
        let Some(key) = presented else {
            return Err(ApiError::unauthorized(
                "Authentication Error, No api key passed in. Send it as `Authorization: Bearer <key>`.",
            ));
        };
        let hash = sha256(key.trim().as_bytes());
        if bool::from(hash.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(format!(
                "Authentication Error, Invalid proxy server token passed. Received API Key = {}. Check the key, or ask your admin for a valid one.",
                redact(key.trim())
            )))
        }
    }

    /// Decides from the whole body where the request goes.
    pub fn on_body(&self, endpoint: Endpoint, body: &[u8]) -> Result<Routed, ApiError> {
        if body.len() as u64 > self.cfg.max_request_bytes {
            return Err(ApiError::too_large(self.cfg.max_request_bytes));
        }
        let head: Head = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON in the request body: {e}. Send a JSON object with `model` and {}.",
                required_field(endpoint)
            ))
        })?;
        let model = head.model.filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("Missing required parameter: 'model'. Call `/v1/models` to list the models you can use.")
                .with_param("model")
        })?;
        let present = match endpoint {
            Endpoint::ChatCompletions => head.messages.is_some(),
            Endpoint::Completions => head.prompt.is_some(),
            Endpoint::Embeddings => head.input.is_some(),
        };
        if !present {
            let field = required_field(endpoint);
            return Err(
                ApiError::bad_request(format!("Missing required parameter: '{field}'."))
                    .with_param(field),
            );
        }
        let group_name = self
            .cfg
            .aliases
            .get(model.as_ref())
            .map_or(model.as_ref(), |g| g.as_str())
            .to_string();
        let Some(group) = self.cfg.groups.get(&group_name) else {
            return Err(ApiError::bad_request(format!(
                "Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."
            ))
            .with_param("model"));
        };
        let stream = head.stream.unwrap_or(false);
        Ok(Routed {
            cluster: group.cluster.clone(),
            timeout_ms: if stream {
                group.stream_timeout_ms
            } else {
                group.timeout_ms
            },
            info: RequestInfo {
                endpoint,
                requested_model: model.into_owned(),
                group: group_name,
                stream,
            },
        })
    }
}

fn required_field(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "messages",
        Endpoint::Completions => "prompt",
        Endpoint::Embeddings => "input",
    }
}

fn strip_bearer(v: &str) -> &str {
    let v = v.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}

/// Enough of a key to recognise it, never enough to use it.
fn redact(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if key.chars().count() <= 8 {
        "****".to_string()
    } else {
        format!("****{tail}")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// GET /v1/models: every model group and visible alias, as OpenAI lists models.
fn models_list(cfg: &FilterConfig) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Model<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        owned_by: &'static str,
    }
    #[derive(serde::Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<Model<'a>>,
    }
    let data = cfg
        .groups
        .keys()
        .chain(cfg.aliases.keys())
        .map(|id| Model {
            id,
            object: "model",
            created: 1_677_610_602,
            owned_by: "openai",
        })
        .collect();
    serde_json::to_vec(&List {
        object: "list",
        data,
    })
    .unwrap_or_default()
}

/// The client's error for a reply Envoy made itself (no provider answered), from the stream's
/// response code details.
pub fn local_reply_error(status: u16, details: &str) -> ApiError {
    if details.contains("timeout") {
        ApiError::new(
            504,
            "timeout",
            "litellm.Timeout: the provider did not answer in time. Retry, or raise `timeout` / `stream_timeout` in the deployment's litellm_params.",
        )
    } else if details.contains("no_healthy_upstream") {
        ApiError::new(
            503,
            "service_unavailable",
            "No healthy deployment for this model right now: all are cooling down after failures. Retry shortly.",
        )
    } else if details.starts_with("upstream_reset")
        || details.contains("connection_failure")
        || details.contains("connect")
    {
        ApiError::new(
            502,
            "api_error",
            format!("litellm.APIConnectionError: could not reach the provider ({details}). Check the deployment's api_base and that the provider is up."),
        )
    } else if details.contains("too_large") || status == 413 {
        ApiError::new(413, "invalid_request_error", "Request body too large.")
    } else {
        ApiError::new(
            status,
            crate::error::kind_for_status(status),
            format!("Envoy answered {status} ({details})."),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;
    use switchyard_config::{GroupConfig, Role};

    fn cfg(master: bool) -> FilterConfig {
        let mut groups = BTreeMap::new();
        groups.insert(
            "gpt-4o".to_string(),
            GroupConfig {
                cluster: "group_gpt-4o".into(),
                timeout_ms: 600_000,
                stream_timeout_ms: 30_000,
                deployments: vec!["a".into()],
            },
        );
        let mut aliases = BTreeMap::new();
        aliases.insert("fast".to_string(), "gpt-4o".to_string());
        FilterConfig {
            role: Role::Gateway,
            groups,
            aliases,
            deployments: BTreeMap::new(),
            master_key_env: master.then(|| "MK".to_string()),
            max_request_bytes: 1000,
        }
    }

    fn headers<'a>(h: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Cow<'a, str>> + 'a {
        move |name| {
            h.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Cow::Borrowed(*v))
        }
    }

    #[test]
    fn routes() {
        assert_eq!(
            classify("POST", "/v1/chat/completions?x=1"),
            Route::Api(Endpoint::ChatCompletions)
        );
        assert_eq!(
            classify("POST", "/chat/completions/"),
            Route::Api(Endpoint::ChatCompletions)
        );
        assert_eq!(
            classify("GET", "/v1/chat/completions"),
            Route::MethodNotAllowed
        );
        assert_eq!(classify("GET", "/models"), Route::Models);
        assert_eq!(classify("GET", "/nope"), Route::NotFound);
    }

    #[test]
    fn master_key_from_any_of_the_headers() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        for h in [
            [("authorization", "Bearer sk-1234")],
            [("authorization", "bearer  sk-1234 ")],
            [("api-key", "sk-1234")],
            [("x-api-key", "sk-1234")],
        ] {
            assert_eq!(
                g.on_headers("POST", "/v1/chat/completions", headers(&h)),
                OnHeaders::ReadBody(Endpoint::ChatCompletions)
            );
        }
        let OnHeaders::Respond(l) = g.on_headers(
            "POST",
            "/v1/chat/completions",
            headers(&[("authorization", "Bearer sk-12345678")]),
        ) else {
            panic!()
        };
        assert_eq!(l.status, 401);
        let text = String::from_utf8(l.body).unwrap();
        assert!(
            text.contains("****5678") && !text.contains("sk-12345678"),
            "{text}"
        );
        let OnHeaders::Respond(l) = g.on_headers("GET", "/v1/models", headers(&[])) else {
            panic!()
        };
        assert_eq!(l.status, 401);
        let OnHeaders::Respond(l) = g.on_headers("GET", "/health/liveliness", headers(&[])) else {
            panic!()
        };
        assert_eq!(l.status, 200);
        assert!(Gateway::new(cfg(true), None).is_err());
    }

    #[test]
    fn open_gateway_and_size_limit() {
        let g = Gateway::new(cfg(false), None).unwrap();
        assert!(g.is_open());
        let OnHeaders::Respond(l) = g.on_headers(
            "POST",
            "/v1/embeddings",
            headers(&[("content-length", "1001")]),
        ) else {
            panic!()
        };
        assert_eq!(l.status, 413);
        assert_eq!(
            g.on_body(Endpoint::Embeddings, &[b' '; 1001])
                .err()
                .unwrap()
                .status,
            413
        );
    }

    #[test]
    fn body_decisions() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let r = g
            .on_body(
                Endpoint::ChatCompletions,
                br#"{"model":"fast","messages":[],"stream":true}"#,
            )
            .unwrap();
        assert_eq!(r.cluster, "group_gpt-4o");
        assert_eq!(r.timeout_ms, 30_000);
        assert_eq!(r.info.requested_model, "fast");
        assert_eq!(r.info.group, "gpt-4o");
        assert!(r.info.stream);
        let err = |b: &[u8]| g.on_body(Endpoint::ChatCompletions, b).err().unwrap();
        assert_eq!(err(b"{nope").status, 400);
        assert_eq!(err(b"[]").status, 400);
        assert_eq!(err(br#"{"messages":[]}"#).param.as_deref(), Some("model"));
        assert_eq!(
            err(br#"{"model":"gpt-4o"}"#).param.as_deref(),
            Some("messages")
        );
        let e = err(br#"{"model":"gpt-9","messages":[]}"#);
        assert!(e.message.contains("model=gpt-9") && e.message.contains("/v1/models"));
        assert_eq!(
            err(br#"{"model":"gpt-4o","messages":[],"stream":"yes"}"#).status,
            400
        );
    }

    #[test]
    fn models_list_has_groups_and_aliases() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let OnHeaders::Respond(l) = g.on_headers("GET", "/v1/models", headers(&[])) else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(&l.body).unwrap();
        let ids: Vec<_> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gpt-4o", "fast"]);
    }

    #[test]
    fn local_replies() {
        assert_eq!(
            local_reply_error(504, "upstream_response_timeout").status,
            504
        );
        assert_eq!(local_reply_error(503, "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}").status, 502);
        assert_eq!(local_reply_error(503, "no_healthy_upstream").status, 503);
        assert_eq!(
            local_reply_error(413, "request_payload_too_large").status,
            413
        );
    }
}
