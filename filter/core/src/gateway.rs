//! The gateway role: once per request (and once more per fallback group), downstream.
//! Recognises the endpoint, authenticates, reads the body once, resolves the model group and
//! plans the attempts; on the way back it turns Envoy's own replies into OpenAI errors and
//! adds LiteLLM's response headers.

use std::borrow::Cow;

use crate::digest::{hex, sha256};
use serde::de::IgnoredAny;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use switchyard_config::{
    cache_path, customer_path, key_path, wildcard, CachedAnswer, ClientHeaders, CustomerRecord,
    DeploymentRoute, Dialect, Endpoint, GatewayConfig, GroupConfig, KeyIdentity, KeyRecord,
    Provider, RequestInfo, SemanticLookup, SpendEvent, BACKOFF_SUFFIX, DEPLOYMENT_HEADER,
    HEALTH_CHECK_HEADER, INTERNAL_HEADERS, PLAN_HEADER, REPLAN_HEADER, ROUTE_HEADER,
    SEMANTIC_LOOKUP_PATH,
};

use crate::cache;
use crate::error::ApiError;
use crate::headers::HeaderEdits;
use crate::host::{update_shared, Host};
use crate::keys::{self, Entry, Holder, Lookup, Snapshot};
use crate::limits;
use crate::router::decide::FallbackKind;
use crate::router::plan::{self, Ask, NoPlan, Plan};
use crate::router::replan::{self, Replan};
use crate::router::rng::Rng;
use crate::router::state;

/// Shared-data key counting requests in flight (general_settings.global_max_parallel_requests).
const IN_FLIGHT_KEY: &str = "switchyard.in_flight";

/// How long a request waits for the sidecar's answer about its key or end user.
const RECORD_TIMEOUT_MS: u64 = 2_000;
/// How long a request waits for a cached answer before it goes to the provider: a cache
/// that is slow (a stalled Redis) must not slow every request down.
const CACHE_TIMEOUT_MS: u64 = 250;
/// A semantic lookup embeds the prompt first (a call to the embedding model).
const SEMANTIC_TIMEOUT_MS: u64 = 2_000;

/// What a path and method ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Liveliness,
    /// Served by the sidecar through Envoy's route; the gateway lets it pass.
    Readiness,
    Models,
    Api(Endpoint),
    /// LiteLLM's management API and the admin page: the sidecar serves them (and checks
    /// the master key itself).
    Admin,
    NotFound,
    MethodNotAllowed,
}

/// Paths of LiteLLM's management API (and Switchyard's admin page), served by the sidecar.
const ADMIN_PREFIXES: &[&str] = &[
    "/key/",
    "/user/",
    "/team/",
    "/customer/",
    "/end_user/",
    "/spend/",
    "/global/",
    "/model/info",
    "/v1/model/info",
    "/model_group/info",
    "/ui",
    "/metrics",
];

/// The request is over (answered, failed or handed to a fallback pass): it no longer counts
/// as in flight against its rate limits. A fallback pass was not counted again.
pub fn on_done(info: Option<&RequestInfo>, host: &dyn Host) {
    if let Some(info) = info.filter(|i| i.fallback_depth == 0) {
        limits::release(host, &info.limits_in_flight);
    }
}

/// Management paths whose POSTs change records the gateway caches.
const CHANGING_PREFIXES: &[&str] = &["/key/", "/user/", "/team/", "/customer/", "/end_user/"];

/// After a management call that went through this gateway: a success drops every cached
/// record, so the very next request through this Envoy sees a blocked or deleted key, a
/// changed budget. (Other Envoys learn it from the sidecar's change feed, milliseconds later.)
/// Dropping all is simple and cheap: management calls are rare, and each key costs one
/// lookup to fill again.
pub fn after_change(status: u16, host: &dyn Host) {
    if (200..300).contains(&status) {
        keys::apply_changes(
            host,
            &switchyard_config::Changes {
                all: true,
                ..Default::default()
            },
        );
    }
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
        // Every deployment called: the sidecar does it, through this gateway.
        "/health" => return Route::Admin,
        "/v1/models" | "/models" => (Route::Models, "GET"),
        "/v1/chat/completions" | "/chat/completions" => {
            (Route::Api(Endpoint::ChatCompletions), "POST")
        }
        // Anthropic's Messages API, bridged to chat (see `dialects`).
        "/v1/messages" | "/messages" => (Route::Api(Endpoint::ChatCompletions), "POST"),
        "/v1/messages/count_tokens" | "/messages/count_tokens" => {
            (Route::Api(Endpoint::CountTokens), "POST")
        }
        // OpenAI's Responses API, bridged to chat too.
        "/v1/responses" | "/responses" => (Route::Api(Endpoint::ChatCompletions), "POST"),
        "/v1/completions" | "/completions" => (Route::Api(Endpoint::Completions), "POST"),
        "/v1/embeddings" | "/embeddings" => (Route::Api(Endpoint::Embeddings), "POST"),
        // A stored response (GET, DELETE) and its input items (GET).
        _ if stored_path(path).is_some() => {
            let route = Route::Api(Endpoint::StoredResponse);
            let deletes = !path.ends_with("/input_items") && method == "DELETE";
            return match method {
                "GET" | "HEAD" => route,
                _ if deletes => route,
                _ => Route::MethodNotAllowed,
            };
        }
        _ if ADMIN_PREFIXES.iter().any(|p| path.starts_with(p)) => return Route::Admin,
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
    pub headers: Vec<(&'static str, String)>,
}

impl From<ApiError> for Local {
    fn from(e: ApiError) -> Self {
        Local::error(&e, Dialect::Chat)
    }
}

impl Local {
    /// An error as a client of `dialect` reads it.
    pub fn error(e: &ApiError, dialect: Dialect) -> Local {
        Local {
            status: e.status,
            body: crate::dialects::error_body(dialect, e),
            headers: e.response_headers(),
        }
    }
}

/// The outcome of the request headers.
#[derive(Debug, PartialEq)]
pub enum OnHeaders {
    /// Answer now.
    Respond(Local),
    /// Read the whole body, then call [`Gateway::on_body`].
    ReadBody(Box<Pending>),
    /// Not for the gateway (readiness, the management API): let Envoy route it.
    PassThrough,
    /// A management call that may change keys, users, teams or end users: let Envoy route it,
    /// and give the answer's status to [`after_change`].
    Change,
    /// Ask the sidecar, give its answer to [`Gateway::on_answer`], then call
    /// [`Gateway::on_headers`] again.
    Ask(SidecarCall),
}

/// The outcome of the request body.
#[derive(Debug, PartialEq)]
pub enum OnBody {
    /// Send it on: set these headers and the request info.
    Route(Box<Routed>),
    /// Answer now (from the response cache).
    Respond(Local),
    /// Ask the sidecar, give its answer to [`Gateway::on_answer`], then call
    /// [`Gateway::on_body`] again.
    Ask(SidecarCall),
}

/// Whether the sidecar could be asked about this request yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// Not asked (yet): ask when the cache has nothing fresh.
    Unasked,
    /// Asked, and it did not answer: use what the cache has, however old.
    Unreachable,
}

/// A question for the sidecar's internal API.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarCall {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
    /// No answer within this counts as none.
    pub timeout_ms: u64,
    target: Target,
}

impl SidecarCall {
    fn get(path: String, target: Target) -> SidecarCall {
        SidecarCall {
            method: "GET",
            path,
            body: None,
            timeout_ms: RECORD_TIMEOUT_MS,
            target,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Key { token: String, snapshot: Snapshot },
    Customer { id: String, snapshot: Snapshot },
    Cache,
}

/// Where a request is with the response cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CacheLookup {
    /// Not asked yet.
    #[default]
    Unasked,
    /// Asked: nothing (or no answer in time).
    Missed,
    Hit(CachedAnswer),
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// The master key.
    Master,
    /// No master key is configured: anyone.
    Open,
    /// A virtual key, as the cache (or the sidecar) knows it.
    Key(Box<Entry<KeyRecord>>),
}

/// A request whose body is being read.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub endpoint: Endpoint,
    pub identity: Identity,
    /// A fallback pass: the hand-off from the pass that failed.
    pub replan: Option<Replan>,
    /// What the client's headers asked for (on a fallback pass: the first pass's).
    pub client: ClientHeaders,
    /// `scheme://authority/path`: where a fallback's internal redirect goes.
    pub origin: String,
    /// The client's x-request-id (Envoy sets one), for a cache hit's spend log.
    pub request_id: String,
    /// The API the client speaks.
    pub dialect: Dialect,
    pub cache: CacheLookup,
    /// `GET`/`DELETE /v1/responses/{id}`: where the response is stored.
    pub stored: Option<Stored>,
    /// A health check of this deployment (the master key's only).
    pub health_check: Option<String>,
}

/// A response a provider stored, as its id (`dialects::responses::stored_id`) and the
/// client's path name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The deployment holding it.
    pub deployment: String,
    /// Its path under the provider's `/responses/`: the provider's id, maybe
    /// `/input_items`, and the client's query.
    pub path: String,
}

/// Where a request goes, decided from its body.
#[derive(Debug, PartialEq)]
pub struct Routed {
    /// Request headers to set for Envoy's router.
    pub headers: Vec<(String, String)>,
    pub info: RequestInfo,
}

impl Routed {
    /// How the router must see the request: without the client's headers that steer Envoy
    /// or Switchyard, with the routing headers. A few edits, not the whole map: clients
    /// rarely send a header to remove, so this is usually two or three host calls.
    /// (Providers only ever see what the provider role puts together.)
    pub fn request_edits(&self, current: &[(String, String)]) -> HeaderEdits {
        let mut remove: Vec<String> = Vec::new();
        for (name, _) in current {
            if steers_routing(name) && !remove.contains(name) {
                remove.push(name.clone());
            }
        }
        HeaderEdits {
            remove,
            set: self.headers.clone(),
        }
    }
}

/// Headers only Switchyard may set on a request: Envoy's controls and the internal ones.
fn steers_routing(name: &str) -> bool {
    name.starts_with("x-envoy-") || INTERNAL_HEADERS.contains(&name)
}

pub struct Gateway {
    cfg: GatewayConfig,
    master_key_hash: Option<[u8; 32]>,
    models_body: Vec<u8>,
    /// The pattern groups (`openai/*`), most specific first.
    patterns: Vec<String>,
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
    /// LiteLLM's per-request router parameters; the provider role removes them.
    #[serde(default)]
    fallbacks: Option<Vec<String>>,
    #[serde(default)]
    num_retries: Option<u32>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    stream_timeout: Option<f64>,
    /// LiteLLM's per-request drop_params: the provider role reads it, then removes it.
    #[serde(default)]
    drop_params: Option<IgnoredAny>,
    /// The end user (LiteLLM's customer), whose budget the request counts against.
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    /// LiteLLM's per-request cache controls; the provider role removes them.
    #[serde(default)]
    caching: Option<bool>,
    #[serde(default)]
    cache: Option<cache::RequestCache>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// The Responses API's conversation: a response stored at one deployment.
    #[serde(borrow, default)]
    previous_response_id: Option<Cow<'a, str>>,
    /// LiteLLM's request tags (tag routing): `tags`, or `metadata.tags`.
    #[serde(default)]
    tags: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// Tags as a list of strings, or one comma-separated string; anything else is no tags.
fn tag_list(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str())
            .map(str::to_string)
            .collect(),
        Some(serde_json::Value::String(s)) => comma_separated(s),
        _ => Vec::new(),
    }
}

