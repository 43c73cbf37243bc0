//! The provider role: once per attempt, on the upstream side. Rebuilds the request for the
//! chosen deployment and translates the answer back to OpenAI format.
//!
//! Envoy hands every attempt the same request header map, so header edits from an earlier
//! attempt (maybe to another provider) are still there: every attempt sets or removes every
//! header it owns, from the saved originals, never relying on what it finds.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use switchyard_config::{AuthStyle, DeploymentConfig, FilterConfig, RequestInfo, INTERNAL_HEADERS};

use crate::error::ApiError;
use crate::providers::{translator, Ctx, Translator};
use crate::sse;

/// Client headers never sent to a provider: the client's own credentials and cookies, and
/// `accept-encoding` (the filter must read the answer, so it asks for it uncompressed).
const CLIENT_HEADERS_REMOVED: &[&str] = &[
    "authorization",
    "api-key",
    "x-api-key",
    "x-litellm-api-key",
    "cookie",
    "accept-encoding",
    "openai-organization",
];

/// A deployment ready for attempts: its config, key and precomputed header values.
pub struct Deployment {
    pub config: DeploymentConfig,
    /// The auth header (name, value), when a key is configured and present.
    auth: Option<(&'static str, String)>,
    /// A key the provider requires is missing from Envoy's environment: which variable.
    missing_key: Option<String>,
    api_base: String,
}

pub struct ProviderRole {
    deployments: HashMap<String, Rc<Deployment>>,
    /// Headers some deployment may set; each attempt removes those it does not set itself.
    owned_headers: Vec<String>,
}

impl ProviderRole {
    /// `env` reads the wasm VM's environment (where provider keys live).
    pub fn new(cfg: &FilterConfig, env: impl Fn(&str) -> Option<String>) -> Self {
        let mut owned: BTreeSet<String> = CLIENT_HEADERS_REMOVED
            .iter()
            .chain(INTERNAL_HEADERS)
            .map(|h| h.to_string())
            .collect();
        let deployments = cfg
            .deployments
            .iter()
            .map(|(id, d)| {
                for (name, _) in &d.headers {
                    owned.insert(name.to_ascii_lowercase());
                }
                let key = d
                    .key_env
                    .as_deref()
                    .and_then(&env)
                    .filter(|k| !k.is_empty());
                let missing_key = match (&key, &d.key_env) {
                    (None, Some(var)) if d.provider.info().key_required => Some(var.clone()),
                    _ => None,
                };
                let auth = key.map(|k| match d.auth {
                    AuthStyle::Bearer => ("authorization", format!("Bearer {k}")),
                    AuthStyle::ApiKeyHeader => ("api-key", k),
                });
                let api_base = format!("{}://{}{}", d.scheme, d.authority, d.base_path);
                let dep = Deployment {
                    config: d.clone(),
                    auth,
                    missing_key,
                    api_base,
                };
                (id.clone(), Rc::new(dep))
            })
            .collect();
        ProviderRole {
            deployments,
            owned_headers: owned.into_iter().collect(),
        }
    }

    /// Starts an attempt on the deployment Envoy picked.
    pub fn attempt(&self, deployment_id: &str, info: RequestInfo) -> Result<Attempt, ApiError> {
        let dep = self.deployments.get(deployment_id).ok_or_else(|| {
            ApiError::internal(format!(
                "Envoy picked deployment {deployment_id:?}, which this filter's configuration does not know. Render the Envoy config and the filter config from the same config.yaml."
            ))
        })?;
        if let Some(var) = &dep.missing_key {
            return Err(ApiError::unauthorized(format!(
                "No API key for deployment {} ({}/{}): set {var} in Envoy's environment, or api_key in its litellm_params.",
                dep.config.id,
                dep.config.provider.name(),
                dep.config.model
            )));
        }
        Ok(Attempt {
            translator: translator(dep.config.provider.wire()),
            dep: Rc::clone(dep),
            info,
            stream: None,
            status: 0,
        })
    }