/// `a, b,c` → [a, b, c] (the x-litellm-tags header's form).
fn comma_separated(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl Gateway {
    /// `master_key` is the value of the VM environment variable named by the config, if any.
    pub fn new(cfg: GatewayConfig, master_key: Option<&str>) -> Result<Self, String> {
        let master_key_hash = match (&cfg.master_key_env, master_key) {
            (None, _) => None,
            (Some(var), None) | (Some(var), Some("")) => {
                return Err(format!(
                    "general_settings.master_key is read from {var}, which is not set in Envoy's environment"
                ))
            }
            (Some(_), Some(key)) => Some(sha256(key.as_bytes())),
        };
        let models_body = models_list(&cfg, &|_, _| true);
        let patterns = wildcard::by_specificity(cfg.groups.keys());
        Ok(Gateway {
            cfg,
            master_key_hash,
            models_body,
            patterns,
        })
    }

    pub fn max_request_bytes(&self) -> u64 {
        self.cfg.max_request_bytes
    }

    pub fn is_open(&self) -> bool {
        self.master_key_hash.is_none()
    }

    /// Decides from the request headers (lowercase names, as Envoy gives them).
    pub fn on_headers(
        &self,
        headers: &[(String, String)],
        host: &dyn Host,
        sidecar: Sidecar,
    ) -> OnHeaders {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let method = find(":method").unwrap_or_default();
        let path = find(":path").unwrap_or_default();
        let route = classify(method, path);
        let dialect = crate::dialects::of_path(path);
        match route {
            Route::Liveliness => {
                return OnHeaders::Respond(Local {
                    status: 200,
                    body: b"\"I'm alive!\"".to_vec(),
                    headers: vec![],
                })
            }
            Route::Admin if method == "POST" && CHANGING_PREFIXES.iter().any(|p| path.starts_with(p)) => {
                return OnHeaders::Change
            }
            Route::Readiness | Route::Admin => return OnHeaders::PassThrough,
            Route::NotFound => {
                return OnHeaders::Respond(
                    ApiError::not_found(format!(
                        "No such endpoint: {method} {path}. Switchyard serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, /v1/responses and /v1/models."
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
        // A fallback pass comes back from an internal redirect with the hand-off's nonce; the
        // client was authenticated on the first pass (its key is gone by now).
        let replan = match (route, find(REPLAN_HEADER)) {
            (Route::Api(_), Some(nonce)) => replan::take(nonce),
            _ => None,
        };
        let identity = match &replan {
            // Checked on the first pass; who it is rides along in the request info.
            Some(_) => Identity::Master,
            None => match self.authenticate(&find, host, sidecar) {
                Auth::Ok(identity) => identity,
                Auth::Reject(e) => return OnHeaders::Respond(Local::error(&e, dialect)),
                Auth::Ask(call) => return OnHeaders::Ask(call),
            },
        };
        let endpoint = match route {
            Route::Models => {
                // A key limited to some models sees only those, as with LiteLLM.
                let body = match &identity {
                    Identity::Key(e)
                        if !e.record.models.is_empty() || !e.record.team_models.is_empty() =>
                    {
                        models_list(&self.cfg, &|id, group| {
                            let access = self
                                .cfg
                                .groups
                                .get(group)
                                .map_or(&[][..], |g| &g.access_groups);
                            keys::check_model(&e.record, id, group, access).is_ok()
                        })
                    }
                    _ => self.models_body.clone(),
                };
                // Anthropic's clients (Claude Code) list models in Anthropic's shape.
                let body = match find("anthropic-version") {
                    Some(_) => crate::dialects::anthropic::models_list(&body),
                    None => body,
                };
                return OnHeaders::Respond(Local {
                    status: 200,
                    body,
                    headers: vec![],
                });
            }
            Route::Api(endpoint) => endpoint,
            _ => return OnHeaders::PassThrough,
        };
        let too_big = find("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|len| len > self.cfg.max_request_bytes);
        if too_big {
            return OnHeaders::Respond(Local::error(
                &ApiError::too_large(self.cfg.max_request_bytes),
                dialect,
            ));
        }
        // A fallback pass finds the header map rebuilt for a provider: it keeps what the first
        // pass read of the client's headers.
        let (client, origin) = match &replan {
            Some(r) => (r.info.client.clone(), r.info.origin.clone()),
            None => (
                self.client_headers(headers),
                format!(
                    "{}://{}{}",
                    find(":scheme").unwrap_or("http"),
                    find(":authority").unwrap_or("localhost"),
                    path
                ),
            ),
        };
        // A fallback pass speaks what its first pass spoke.
        let dialect = replan.as_ref().map_or(dialect, |r| r.info.dialect);
        let stored = match endpoint {
            Endpoint::StoredResponse => match stored_of(path) {
                Some(s) => Some(s),
                None => {
                    return OnHeaders::Respond(Local::error(
                        &ApiError::not_found(format!(
                            "No response {}: Switchyard serves the responses it handed out (stored by OpenAI's or Azure's Responses API); one made through another provider is not stored.",
                            path.rsplit('/').next().unwrap_or(path)
                        )),
                        dialect,
                    ))
                }
            },
            _ => None,
        };
        // A fallback pass's headers were rebuilt for a provider: the first pass's id.
        let request_id = match &replan {
            Some(r) if !r.info.request_id.is_empty() => r.info.request_id.clone(),
            _ => find("x-request-id").unwrap_or_default().to_string(),
        };
        let health_check = match identity {
            Identity::Master | Identity::Open => find(HEALTH_CHECK_HEADER).map(str::to_string),
            Identity::Key(_) => None,
        };
        OnHeaders::ReadBody(Box::new(Pending {
            health_check,
            endpoint,
            identity,
            replan,
            client,
            origin,
            request_id,
            dialect,
            cache: CacheLookup::Unasked,
            stored,
        }))
    }

    /// What of the client's headers matters beyond the gateway.
    fn client_headers(&self, headers: &[(String, String)]) -> ClientHeaders {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let seconds = |name: &str| {
            find(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| *s > 0.0 && s.is_finite())
                .map(|s| (s * 1000.0) as u64)
        };
        let mut client = ClientHeaders {
            timeout_ms: seconds("x-litellm-timeout"),
            stream_timeout_ms: seconds("x-litellm-stream-timeout"),
            num_retries: find("x-litellm-num-retries").and_then(|v| v.trim().parse().ok()),
            openai_org: find("openai-organization")
                .filter(|_| self.cfg.forward.openai_org)
                .map(str::to_string),
            tags: find("x-litellm-tags")
                .map(comma_separated)
                .unwrap_or_default(),
            ..ClientHeaders::default()
        };
        for (name, value) in headers {
            if let Some(target) = name.strip_prefix("x-pass-").filter(|t| !t.is_empty()) {
                client.pass.push((target.to_string(), value.clone()));
            } else if name == "anthropic-beta" {
                client.anthropic_beta = Some(value.clone());
            } else if forwardable(name) && self.cfg.key_header.as_deref() != Some(name.as_str()) {
                // Never the key, whatever header the config reads it from.
                client.x.push((name.clone(), value.clone()));
            }
        }
        client
    }

    fn authenticate<'h>(
        &self,
        find: &impl Fn(&str) -> Option<&'h str>,
        host: &dyn Host,
        sidecar: Sidecar,
    ) -> Auth {
        let Some(expected) = &self.master_key_hash else {
            return Auth::Ok(Identity::Open);
        };
        let own = self
            .cfg
            .key_header
            .as_deref()
            .and_then(find)
            .map(strip_bearer);
        let presented = own
            .or_else(|| find("authorization").map(strip_bearer))
            .or_else(|| find("api-key"))
            .or_else(|| find("x-api-key"))
            .or_else(|| find("x-litellm-api-key"))
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let Some(key) = presented else {
            return Auth::Reject(ApiError::unauthorized(
                "Authentication Error, No api key passed in. Send it as `Authorization: Bearer <key>`.",
            ));
        };
        let hash = sha256(key.as_bytes());
        if bool::from(hash.ct_eq(expected)) {
            return Auth::Ok(Identity::Master);
        }
        let token = hex(&hash);
        let invalid = || {
            Auth::Reject(ApiError::unauthorized(format!(
                "Authentication Error, Invalid proxy server token passed. Received API Key = {}. Check the key, or ask your admin for a valid one.",
                redact(key)
            )))
        };
        let now = host.now_ms();
        let use_entry = |entry: Entry<KeyRecord>| match keys::check_key(host, &entry, now) {
            Ok(()) => Auth::Ok(Identity::Key(Box::new(entry))),
            Err(e) => Auth::Reject(e),
        };
        match (
            keys::lookup_key(host, &token, self.cfg.key_cache_ttl_ms),
            sidecar,
        ) {
            (Lookup::Known(entry), _) => use_entry(entry),
            (Lookup::Unknown, _) => invalid(),
            (Lookup::Stale(entry), Sidecar::Unreachable) => use_entry(entry),
            (Lookup::Missing, Sidecar::Unreachable) => Auth::Reject(key_service_down()),
            (Lookup::Stale(_) | Lookup::Missing, Sidecar::Unasked) => {
                // The holders' acknowledged spend now, before the sidecar reads its own.
                let mut snapshot_holders = vec![Holder::Key(&token)];
                let stale = keys::lookup_key(host, &token, u64::MAX);
                let record = match &stale {
                    Lookup::Known(e) | Lookup::Stale(e) => Some(&e.record),
                    _ => None,
                };
                if let Some(r) = record {
                    snapshot_holders = Holder::of_key(r);
                }
                Auth::Ask(SidecarCall::get(
                    key_path(&token),
                    Target::Key {
                        snapshot: Snapshot::of(host, &snapshot_holders),
                        token: token.clone(),
                    },
                ))
            }
        }
    }

    /// Stores the sidecar's answer to `call` in the cache (a response cache answer in
    /// `pending`, the request whose body asked). False when the sidecar did not answer
    /// usefully (down, or an error): ask again with [`Sidecar::Unreachable`].
    pub fn on_answer(
        &self,
        call: &SidecarCall,
        status: u16,
        body: &[u8],
        host: &dyn Host,
        pending: Option<&mut Pending>,
    ) -> bool {
        match (&call.target, status) {
            (Target::Cache, _) => {
                if let Some(p) = pending {
                    p.cache = match serde_json::from_slice::<CachedAnswer>(body) {
                        Ok(hit) if status == 200 => CacheLookup::Hit(hit),
                        // Nothing, an error, or a cache that does not work: the provider
                        // answers.
                        _ => CacheLookup::Missed,
                    };
                }
                true
            }
            (Target::Key { token, snapshot }, 200) => {
                match serde_json::from_slice::<KeyRecord>(body) {
                    Ok(record) => {
                        keys::store_key(host, token, Some(&record), snapshot.clone());
                        true
                    }
                    Err(_) => false,
                }
            }
            (Target::Key { token, snapshot }, 404) => {
                keys::store_key(host, token, None, snapshot.clone());
                true
            }
            (Target::Customer { id, snapshot }, 200) => {
                match serde_json::from_slice::<CustomerRecord>(body) {
                    Ok(record) => {
                        keys::store_customer(host, id, Some(&record), snapshot.clone());
                        true
                    }
                    Err(_) => false,
                }
            }
            (Target::Customer { id, snapshot }, 404) => {
                keys::store_customer(host, id, None, snapshot.clone());
                true
            }
            _ => false,
        }
    }

    /// Decides from the whole body where the request goes: the model group and its plan.
    pub fn on_body(
        &self,
        pending: &Pending,
        body: &[u8],
        host: &dyn Host,
        rng: &mut Rng,
        sidecar: Sidecar,
    ) -> Result<OnBody, ApiError> {
        let endpoint = pending.endpoint;
        if let Some(stored) = &pending.stored {
            return self.stored_response(pending, stored, host, rng);
        }
        if let Some(id) = &pending.health_check {
            return self.health_check(pending, id, host, rng);
        }
        if body.len() as u64 > self.cfg.max_request_bytes {
            return Err(ApiError::too_large(self.cfg.max_request_bytes));
        }
        let head: Head = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON in the request body: {e}. Send a JSON object with `model` and {}.",
                required_field(endpoint)
            ))
        })?;
        let model = head.model.as_deref().filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("Missing required parameter: 'model'. Call `/v1/models` to list the models you can use.")
                .with_param("model")
        })?;
        let present = match endpoint {
            Endpoint::ChatCompletions if pending.dialect == Dialect::Responses => {
                head.input.is_some()
            }
            Endpoint::ChatCompletions | Endpoint::CountTokens => head.messages.is_some(),
            Endpoint::Completions => head.prompt.is_some(),
            Endpoint::Embeddings | Endpoint::StoredResponse => head.input.is_some(),
        };
        if !present {
            let field = match pending.dialect {
                Dialect::Responses => "input",
                _ => required_field(endpoint),
            };
            return Err(
                ApiError::bad_request(format!("Missing required parameter: '{field}'."))
                    .with_param(field),
            );
        }
        let stream = head.stream.unwrap_or(false);
        let secs = |s: Option<f64>| {
            s.filter(|s| *s > 0.0 && s.is_finite())
                .map(|s| (s * 1000.0) as u64)
        };
        let ask = Ask {
            now_ms: host.now_ms(),
            endpoint,
            stream,
            // About four bytes a token: enough to tell a prompt from a context window.
            prompt_tokens: body.len() as u64 / 4,
            pre_call_checks: self.cfg.pre_call_checks,
            num_retries: head.num_retries.or(pending.client.num_retries),
            timeout_ms: secs(head.timeout).or(pending.client.timeout_ms),
            stream_timeout_ms: secs(head.stream_timeout).or(pending.client.stream_timeout_ms),
            pinned: None,
            only: None,
        };
        // Tags from the body, else its metadata, else the x-litellm-tags header (a fallback
        // pass keeps the first pass's).
        let tags = match &pending.replan {
            Some(r) => r.info.tags.clone(),
            None => {
                let mut tags = tag_list(head.tags.as_ref());
                if tags.is_empty() {
                    tags = tag_list(head.metadata.as_ref().and_then(|m| m.get("tags")));
                }
                if tags.is_empty() {
                    tags = pending.client.tags.clone();
                }
                tags
            }
        };
        let strip_params = head.fallbacks.is_some()
            || !tags.is_empty()
            || head.num_retries.is_some()
            || head.timeout.is_some()
            || head.stream_timeout.is_some()
            || head.drop_params.is_some()
            || head.caching.is_some()
            || head.cache.is_some();

        let record = match &pending.identity {
            Identity::Key(entry) => Some(&entry.record),
            _ => None,
        };
        // The end user's budget (first pass only: a fallback pass was let through).
        let end_user = match &pending.replan {
            Some(r) => r.info.end_user.clone(),
            None => head
                .user
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        };
        if self.cfg.enforce_user && end_user.is_none() && pending.health_check.is_none() {
            return Err(ApiError::bad_request(
                "'user' param not passed in. 'enforce_user_param'=True: every request must name its end user in `user`.",
            )
            .with_param("user"));
        }
        let mut customer_limits = None;
        if let (Some(id), None) = (&end_user, &pending.replan) {
            match (
                keys::lookup_customer(host, id, self.cfg.key_cache_ttl_ms),
                sidecar,
            ) {
                (Lookup::Known(c), _) | (Lookup::Stale(c), Sidecar::Unreachable) => {
                    keys::check_customer(host, &c)?;
                    customer_limits = Some(c.record.limits);
                }
                // Unknown to the sidecar, or it cannot say: no budget to hold the request to.
                (Lookup::Unknown, _) | (Lookup::Missing, Sidecar::Unreachable) => {}
                (Lookup::Stale(_) | Lookup::Missing, Sidecar::Unasked) => {
                    return Ok(OnBody::Ask(SidecarCall::get(
                        customer_path(id),
                        Target::Customer {
                            snapshot: Snapshot::of(host, &[Holder::Customer(id)]),
                            id: id.clone(),
                        },
                    )))
                }
            }
        }

        // The group this pass serves, and the fallbacks left after it.
        // `name`: the model the client named, after aliases, which a pattern group passes on.
        let (mut pass, requested_model, name) = match &pending.replan {
            Some(r) => (
                self.next_fallback(r)?,
                r.info.requested_model.clone(),
                r.info
                    .wildcard_model
                    .clone()
                    .unwrap_or_else(|| r.info.requested_model.clone()),
            ),
            None => {
                // The key's own aliases first, then the config's.
                let model = record
                    .and_then(|r| r.aliases.get(model))
                    .map_or(model, String::as_str);
                let name = self.cfg.aliases.get(model).map_or(model, String::as_str);
                if let Some(r) = record {
                    let access = self
                        .serving_group(name)
                        .map_or(&[][..], |(_, g)| &g.access_groups);
                    keys::check_model(r, model, name, access)?;
                }
                let (group_name, group) = self.serving_group(name).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."
                    ))
                    .with_param("model")
                })?;
                let mut pass = Pass::first(group_name, group);
                if let Some(fallbacks) = &head.fallbacks {
                    pass.fallbacks = fallbacks
                        .iter()
                        .filter(|g| *g != group_name)
                        .cloned()
                        .collect();
                }
                pass.fallbacks.truncate(self.cfg.max_fallbacks as usize);
                (pass, model.to_string(), name.to_string())
            }
        };
        // Tokens are counted by Anthropic's API where a deployment has it, else estimated here.
        if endpoint == Endpoint::CountTokens {
            let group = self.group(&pass.group)?;
            let counts = |d: &switchyard_config::DeploymentRoute| {
                d.endpoints.contains(&Endpoint::CountTokens)
            };
            if !group.deployments.iter().any(counts) {
                return Ok(OnBody::Respond(Local {
                    status: 200,
                    body: crate::dialects::anthropic::estimate_tokens(body),
                    headers: vec![("x-switchyard-token-count", "estimated".into())],
                }));
            }
        }
        // A group that cannot take the request (all cooling down, no headroom, prompt too
        // long) hands it to its fallbacks right away, as LiteLLM does.
        // A conversation goes on where its previous response is stored.
        let previous = head
            .previous_response_id
            .as_deref()
            .and_then(crate::dialects::responses::parse_stored_id);
        let (group_name, group, plan) = loop {
            let group = self.group(&pass.group)?;
            let members = self.members(&pass.group, group, &name, &tags)?;
            let ask = plan::Ask {
                pinned: previous.as_ref().and_then(|(deployment, _)| {
                    group.deployments.iter().position(|d| d.id == *deployment)
                }),
                only: members.as_deref(),
                ..ask
            };
            // The routing state matters to cooldowns (more than one deployment, not disabled)
            // and to the strategies that read it: skip the read when neither applies.
            let state = if group_state_matters(group) {
                state::read(host, &pass.group)
            } else {
                state::GroupState::default()
            };
            match plan::plan(group, &state, &ask, rng) {
                Ok(plan) => break (pass.group.clone(), group, plan),
                Err(no) => {
                    let kind = match no {
                        NoPlan::ContextTooLong { .. }
                            if !pass.context_window_fallbacks.is_empty() =>
                        {
                            FallbackKind::ContextWindow
                        }
                        _ => FallbackKind::Regular,
                    };
                    match pass.next(kind, self.cfg.max_fallbacks) {
                        Some(next) => pass = next,
                        None => return Err(no_plan_error(&pass.group, &no)),
                    }
                }
            }
        };
        // The response cache (first pass only: a fallback pass comes from a miss). A hit is
        // answered before the rate limits count: it costs no provider anything.
        // A bridged API's answer is kept as the chat answer it was made from (and made the
        // API's again on a hit); a provider's own answer, passed through, is not kept.
        let passes_through = !pending.dialect.is_chat()
            && group
                .deployments
                .iter()
                .any(|d| d.speaks.contains(&pending.dialect));
        let cache_plan = match (&self.cfg.cache, &pending.replan) {
            (Some(cfg), None) if !passes_through => {
                let controls = cache::Controls {
                    caching: head.caching,
                    cache: head.cache.clone(),
                };
                // A bridged API's key names its API too.
                let scope = match pending.dialect {
                    Dialect::Chat => std::borrow::Cow::Borrowed(group_name.as_str()),
                    d => std::borrow::Cow::Owned(format!("{group_name}\n{}", d.name())),
                };
                cache::plan(cfg, endpoint, &scope, body, &controls)
            }
            _ => None,
        };
        if let Some(c) = cache_plan.as_ref().filter(|c| c.lookup) {
            match (&pending.cache, sidecar) {
                (CacheLookup::Unasked, Sidecar::Unasked) => {
                    return Ok(OnBody::Ask(cache_call(c)));
                }
                (CacheLookup::Hit(hit), _) => {
                    let include_usage = head
                        .stream_options
                        .as_ref()
                        .and_then(|o| o.include_usage)
                        .unwrap_or(false);
                    if let Some(local) = self.cache_hit(
                        pending,
                        hit,
                        &c.miss.key,
                        (&requested_model, &group_name),
                        (stream, include_usage),
                        host,
                    ) {
                        return Ok(OnBody::Respond(local));
                    }
                }
                _ => {}
            }
        }
        // Rate limits, once the request is known to go (a fallback pass was counted on its
        // first pass).
        let admitted = match &pending.replan {
            Some(r) => limits::Admitted {
                in_flight: r.info.limits_in_flight.clone(),
                tokens: r.info.limits_tokens.clone(),
                headers: r.info.rate_limit_headers.clone(),
            },
            None => {
                let mut subjects = Vec::new();
                if let Some(r) = record {
                    subjects.push(limits::Subject {
                        kind: "key",
                        id: &r.token,
                        limits: &r.key_limits,
                    });
                    if let Some(user) = &r.user_id {
                        subjects.push(limits::Subject {
                            kind: "user",
                            id: user,
                            limits: &r.user_limits,
                        });
                    }
                    if let Some(team) = &r.team_id {
                        subjects.push(limits::Subject {
                            kind: "team",
                            id: team,
                            limits: &r.team_limits,
                        });
                    }
                }
                if let (Some(id), Some(l)) = (&end_user, &customer_limits) {
                    subjects.push(limits::Subject {
                        kind: "customer",
                        id,
                        limits: l,
                    });
                }
                limits::admit(host, &subjects, ask.now_ms, self.cfg.fleet_limits)?
            }
        };
        // Only a fallback's internal redirect needs it.
        let origin = if pass.has_fallbacks() {
            pending.origin.clone()
        } else {
            String::new()
        };
        if self.cfg.log_messages {
            crate::observe::keep_prompt(&pending.request_id, body, host.now_ms());
        }
        let info = RequestInfo {
            health_check: false,
            log_messages: self.cfg.log_messages,
            request_id: pending.request_id.clone(),
            endpoint,
            dialect: pending.dialect,
            stored: None,
            requested_model,
            wildcard_model: wildcard::is_pattern(&group_name).then_some(name),
            group: group_name,
            tags,
            stream,
            plan: plan.deployments.clone(),
            retry_policy: group.retry_policy,
            fallbacks: pass.fallbacks,
            context_window_fallbacks: pass.context_window_fallbacks,
            content_policy_fallbacks: pass.content_policy_fallbacks,
            fallback_depth: pass.depth,
            earlier_attempts: pending
                .replan
                .as_ref()
                .map_or(0, |r| r.info.earlier_attempts + r.attempts),
            received_ms: pending
                .replan
                .as_ref()
                .map_or(ask.now_ms, |r| r.info.received_ms),
            origin,
            client: pending.client.clone(),
            forward_x_headers: group.forward_client_headers || self.cfg.forward.all_groups,
            strip_params,
            key: match &pending.replan {
                Some(r) => r.info.key.clone(),
                None => record.map(key_identity),
            },
            end_user,
            limits_in_flight: admitted.in_flight,
            limits_tokens: admitted.tokens,
            rate_limit_headers: admitted.headers,
            cache: match &pending.replan {
                Some(r) => r.info.cache.clone(),
                None => cache_plan.map(|c| c.miss),
            },
        };
        Ok(OnBody::Route(Box::new(Routed {
            headers: routing_headers(group, &plan),
            info,
        })))
    }

    /// The group of the deployment with this id, and its position there.
    fn deployment(&self, id: &str) -> Option<(&String, &GroupConfig, usize)> {
        self.cfg
            .groups
            .iter()
            .find_map(|(name, g)| Some((name, g, g.deployments.iter().position(|d| d.id == id)?)))
    }

    /// `GET`/`DELETE /v1/responses/{id}`: to the deployment holding the response, whatever
    /// the key may call of its group; free, so no limits or budgets count it.
    fn stored_response(
        &self,
        pending: &Pending,
        stored: &Stored,
        host: &dyn Host,
        rng: &mut Rng,
    ) -> Result<OnBody, ApiError> {
        let (name, group, position) = self.deployment(&stored.deployment).ok_or_else(|| {
            ApiError::not_found(format!(
                "No response here: the deployment that stored it ({}) is no longer configured.",
                stored.deployment
            ))
        })?;
        let record = match &pending.identity {
            Identity::Key(e) => Some(&e.record),
            _ => None,
        };
        if let Some(r) = record {
            let access = self
                .cfg
                .groups
                .get(name)
                .map_or(&[][..], |g| &g.access_groups);
            keys::check_model(r, name, name, access)?;
        }
        let now_ms = host.now_ms();
        let ask = plan::Ask {
            now_ms,
            endpoint: Endpoint::StoredResponse,
            pinned: Some(position),
            ..plan::Ask::default()
        };
        let state = if group_state_matters(group) {
            state::read(host, name)
        } else {
            state::GroupState::default()
        };
        let plan = plan::plan(group, &state, &ask, rng).map_err(|no| no_plan_error(name, &no))?;
        let info = RequestInfo {
            request_id: pending.request_id.clone(),
            endpoint: Endpoint::StoredResponse,
            dialect: Dialect::Responses,
            stored: Some(stored.path.clone()),
            requested_model: name.clone(),
            group: name.clone(),
            plan: plan.deployments.clone(),
            retry_policy: group.retry_policy,
            received_ms: now_ms,
            client: pending.client.clone(),
            forward_x_headers: group.forward_client_headers || self.cfg.forward.all_groups,
            key: record.map(key_identity),
            // No fallbacks, limits, cache or end user: a stored response is where it is.
            ..RequestInfo::default()
        };
        Ok(OnBody::Route(Box::new(Routed {
            headers: routing_headers(group, &plan),
            info,
        })))
    }

    /// A health check: one attempt at one deployment, whether it cools down or not.
    fn health_check(
        &self,
        pending: &Pending,
        id: &str,
        host: &dyn Host,
        rng: &mut Rng,
    ) -> Result<OnBody, ApiError> {
        let (name, group, position) = self
            .deployment(id)
            .ok_or_else(|| ApiError::not_found(format!("No deployment has the id {id}.")))?;
        let now_ms = host.now_ms();
        let ask = plan::Ask {
            now_ms,
            endpoint: pending.endpoint,
            pinned: Some(position),
            num_retries: Some(0),
            ..plan::Ask::default()
        };
        let plan = plan::plan(group, &state::GroupState::default(), &ask, rng)
            .map_err(|no| no_plan_error(name, &no))?;
        let info = RequestInfo {
            request_id: pending.request_id.clone(),
            endpoint: pending.endpoint,
            requested_model: name.clone(),
            group: name.clone(),
            plan: plan.deployments.clone(),
            received_ms: now_ms,
            health_check: true,
            ..RequestInfo::default()
        };
        Ok(OnBody::Route(Box::new(Routed {
            headers: routing_headers(group, &plan),
            info,
        })))
    }

    /// The answer to a request the cache had: streamed if the client asked for a stream,
    /// with LiteLLM's cache headers, logged as a hit that cost nothing. None when the kept
    /// body is not an answer of this endpoint (then the provider answers).
    fn cache_hit(
        &self,
        pending: &Pending,
        hit: &CachedAnswer,
        key: &str,
        (requested_model, group): (&str, &str),
        (stream, include_usage): (bool, bool),
        host: &dyn Host,
    ) -> Option<Local> {
        let endpoint = pending.endpoint;
        let (body, content_type) = if stream {
            let sse = cache::as_stream(endpoint, hit.body.as_bytes(), include_usage)?;
            // A bridged API's stream is made from the chat stream, as from a provider's.
            let sse = match crate::dialects::StreamBridge::of(
                pending.dialect,
                requested_model,
                host.now_ms(),
            ) {
                Some(mut bridge) => {
                    let mut events = Vec::with_capacity(sse.len() * 2);
                    bridge.push(&sse, &mut events);
                    bridge.finish(&mut events);
                    events
                }
                None => sse,
            };
            (sse, "text/event-stream")
        } else {
            let body = hit.body.clone().into_bytes();
            let body = crate::dialects::from_answer(pending.dialect, body, requested_model).ok()?;
            (body, "application/json")
        };
        let usage = crate::openai::usage_of(hit.body.as_bytes()).unwrap_or_default();
        let now_ms = host.now_ms();
        let key_identity = match &pending.identity {
            Identity::Key(e) => Some(&e.record),
            _ => None,
        };
        let event = SpendEvent {
            request_id: if pending.request_id.is_empty() {
                format!("switchyard-cache-{now_ms}")
            } else {
                pending.request_id.clone()
            },
            key_hash: key_identity.map(|r| r.token.clone()).unwrap_or_default(),
            key_alias: key_identity.and_then(|r| r.key_alias.clone()),
            user_id: key_identity.and_then(|r| r.user_id.clone()),
            team_id: key_identity.and_then(|r| r.team_id.clone()),
            requested_model: requested_model.to_string(),
            model_group: group.to_string(),
            provider: "cache".into(),
            endpoint: endpoint.name().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            start_ms: now_ms,
            end_ms: now_ms,
            status: "success".into(),
            http_status: 200,
            cache_hit: true,
            metadata: key_identity.map(|r| r.metadata.clone()).unwrap_or_default(),
            stream,
            ..SpendEvent::default()
        };
        crate::spend::record(host, &event);
        Some(Local {
            status: 200,
            body,
            headers: vec![
                ("content-type", content_type.to_string()),
                ("x-litellm-cache-key", key.to_string()),
                ("x-litellm-cache-hit", "True".to_string()),
                ("x-litellm-response-cost", "0".to_string()),
                ("x-litellm-model-group", group.to_string()),
            ],
        })
    }

    /// The group serving a model name: the group of that name, else the most specific
    /// pattern matching it (LiteLLM's wildcard routing). A name that is itself a pattern
    /// names no model.
    fn serving_group(&self, name: &str) -> Option<(&String, &GroupConfig)> {
        if wildcard::is_pattern(name) {
            return None;
        }
        self.cfg.groups.get_key_value(name).or_else(|| {
            let pattern = self
                .patterns
                .iter()
                .find(|p| wildcard::captures(p, name).is_some())?;
            self.cfg.groups.get_key_value(pattern)
        })
    }

    /// Which of a group's deployments may take this request, when not all (None: all).
    ///
    /// In a pattern group of several providers: those of the provider the name's prefix
    /// names (OpenAI's for a name without one). With tag filtering, LiteLLM's rules: `!tag`
    /// leaves out the deployments carrying it, `&tag` keeps only those carrying it; of the
    /// rest, those carrying one of the request's other tags, else those tagged `default`,
    /// else none (an error naming the tags); an untagged request goes to the `default` ones
    /// if there are any.
    fn members(
        &self,
        group_name: &str,
        group: &GroupConfig,
        name: &str,
        tags: &[String],
    ) -> Result<Option<Vec<bool>>, ApiError> {
        let mut only: Option<Vec<bool>> = None;
        let mut keep = |kept: Vec<bool>| {
            only = Some(match only.take() {
                Some(before) => before.iter().zip(&kept).map(|(a, b)| *a && *b).collect(),
                None => kept,
            });
        };
        let each = |test: &dyn Fn(&DeploymentRoute) -> bool| -> Vec<bool> {
            group.deployments.iter().map(test).collect()
        };
        if wildcard::is_pattern(group_name) {
            let mut providers = group.deployments.iter().filter_map(|d| d.passes_through);
            let first = providers.next();
            if providers.any(|p| Some(p) != first) {
                let wanted = name
                    .split_once('/')
                    .and_then(|(prefix, _)| Provider::from_prefix(prefix))
                    .unwrap_or(Provider::Openai);
                let kept = each(&|d| d.passes_through.is_none_or(|p| p == wanted));
                if kept.contains(&true) {
                    keep(kept);
                }
            }
        }
        if !self.cfg.tag_filtering {
            return Ok(only);
        }
        let carries = |d: &DeploymentRoute, tag: &str| d.tags.iter().any(|t| t == tag);
        let default = |d: &DeploymentRoute| carries(d, "default");
        let (mut required, mut excluded, mut wanted) = (Vec::new(), Vec::new(), Vec::new());
        for tag in tags {
            match (tag.strip_prefix('&'), tag.strip_prefix('!')) {
                (Some(t), _) if !t.is_empty() => required.push(t),
                (_, Some(t)) if !t.is_empty() => excluded.push(t),
                _ => wanted.push(tag.as_str()),
            }
        }
        let allowed = |d: &DeploymentRoute| {
            required.iter().all(|t| carries(d, t)) && !excluded.iter().any(|t| carries(d, t))
        };
        let tagged = each(&|d| allowed(d) && wanted.iter().any(|t| carries(d, t)));
        let defaults = each(&|d| allowed(d) && default(d));
        let constrained = !required.is_empty() || !excluded.is_empty();
        let kept = if tagged.contains(&true) {
            tagged
        } else if defaults.contains(&true) {
            defaults
        } else if wanted.is_empty() && !constrained {
            // Untagged, and no `default` deployment: any.
            return Ok(only);
        } else if wanted.is_empty() {
            each(&|d| allowed(d))
        } else {
            Vec::new()
        };
        if !kept.contains(&true) {
            return Err(ApiError::bad_request(format!(
                "Not allowed to access model due to tags configuration. Passed model={name} and tags={tags:?}. No deployment of {group_name} carries these tags, nor `default`: tag one (litellm_params.tags), or send other tags."
            )));
        }
        keep(kept);
        Ok(only)
    }

    fn group(&self, name: &str) -> Result<&GroupConfig, ApiError> {
        self.cfg.groups.get(name).ok_or_else(|| {
            ApiError::internal(format!(
                "The fallback model group {name} is not configured."
            ))
        })
    }

    /// The pass after a failed one: its hand-off names the kind of fallback.
    fn next_fallback(&self, r: &Replan) -> Result<Pass, ApiError> {
        let failed = Pass {
            group: r.info.group.clone(),
            fallbacks: r.info.fallbacks.clone(),
            context_window_fallbacks: r.info.context_window_fallbacks.clone(),
            content_policy_fallbacks: r.info.content_policy_fallbacks.clone(),
            depth: r.info.fallback_depth,
        };
        failed
            .next(r.kind, self.cfg.max_fallbacks)
            .ok_or_else(|| ApiError::internal("No fallback group is left for this request."))
    }

    /// Creates the in-flight counter at configuration time, before any worker serves a
    /// request: Envoy's first write of a key is unconditional, so two workers creating it
    /// under load could lose a count and admit one request too many.
    /// Also names this Envoy in a fleet that shares rate limits.
    pub fn prepare(&self, host: &dyn Host) {
        if self.cfg.max_parallel_requests.is_some() && host.shared_get(IN_FLIGHT_KEY).is_none() {
            let _ = host.shared_set(IN_FLIGHT_KEY, &0u64.to_le_bytes(), None);
        }
        if self.cfg.fleet_limits {
            limits::name_instance(host, Rng::from_entropy().next_u64());
        }
    }

    /// Whether rate limits are shared with a fleet (through the sidecar and Redis).
    pub fn fleet_limits(&self) -> bool {
        self.cfg.fleet_limits
    }

    /// Counts a request in flight against general_settings.global_max_parallel_requests;
    /// false (and nothing counted) when the gateway is full. A fallback pass is counted
    /// without the check: its first pass was admitted.
    pub fn admit(&self, host: &dyn Host, check: bool) -> bool {
        let Some(limit) = self.cfg.max_parallel_requests else {
            return true;
        };
        let mut admitted = false;
        update_shared(host, IN_FLIGHT_KEY, |current| {
            let n = current.map_or(0, read_count);
            admitted = !check || n < u64::from(limit);
            admitted.then(|| (n + 1).to_le_bytes().to_vec())
        });
        admitted
    }

    /// A request counted by [`Gateway::admit`] is done.
    pub fn release(&self, host: &dyn Host) {
        if self.cfg.max_parallel_requests.is_some() {
            update_shared(host, IN_FLIGHT_KEY, |current| {
                Some(
                    current
                        .map_or(0, read_count)
                        .saturating_sub(1)
                        .to_le_bytes()
                        .to_vec(),
                )
            });
        }
    }

    /// The answer when [`Gateway::admit`] refused: LiteLLM's 429 for its parallel limit.
    pub fn at_capacity(&self) -> ApiError {
        let limit = self.cfg.max_parallel_requests.unwrap_or(0);
        let mut e = ApiError::new(
            429,
            "rate_limit_error",
            format!("Switchyard is at capacity: {limit} requests are in flight (general_settings.global_max_parallel_requests). Retry shortly."),
        );
        e.retry_after_s = Some(1);
        e
    }
}

/// The question for the response cache: the exact key, or the prompt for a semantic one.
fn cache_call(c: &cache::Plan) -> SidecarCall {
    let semantic = c.miss.semantic.as_ref().zip(c.similarity_threshold);
    match semantic {
        Some((entry, threshold)) => SidecarCall {
            method: "POST",
            path: SEMANTIC_LOOKUP_PATH.to_string(),
            body: serde_json::to_vec(&SemanticLookup {
                entry: entry.clone(),
                similarity_threshold: threshold,
                max_age_s: c.max_age_s,
            })
            .ok(),
            timeout_ms: SEMANTIC_TIMEOUT_MS,
            target: Target::Cache,
        },
        None => SidecarCall {
            method: "GET",
            path: cache_path(&c.miss.key, c.max_age_s),
            body: None,
            timeout_ms: CACHE_TIMEOUT_MS,
            target: Target::Cache,
        },
    }
}

/// What the headers say of the key.
enum Auth {
    Ok(Identity),
    Reject(ApiError),
    Ask(SidecarCall),
}

/// A key the cache has never seen, while the sidecar cannot be asked.
fn key_service_down() -> ApiError {
    let mut e = ApiError::new(
        503,
        "service_unavailable",
        "Switchyard cannot check this key right now: its key service (the sidecar) does not answer. Keys it has seen before keep working; retry shortly, or ask your admin to check the sidecar.",
    );
    e.retry_after_s = Some(5);
    e
}