    /// Every header an attempt owns (sets or removes).
    pub fn owned_headers(&self) -> &[String] {
        &self.owned_headers
    }
}

/// Header edits for one attempt, applied in order: removals first.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

impl HeaderEdits {
    /// The whole new header map from the current one, so the host applies it in one call
    /// (each host call costs more than the edit itself).
    pub fn apply(&self, current: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = current
            .into_iter()
            .filter(|(name, _)| {
                !self.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
                    && !self.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
            })
            .collect();
        out.extend(self.set.iter().cloned());
        out
    }
}

/// What to do with a response once its headers are in.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponsePlan {
    /// Hold the headers and buffer the whole body, then call [`Attempt::finish_body`].
    Buffer,
    /// Pass headers on now and translate each chunk with [`Attempt::stream_chunk`].
    Stream,
}

/// The finished answer for the client (and Envoy's router, which retries on `status`).
#[derive(Debug, PartialEq)]
pub struct Finished {
    pub status: u16,
    pub body: Vec<u8>,
    /// Extra response headers to set.
    pub headers: Vec<(&'static str, String)>,
}

impl Finished {
    /// The provider's response headers as the client (and the router) must see them with this
    /// body: the status, our headers, a JSON content type for errors, the true length.
    pub fn response_headers(&self, current: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut set: Vec<(String, String)> = Vec::with_capacity(self.headers.len() + 3);
        set.push((":status".into(), self.status.to_string()));
        set.extend(self.headers.iter().map(|(n, v)| (n.to_string(), v.clone())));
        if self.status >= 400 {
            set.push(("content-type".into(), "application/json".into()));
        }
        set.push(("content-length".into(), self.body.len().to_string()));
        HeaderEdits {
            remove: vec!["transfer-encoding".into()],
            set,
        }
        .apply(current)
    }
}

pub struct Attempt {
    dep: Rc<Deployment>,
    info: RequestInfo,
    translator: Box<dyn Translator>,
    stream: Option<sse::Parser>,
    status: u16,
}

impl Attempt {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            deployment: &self.dep.config,
            info: &self.info,
        }
    }

    pub fn deployment(&self) -> &DeploymentConfig {
        &self.dep.config
    }

    /// The request headers for this attempt. `owned` comes from [`ProviderRole::owned_headers`].
    pub fn request_headers(&self, owned: &[String]) -> HeaderEdits {
        let d = &self.dep.config;
        let mut set = Vec::with_capacity(4 + d.headers.len());
        set.push((":path".to_string(), self.translator.path(&self.ctx())));
        set.push((":authority".to_string(), d.authority.clone()));
        if let Some((name, value)) = &self.dep.auth {
            set.push((name.to_string(), value.clone()));
        }
        if let Some(org) = &d.organization {
            set.push(("openai-organization".to_string(), org.clone()));
        }
        for (name, value) in &d.headers {
            set.push((name.to_ascii_lowercase(), value.clone()));
        }
        let remove = owned
            .iter()
            .filter(|h| !set.iter().any(|(n, _)| n == *h))
            .cloned()
            .chain(std::iter::once("content-length".to_string()))
            .collect();
        HeaderEdits { remove, set }
    }

    /// The provider request body.
    pub fn request_body(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.translator.request(&self.ctx(), body)
    }

    /// Headers added to every answer from this attempt (LiteLLM's names).
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                switchyard_config::DEPLOYMENT_HEADER,
                self.dep.config.id.clone(),
            ),
            ("x-litellm-model-api-base", self.dep.api_base.clone()),
        ]
    }

    /// Decides, from the provider's status and content type, how to handle its answer.
    pub fn on_response_headers(&mut self, status: u16, content_type: Option<&str>) -> ResponsePlan {
        self.status = status;
        let is_sse = content_type.is_some_and(|c| c.contains("text/event-stream"));
        if (200..300).contains(&status) && self.info.stream && is_sse {
            self.stream = Some(sse::Parser::new());
            ResponsePlan::Stream
        } else {
            ResponsePlan::Buffer
        }
    }

    /// Translates a buffered answer (a success or an error).
    pub fn finish_body(&self, body: &[u8]) -> Finished {
        let mut headers = self.response_headers();
        let result = if (200..300).contains(&self.status) {
            self.translator.response(&self.ctx(), body)
        } else {
            Err(self.translator.error(&self.ctx(), self.status, body))
        };
        match result {
            Ok(body) => Finished {
                status: self.status,
                body,
                headers,
            },
            Err(err) => {
                let status = retriable_status(err.status);
                if status != err.status {
                    headers.push((
                        switchyard_config::UPSTREAM_STATUS_HEADER,
                        err.status.to_string(),
                    ));
                }
                Finished {
                    status,
                    body: err.body(),
                    headers,
                }
            }
        }
    }

    /// Translates one chunk of a streamed answer; `end` on the last callback.
    pub fn stream_chunk(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let Some(parser) = self.stream.as_mut() else {
            return chunk.to_vec();
        };
        let mut events = parser.push(chunk);
        if end {
            events.extend(parser.finish());
        }
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let ctx = Ctx {
            deployment: &self.dep.config,
            info: &self.info,
        };
        for ev in &events {
            self.translator.stream_event(&ctx, ev, &mut out);
        }
        out
    }
}