fn read_count(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// One pass of a request: the group it tries and the fallbacks left after it.
#[derive(Debug, Clone)]
struct Pass {
    group: String,
    fallbacks: Vec<String>,
    context_window_fallbacks: Vec<String>,
    content_policy_fallbacks: Vec<String>,
    depth: u32,
}

impl Pass {
    fn has_fallbacks(&self) -> bool {
        !self.fallbacks.is_empty()
            || !self.context_window_fallbacks.is_empty()
            || !self.content_policy_fallbacks.is_empty()
    }

    fn first(name: &str, g: &GroupConfig) -> Pass {
        Pass {
            group: name.to_string(),
            fallbacks: g.fallbacks.clone(),
            context_window_fallbacks: g.context_window_fallbacks.clone(),
            content_policy_fallbacks: g.content_policy_fallbacks.clone(),
            depth: 0,
        }
    }

    /// The next fallback group of this kind. From then on the rest of that list is tried in
    /// order whatever fails, as LiteLLM walks a fallback list.
    fn next(&self, kind: FallbackKind, max_fallbacks: u32) -> Option<Pass> {
        if self.depth >= max_fallbacks {
            return None;
        }
        let list = match kind {
            FallbackKind::Regular => &self.fallbacks,
            FallbackKind::ContextWindow => &self.context_window_fallbacks,
            FallbackKind::ContentPolicy => &self.content_policy_fallbacks,
        };
        let (next, rest) = list.split_first()?;
        Some(Pass {
            group: next.clone(),
            fallbacks: rest.to_vec(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            depth: self.depth + 1,
        })
    }
}

/// Who a virtual key is, as its spend events name it.
fn key_identity(r: &KeyRecord) -> KeyIdentity {
    KeyIdentity {
        hash: r.token.clone(),
        alias: r.key_alias.clone(),
        user_id: r.user_id.clone(),
        team_id: r.team_id.clone(),
        metadata: r.metadata.clone(),
    }
}

fn group_state_matters(group: &GroupConfig) -> bool {
    let cooldowns = !group.cooldown.disabled && group.deployments.len() > 1;
    cooldowns || group.strategy.needs_stats()
}

/// What the router needs: the group's route (waiting between attempts when they retry the
/// same deployment), the plan, how many retries, and each attempt's timeout.
fn routing_headers(group: &GroupConfig, plan: &Plan) -> Vec<(String, String)> {
    let route = if plan.backoff {
        format!("{}{BACKOFF_SUFFIX}", group.route)
    } else {
        group.route.clone()
    };
    let mut headers = vec![
        (ROUTE_HEADER.to_string(), route),
        (PLAN_HEADER.to_string(), plan.header.to_string()),
        (
            "x-envoy-max-retries".to_string(),
            plan.positions.len().saturating_sub(1).to_string(),
        ),
    ];
    if plan.attempt_timeout_ms > 0 {
        headers.push((
            "x-envoy-upstream-rq-per-try-timeout-ms".to_string(),
            plan.attempt_timeout_ms.to_string(),
        ));
    }
    headers
}

fn no_plan_error(group: &str, no: &NoPlan) -> ApiError {
    match no {
        NoPlan::CoolingDown { retry_after_ms } => {
            let secs = retry_after_ms.div_ceil(1000).max(1);
            let mut e = ApiError::new(
                429,
                "rate_limit_error",
                format!("No deployments available for model={group}: every deployment is cooling down after failures. Try again in {secs} seconds."),
            );
            e.retry_after_s = Some(secs);
            e
        }
        NoPlan::NoHeadroom => {
            let mut e = ApiError::new(
                429,
                "rate_limit_error",
                format!("No deployments available for model={group}: every deployment reached its rpm/tpm limit for this minute. Try again in a minute."),
            );
            e.retry_after_s = Some(60);
            e
        }
        NoPlan::ContextTooLong { tokens, largest } => ApiError::bad_request(format!(
            "litellm.ContextWindowExceededError: the prompt (about {tokens} tokens) is larger than the context window of every deployment of model={group} (at most {largest}). Shorten it, or configure context_window_fallbacks."
        )),
        NoPlan::Empty => ApiError::internal(format!("Model group {group} has no deployments.")),
        NoPlan::Unsupported(endpoint) => ApiError::bad_request(format!(
            "model={group} does not serve {}: none of its deployments' providers does. Call `/v1/models` to see the models, or add a deployment that serves it.",
            endpoint.name()
        ))
        .with_param("model"),
    }
}

/// Client headers LiteLLM forwards to providers when the model group allows it: `x-`
/// headers other than the SDK's `x-stainless-*`, credentials, Envoy's and Switchyard's own;
/// (`anthropic-beta` goes to Anthropic deployments only: see ClientHeaders).
fn forwardable(name: &str) -> bool {
    name.starts_with("x-")
        && !name.starts_with("x-stainless-")
        && !name.starts_with("x-envoy-")
        && !name.starts_with("x-litellm-")
        && !name.starts_with("x-switchyard-")
        && !name.starts_with("x-forwarded-")
        && !name.starts_with("x-pass-")
        && !matches!(name, "x-api-key" | "x-request-id" | "x-real-ip")
}

fn required_field(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::CountTokens => "messages",
        Endpoint::Completions => "prompt",
        // (A stored response has no body: it never gets here.)
        Endpoint::Embeddings | Endpoint::StoredResponse => "input",
    }
}

/// A stored response's id and what follows it, in a path without its query:
/// `/v1/responses/{id}` or `/v1/responses/{id}/input_items`.
/// Where the response a stored-response path names is.
fn stored_of(path_and_query: &str) -> Option<Stored> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let (id, tail) = stored_path(path.trim_end_matches('/'))?;
    let (deployment, id) = crate::dialects::responses::parse_stored_id(id)?;
    // The query goes on as the client wrote it, but cannot leave the path.
    let query: String = query
        .chars()
        .filter(|c| !matches!(c, '#' | ' ' | '/'))
        .collect();
    let path = match query.as_str() {
        "" => format!("{id}{tail}"),
        q => format!("{id}{tail}?{q}"),
    };
    Some(Stored { deployment, path })
}