/// The status Envoy's router sees: a rate limit becomes 503 so the route's `5xx` retry and
/// outlier detection treat it like LiteLLM's cooldown; the gateway restores 429 for the client.
fn retriable_status(status: u16) -> u16 {
    if status == 429 {
        503
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;
    use switchyard_config::{Endpoint, Provider, Role};

    fn config() -> FilterConfig {
        let mut deployments = BTreeMap::new();
        let mk = |id: &str, provider: Provider, model: &str, base: &str, key_env: &str| {
            DeploymentConfig {
                id: id.into(),
                group: "g".into(),
                provider,
                model: model.into(),
                scheme: "http".into(),
                authority: "127.0.0.1:9".into(),
                base_path: base.into(),
                api_version: Some("2024-10-21".into()),
                auth: provider.info().auth,
                key_env: Some(key_env.into()),
                organization: None,
                headers: vec![],
            }
        };
        let mut az = mk("az", Provider::Azure, "dep", "", "AZ_KEY");
        az.headers = vec![("X-Custom".into(), "1".into())];
        deployments.insert("az".into(), az);
        deployments.insert(
            "oa".into(),
            mk("oa", Provider::Openai, "gpt-4o-mini", "/v1", "OA_KEY"),
        );
        deployments.insert(
            "nokey".into(),
            mk("nokey", Provider::Openai, "m", "/v1", "UNSET"),
        );
        FilterConfig {
            role: Role::Provider,
            groups: BTreeMap::new(),
            aliases: BTreeMap::new(),
            deployments,
            master_key_env: None,
            max_request_bytes: 1 << 20,
        }
    }

    fn role() -> ProviderRole {
        ProviderRole::new(&config(), |v| match v {
            "AZ_KEY" => Some("az-secret".into()),
            "OA_KEY" => Some("sk-oa".into()),
            _ => None,
        })
    }

    fn info(stream: bool) -> RequestInfo {
        RequestInfo {
            endpoint: Endpoint::ChatCompletions,
            requested_model: "g".into(),
            group: "g".into(),
            stream,
        }
    }

    #[test]
    fn headers_are_rebuilt_whatever_the_previous_attempt_left() {
        let role = role();
        let az = role.attempt("az", info(false)).unwrap();
        let edits = az.request_headers(role.owned_headers());
        assert!(edits.set.contains(&(
            ":path".into(),
            "/openai/deployments/dep/chat/completions?api-version=2024-10-21".into()
        )));
        assert!(edits.set.contains(&("api-key".into(), "az-secret".into())));
        assert!(edits.set.contains(&("x-custom".into(), "1".into())));
        assert!(edits.remove.contains(&"authorization".into()));
        assert!(edits.remove.contains(&"content-length".into()));

        // The next attempt goes to OpenAI: it must remove Azure's api-key and custom header.
        let oa = role.attempt("oa", info(false)).unwrap();
        let edits = oa.request_headers(role.owned_headers());
        assert!(edits
            .set
            .contains(&("authorization".into(), "Bearer sk-oa".into())));
        assert!(edits
            .set
            .contains(&(":path".into(), "/v1/chat/completions".into())));
        for h in [
            "api-key",
            "x-custom",
            "x-switchyard-cluster",
            "accept-encoding",
            "cookie",
        ] {
            assert!(edits.remove.contains(&h.to_string()), "{h} not removed");
        }
        assert!(!edits.remove.contains(&"authorization".to_string()));
    }

    #[test]
    fn missing_key_and_unknown_deployment_are_clear_errors() {
        let role = role();
        let e = role.attempt("nokey", info(false)).err().unwrap();
        assert_eq!(e.status, 401);
        assert!(e.message.contains("UNSET"), "{}", e.message);
        let e = role.attempt("nope", info(false)).err().unwrap();
        assert_eq!(e.status, 500);
    }

    #[test]
    fn rate_limit_becomes_retriable_503_with_the_original_kept() {
        let role = role();
        let mut a = role.attempt("oa", info(false)).unwrap();
        assert_eq!(
            a.on_response_headers(429, Some("application/json")),
            ResponsePlan::Buffer
        );
        let f = a.finish_body(br#"{"error":{"message":"Rate limit reached"}}"#);
        assert_eq!(f.status, 503);
        assert!(f
            .headers
            .contains(&("x-switchyard-upstream-status", "429".into())));
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        assert_eq!(v["error"]["code"], "429");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit reached"));
    }

    #[test]
    fn success_json_and_stream() {
        let role = role();
        let mut a = role.attempt("oa", info(false)).unwrap();
        assert_eq!(
            a.on_response_headers(200, Some("application/json")),
            ResponsePlan::Buffer
        );
        let f = a.finish_body(br#"{"model":"gpt-4o-mini-2024-07-18","choices":[]}"#);
        assert_eq!(
            (f.status, f.body.as_slice()),
            (200, br#"{"model":"g","choices":[]}"#.as_slice())
        );
        assert!(f.headers.contains(&("x-litellm-model-id", "oa".into())));

        let mut s = role.attempt("oa", info(true)).unwrap();
        assert_eq!(
            s.on_response_headers(200, Some("text/event-stream; charset=utf-8")),
            ResponsePlan::Stream
        );
        let mut out = s.stream_chunk(
            b"data: {\"model\":\"x\",\"choices\":[]}\n\ndata: [DO",
            false,
        );
        out.extend(s.stream_chunk(b"NE]\n\n", false));
        out.extend(s.stream_chunk(b"", true));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"model\":\"g\",\"choices\":[]}\n\ndata: [DONE]\n\n"
        );
    }
}

#[cfg(test)]
mod header_map_tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn edits_apply_to_the_whole_map() {
        let edits = HeaderEdits {
            remove: vec!["authorization".into(), "content-length".into()],
            set: vec![
                (":path".into(), "/v1/chat/completions".into()),
                ("api-key".into(), "k".into()),
            ],
        };
        let out = edits.apply(h(&[
            (":method", "POST"),
            (":path", "/old"),
            ("Authorization", "Bearer client-key"),
            ("content-length", "10"),
            ("api-key", "stale"),
            ("user-agent", "sdk"),
        ]));
        assert_eq!(
            out,
            h(&[
                (":method", "POST"),
                ("user-agent", "sdk"),
                (":path", "/v1/chat/completions"),
                ("api-key", "k")
            ])
        );
    }

    #[test]
    fn finished_sets_status_length_and_json_type_for_errors() {
        let f = Finished {
            status: 503,
            body: b"{}".to_vec(),
            headers: vec![("x-litellm-model-id", "d".into())],
        };
        let out = f.response_headers(h(&[
            (":status", "429"),
            ("content-type", "text/plain"),
            ("transfer-encoding", "chunked"),
            ("date", "x"),
        ]));
        assert_eq!(
            out,
            h(&[
                ("date", "x"),
                (":status", "503"),
                ("x-litellm-model-id", "d"),
                ("content-type", "application/json"),
                ("content-length", "2")
            ])
        );
    }
}