fn stored_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/v1/responses/")
        .or_else(|| path.strip_prefix("/responses/"))?;
    let (id, tail) = match rest.split_once('/') {
        Some((id, "input_items")) => (id, "/input_items"),
        Some(_) => return None,
        None => (rest, ""),
    };
    (!id.is_empty()).then_some((id, tail))
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

/// GET /v1/models: every model group and alias, as OpenAI lists models.
/// The model list (groups, then aliases), with the ids `allowed(id, group)` admits.
fn models_list(cfg: &GatewayConfig, allowed: &dyn Fn(&str, &str) -> bool) -> Vec<u8> {
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
    // The concrete groups, then the aliases, then the patterns served (`openai/*`: any
    // OpenAI model), most specific first.
    let groups = cfg
        .groups
        .keys()
        .filter(|g| !wildcard::is_pattern(g))
        .map(|g| (g.as_str(), g.as_str()));
    let aliases = cfg.aliases.iter().map(|(a, g)| (a.as_str(), g.as_str()));
    let patterns = wildcard::by_specificity(cfg.groups.keys());
    let patterns = patterns.iter().filter_map(|p| {
        let (name, _) = cfg.groups.get_key_value(p)?;
        Some((name.as_str(), name.as_str()))
    });
    let data = groups
        .chain(aliases)
        .chain(patterns)
        .filter(|(id, group)| allowed(id, group))
        .map(|(id, _)| Model {
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

/// A response on its way to the client, as the gateway sees it.
pub struct Answered<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    /// Envoy's response code details: `via_upstream` for a provider's answer.
    pub details: &'a str,
    /// The request as planned (None for requests the gateway did not route).
    pub info: Option<&'a RequestInfo>,
    pub now_ms: u64,
    /// Envoy's x-request-id (for the spend log of a request Envoy failed itself).
    pub request_id: &'a str,
    /// The request went to the sidecar (readiness, the management API), not to a provider.
    pub to_sidecar: bool,
}

/// Whether a response needs [`on_response`]. A provider's answer was finished by the
/// provider role (LiteLLM's headers set, nothing internal left, and the router adds no
/// x-envoy-* header), so a success passes untouched: only redirects and errors, which may be
/// Envoy's own replies or carry the router's cues, are looked at.
pub fn edits_response(status: u16) -> bool {
    status >= 300
}

/// What the gateway does to a response: its headers, and a new body for Envoy's own replies.
#[derive(Debug, Default, PartialEq)]
pub struct ResponseEdit {
    pub headers: HeaderEdits,
    pub body: Option<Vec<u8>>,
}

/// Envoy's own replies as OpenAI errors (with LiteLLM's headers, which no provider role
/// wrote), and no header of Switchyard's or Envoy's internals towards the client.
pub fn on_response(a: &Answered, host: &dyn Host) -> ResponseEdit {
    let find = |name: &str| {
        a.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut edit = ResponseEdit::default();
    let mut remove: Vec<String> = a
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("x-envoy-") || INTERNAL_HEADERS.contains(n))
        .map(str::to_string)
        .collect();
    let mut set: Vec<(String, String)> = Vec::new();
    let dialect = a.info.map(|i| i.dialect).unwrap_or_default();
    let mut replace =
        |status: u16, body: Vec<u8>, set: &mut Vec<(String, String)>, remove: &mut Vec<String>| {
            set.push((":status".into(), status.to_string()));
            set.push(("content-type".into(), "application/json".into()));
            remove.push("content-length".into());
            remove.push("location".into());
            edit.body = Some(body);
        };
    // What went wrong, for the request's event.
    let mut message = None;
    if let Some(nonce) = find(REPLAN_HEADER) {
        // The internal redirect to a fallback did not happen: the failed pass's answer.
        match replan::take(nonce) {
            Some(r) => {
                message = Some("The internal redirect to a fallback group did not happen.".into());
                replace(r.status, r.body, &mut set, &mut remove)
            }
            None => {
                let e = ApiError::new(502, "api_error", "The fallback could not be reached.");
                let body = crate::dialects::error_body(dialect, &e);
                replace(e.status, body, &mut set, &mut remove);
                message = Some(e.message);
            }
        }
    } else if a.status >= 400
        && a.details != "via_upstream"
        && !a.details.is_empty()
        && find(DEPLOYMENT_HEADER).is_none()
    {
        // Envoy answered itself (a provider role's own replies carry the deployment header):
        // say it OpenAI's way.
        let e = if a.to_sidecar {
            sidecar_down(a.details)
        } else {
            local_reply_error(a.status, a.details)
        };
        let body = crate::dialects::error_body(dialect, &e);
        replace(e.status, body, &mut set, &mut remove);
        message = Some(e.message);
    }
    if let (Some(info), Some(_)) = (a.info, &edit.body) {
        // No provider role answered, so none logged it: a failure that cost nothing.
        let status = set
            .iter()
            .find(|(n, _)| n == ":status")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(a.status);
        let request_id = match info.request_id.as_str() {
            "" => a.request_id,
            id => id,
        };
        let mut event = failure_event(info, request_id, status, a.now_ms);
        event.error = message;
        crate::spend::record(host, &event);
        set.push(("x-litellm-model-group".into(), info.group.clone()));
        set.push((
            "x-litellm-attempted-fallbacks".into(),
            info.fallback_depth.to_string(),
        ));
        set.push((
            "x-litellm-response-duration-ms".into(),
            a.now_ms.saturating_sub(info.received_ms).to_string(),
        ));
    }
    edit.headers = HeaderEdits { remove, set };
    edit
}

/// The spend log of a request that failed before any provider answered.
fn failure_event(info: &RequestInfo, request_id: &str, status: u16, now_ms: u64) -> SpendEvent {
    let key = info.key.as_ref();
    SpendEvent {
        request_id: if request_id.is_empty() {
            format!("switchyard-{:016x}", Rng::from_entropy().next_u64())
        } else {
            request_id.to_string()
        },
        key_hash: key.map(|k| k.hash.clone()).unwrap_or_default(),
        key_alias: key.and_then(|k| k.alias.clone()),
        user_id: key.and_then(|k| k.user_id.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        end_user: info.end_user.clone(),
        requested_model: info.requested_model.clone(),
        model_group: info.group.clone(),
        endpoint: info.endpoint.name().to_string(),
        start_ms: info.received_ms,
        end_ms: now_ms,
        status: "failure".into(),
        http_status: status,
        metadata: key.map(|k| k.metadata.clone()).unwrap_or_default(),
        stream: info.stream,
        fallbacks: info.fallback_depth,
        failed_attempts: crate::observe::take_failed(request_id),
        cache_miss: info.cache.is_some(),
        messages: info
            .log_messages
            .then(|| crate::observe::take_prompt(request_id))
            .flatten(),
        ..SpendEvent::default()
    }
}

/// The event of a request to an API endpoint that the gateway refused itself (a bad or
/// missing key, a model not allowed, a budget or a limit, a bad request), for the metrics
/// and request logs: never stored as spend. `pending` and `body` when the body was read;
/// `message` the error's. None for other paths.
pub fn rejection_event(
    headers: &[(String, String)],
    pending: Option<&Pending>,
    body: &[u8],
    (status, message): (u16, &str),
    now_ms: u64,
) -> Option<SpendEvent> {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let Route::Api(endpoint) = classify(find(":method"), find(":path")) else {
        return None;
    };
    #[derive(Deserialize)]
    struct Asked {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        user: Option<String>,
    }
    let asked: Option<Asked> = serde_json::from_slice(body).ok();
    let (model, end_user) = asked.map_or((None, None), |a| (a.model, a.user));
    let key = match pending.map(|p| &p.identity) {
        Some(Identity::Key(e)) => Some(&e.record),
        _ => None,
    };
    let request_id = find("x-request-id");
    Some(SpendEvent {
        request_id: if request_id.is_empty() {
            format!("switchyard-{:016x}", Rng::from_entropy().next_u64())
        } else {
            request_id.to_string()
        },
        key_hash: key.map(|r| r.token.clone()).unwrap_or_default(),
        key_alias: key.and_then(|r| r.key_alias.clone()),
        user_id: key.and_then(|r| r.user_id.clone()),
        team_id: key.and_then(|r| r.team_id.clone()),
        end_user,
        requested_model: model.unwrap_or_default(),
        endpoint: endpoint.name().to_string(),
        start_ms: now_ms,
        end_ms: now_ms,
        status: "failure".into(),
        http_status: status,
        error: Some(message.to_string()),
        log_only: true,
        ..SpendEvent::default()
    })
}

/// An OpenAI-shaped error body's message (the gateway's own replies).
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.error.message)
        .unwrap_or_default()
}

/// Envoy could not reach the sidecar for a management call or the readiness check.
fn sidecar_down(details: &str) -> ApiError {
    ApiError::new(
        503,
        "service_unavailable",
        format!(
            "Switchyard's sidecar (keys, spend, the management API) does not answer ({details}). Check that it runs (`switchyard up`, or the sidecar container) and its log; requests with known keys keep being served meanwhile."
        ),
    )
}

/// The client's error for a reply Envoy made itself (no provider answered), from the stream's
/// response code details.
pub fn local_reply_error(status: u16, details: &str) -> ApiError {
    if details.contains("overflow") {
        let mut e = ApiError::new(
            503,
            "service_unavailable",
            "Switchyard is at capacity: the deployment's connection limit (max_parallel_requests) and queue are full. Retry shortly.",
        );
        e.retry_after_s = Some(1);
        e
    } else if details.contains("timeout") {
        ApiError::new(
            504,
            "timeout",
            "litellm.Timeout: the provider did not answer in time. Retry, or raise `timeout` / `stream_timeout` in the deployment's litellm_params (or the request's `timeout`).",
        )
    } else if details.contains("no_healthy_upstream") {
        ApiError::new(
            503,
            "service_unavailable",
            "No healthy deployment for this model right now: every replica was ejected after failures. Retry shortly.",
        )
    } else if details.contains("response_payload_too_large") {
        ApiError::new(
            502,
            "api_error",
            "The provider's answer was larger than general_settings.max_response_size_mb allows. Ask for less (max_tokens, fewer inputs), or raise the limit.",
        )
    } else if details.contains("too_large") || status == 413 {
        ApiError::new(413, "invalid_request_error", "Request body too large.")
    } else if details.starts_with("upstream_reset")
        || details.contains("connection_failure")
        || details.contains("connect")
    {
        ApiError::new(
            502,
            "api_error",
            format!("litellm.APIConnectionError: could not reach the provider ({details}). Check the deployment's api_base and that the provider is up."),
        )
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
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::host::MemoryHost;
    use crate::router::state::{DeploymentState, GroupState};

    use std::collections::BTreeMap;
    use switchyard_config::{ForwardPolicy, GROUP_STATE_KEY};

    /// The gateway as the tests before keys drove it: no sidecar to ask, a route or an error.
    trait Drive {
        fn headers(&self, h: &[(String, String)]) -> OnHeaders;
        fn body(
            &self,
            p: &Pending,
            body: &[u8],
            host: &dyn Host,
            rng: &mut Rng,
        ) -> Result<Routed, ApiError>;
    }

    impl Drive for Gateway {
        /// With a sidecar that knows no virtual key.
        fn headers(&self, h: &[(String, String)]) -> OnHeaders {
            let host = MemoryHost::at(0);
            match self.on_headers(h, &host, Sidecar::Unasked) {
                OnHeaders::Ask(call) => {
                    assert!(self.on_answer(&call, 404, b"", &host, None));
                    self.on_headers(h, &host, Sidecar::Unasked)
                }
                other => other,
            }
        }

        fn body(
            &self,
            p: &Pending,
            body: &[u8],
            host: &dyn Host,
            rng: &mut Rng,
        ) -> Result<Routed, ApiError> {
            match self.on_body(p, body, host, rng, Sidecar::Unasked)? {
                OnBody::Route(r) => Ok(*r),
                OnBody::Ask(call) => panic!("asks the sidecar: {call:?}"),
                OnBody::Respond(local) => panic!("answers itself: {local:?}"),
            }
        }
    }

    fn group(route_value: &str, ids: &[&str]) -> GroupConfig {
        let mut g = crate::testing::group(route_value, ids);
        g.cooldown.single_deployment = ids.len() == 1;
        g
    }

    fn cfg(master: bool) -> GatewayConfig {
        let mut groups = BTreeMap::new();
        let mut main = group("0", &["a", "b"]);
        main.fallbacks = vec!["backup".into()];
        main.context_window_fallbacks = vec!["big".into()];
        groups.insert("gpt-4o".to_string(), main);
        groups.insert("backup".to_string(), group("1", &["c"]));
        let mut big = group("2", &["d"]);
        big.forward_client_headers = true;
        groups.insert("big".to_string(), big);
        let mut aliases = BTreeMap::new();
        aliases.insert("fast".to_string(), "gpt-4o".to_string());
        GatewayConfig {
            log_messages: false,
            groups,
            aliases,
            master_key_env: master.then(|| "MK".to_string()),
            max_request_bytes: 1000,
            max_parallel_requests: None,
            forward: ForwardPolicy::default(),
            max_fallbacks: 5,
            pre_call_checks: false,
            key_cache_ttl_ms: 60_000,
            cache: None,
            fleet_limits: false,
            tag_filtering: false,
            key_header: None,
            enforce_user: false,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn post(path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out = h(&[
            (":method", "POST"),
            (":path", path),
            (":scheme", "http"),
            (":authority", "gw:4000"),
        ]);
        out.extend(h(extra));
        out
    }

    fn pending(g: &Gateway, headers: &[(String, String)]) -> Box<Pending> {
        match g.headers(headers) {
            OnHeaders::ReadBody(p) => p,
            other => panic!("expected to read the body, got {other:?}"),
        }
    }

    fn respond(g: &Gateway, headers: &[(String, String)]) -> Local {
        match g.headers(headers) {
            OnHeaders::Respond(l) => l,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
        for (name, value) in [
            ("authorization", "Bearer sk-1234"),
            ("authorization", "bearer  sk-1234 "),
            ("api-key", "sk-1234"),
            ("x-api-key", "sk-1234"),
            ("x-litellm-api-key", "sk-1234"),
        ] {
            pending(&g, &post("/v1/chat/completions", &[(name, value)]));
        }
        let l = respond(
            &g,
            &post(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-12345678")],
            ),
        );
        assert_eq!(l.status, 401);
        let text = String::from_utf8(l.body).unwrap();
        assert!(
            text.contains("****5678") && !text.contains("sk-12345678"),
            "{text}"
        );
        assert_eq!(
            respond(&g, &h(&[(":method", "GET"), (":path", "/v1/models")])).status,
            401
        );
        assert_eq!(
            respond(
                &g,
                &h(&[(":method", "GET"), (":path", "/health/liveliness")])
            )
            .status,
            200
        );
        assert!(Gateway::new(cfg(true), None).is_err());
    }

    /// The key `sk-virtual` as the sidecar knows it.
    fn virtual_key(models: &[&str]) -> KeyRecord {
        KeyRecord {
            token: hex(&sha256(b"sk-virtual")),
            key_alias: Some("ci".into()),
            team_id: Some("t1".into()),
            models: models.iter().map(|m| m.to_string()).collect(),
            aliases: [("my-fast".to_string(), "fast".to_string())].into(),
            key_budget: switchyard_config::Budget {
                max_budget: Some(1.0),
                spend: 0.2,
                resets_at_ms: None,
            },
            ..KeyRecord::default()
        }
    }

    #[test]
    fn virtual_keys_are_asked_for_cached_and_checked() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let host = MemoryHost::at(1_000);
        let headers = post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-virtual")],
        );
        let OnHeaders::Ask(call) = g.on_headers(&headers, &host, Sidecar::Unasked) else {
            panic!("a key never seen is asked for")
        };
        assert_eq!(call.path, key_path(&hex(&sha256(b"sk-virtual"))));
        let record = virtual_key(&["gpt-4o", "fast"]);
        assert!(g.on_answer(
            &call,
            200,
            &serde_json::to_vec(&record).unwrap(),
            &host,
            None
        ));
        let OnHeaders::ReadBody(p) = g.on_headers(&headers, &host, Sidecar::Unasked) else {
            panic!("cached now")
        };
        assert!(matches!(&p.identity, Identity::Key(e) if e.record == record));
        let mut rng = Rng::seeded(1);
        let OnBody::Route(r) = g
            .on_body(
                &p,
                br#"{"model":"my-fast","messages":[],"user":"eu-1"}"#,
                &host,
                &mut rng,
                Sidecar::Unreachable,
            )
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(r.info.group, "gpt-4o", "the key's alias, then the config's");
        assert_eq!(r.info.key.as_ref().unwrap().alias.as_deref(), Some("ci"));
        assert_eq!(r.info.end_user.as_deref(), Some("eu-1"));
        // A model outside the key's list.
        let e = g
            .on_body(
                &p,
                br#"{"model":"big","messages":[]}"#,
                &host,
                &mut rng,
                Sidecar::Unasked,
            )
            .unwrap_err();
        assert_eq!((e.status, e.kind), (401, "key_model_access_denied"));
        // Spend this Envoy made beyond the budget: refused at the headers.
        keys::add_spent(&host, Holder::Key(&record.token), 0.8);
        let OnHeaders::Respond(l) = g.on_headers(&headers, &host, Sidecar::Unasked) else {
            panic!()
        };
        assert_eq!(l.status, 400);
        assert!(String::from_utf8(l.body)
            .unwrap()
            .contains("budget_exceeded"));
    }

    #[test]
    fn a_key_limited_to_some_models_lists_only_those() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let host = MemoryHost::at(1_000);
        let record = virtual_key(&["gpt-4o"]);
        keys::store_key(&host, &record.token, Some(&record), Snapshot::default());
        let models = h(&[
            (":method", "GET"),
            (":path", "/v1/models"),
            ("authorization", "Bearer sk-virtual"),
        ]);
        let OnHeaders::Respond(l) = g.on_headers(&models, &host, Sidecar::Unasked) else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(&l.body).unwrap();
        let ids: Vec<_> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        // The group, and the alias that names it.
        assert_eq!(ids, ["gpt-4o", "fast"]);
    }

    #[test]
    fn without_the_sidecar_known_keys_work_and_unknown_ones_wait() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let host = MemoryHost::at(1_000);
        let headers = post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-virtual")],
        );
        let OnHeaders::Respond(l) = g.on_headers(&headers, &host, Sidecar::Unreachable) else {
            panic!()
        };
        assert_eq!(l.status, 503);
        assert!(String::from_utf8(l.body).unwrap().contains("key service"));
        keys::store_key(
            &host,
            &virtual_key(&[]).token,
            Some(&virtual_key(&[])),
            Snapshot::default(),
        );
        host.now.set(1_000 + 61_000);
        assert!(
            matches!(
                g.on_headers(&headers, &host, Sidecar::Unasked),
                OnHeaders::Ask(_)
            ),
            "stale: ask"
        );
        assert!(
            matches!(
                g.on_headers(&headers, &host, Sidecar::Unreachable),
                OnHeaders::ReadBody(_)
            ),
            "stale, and the sidecar is down: use it"
        );
        let mut blocked = virtual_key(&[]);
        blocked.blocked = true;
        keys::store_key(&host, &blocked.token, Some(&blocked), Snapshot::default());
        let OnHeaders::Respond(l) = g.on_headers(&headers, &host, Sidecar::Unasked) else {
            panic!()
        };
        assert_eq!(l.status, 401);
    }

    #[test]
    fn end_users_are_held_to_their_budget() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let host = MemoryHost::at(1_000);
        let p = pending(
            &g,
            &post(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-1234")],
            ),
        );
        let body = br#"{"model":"fast","messages":[],"user":"eu-1"}"#;
        let mut rng = Rng::seeded(1);
        let OnBody::Ask(call) = g
            .on_body(&p, body, &host, &mut rng, Sidecar::Unasked)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(call.path, "/internal/v1/customers/eu-1");
        let spent = CustomerRecord {
            user_id: "eu-1".into(),
            blocked: false,
            budget: switchyard_config::Budget {
                max_budget: Some(0.5),
                spend: 0.5,
                resets_at_ms: None,
            },
            ..CustomerRecord::default()
        };
        assert!(g.on_answer(
            &call,
            200,
            &serde_json::to_vec(&spent).unwrap(),
            &host,
            None
        ));
        let e = g
            .on_body(&p, body, &host, &mut rng, Sidecar::Unasked)
            .unwrap_err();
        assert_eq!((e.status, e.kind), (400, "budget_exceeded"));
        assert!(e.message.contains("end user"), "{}", e.message);
    }

    #[test]
    fn the_management_api_goes_to_the_sidecar_and_the_internal_one_nowhere() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        for path in ["/global/spend/report", "/ui", "/ui/keys", "/model/info"] {
            assert_eq!(
                g.headers(&h(&[(":method", "POST"), (":path", path)])),
                OnHeaders::PassThrough,
                "{path}"
            );
        }
        for path in [
            "/key/generate",
            "/key/block",
            "/team/new",
            "/customer/delete",
        ] {
            assert_eq!(
                g.headers(&h(&[(":method", "POST"), (":path", path)])),
                OnHeaders::Change,
                "{path}"
            );
            assert_eq!(
                g.headers(&h(&[(":method", "GET"), (":path", path)])),
                OnHeaders::PassThrough,
                "{path}"
            );
        }
        assert_eq!(
            respond(
                &g,
                &h(&[(":method", "GET"), (":path", "/internal/v1/keys/x")])
            )
            .status,
            404
        );
    }

    #[test]
    fn a_management_change_through_this_gateway_drops_the_cache_at_once() {
        let host = MemoryHost::at(0);
        let record = KeyRecord::default();
        keys::store_key(&host, "abc", Some(&record), Snapshot::default());
        after_change(400, &host);
        assert!(matches!(
            keys::lookup_key(&host, "abc", 60_000),
            Lookup::Known(_)
        ));
        after_change(200, &host);
        assert_eq!(keys::lookup_key(&host, "abc", 60_000), Lookup::Missing);
    }

    #[test]
    fn a_forged_replan_header_is_no_way_around_the_key() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let l = respond(
            &g,
            &post(
                "/v1/chat/completions",
                &[(REPLAN_HEADER, "0123456789abcdef0123456789abcdef")],
            ),
        );
        assert_eq!(l.status, 401);
    }

    #[test]
    fn size_limit_on_the_header_and_the_body() {
        let g = Gateway::new(cfg(false), None).unwrap();
        assert_eq!(
            respond(&g, &post("/v1/embeddings", &[("content-length", "1001")])).status,
            413
        );
        let p = pending(&g, &post("/v1/embeddings", &[]));
        let host = MemoryHost::at(0);
        let e = g
            .body(&p, &[b' '; 1001], &host, &mut Rng::seeded(1))
            .err()
            .unwrap();
        assert_eq!(e.status, 413);
    }

    /// Plans `model` (with `extra` JSON fields and headers) and returns the routed request.
    fn route_model(
        g: &Gateway,
        model: &str,
        extra: &str,
        headers: &[(&str, &str)],
    ) -> Result<Routed, ApiError> {
        let p = pending(g, &post("/v1/chat/completions", headers));
        let body = format!(r#"{{"model":"{model}","messages":[]{extra}}}"#);
        g.body(&p, body.as_bytes(), &MemoryHost::at(0), &mut Rng::seeded(1))
    }

    #[test]
    fn a_custom_key_header_and_the_enforced_user() {
        let mut c = cfg(true);
        c.key_header = Some("x-gateway-key".into());
        c.enforce_user = true;
        let g = Gateway::new(c, Some("sk-1234")).unwrap();
        // The key in its own header, while Authorization carries something else.
        let p = pending(
            &g,
            &post(
                "/v1/chat/completions",
                &[
                    ("x-gateway-key", "sk-1234"),
                    ("authorization", "Bearer other"),
                ],
            ),
        );
        let host = MemoryHost::at(0);
        let e = g
            .body(
                &p,
                br#"{"model":"gpt-4o","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .err()
            .unwrap();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("user")));
        // Groups forwarding client headers never forward the key's own header.
        let client = g.client_headers(&post(
            "/v1/chat/completions",
            &[("x-gateway-key", "sk-1234"), ("x-trace", "t")],
        ));
        let names: Vec<&str> = client.x.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-trace"]);
        let wrong = respond(
            &g,
            &post("/v1/chat/completions", &[("x-gateway-key", "sk-nope")]),
        );
        assert_eq!(wrong.status, 401);
    }

    #[test]
    fn wildcard_groups_exact_over_pattern_and_longest_pattern_first() {
        let mut c = cfg(false);
        c.groups.insert("*".into(), group("3", &["any"]));
        c.groups
            .insert("anthropic/*".into(), group("4", &["claude"]));
        c.groups
            .insert("anthropic/claude-3*".into(), group("5", &["claude3"]));
        c.groups
            .insert("anthropic/claude-3-opus".into(), group("6", &["opus"]));
        let g = Gateway::new(c, None).unwrap();
        let cases = [
            ("anthropic/claude-3-opus", "anthropic/claude-3-opus", None),
            (
                "anthropic/claude-3-haiku",
                "anthropic/claude-3*",
                Some("anthropic/claude-3-haiku"),
            ),
            (
                "anthropic/claude-sonnet-4",
                "anthropic/*",
                Some("anthropic/claude-sonnet-4"),
            ),
            ("openai/gpt-4.1-nano", "*", Some("openai/gpt-4.1-nano")),
            ("gpt-4o", "gpt-4o", None),
        ];
        for (model, group, wildcard) in cases {
            let r = route_model(&g, model, "", &[]).unwrap();
            assert_eq!(r.info.group, group, "{model}");
            assert_eq!(r.info.requested_model, model);
            assert_eq!(r.info.wildcard_model.as_deref(), wildcard, "{model}");
        }
        let e = route_model(&g, "anthropic/*", "", &[]).err().unwrap();
        assert_eq!(e.status, 400, "a pattern names no model");
        // The list: concrete groups, aliases, then the patterns, most specific first.
        let list: serde_json::Value = serde_json::from_slice(&g.models_body).unwrap();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "anthropic/claude-3-opus",
                "backup",
                "big",
                "gpt-4o",
                "fast",
                "anthropic/claude-3*",
                "anthropic/*",
                "*"
            ]
        );
    }

    #[test]
    fn a_pattern_group_of_several_providers_sends_a_name_to_its_provider() {
        let mut c = cfg(false);
        let mut any = group("3", &["oa", "an"]);
        any.deployments[0].passes_through = Some(Provider::Openai);
        any.deployments[1].passes_through = Some(Provider::Anthropic);
        c.groups.insert("*".into(), any);
        let g = Gateway::new(c, None).unwrap();
        for (model, deployment) in [
            ("anthropic/claude-x", "an"),
            ("openai/gpt-x", "oa"),
            ("gpt-x", "oa"),
        ] {
            let r = route_model(&g, model, r#","num_retries":3"#, &[]).unwrap();
            assert!(
                r.info.plan.iter().all(|d| d == deployment),
                "{model}: {:?}",
                r.info.plan
            );
        }
    }

    #[test]
    fn tag_filtering_chooses_deployments_and_says_when_none_carries_the_tag() {
        let mut c = cfg(false);
        c.tag_filtering = true;
        let mut tiers = group("3", &["free", "paid", "fallback"]);
        tiers.deployments[0].tags = vec!["free".into()];
        tiers.deployments[1].tags = vec!["paid".into(), "team-a".into()];
        c.groups.insert("tiers".into(), tiers);
        let mut strict = group("4", &["only"]);
        strict.deployments[0].tags = vec!["paid".into()];
        c.groups.insert("strict".into(), strict);
        let g = Gateway::new(c.clone(), None).unwrap();
        let plan = |model: &str, extra: &str, headers: &[(&str, &str)]| {
            let r =
                route_model(&g, model, &format!(r#",{extra}"num_retries":5"#), headers).unwrap();
            let mut ids = r.info.plan.clone();
            ids.sort();
            ids.dedup();
            (ids, r.info.tags.clone(), r.info.strip_params)
        };
        assert_eq!(plan("tiers", r#""tags":["free"],"#, &[]).0, ["free"]);
        assert_eq!(
            plan("tiers", r#""metadata":{"tags":["team-a"]},"#, &[]).0,
            ["paid"]
        );
        let (ids, tags, strip) = plan("tiers", "", &[("x-litellm-tags", "free, paid")]);
        assert_eq!(ids, ["free", "paid"]);
        assert_eq!(tags, ["free", "paid"]);
        assert!(strip, "tags are LiteLLM's, not the provider's");
        assert_eq!(
            plan("tiers", "", &[]).0,
            ["fallback", "free", "paid"],
            "untagged: every deployment, no `default` being set"
        );
        let e = route_model(&g, "strict", r#","tags":["free"]"#, &[])
            .err()
            .unwrap();
        assert_eq!(e.status, 400);
        assert!(
            e.message
                .contains("Not allowed to access model due to tags configuration"),
            "{}",
            e.message
        );
        // `default` takes untagged requests and those no deployment's tags match.
        c.groups.get_mut("tiers").unwrap().deployments[2].tags = vec!["default".into()];
        let g = Gateway::new(c.clone(), None).unwrap();
        let plan = |extra: &str| {
            let r = route_model(&g, "tiers", &format!(r#",{extra}"num_retries":5"#), &[]).unwrap();
            let mut ids = r.info.plan.clone();
            ids.sort();
            ids.dedup();
            ids
        };
        assert_eq!(plan(""), ["fallback"]);
        assert_eq!(plan(r#""tags":["nobody"],"#), ["fallback"]);
        assert_eq!(
            plan(r#""tags":["free"],"#),
            ["free"],
            "a match over `default`"
        );
        // `!tag` leaves out, `&tag` requires.
        assert_eq!(plan(r#""tags":["!default"],"#), ["free", "paid"]);
        assert_eq!(plan(r#""tags":["&team-a"],"#), ["paid"]);
        assert_eq!(plan(r#""tags":["free","!free"],"#), ["fallback"]);
        // Off: tags change nothing.
        c.tag_filtering = false;
        let g = Gateway::new(c, None).unwrap();
        assert!(route_model(&g, "strict", r#","tags":["free"]"#, &[]).is_ok());
    }

    #[test]
    fn body_decisions_and_the_plan() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let host = MemoryHost::at(0);
        let p = pending(
            &g,
            &post("/v1/chat/completions", &[("x-litellm-timeout", "2.5")]),
        );
        let r = g
            .body(
                &p,
                br#"{"model":"fast","messages":[],"num_retries":4}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert_eq!(r.info.requested_model, "fast");
        assert_eq!(r.info.group, "gpt-4o");
        assert_eq!(r.info.plan.len(), 5, "the request's num_retries");
        assert!(r.info.strip_params);
        let dropping = g
            .body(
                &p,
                br#"{"model":"fast","messages":[],"drop_params":true}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert!(
            dropping.info.strip_params,
            "drop_params is LiteLLM's, not the provider's"
        );
        assert_eq!(r.info.fallbacks, ["backup"]);
        assert_eq!(r.info.origin, "http://gw:4000/v1/chat/completions");
        assert_eq!(header(&r.headers, ROUTE_HEADER), Some("0"));
        assert_eq!(header(&r.headers, "x-envoy-max-retries"), Some("4"));
        assert_eq!(
            header(&r.headers, "x-envoy-upstream-rq-per-try-timeout-ms"),
            Some("2500")
        );
        let digits = header(&r.headers, PLAN_HEADER)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let first = ["a", "b"][(digits % 2) as usize];
        assert_eq!(r.info.plan[0], first, "digit 0 is the first attempt");
        assert_ne!(
            r.info.plan[0], r.info.plan[1],
            "a retry goes to the other deployment"
        );

        let err = |b: &[u8]| g.body(&p, b, &host, &mut Rng::seeded(1)).err().unwrap();
        assert_eq!(err(b"{nope").status, 400);
        assert_eq!(err(b"[]").status, 400);
        assert_eq!(err(br#"{"messages":[]}"#).param.as_deref(), Some("model"));
        assert_eq!(
            err(br#"{"model":"gpt-4o"}"#).param.as_deref(),
            Some("messages")
        );
        let e = err(br#"{"model":"gpt-9","messages":[]}"#);
        assert!(e.message.contains("model=gpt-9") && e.message.contains("/v1/models"));
    }

    #[test]
    fn client_headers_steering_envoy_are_dropped_and_provider_headers_only_when_allowed() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let host = MemoryHost::at(0);
        let headers = post(
            "/v1/chat/completions",
            &[
                ("x-envoy-max-retries", "99"),
                ("x-switchyard-plan", "7"),
                ("x-trace-id", "t1"),
                ("x-stainless-os", "linux"),
                ("x-pass-anthropic-beta", "tools"),
                ("openai-organization", "org-client"),
            ],
        );
        let p = pending(&g, &headers);
        let r = g
            .body(
                &p,
                br#"{"model":"gpt-4o","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        let map = r.request_edits(&headers).apply(headers.clone());
        assert_eq!(
            header(&map, "x-envoy-max-retries"),
            Some("2"),
            "ours, not the client's"
        );
        assert_ne!(header(&map, PLAN_HEADER), Some("7"));
        assert_eq!(map.iter().filter(|(n, _)| n == PLAN_HEADER).count(), 1);
        assert_eq!(
            r.info.client.pass,
            [("anthropic-beta".to_string(), "tools".to_string())]
        );
        let names: Vec<&str> = r.info.client.x.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["x-trace-id"],
            "not x-stainless-*, not Envoy's or ours"
        );
        assert!(!r.info.forward_x_headers, "x- headers only where allowed");
        assert_eq!(r.info.client.openai_org, None);

        let r = g
            .body(
                &p,
                br#"{"model":"big","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert!(r.info.forward_x_headers);
    }

    #[test]
    fn cooling_down_groups_fall_back_or_say_when_to_retry() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let host = MemoryHost::at(10_000);
        let mut st = GroupState::default();
        for id in ["a", "b"] {
            st.deployments.insert(
                id.into(),
                DeploymentState {
                    cooldown_until: 13_500,
                    ..Default::default()
                },
            );
        }
        host.shared_set(
            &format!("{GROUP_STATE_KEY}gpt-4o"),
            &serde_json::to_vec(&st).unwrap(),
            None,
        )
        .unwrap();
        let p = pending(&g, &post("/v1/chat/completions", &[]));
        let r = g
            .body(
                &p,
                br#"{"model":"gpt-4o","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert_eq!(
            (r.info.group.as_str(), r.info.fallback_depth),
            ("backup", 1)
        );
        assert_eq!(r.info.answer_model(), "backup");
        let e = g
            .body(
                &p,
                br#"{"model":"gpt-4o","messages":[],"fallbacks":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .err()
            .unwrap();
        assert_eq!((e.status, e.retry_after_s), (429, Some(4)));
        assert!(e.message.contains("cooling down"), "{}", e.message);
    }

    #[test]
    fn a_fallback_pass_skips_auth_and_plans_the_next_group() {
        let g = Gateway::new(cfg(true), Some("sk-1234")).unwrap();
        let host = MemoryHost::at(0);
        let first = pending(
            &g,
            &post(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-1234")],
            ),
        );
        let r = g
            .body(
                &first,
                br#"{"model":"gpt-4o","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        let nonce = replan::put(
            Replan {
                info: r.info.clone(),
                kind: FallbackKind::ContextWindow,
                attempts: 1,
                status: 400,
                body: b"{}".to_vec(),
            },
            0,
        );
        let second = pending(
            &g,
            &post(
                "/v1/chat/completions",
                &[
                    (REPLAN_HEADER, &nonce),
                    ("authorization", "Bearer sk-provider"),
                ],
            ),
        );
        let r2 = g
            .body(
                &second,
                br#"{"model":"gpt-4o","messages":[]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert_eq!(r2.info.group, "big");
        assert_eq!(r2.info.requested_model, "gpt-4o");
        assert_eq!((r2.info.fallback_depth, r2.info.earlier_attempts), (1, 1));
        assert_eq!(
            header(&r2.headers, ROUTE_HEADER),
            Some("2-backoff"),
            "one deployment: retries wait"
        );
        assert!(
            matches!(g.headers(&post("/v1/chat/completions", &[(REPLAN_HEADER, &nonce)])), OnHeaders::Respond(l) if l.status == 401),
            "a nonce is good once"
        );
    }

    /// A chat answer the cache kept.
    const CACHED_ANSWER: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"cached"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}"#;

    /// The sidecar answers the lookup `call` with [`CACHED_ANSWER`]: the gateway's reply.
    fn cache_hit(
        g: &Gateway,
        call: &SidecarCall,
        p: &mut Pending,
        body: &[u8],
        host: &MemoryHost,
        rng: &mut Rng,
    ) -> Local {
        let hit = serde_json::to_vec(&CachedAnswer {
            body: CACHED_ANSWER.into(),
            stored_ms: 1,
        })
        .unwrap();
        assert!(g.on_answer(call, 200, &hit, host, Some(p)));
        let Ok(OnBody::Respond(local)) = g.on_body(p, body, host, rng, Sidecar::Unasked) else {
            panic!("a hit is answered by the gateway")
        };
        local
    }

    /// An exact cache of every endpoint, answers kept a minute.
    fn exact_cache() -> switchyard_config::CacheConfig {
        switchyard_config::CacheConfig {
            kind: switchyard_config::CacheKind::Exact,
            ttl_s: 60,
            namespace: None,
            chat: true,
            completions: true,
            embeddings: true,
            default_off: false,
        }
    }

    #[test]
    fn the_response_cache_is_asked_before_the_provider_and_a_hit_answers() {
        let mut c = cfg(false);
        c.cache = Some(exact_cache());
        let g = Gateway::new(c, None).unwrap();
        let host = MemoryHost::at(5_000);
        let mut rng = Rng::seeded(1);
        let body = br#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#;
        let mut p = pending(&g, &post("/v1/chat/completions", &[("x-request-id", "r1")]));
        let Ok(OnBody::Ask(call)) = g.on_body(&p, body, &host, &mut rng, Sidecar::Unasked) else {
            panic!("asks the cache first")
        };
        let key = crate::cache::key(None, Endpoint::ChatCompletions, "gpt-4o", body).unwrap();
        assert_eq!(
            (call.method, call.path.clone()),
            ("GET", cache_path(&key, None))
        );
        assert!(call.timeout_ms <= 250, "a slow cache is a miss, soon");

        // A miss: routed, with the key and how long to keep the answer.
        let mut missed = p.clone();
        assert!(g.on_answer(&call, 404, b"", &host, Some(&mut missed)));
        let Ok(OnBody::Route(r)) = g.on_body(&missed, body, &host, &mut rng, Sidecar::Unasked)
        else {
            panic!("a miss goes to the provider")
        };
        let miss = r.info.cache.unwrap();
        assert_eq!(
            (miss.key.as_str(), miss.store_ttl_s),
            (key.as_str(), Some(60))
        );

        // A sidecar that did not answer in time: a miss too, not a second question.
        assert!(matches!(
            g.on_body(&p, body, &host, &mut rng, Sidecar::Unreachable),
            Ok(OnBody::Route(_))
        ));

        // A hit: answered here, as a stream when asked for, logged as a free hit.
        let answer = CACHED_ANSWER;
        let local = cache_hit(&g, &call, &mut p, body, &host, &mut rng);
        assert_eq!(
            (local.status, local.body.as_slice()),
            (200, answer.as_bytes())
        );
        let find = |n: &str| {
            local
                .headers
                .iter()
                .find(|(h, _)| *h == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(find("x-litellm-cache-key"), Some(key.as_str()));
        assert_eq!(find("x-litellm-cache-hit"), Some("True"));
        let event: SpendEvent =
            serde_json::from_slice(&host.dequeue(switchyard_config::SPEND_QUEUE).unwrap()).unwrap();
        assert!(event.cache_hit && event.cost == 0.0);
        assert_eq!(
            (
                event.request_id.as_str(),
                event.prompt_tokens,
                event.model_group.as_str()
            ),
            ("r1", 4, "gpt-4o")
        );
        let streamed =
            br#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let Ok(OnBody::Respond(sse)) = g.on_body(&p, streamed, &host, &mut rng, Sidecar::Unasked)
        else {
            panic!("a hit streams")
        };
        assert_eq!(
            sse.headers[0],
            ("content-type", "text/event-stream".to_string())
        );
        assert!(String::from_utf8(sse.body)
            .unwrap()
            .ends_with("data: [DONE]\n\n"));

        // no-cache: straight to the provider, the answer still kept.
        let fresh = br#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"cache":{"no-cache":true}}"#;
        let q = pending(&g, &post("/v1/chat/completions", &[]));
        let Ok(OnBody::Route(r)) = g.on_body(&q, fresh, &host, &mut rng, Sidecar::Unasked) else {
            panic!("no-cache does not ask")
        };
        assert_eq!(r.info.cache.unwrap().store_ttl_s, Some(60));
    }

    #[test]
    fn stored_responses_and_conversations_go_where_the_response_is_stored() {
        let mut c = cfg(false);
        for d in &mut c.groups.get_mut("gpt-4o").unwrap().deployments {
            d.endpoints.push(Endpoint::StoredResponse);
        }
        let g = Gateway::new(c, None).unwrap();
        let host = MemoryHost::at(0);
        let mut rng = Rng::seeded(3);
        let id = crate::dialects::responses::stored_id("b", "resp_abc");
        let get = |method: &str, path: &str| {
            let mut h = post(path, &[]);
            h[0].1 = method.to_string();
            h
        };
        for (method, path, provider_path) in [
            ("GET", format!("/v1/responses/{id}"), "resp_abc"),
            ("DELETE", format!("/v1/responses/{id}"), "resp_abc"),
            (
                "GET",
                format!("/v1/responses/{id}/input_items?limit=2"),
                "resp_abc/input_items?limit=2",
            ),
        ] {
            let p = pending(&g, &get(method, &path));
            let Ok(OnBody::Route(r)) = g.on_body(&p, b"", &host, &mut rng, Sidecar::Unasked) else {
                panic!("{method} {path} is routed")
            };
            assert!(r.info.plan.iter().all(|d| d == "b"), "{:?}", r.info.plan);
            assert_eq!(r.info.stored.as_deref(), Some(provider_path));
            assert_eq!(r.info.endpoint, Endpoint::StoredResponse);
        }
        // Not an id Switchyard handed out, or one that would leave the provider's path.
        for bad in [
            "/v1/responses/resp_67ccd2",
            &format!(
                "/v1/responses/{}",
                crate::dialects::responses::stored_id("b", "x/../../files")
            ),
        ] {
            assert_eq!(respond(&g, &get("GET", bad)).status, 404, "{bad}");
        }
        assert_eq!(
            classify("POST", &format!("/v1/responses/{id}")),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("DELETE", &format!("/v1/responses/{id}/input_items")),
            Route::MethodNotAllowed
        );

        // A conversation's next turn is pinned to the same deployment, every time.
        let body = format!(r#"{{"model":"gpt-4o","input":"more","previous_response_id":"{id}"}}"#);
        for _ in 0..8 {
            let p = pending(&g, &post("/v1/responses", &[]));
            let Ok(OnBody::Route(r)) =
                g.on_body(&p, body.as_bytes(), &host, &mut rng, Sidecar::Unasked)
            else {
                panic!("routed")
            };
            assert!(r.info.plan.iter().all(|d| d == "b"), "{:?}", r.info.plan);
        }
    }

    #[test]
    fn a_bridged_api_is_cached_as_chat_and_answered_in_its_own_shape() {
        let mut c = cfg(false);
        c.cache = Some(exact_cache());
        let g = Gateway::new(c.clone(), None).unwrap();
        let host = MemoryHost::at(5_000);
        let mut rng = Rng::seeded(1);
        let body =
            br#"{"model":"fast","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#;
        let mut p = pending(&g, &post("/v1/messages", &[]));
        let Ok(OnBody::Ask(call)) = g.on_body(&p, body, &host, &mut rng, Sidecar::Unasked) else {
            panic!("asks the cache first")
        };
        // Not the key of the same body sent to chat completions.
        let chat_key = crate::cache::key(None, Endpoint::ChatCompletions, "gpt-4o", body).unwrap();
        assert_ne!(call.path, cache_path(&chat_key, None));
        let local = cache_hit(&g, &call, &mut p, body, &host, &mut rng);
        let message: serde_json::Value = serde_json::from_slice(&local.body).unwrap();
        assert_eq!(
            (
                message["type"].as_str(),
                message["content"][0]["text"].as_str()
            ),
            (Some("message"), Some("cached"))
        );
        let streamed = br#"{"model":"fast","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let Ok(OnBody::Respond(sse)) = g.on_body(&p, streamed, &host, &mut rng, Sidecar::Unasked)
        else {
            panic!("a hit streams")
        };
        let text = String::from_utf8(sse.body).unwrap();
        assert!(
            text.starts_with("event: message_start")
                && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{text}"
        );

        // A group whose deployment speaks the API itself passes it through, uncached.
        for group in c.groups.values_mut() {
            for d in &mut group.deployments {
                d.speaks = vec![Dialect::Anthropic];
            }
        }
        let g = Gateway::new(c, None).unwrap();
        let p = pending(&g, &post("/v1/messages", &[]));
        let Ok(OnBody::Route(r)) = g.on_body(&p, body, &host, &mut rng, Sidecar::Unasked) else {
            panic!("no cache lookup")
        };
        assert!(r.info.cache.is_none());
    }

    #[test]
    fn the_messages_api_gets_anthropics_errors_and_a_bridged_route() {
        let g = Gateway::new(cfg(true), Some("sk-master")).unwrap();
        let refused = respond(&g, &post("/v1/messages", &[("x-api-key", "")]));
        let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(refused.status, 401);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
        let p = pending(&g, &post("/v1/messages", &[("x-api-key", "sk-master")]));
        assert_eq!(p.dialect, Dialect::Anthropic);
        let host = MemoryHost::at(0);
        let r = g
            .body(
                &p,
                br#"{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
                &host,
                &mut Rng::seeded(1),
            )
            .unwrap();
        assert_eq!(
            (r.info.dialect, r.info.endpoint),
            (Dialect::Anthropic, Endpoint::ChatCompletions)
        );
        // Chat clients keep OpenAI's shape.
        let chat = respond(&g, &post("/v1/chat/completions", &[]));
        let body: serde_json::Value = serde_json::from_slice(&chat.body).unwrap();
        assert!(body["error"]["message"].is_string());
    }

    #[test]
    fn global_parallel_limit() {
        let mut c = cfg(false);
        c.max_parallel_requests = Some(2);
        let g = Gateway::new(c, None).unwrap();
        let host = MemoryHost::at(0);
        assert!(g.admit(&host, true));
        assert!(g.admit(&host, true));
        assert!(!g.admit(&host, true));
        assert!(
            g.admit(&host, false),
            "a fallback pass is counted, never refused"
        );
        g.release(&host);
        g.release(&host);
        assert!(g.admit(&host, true));
        assert_eq!(g.at_capacity().status, 429);
    }

    #[test]
    fn anthropic_clients_get_anthropics_model_list() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let l = respond(
            &g,
            &h(&[
                (":method", "GET"),
                (":path", "/v1/models"),
                ("anthropic-version", "2023-06-01"),
            ]),
        );
        let v: serde_json::Value = serde_json::from_slice(&l.body).unwrap();
        assert_eq!(v["data"][0]["type"], "model");
        assert_eq!(v["has_more"], false);
    }

    #[test]
    fn models_list_has_groups_and_aliases() {
        let g = Gateway::new(cfg(false), None).unwrap();
        let l = respond(&g, &h(&[(":method", "GET"), (":path", "/v1/models")]));
        let v: serde_json::Value = serde_json::from_slice(&l.body).unwrap();
        let ids: Vec<_> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["backup", "big", "gpt-4o", "fast"]);
    }

    #[test]
    fn only_redirects_and_errors_are_edited() {
        assert!(!edits_response(200));
        assert!(edits_response(307));
        assert!(edits_response(429));
        let mut info = crate::testing::info(&["a", "b"]);
        info.received_ms = 100;
        // A provider's error, delivered when the plan ran out: the router's cue goes.
        let provider = h(&[
            (":status", "500"),
            ("x-litellm-model-id", "b"),
            ("x-litellm-attempted-retries", "1"),
            ("x-envoy-overloaded", "true"),
            (RETRY_HEADER_FOR_TEST, "1"),
        ]);
        let edit = on_response(
            &Answered {
                status: 500,
                headers: &provider,
                details: "via_upstream",
                info: Some(&info),
                now_ms: 145,
                request_id: "r",
                to_sidecar: false,
            },
            &MemoryHost::at(0),
        );
        assert!(edit.body.is_none());
        let out = edit.headers.apply(provider);
        assert_eq!(header(&out, "x-litellm-attempted-retries"), Some("1"));
        assert!(
            out.iter()
                .all(|(n, _)| !n.starts_with("x-envoy-") && !n.starts_with("x-switchyard-")),
            "{out:?}"
        );
        // Envoy's own reply: no provider role wrote LiteLLM's headers.
        let edit = on_response(
            &Answered {
                status: 504,
                headers: &h(&[(":status", "504")]),
                details: "upstream_per_try_timeout",
                info: Some(&info),
                now_ms: 145,
                request_id: "r",
                to_sidecar: false,
            },
            &MemoryHost::at(0),
        );
        let out = edit.headers.apply(vec![]);
        assert_eq!(
            header(&out, "x-litellm-model-group"),
            Some(info.group.as_str())
        );
        assert_eq!(header(&out, "x-litellm-attempted-fallbacks"), Some("0"));
        assert_eq!(header(&out, "x-litellm-response-duration-ms"), Some("45"));
        assert!(edit.body.is_some());
    }

    const RETRY_HEADER_FOR_TEST: &str = switchyard_config::RETRY_HEADER;

    #[test]
    fn envoy_replies_become_openai_errors() {
        for (status, details, want) in [
            (504, "upstream_per_try_timeout", 504),
            (
                503,
                "upstream_reset_before_response_started{remote_connection_failure}",
                502,
            ),
            (503, "no_healthy_upstream", 503),
            (503, "upstream_reset_before_response_started{overflow}", 503),
            (500, "response_payload_too_large", 502),
            (413, "request_payload_too_large", 413),
        ] {
            let edit = on_response(
                &Answered {
                    status,
                    headers: &h(&[(":status", &status.to_string())]),
                    details,
                    info: None,
                    now_ms: 1,
                    request_id: "r",
                    to_sidecar: false,
                },
                &MemoryHost::at(0),
            );
            let out = edit.headers.apply(vec![]);
            assert_eq!(
                header(&out, ":status"),
                Some(want.to_string().as_str()),
                "{details}"
            );
            let v: serde_json::Value = serde_json::from_slice(&edit.body.unwrap()).unwrap();
            assert_eq!(v["error"]["code"], want.to_string(), "{details}");
        }
        assert_eq!(
            local_reply_error(503, "upstream_reset_before_response_started{overflow}")
                .retry_after_s,
            Some(1)
        );
    }

    #[test]
    fn a_management_call_that_cannot_reach_the_sidecar_says_so() {
        let details = "upstream_reset_before_response_started{remote_connection_failure}";
        let edit = on_response(
            &Answered {
                status: 503,
                headers: &h(&[(":status", "503")]),
                details,
                info: None,
                now_ms: 1,
                request_id: "r",
                to_sidecar: true,
            },
            &MemoryHost::at(0),
        );
        let out = edit.headers.apply(vec![]);
        assert_eq!(header(&out, ":status"), Some("503"));
        let v: serde_json::Value = serde_json::from_slice(&edit.body.unwrap()).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("sidecar"), "{message}");
        assert!(!message.contains("provider"), "{message}");
    }

    #[test]
    fn refusals_of_api_requests_are_logged_never_stored() {
        let headers = h(&[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("x-request-id", "rid-1"),
        ]);
        let body = br#"{"model":"gpt","user":"eu-9","messages":[]}"#;
        let e = rejection_event(&headers, None, body, (401, "invalid key"), 7).unwrap();
        assert_eq!(e.request_id, "rid-1");
        assert_eq!(
            (e.requested_model.as_str(), e.end_user.as_deref()),
            ("gpt", Some("eu-9"))
        );
        assert_eq!(
            (e.http_status, e.status.as_str(), e.log_only),
            (401, "failure", true)
        );
        assert_eq!(e.error.as_deref(), Some("invalid key"));
        let admin = h(&[(":method", "GET"), (":path", "/key/info")]);
        assert!(rejection_event(&admin, None, b"", (401, "no"), 7).is_none());
        assert_eq!(
            error_message(br#"{"error":{"message":"m","type":"t"}}"#),
            "m"
        );
    }
}
