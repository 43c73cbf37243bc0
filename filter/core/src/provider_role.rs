//! The provider role: once per attempt, on the upstream side of one deployment's cluster.
//! Builds the request for the deployment, translates the answer back to OpenAI format, and
//! decides after an error: retry (the plan's next attempt), fallback (an internal redirect
//! back through the gateway) or deliver.
//!
//! Envoy hands every attempt the same request header map, so header edits from an earlier
//! attempt (maybe to another provider) are still there: every attempt builds the whole map
//! from the pseudo-headers, its own headers and the client headers the gateway allowed.

use std::borrow::Cow;
use std::rc::Rc;

use switchyard_config::{
    wildcard, Auth, DeploymentConfig, Dialect, Endpoint, ErrorClass, Provider, ProviderConfig,
    RequestInfo, SpendEvent, Strategy, DEPLOYMENT_HEADER, REPLAN_HEADER, RETRY_HEADER, TOKEN_KEY,
};

use crate::dialects::passthrough::Passthrough;
use crate::error::{classify, scrub, ApiError};
use crate::framing::Decoder;
use crate::headers::{HeaderEdits, HeaderMap};
use crate::host::Host;
use crate::json::RawObject;
use crate::openai::Usage;
use crate::providers::{translator, Credentials, Ctx, ProviderRequest, Translator};
use crate::router::decide::{self, FallbackKind, Next};
use crate::router::replan::{self, Replan};
use crate::router::rng::Rng;
use crate::router::state::{self, Outcome};
use crate::spend;

/// Headers the provider role sets itself, whatever the provider: a client never sets them.
const OWNED: &[&str] = &[
    "authorization",
    "content-length",
    "content-type",
    "accept-encoding",
    "user-agent",
    "host",
];

/// LiteLLM's router parameters in a request body, which providers must not see.
const ROUTER_PARAMS: &[&str] = &[
    "fallbacks",
    "tags",
    "num_retries",
    "timeout",
    "stream_timeout",
    "drop_params",
    "caching",
    "cache",
];

/// One deployment's provider role, made once from its plugin configuration.
pub struct ProviderRole {
    cfg: ProviderConfig,
    /// The credentials read from the VM's environment (a minted token is read per attempt).
    credentials: Credentials,
    /// Credentials the provider requires are missing from Envoy's environment: which
    /// variables.
    missing_key: Option<String>,
    api_base: String,
    /// Every secret's value, scrubbed from error bodies.
    secrets: Vec<String>,
}

impl ProviderRole {
    /// `env` reads the wasm VM's environment (where provider keys live).
    pub fn new(cfg: ProviderConfig, env: impl Fn(&str) -> Option<String>) -> Self {
        let d = &cfg.deployment;
        let read = |var: &str| env(var).filter(|v| !v.is_empty());
        let (credentials, missing) = match &d.auth {
            Auth::None | Auth::GoogleServiceAccount => (Credentials::None, vec![]),
            Auth::Key { env } => match read(env) {
                Some(k) => (Credentials::Key(k), vec![]),
                None => (Credentials::None, vec![env.as_str()]),
            },
            Auth::GoogleToken { env } => match read(env) {
                Some(t) => (Credentials::Token(t), vec![]),
                None => (Credentials::None, vec![env.as_str()]),
            },
            Auth::Aws {
                access_key_id_env,
                secret_access_key_env,
                session_token_env,
            } => match (read(access_key_id_env), read(secret_access_key_env)) {
                (Some(access_key_id), Some(secret_access_key)) => (
                    Credentials::Aws {
                        access_key_id,
                        secret_access_key,
                        session_token: session_token_env.as_deref().and_then(read),
                    },
                    vec![],
                ),
                (id, _) => (
                    Credentials::None,
                    if id.is_none() {
                        vec![access_key_id_env.as_str()]
                    } else {
                        vec![secret_access_key_env.as_str()]
                    },
                ),
            },
        };
        let missing_key =
            (!missing.is_empty() && d.provider.info().key_required).then(|| missing.join(", "));
        let api_base = format!("{}://{}{}", d.scheme, d.authority, d.base_path);
        let secrets = cfg
            .secret_envs
            .iter()
            .filter_map(|v| env(v))
            .filter(|s| !s.is_empty())
            .collect();
        ProviderRole {
            cfg,
            credentials,
            missing_key,
            api_base,
            secrets,
        }
    }

    pub fn deployment(&self) -> &DeploymentConfig {
        &self.cfg.deployment
    }

    /// A pattern deployment's model for this request: its `*`s filled with what the group's
    /// pattern matched in the requested name (a provider prefix the name repeats dropped),
    /// priced from the catalog.
    fn filled(&self, info: &RequestInfo) -> Result<Option<Box<DeploymentConfig>>, ApiError> {
        let d = &self.cfg.deployment;
        if !wildcard::is_pattern(&d.model) {
            return Ok(None);
        }
        let name = info
            .wildcard_model
            .as_deref()
            .unwrap_or(&info.requested_model);
        let captures = wildcard::captures(&info.group, name)
            .filter(|c| c.iter().all(|c| !c.is_empty()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "The model {name} does not fill model group {}'s pattern, which deployment {} ({}/{}) needs: name a model it matches.",
                    info.group,
                    d.id,
                    d.provider.name(),
                    d.model
                ))
                .with_param("model")
            })?;
        let model = wildcard::fill(&d.model, &captures);
        let model = match model.split_once('/') {
            Some((prefix, rest)) if Provider::from_prefix(prefix) == Some(d.provider) => {
                rest.to_string()
            }
            _ => model,
        };
        let prices = *self.cfg.catalog.get(&model).unwrap_or(&d.prices);
        Ok(Some(Box::new(DeploymentConfig {
            model,
            prices,
            ..d.clone()
        })))
    }

    /// Whether attempts count requests in flight (least-busy routing).
    pub fn counts_in_flight(&self) -> bool {
        self.cfg.strategy == Strategy::LeastBusy
    }

    /// Whether the deployment has replicas, each with its own `:authority` (in the endpoint's
    /// metadata).
    pub fn has_replicas(&self) -> bool {
        self.cfg.replicas
    }

    /// Starts attempt number `attempt` (1-based, Envoy's x-envoy-attempt-count) of a request.
    pub fn attempt(
        self: &Rc<Self>,
        info: RequestInfo,
        attempt: u32,
        host: &dyn Host,
    ) -> Result<Attempt, ApiError> {
        let d = &self.cfg.deployment;
        if let Some(var) = &self.missing_key {
            return Err(ApiError::unauthorized(format!(
                "No credentials for deployment {} ({}/{}): set {var} in Envoy's environment, or the key in its litellm_params.",
                d.id,
                d.provider.name(),
                d.model
            )));
        }
        let credentials = match d.auth {
            Auth::GoogleServiceAccount => {
                let token = host
                    .shared_get(&format!("{TOKEN_KEY}{}", d.id))
                    .and_then(|(b, _)| String::from_utf8(b).ok())
                    .filter(|t| !t.is_empty());
                match token {
                    Some(t) => Credentials::Token(t),
                    None => {
                        return Err(ApiError::new(
                            503,
                            "service_unavailable",
                            format!(
                                "No access token yet for deployment {} ({}/{}): the sidecar mints it from the service account; check the sidecar's log, and retry shortly.",
                                d.id,
                                d.provider.name(),
                                d.model
                            ),
                        ))
                    }
                }
            }
            _ => self.credentials.clone(),
        };
        let resolved = self.filled(&info)?;
        Ok(Attempt {
            translator: translator(d.provider.wire()),
            cx: AttemptCx {
                role: Rc::clone(self),
                resolved,
                info,
                credentials,
                authority: d.authority.clone(),
                request_id: String::new(),
                request_bytes: 0,
                drop_params: d.drop_params,
                started_ms: host.now_ms(),
            },
            attempt,
            status: 0,
            stream: None,
            native: None,
            outcome: None,
            counted: false,
            provider_remaining: (None, None),
            delivered: std::cell::Cell::new(false),
            logged_answer: std::cell::RefCell::new(None),
        })
    }
}

/// `x-ratelimit-remaining-<what>` among these headers.
fn remaining(headers: &[(String, String)], what: &str) -> Option<u64> {
    headers
        .iter()
        .find(|(n, _)| n.strip_prefix("x-ratelimit-remaining-") == Some(what))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// How to handle a response once its headers are in.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponsePlan {
    /// Hold the headers and buffer the whole body, then call [`Attempt::finish_body`].
    Buffer,
    /// A stream: hold the headers until the first event (so a stream that never starts can
    /// still be retried), then pass each chunk through [`Attempt::stream_chunk`].
    Stream,
}

/// The finished answer of a buffered response.
#[derive(Debug, PartialEq)]
pub struct Finished {
    pub status: u16,
    pub body: Vec<u8>,
    /// Response header edits: status, length, LiteLLM's headers, and the router's cue.
    pub headers: HeaderEdits,
}

impl Finished {
    /// Whether the router is asked to try the next attempt.
    pub fn retries(&self) -> bool {
        self.headers.set.iter().any(|(n, _)| n == RETRY_HEADER)
    }
}

/// What to do with a piece of a stream.
#[derive(Debug, PartialEq)]
pub struct StreamPiece {
    /// The OpenAI bytes replacing the piece.
    pub bytes: Vec<u8>,
    /// Set on the first event: the response headers are released with these edits.
    pub release: Option<HeaderEdits>,
}

struct StreamState {
    decoder: Decoder,
    /// Headers are still held: nothing for the client yet.
    holding: bool,
    /// The stream ended in an error event (the provider's, or one for a cut or unreadable
    /// stream): what follows is dropped.
    failed: bool,
    /// Bytes of the stream, to estimate its tokens when it reports no usage.
    bytes: u64,
    first_event_ms: Option<u64>,
    /// The answer put back together for the response cache (when it keeps this one).
    assembler: Option<crate::cache::Assembler>,
    /// A bridged API's events made from the chat chunks.
    bridge: Option<crate::dialects::StreamBridge>,
}

/// What a translator sees of an attempt, apart from the translator (so both can be
/// borrowed at once).
struct AttemptCx {
    role: Rc<ProviderRole>,
    /// A pattern deployment (`openai/*`) as this request has it: the model it names, and
    /// that model's prices.
    resolved: Option<Box<DeploymentConfig>>,
    info: RequestInfo,
    credentials: Credentials,
    /// This attempt's `:authority` (a replica's own, or the deployment's).
    authority: String,
    /// Envoy's x-request-id.
    request_id: String,
    /// The client's body size, to estimate a prompt the provider gave no usage for.
    request_bytes: usize,
    /// Parameters the provider cannot take are dropped (the deployment's setting, or the
    /// request's `drop_params`).
    drop_params: bool,
    started_ms: u64,
}

impl AttemptCx {
    fn deployment(&self) -> &DeploymentConfig {
        self.resolved
            .as_deref()
            .unwrap_or(&self.role.cfg.deployment)
    }

    /// `text` without any secret: the environment's, and a token minted for this attempt.
    fn scrub(&self, text: &str) -> String {
        let scrubbed = scrub(text, &self.role.secrets);
        match (&self.deployment().auth, &self.credentials) {
            (Auth::GoogleServiceAccount, Credentials::Token(t)) => {
                scrub(&scrubbed, std::slice::from_ref(t))
            }
            _ => scrubbed,
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            deployment: self.deployment(),
            info: &self.info,
            credentials: &self.credentials,
            now_ms: self.started_ms,
            drop_params: self.drop_params,
            authority: &self.authority,
            request_id: &self.request_id,
        }
    }
}

pub struct Attempt {
    cx: AttemptCx,
    attempt: u32,
    translator: Box<dyn Translator>,
    status: u16,
    stream: Option<StreamState>,
    /// The client's API is the provider's own: the answer passes untouched.
    native: Option<Passthrough>,
    /// How the attempt ended, for the routing state.
    outcome: Option<Outcome>,
    /// Whether the start was counted in flight.
    counted: bool,
    /// The provider's `x-ratelimit-remaining-requests` and `-tokens`, for the metrics.
    provider_remaining: (Option<u64>, Option<u64>),
    /// This attempt answered the client (its event is queued): it is not a failed attempt.
    delivered: std::cell::Cell<bool>,
    /// The answer for the logging callbacks (`log_messages`), as logged.
    logged_answer: std::cell::RefCell<Option<serde_json::Value>>,
}

impl Attempt {
    pub fn deployment(&self) -> &DeploymentConfig {
        self.cx.deployment()
    }

    /// Counts this attempt in flight, when the group's strategy needs it.
    pub fn start(&mut self, host: &dyn Host) {
        if self.cx.role.counts_in_flight() {
            state::record_start(host, &self.cx.info.group, &self.cx.deployment().id);
            self.counted = true;
        }
    }

    /// Records how the attempt ended in the group's routing state. An attempt without an
    /// answer (reset, refused, timed out) is a failure; one whose answer had started was
    /// left by its client, which says nothing of the deployment.
    pub fn done(&self, host: &dyn Host) {
        let outcome = match (self.outcome, self.status) {
            (Some(outcome), _) => outcome,
            (None, 0) => Outcome::Failure(ErrorClass::InternalServer),
            (None, _) => Outcome::Abandoned,
        };
        if let (Outcome::Failure(class), 0) = (outcome, self.status) {
            // Reset, refused or timed out: Envoy retries it, or answers the client itself.
            self.note_failed(0, class, host.now_ms());
        }
        let needs_write = match outcome {
            Outcome::Abandoned => false,
            Outcome::Success { .. } => self.cx.role.cfg.strategy.needs_stats(),
            Outcome::Failure(class) => {
                self.cx.role.cfg.strategy.needs_stats()
                    || (!self.cx.role.cfg.cooldown.disabled
                        && !self.cx.role.cfg.cooldown.single_deployment
                        && state::counts_for_cooldown(class))
            }
        };
        if needs_write || self.counted {
            state::record_end(
                host,
                &self.cx.info.group,
                &self.cx.deployment().id,
                &self.cx.role.cfg.cooldown,
                outcome,
                self.counted,
            );
        }
    }

    /// The response cache keeps this attempt's answer.
    fn keeps_answer(&self) -> bool {
        self.native.is_none()
            && self
                .cx
                .info
                .cache
                .as_ref()
                .is_some_and(|c| c.store_ttl_s.is_some())
    }

    /// Retries made so far: each fallback pass's first attempt is a fallback, not a retry.
    fn retries(&self) -> u32 {
        let info = &self.cx.info;
        (info.earlier_attempts + self.attempt).saturating_sub(1 + info.fallback_depth)
    }

    /// Reads what the provider says of its own rate limits (for the metrics).
    pub fn provider_limits(&mut self, headers: &[(String, String)]) {
        self.provider_remaining = (remaining(headers, "requests"), remaining(headers, "tokens"));
    }

    /// Notes this attempt as failed for the request's event: it answered nothing the
    /// client will see (a retry, a fallback, or no answer at all).
    fn note_failed(&self, status: u16, class: ErrorClass, now_ms: u64) {
        if self.delivered.get() {
            return;
        }
        let d = self.cx.deployment();
        crate::observe::attempt_failed(
            &self.cx.request_id,
            switchyard_config::AttemptLog {
                model_group: self.cx.info.group.clone(),
                deployment: d.id.clone(),
                provider: d.provider.name().to_string(),
                model: d.model.clone(),
                api_base: self.cx.role.api_base.clone(),
                start_ms: self.cx.started_ms,
                end_ms: now_ms,
                http_status: status,
                error_class: class,
            },
            now_ms,
        );
    }

    /// The provider request for this attempt: the whole header map, built from the current
    /// one (which may carry an earlier attempt's edits, maybe for another provider) and
    /// the body. The map holds the pseudo-headers, the translator's headers (credentials,
    /// signature), the deployment's extra headers, and the client headers the gateway
    /// allowed unless the provider role or the translator owns them; nothing else.
    /// `authority` overrides the deployment's (a replica's own host).
    pub fn request(
        &mut self,
        current: &[(String, String)],
        body: &[u8],
        authority: Option<&str>,
    ) -> Result<(HeaderMap, Vec<u8>), ApiError> {
        if let Some(a) = authority {
            self.cx.authority = a.to_string();
        }
        if !self.cx.info.request_id.is_empty() {
            self.cx.request_id = self.cx.info.request_id.clone();
        } else if let Some((_, id)) = current.iter().find(|(n, _)| n == "x-request-id") {
            self.cx.request_id = id.clone();
        }
        self.cx.request_bytes = body.len();
        let req = match self.native_request(body)? {
            Some(req) => req,
            None => {
                let body = self.prepare_body(body, true)?;
                self.translator.request(&self.cx.ctx(), &body)?
            }
        };
        let d = self.cx.deployment();
        // Envoy's own x-forwarded-proto stays: without it the route lookup of a fallback's
        // internal redirect finds no route (Envoy 1.40, docs/envoy-facts.md).
        let mut out: Vec<(String, String)> = current
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), ":method" | ":scheme" | "x-forwarded-proto"))
            .cloned()
            .collect();
        out.push((":path".into(), req.path));
        out.push((":authority".into(), self.cx.authority.clone()));
        let translator_owned = self.translator.owned_headers();
        let owned = |name: &str| {
            OWNED.contains(&name)
                || translator_owned.contains(&name)
                || self.cx.role.cfg.owned_headers.iter().any(|h| h == name)
        };
        let client = &self.cx.info.client;
        let x = if self.cx.info.forward_x_headers {
            client.x.as_slice()
        } else {
            &[]
        };
        for (name, value) in client.pass.iter().chain(x) {
            if !owned(name) {
                out.push((name.clone(), value.clone()));
            }
        }
        if !req.headers.iter().any(|(n, _)| n == "content-type") {
            out.push(("content-type".into(), "application/json".into()));
        }
        // The filter must read the answer: no compression.
        out.push(("accept-encoding".into(), "identity".into()));
        out.extend(req.headers);
        for (name, value) in &d.headers {
            let name = name.to_ascii_lowercase();
            out.retain(|(n, _)| *n != name);
            out.push((name, value.clone()));
        }
        out.push(("content-length".into(), req.body.len().to_string()));
        Ok((out, req.body))
    }

    /// The request in the provider's own API for a client that speaks it (see
    /// `dialects::passthrough`); None when the request goes through chat.
    fn native_request(&mut self, body: &[u8]) -> Result<Option<ProviderRequest>, ApiError> {
        let info = &self.cx.info;
        let native_only = matches!(
            info.endpoint,
            Endpoint::CountTokens | Endpoint::StoredResponse
        );
        // A bridged request is prepared once, for the bridge: only a provider that speaks the
        // client's API gets this far (its translator builds the request).
        let d = self.cx.deployment();
        if !native_only && !d.provider.speaks(&d.model).contains(&info.dialect) {
            return Ok(None);
        }
        let body = match info.endpoint {
            Endpoint::StoredResponse => Cow::Borrowed(&[][..]),
            _ => self.prepare_body(body, false)?,
        };
        let body = match self.cx.info.dialect {
            Dialect::Responses => previous_as_stored(body),
            _ => body,
        };
        let ctx = self.cx.ctx();
        match self.translator.native(&ctx, &body) {
            Some(req) => {
                let req = req?;
                let deployment = &self.cx.deployment().id;
                let framing = self.translator.framing();
                self.native = Some(
                    Passthrough::new(self.cx.info.dialect)
                        .holding_responses_of(deployment)
                        .framed_by(framing),
                );
                Ok(Some(req))
            }
            // Planned only on deployments that have the API; a fallback group may have none.
            None if native_only => Err(crate::providers::not_served(&ctx)),
            None => Ok(None),
        }
    }

    /// The body as the translator gets it: LiteLLM's router parameters taken out (and
    /// `drop_params` noted); to `chat`, a bridged API's request made a chat request and the
    /// deployment's default parameters (chat's) filled in.
    fn prepare_body<'b>(&mut self, body: &'b [u8], chat: bool) -> Result<Cow<'b, [u8]>, ApiError> {
        // A bridged API's request becomes a chat request first.
        let bridged = match chat {
            true => crate::dialects::to_chat(self.cx.info.dialect, body, self.cx.drop_params)?,
            false => None,
        };
        let no_defaults = serde_json::Map::new();
        let defaults = match chat {
            true => &self.cx.role.cfg.deployment.defaults,
            false => &no_defaults,
        };
        let system_prompt = match (chat, self.cx.info.endpoint) {
            (true, Endpoint::ChatCompletions) => {
                self.cx.role.cfg.deployment.system_prompt.as_deref()
            }
            _ => None,
        };
        if !self.cx.info.strip_params && defaults.is_empty() && system_prompt.is_none() {
            return Ok(bridged.map_or(Cow::Borrowed(body), Cow::Owned));
        }
        let body = bridged.as_deref().unwrap_or(body);
        let mut obj = RawObject::parse(body).map_err(|e| {
            ApiError::bad_request(format!("Request body is not a JSON object: {e}"))
        })?;
        if self.cx.info.strip_params {
            if obj
                .get("drop_params")
                .is_some_and(|v| v.get().trim() == "true")
            {
                self.cx.drop_params = true;
            }
            for p in ROUTER_PARAMS {
                obj.remove(p);
            }
            // LiteLLM's metadata (where tags may be) is never a provider's.
            if !self.cx.info.tags.is_empty() {
                obj.remove("metadata");
            }
        }
        for (name, value) in defaults {
            if obj.get(name).is_none() {
                if let Ok(raw) = serde_json::value::to_raw_value(value) {
                    obj.set_raw(name, raw);
                }
            }
        }
        if let Some(prompt) = system_prompt {
            let messages: Vec<&serde_json::value::RawValue> = match obj.get("messages") {
                Some(m) => serde_json::from_str(m.get()).map_err(|e| {
                    ApiError::bad_request(format!("messages must be a list of messages: {e}"))
                })?,
                None => Vec::new(),
            };
            let system = serde_json::json!({"role": "system", "content": prompt});
            let system = serde_json::value::to_raw_value(&system)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let mut all: Vec<&serde_json::value::RawValue> = Vec::with_capacity(messages.len() + 1);
            all.push(&system);
            all.extend(messages);
            let raw = serde_json::value::to_raw_value(&all)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            obj.set_raw("messages", raw);
        }
        Ok(Cow::Owned(obj.to_vec()))
    }

    /// Decides, from the provider's status and content type, how to handle its answer.
    pub fn on_response_headers(&mut self, status: u16, content_type: Option<&str>) -> ResponsePlan {
        self.status = status;
        let framing = self.translator.framing();
        if (200..300).contains(&status) && self.cx.info.stream && framing.accepts(content_type) {
            self.stream = Some(StreamState {
                decoder: Decoder::new(framing),
                holding: true,
                failed: false,
                bytes: 0,
                first_event_ms: None,
                // The whole answer, for the response cache or the logging callbacks.
                assembler: (self.native.is_none()
                    && (self.keeps_answer() || self.cx.info.log_messages))
                    .then(|| {
                        crate::cache::Assembler::new(self.cx.role.cfg.max_response_bytes as usize)
                    }),
                bridge: match self.native {
                    Some(_) => None,
                    None => crate::dialects::StreamBridge::of(
                        self.cx.info.dialect,
                        self.cx.info.answer_model(),
                        self.cx.started_ms,
                    ),
                },
            });
            ResponsePlan::Stream
        } else {
            ResponsePlan::Buffer
        }
    }

    /// Whether a buffered body has grown beyond general_settings.max_response_size_mb.
    pub fn too_large(&self, size: usize) -> bool {
        size as u64 > self.cx.role.cfg.max_response_bytes
    }

    /// The answer when a buffered body grew too large: a 502 the client can act on.
    pub fn finish_too_large(&mut self, current: &[(String, String)], host: &dyn Host) -> Finished {
        let mb = self.cx.role.cfg.max_response_bytes / (1024 * 1024);
        let err = ApiError::new(
            502,
            "api_error",
            format!(
                "{} answered more than general_settings.max_response_size_mb ({mb} MB). Ask for less (max_tokens, fewer inputs), or raise the limit.",
                self.cx.deployment().provider.name()
            ),
        );
        self.outcome = Some(Outcome::Failure(ErrorClass::InternalServer));
        let now_ms = host.now_ms();
        self.spend(err.status, None, 0, Some(&err.message), host, now_ms);
        let body = self.error_body(&err);
        self.finished(err.status, body, current, Next::Deliver, now_ms)
    }

    /// Translates a buffered answer (a success or an error) and decides what happens next.
    /// `current` are the provider's response headers; `host` gives the time.
    pub fn finish_body(
        &mut self,
        body: &[u8],
        current: &[(String, String)],
        host: &dyn Host,
    ) -> Finished {
        let now_ms = host.now_ms();
        let ctx = self.cx.ctx();
        let result = if (200..300).contains(&self.status) {
            match &self.native {
                Some(p) => Ok(p.answer(body.to_vec())),
                None => self.translator.response(&ctx, body),
            }
        } else {
            Err(self.translator.error(&ctx, self.status, current, body))
        };
        match result {
            Ok(out) => {
                // A provider's own answer in the client's API is not kept (the gateway plans
                // no cache for it; a fallback to a passing-through group may get here).
                let kept = self
                    .cx
                    .info
                    .cache
                    .as_ref()
                    .filter(|_| self.native.is_none());
                if let Some(miss) = kept.filter(|_| self.status == 200) {
                    crate::cache::keep(host, miss, &out);
                }
                let usage = match &self.native {
                    Some(p) => p.answer_usage(&out),
                    None => crate::openai::usage_of(&out),
                };
                if self.cx.info.log_messages {
                    *self.logged_answer.borrow_mut() = Some(crate::observe::logged(&out));
                }
                // Counting tokens and reading a stored response cost nothing, and use none.
                let (cost, tokens) = match self.cx.info.endpoint.is_billed() {
                    false => (0.0, 0),
                    true => self.spend(self.status, usage, out.len(), None, host, now_ms),
                };
                let model = self.cx.info.answer_model();
                let out = match (&self.native, self.cx.info.dialect) {
                    (Some(_), _) => Ok(out),
                    (None, dialect) => crate::dialects::from_answer(dialect, out, model),
                };
                let out = match out {
                    Ok(out) => out,
                    Err(e) => {
                        let body = self.error_body(&e);
                        return self.finished(e.status, body, current, Next::Deliver, now_ms);
                    }
                };
                self.outcome = Some(Outcome::Success {
                    latency_ms: now_ms.saturating_sub(self.cx.started_ms),
                    ttft_ms: None,
                    tokens: (self.cx.role.cfg.strategy == Strategy::UsageBasedRouting)
                        .then_some(tokens),
                });
                let mut f = self.finished(self.status, out, current, Next::Deliver, now_ms);
                f.headers
                    .set
                    .push(("x-litellm-response-cost".into(), cost.to_string()));
                f
            }
            Err(mut err) => {
                err.message = self.cx.scrub(&err.message);
                let class = classify(self.status, &err.message);
                self.outcome = Some(Outcome::Failure(class));
                let next = decide::after_error(
                    &self.cx.info,
                    self.attempt,
                    &self.cx.deployment().id,
                    class,
                );
                if next != Next::Deliver {
                    self.note_failed(self.status, class, now_ms);
                }
                match next {
                    Next::Fallback(kind) => self.hand_off(kind, err, current, now_ms),
                    next => {
                        if next == Next::Deliver {
                            self.spend(err.status, None, 0, Some(&err.message), host, now_ms);
                        }
                        let body = self.error_body(&err);
                        let mut f = self.finished(err.status, body, current, next, now_ms);
                        // A wait the translator read from the error body (Google's RetryInfo)
                        // when the provider sent no retry-after header.
                        if let Some(s) = err.retry_after_s {
                            if !f.headers.set.iter().any(|(n, _)| n == "retry-after") {
                                f.headers.set.push(("retry-after".into(), s.to_string()));
                            }
                        }
                        f
                    }
                }
            }
        }
    }

    /// Sends the request to a fallback group: a 307 back to where the client sent it, which
    /// Envoy follows internally (the client never sees it), carrying the hand-off's nonce.
    fn hand_off(
        &self,
        kind: FallbackKind,
        err: ApiError,
        current: &[(String, String)],
        now_ms: u64,
    ) -> Finished {
        let nonce = replan::put(
            Replan {
                info: self.cx.info.clone(),
                kind,
                attempts: self.attempt,
                status: err.status,
                body: self.error_body(&err),
            },
            now_ms,
        );
        // A body, so the gateway can put the failed pass's answer in its place should Envoy
        // not follow the redirect.
        let body = br#"{"switchyard":"fallback"}"#.to_vec();
        let mut f = self.finished(307, body, current, Next::Deliver, now_ms);
        f.headers
            .set
            .push(("location".into(), self.cx.info.origin.clone()));
        f.headers.set.push((REPLAN_HEADER.into(), nonce));
        f
    }

    fn finished(
        &self,
        status: u16,
        body: Vec<u8>,
        current: &[(String, String)],
        next: Next,
        now_ms: u64,
    ) -> Finished {
        let mut headers = self.answer_headers(current, now_ms);
        headers.set.push((":status".into(), status.to_string()));
        headers
            .set
            .push(("content-type".into(), "application/json".into()));
        headers
            .set
            .push(("content-length".into(), body.len().to_string()));
        if next == Next::Retry {
            headers.set.push((RETRY_HEADER.into(), "1".into()));
        }
        Finished {
            status,
            body,
            headers,
        }
    }

    /// The provider's response headers the client may see, plus LiteLLM's: a documented
    /// allowlist (x-ratelimit-*, retry-after, the provider's request id as
    /// llm_provider-x-request-id). Nothing else a provider sends passes, so no provider can
    /// set a header Switchyard or Envoy acts on. LiteLLM's own headers are set here rather
    /// than in the gateway role, so that a successful answer's headers are rewritten once.
    fn answer_headers(&self, current: &[(String, String)], now_ms: u64) -> HeaderEdits {
        let d = self.cx.deployment();
        let info = &self.cx.info;
        let mut set: Vec<(String, String)> = Vec::with_capacity(16);
        // The gateway's own limits take the x-ratelimit-* names; the provider's then go
        // as llm_provider-x-ratelimit-*, as LiteLLM names them.
        let own_limits = !info.rate_limit_headers.is_empty();
        set.extend(info.rate_limit_headers.iter().cloned());
        for (name, value) in current {
            if name.starts_with("x-ratelimit-") && own_limits {
                set.push((format!("llm_provider-{name}"), value.clone()));
            } else if name.starts_with("x-ratelimit-") || name == "retry-after" {
                set.push((name.clone(), value.clone()));
            } else if name == "x-request-id" {
                set.push(("llm_provider-x-request-id".into(), value.clone()));
            }
        }
        set.push((DEPLOYMENT_HEADER.into(), d.id.clone()));
        set.push(("x-litellm-model-group".into(), info.group.clone()));
        if let Some(c) = &info.cache {
            set.push(("x-litellm-cache-key".into(), c.key.clone()));
        }
        set.push((
            "x-litellm-attempted-retries".into(),
            self.retries().to_string(),
        ));
        set.push((
            "x-litellm-attempted-fallbacks".into(),
            info.fallback_depth.to_string(),
        ));
        let total_ms = now_ms.saturating_sub(info.received_ms);
        set.push((
            "x-litellm-response-duration-ms".into(),
            total_ms.to_string(),
        ));
        // Time not spent waiting for this attempt's provider.
        let provider_ms = now_ms.saturating_sub(self.cx.started_ms);
        set.push((
            "x-litellm-overhead-duration-ms".into(),
            total_ms.saturating_sub(provider_ms).to_string(),
        ));
        if self.cx.role.cfg.expose_api_base {
            set.push((
                "x-litellm-model-api-base".into(),
                self.cx.role.api_base.clone(),
            ));
        }
        // Every header is replaced: remove them all, keep the pseudo ones we do not set.
        let remove = current
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != ":status")
            .collect();
        HeaderEdits { remove, set }
    }

    /// Translates one piece of a streamed answer; `end` on the last callback. While the
    /// headers are held, `chunk` is what arrived since the last call.
    pub fn stream_chunk(
        &mut self,
        chunk: &[u8],
        end: bool,
        current: &[(String, String)],
        host: &dyn Host,
    ) -> StreamPiece {
        let needs_stats = self.cx.role.cfg.strategy.needs_stats();
        let Some(st) = self.stream.as_mut() else {
            return StreamPiece {
                bytes: chunk.to_vec(),
                release: None,
            };
        };
        st.bytes += chunk.len() as u64;
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let ctx = self.cx.ctx();
        if !st.failed {
            let mut frames = st.decoder.push(chunk);
            if end {
                frames = frames.and_then(|mut f| {
                    f.extend(st.decoder.finish()?);
                    Ok(f)
                });
            }
            // A provider's error passed on as an event may echo a key (checked per frame: a
            // scan of every chunk would cost every stream).
            let mut echoes = false;
            let is_error = |f: &crate::framing::Frame| {
                f.exception
                    || f.data.starts_with("{\"error\"")
                    || f.event.as_deref() == Some("error")
            };
            if let Some(native) = self.native.as_mut() {
                // The provider's own bytes go on; its events are only read.
                let rewrites = native.rewrites();
                let read = frames.map(|frames| {
                    for f in &frames {
                        echoes |= is_error(f);
                        let f = native.event(f);
                        native.frame(&f);
                        if rewrites {
                            native.write(&f, &mut out);
                        }
                    }
                });
                if !rewrites {
                    out.extend_from_slice(chunk);
                }
                let err = match read {
                    Err(why) => Some(crate::providers::bad_answer(&ctx, why)),
                    Ok(()) if end && !native.complete() => Some(crate::providers::stream_cut(&ctx)),
                    Ok(()) => None,
                };
                if let Some(err) = err {
                    out.extend_from_slice(&native.error_event(&err));
                }
                st.failed = native.failed();
            } else {
                let result = frames
                    .map_err(|why| crate::providers::bad_answer(&ctx, why))
                    .and_then(|frames| {
                        frames.iter().try_for_each(|f| {
                            echoes |= is_error(f);
                            self.translator.stream_frame(&ctx, f, &mut out)
                        })
                    })
                    .and_then(|()| {
                        if end {
                            self.translator.stream_end(&ctx, &mut out)
                        } else {
                            Ok(())
                        }
                    });
                if let Err(err) = result {
                    // The last event: what the client reads instead of a silent truncation. A
                    // chat error event: a bridged API's stream turns it into its own.
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&err.body());
                    out.extend_from_slice(b"\n\n");
                    st.failed = true;
                }
            }
            // Scrubbed once, with the error event added (its message may quote the provider).
            if echoes || st.failed {
                out = self.cx.scrub(&String::from_utf8_lossy(&out)).into_bytes();
            }
            if st.failed {
                st.assembler = None;
            } else if let Some(a) = st.assembler.as_mut() {
                a.push(&out);
            }
        }
        if let Some(bridge) = st.bridge.as_mut() {
            let mut events = Vec::with_capacity(out.len() + 128);
            bridge.push(&out, &mut events);
            if end {
                bridge.finish(&mut events);
            }
            out = events;
        }
        let whole = match st.assembler.take() {
            Some(a) if end => a.finish(self.cx.info.endpoint),
            a => {
                st.assembler = a;
                None
            }
        };
        let releasing = st.holding && (!out.is_empty() || end || st.failed);
        if releasing {
            st.holding = false;
            st.first_event_ms = Some(host.now_ms());
        }
        let (ok, first, bytes) = (!st.failed, st.first_event_ms, st.bytes);
        let release = first.filter(|_| releasing).map(|now_ms| {
            let mut edits = self.answer_headers(current, now_ms);
            edits
                .set
                .push(("content-type".into(), "text/event-stream".into()));
            edits
        });
        if end {
            if let Some(answer) = &whole {
                if self.cx.info.log_messages {
                    *self.logged_answer.borrow_mut() = Some(crate::observe::logged(answer));
                }
            }
            if let (Some(miss), Some(answer)) = (self.cx.info.cache.as_ref(), whole) {
                if self.keeps_answer() {
                    crate::cache::keep(host, miss, &answer);
                }
            }
            let usage = match &self.native {
                Some(p) => p.usage(),
                None => self.translator.stream_usage(),
            };
            let now_ms = host.now_ms();
            let status = if ok { 200 } else { 502 };
            let error =
                (!ok).then_some("The stream from the provider broke off or could not be read.");
            let (_, used) = self.spend(status, usage, bytes as usize, error, host, now_ms);
            let tokens = Some(used);
            self.outcome = Some(if ok {
                Outcome::Success {
                    // The clock is read once more only for the strategies that use it.
                    latency_ms: if needs_stats {
                        now_ms.saturating_sub(self.cx.started_ms)
                    } else {
                        0
                    },
                    ttft_ms: first.map(|t| t.saturating_sub(self.cx.started_ms)),
                    tokens,
                }
            } else {
                Outcome::Failure(ErrorClass::InternalServer)
            });
        }
        StreamPiece {
            bytes: out,
            release,
        }
    }

    /// Logs what the answer delivered to the client cost (a retry or a fallback hand-off
    /// delivers nothing): prices the usage, counts it against the budgets it touches and
    /// queues the event for the sidecar. Without usage from the provider, a success is
    /// estimated at about four bytes a token (and says so). Returns the cost and the tokens.
    fn spend(
        &self,
        status: u16,
        usage: Option<Usage>,
        answer_bytes: usize,
        error: Option<&str>,
        host: &dyn Host,
        now_ms: u64,
    ) -> (f64, u64) {
        self.delivered.set(true);
        if self.cx.info.health_check {
            // Not spend, nor a request: its outcome goes to the routing state only.
            return (0.0, 0);
        }
        let cx = &self.cx;
        let d = cx.deployment();
        let info = &cx.info;
        let success = (200..300).contains(&status);
        let key = info.key.as_ref();
        let mut metadata = key.map(|k| k.metadata.clone()).unwrap_or_default();
        let usage = match usage {
            Some(u) => u,
            None if success => {
                metadata.insert("usage_estimated".into(), true.into());
                Usage::new(cx.request_bytes as u64 / 4, answer_bytes as u64 / 4)
            }
            None => Usage::default(),
        };
        let cost = if success {
            let seconds = now_ms.saturating_sub(cx.started_ms) as f64 / 1000.0;
            spend::cost(&d.prices, &usage, seconds)
        } else {
            0.0
        };
        let event = SpendEvent {
            request_id: if cx.request_id.is_empty() {
                format!("switchyard-{:016x}", Rng::from_entropy().next_u64())
            } else {
                cx.request_id.clone()
            },
            key_hash: key.map(|k| k.hash.clone()).unwrap_or_default(),
            key_alias: key.and_then(|k| k.alias.clone()),
            user_id: key.and_then(|k| k.user_id.clone()),
            team_id: key.and_then(|k| k.team_id.clone()),
            end_user: info.end_user.clone(),
            requested_model: info.requested_model.clone(),
            model_group: info.group.clone(),
            deployment: d.id.clone(),
            provider: d.provider.name().to_string(),
            model: d.model.clone(),
            endpoint: info.endpoint.name().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage
                .prompt_tokens_details
                .as_ref()
                .map_or(0, |p| p.cached_tokens),
            reasoning_tokens: usage
                .completion_tokens_details
                .as_ref()
                .map_or(0, |c| c.reasoning_tokens),
            cost,
            start_ms: info.received_ms,
            end_ms: now_ms,
            status: if success { "success" } else { "failure" }.to_string(),
            http_status: status,
            cache_hit: false,
            metadata,
            api_base: cx.role.api_base.clone(),
            stream: info.stream,
            attempt_start_ms: cx.started_ms,
            llm_api_ms: now_ms.saturating_sub(cx.started_ms),
            ttft_ms: self
                .stream
                .as_ref()
                .and_then(|s| s.first_event_ms)
                .map(|t| t.saturating_sub(cx.started_ms)),
            retries: self.retries(),
            fallbacks: info.fallback_depth,
            error_class: match self.outcome {
                _ if success => None,
                Some(Outcome::Failure(class)) => Some(class),
                _ => Some(ErrorClass::InternalServer),
            },
            error: error.map(str::to_string),
            failed_attempts: crate::observe::take_failed(&cx.request_id),
            cache_miss: info.cache.is_some(),
            provider_remaining_requests: self.provider_remaining.0,
            provider_remaining_tokens: self.provider_remaining.1,
            key_remaining_requests: remaining(&info.rate_limit_headers, "requests"),
            key_remaining_tokens: remaining(&info.rate_limit_headers, "tokens"),
            messages: info
                .log_messages
                .then(|| crate::observe::take_prompt(&cx.request_id))
                .flatten(),
            response: self.logged_answer.borrow_mut().take(),
            log_only: false,
        };
        crate::limits::add_tokens(host, &info.limits_tokens, usage.total_tokens, now_ms);
        spend::record(host, &event);
        (cost, usage.total_tokens)
    }

    /// The API the client speaks.
    pub fn dialect(&self) -> Dialect {
        self.cx.info.dialect
    }

    /// An error as the client's API writes it.
    fn error_body(&self, e: &ApiError) -> Vec<u8> {
        crate::dialects::error_body(self.cx.info.dialect, e)
    }

    /// Whether the response headers are still held (a stream with no event yet).
    pub fn holding(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.holding)
    }
}

/// A Responses request whose `previous_response_id` is an id Switchyard handed out, with the
/// provider's own id in its place (the gateway sent it to the deployment that holds it).
fn previous_as_stored(body: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    const FIELD: &[u8] = b"\"previous_response_id\"";
    if !body.windows(FIELD.len()).any(|w| w == FIELD) {
        return body;
    }
    let restored = RawObject::parse(&body).ok().and_then(|mut obj| {
        let (_, provider_id) =
            crate::dialects::responses::parse_stored_id(&obj.get_str("previous_response_id")?)?;
        obj.set_str("previous_response_id", &provider_id);
        Some(obj.to_vec())
    });
    match restored {
        Some(bytes) => Cow::Owned(bytes),
        None => body,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;
    use switchyard_config::Provider;

    fn config(provider: Provider, model: &str, base: &str, key_env: &str) -> ProviderConfig {
        ProviderConfig {
            deployment: DeploymentConfig {
                system_prompt: None,
                id: format!("{}-dep", provider.name()),
                group: "g".into(),
                provider,
                model: model.into(),
                scheme: "http".into(),
                authority: "127.0.0.1:9".into(),
                base_path: base.into(),
                auth: Auth::Key {
                    env: key_env.into(),
                },
                params: switchyard_config::ProviderParams {
                    api_version: Some("2024-10-21".into()),
                    ..Default::default()
                },
                organization: None,
                headers: vec![],
                defaults: Default::default(),
                drop_params: false,
                prices: Default::default(),
            },
            owned_headers: vec!["x-custom".into()],
            secret_envs: vec!["AZ_KEY".into(), "OA_KEY".into()],
            strategy: Strategy::SimpleShuffle,
            cooldown: crate::testing::cooldown(),
            max_response_bytes: 1 << 20,
            expose_api_base: true,
            replicas: false,
            catalog: Default::default(),
        }
    }

    fn env(v: &str) -> Option<String> {
        match v {
            "AZ_KEY" => Some("az-secret-0123456789".into()),
            "OA_KEY" => Some("sk-oa-0123456789".into()),
            _ => None,
        }
    }

    fn azure() -> Rc<ProviderRole> {
        let mut c = config(Provider::Azure, "dep", "", "AZ_KEY");
        c.deployment.headers = vec![("X-Custom".into(), "1".into())];
        Rc::new(ProviderRole::new(c, env))
    }

    fn openai() -> Rc<ProviderRole> {
        Rc::new(ProviderRole::new(
            config(Provider::Openai, "gpt-4o-mini", "/v1", "OA_KEY"),
            env,
        ))
    }

    fn info(stream: bool, plan: &[&str]) -> RequestInfo {
        let mut i = crate::testing::info(plan);
        i.stream = stream;
        i.client.x = vec![
            ("x-trace".into(), "t1".into()),
            ("x-custom".into(), "client".into()),
        ];
        i.forward_x_headers = true;
        i
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn headers_are_built_whole_whatever_the_client_or_an_earlier_attempt_left() {
        let client = h(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/v1/chat/completions"),
            (":authority", "gw"),
            ("authorization", "Bearer client-key"),
            ("openai-organization", "org-of-the-client"),
            ("openai-project", "proj-of-the-client"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "c=1"),
            ("x-custom", "stale"),
            ("content-length", "10"),
        ]);
        let role = azure();
        let mut a = role
            .attempt(info(false, &["azure-dep"]), 1, &MemoryHost::at(0))
            .unwrap();
        let body = br#"{"model":"g","messages":[]}"#;
        let (out, _) = a.request(&client, body, None).unwrap();
        assert_eq!(
            get(&out, ":path"),
            Some("/openai/deployments/dep/chat/completions?api-version=2024-10-21")
        );
        assert_eq!(get(&out, ":authority"), Some("127.0.0.1:9"));
        assert_eq!(get(&out, "api-key"), Some("az-secret-0123456789"));
        assert_eq!(
            get(&out, "x-custom"),
            Some("1"),
            "the deployment's header wins"
        );
        assert_eq!(
            get(&out, "x-trace"),
            Some("t1"),
            "allowed client headers pass"
        );
        for gone in [
            "authorization",
            "openai-organization",
            "openai-project",
            "proxy-authorization",
            "cookie",
        ] {
            assert_eq!(get(&out, gone), None, "{gone} must not reach the provider");
        }
        assert_eq!(get(&out, "content-length"), Some("29"), "the new body's");
        // The next attempt goes to OpenAI, on the map Azure's attempt left.
        let role = openai();
        let mut b = role
            .attempt(info(false, &["openai-dep"]), 2, &MemoryHost::at(0))
            .unwrap();
        let (out, _) = b.request(&out, body, Some("replica:8443")).unwrap();
        assert_eq!(get(&out, ":authority"), Some("replica:8443"));
        assert_eq!(get(&out, "authorization"), Some("Bearer sk-oa-0123456789"));
        assert_eq!(get(&out, "api-key"), None);
        assert_eq!(get(&out, "x-custom"), None, "Azure's extra header is gone");
        assert_eq!(get(&out, ":path"), Some("/v1/chat/completions"));
    }

    #[test]
    fn router_params_never_reach_the_provider() {
        let role = openai();
        let mut i = info(false, &["openai-dep"]);
        i.strip_params = true;
        let mut a = role.attempt(i, 1, &MemoryHost::at(0)).unwrap();
        let (_, out) = a
            .request(
                &[],
                br#"{"model":"g","messages":[],"fallbacks":["x"],"num_retries":1,"timeout":3,"drop_params":true}"#,
                None,
            )
            .unwrap();
        assert_eq!(out, br#"{"model":"gpt-4o-mini","messages":[]}"#);
        assert!(
            a.cx.drop_params,
            "the request's drop_params is kept for the translator"
        );
    }

    #[test]
    fn a_pattern_deployment_sends_the_requested_model_at_its_price() {
        let mut c = config(Provider::Openai, "*", "/v1", "OA_KEY");
        c.deployment.group = "openai/*".into();
        c.catalog.insert(
            "gpt-4.1-nano".into(),
            switchyard_config::Prices {
                input: 0.5,
                output: 1.0,
                ..Default::default()
            },
        );
        let role = Rc::new(ProviderRole::new(c, env));
        let attempt = |group: &str, name: &str| {
            let mut i = info(false, &["openai-dep"]);
            i.group = group.into();
            i.requested_model = "alias".into();
            i.wildcard_model = Some(name.into());
            role.attempt(i, 1, &MemoryHost::at(0))
        };
        let mut a = attempt("openai/*", "openai/gpt-4.1-nano").unwrap();
        assert_eq!(a.cx.deployment().model, "gpt-4.1-nano");
        assert_eq!(a.cx.deployment().prices.input, 0.5);
        let (_, out) = a
            .request(&[], br#"{"model":"alias","messages":[]}"#, None)
            .unwrap();
        assert_eq!(out, br#"{"model":"gpt-4.1-nano","messages":[]}"#);
        // `*` given a name with the deployment's own prefix: the provider's name.
        let a = attempt("*", "openai/gpt-4o").unwrap();
        assert_eq!(a.cx.deployment().model, "gpt-4o");
        assert_eq!(a.cx.deployment().prices.input, 0.0, "not in the catalog");
        let e = attempt("openai/*", "anthropic/claude").err().unwrap();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn the_deployments_parameters_fill_in_what_the_request_left_out() {
        let mut c = config(Provider::Openai, "gpt-4o-mini", "/v1", "OA_KEY");
        c.deployment.defaults = serde_json::json!({"temperature": 0.2, "max_tokens": 50})
            .as_object()
            .unwrap()
            .clone();
        let role = Rc::new(ProviderRole::new(c, env));
        let mut a = role
            .attempt(info(false, &["openai-dep"]), 1, &MemoryHost::at(0))
            .unwrap();
        let (_, out) = a
            .request(&[], br#"{"model":"g","messages":[],"temperature":1}"#, None)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["temperature"], 1, "the request's own value wins");
        assert_eq!(v["max_tokens"], 50);
    }

    #[test]
    fn a_minted_token_is_read_per_attempt_and_never_shown() {
        let mut c = config(Provider::Openai, "m", "/v1", "UNUSED");
        c.deployment.auth = Auth::GoogleServiceAccount;
        let role = Rc::new(ProviderRole::new(c, env));
        let host = MemoryHost::at(0);
        let e = role
            .attempt(info(false, &["openai-dep"]), 1, &host)
            .err()
            .unwrap();
        assert_eq!(e.status, 503, "no token yet: {}", e.message);
        let token = "ya29.minted-token-0123456789";
        host.shared_set(&format!("{TOKEN_KEY}openai-dep"), token.as_bytes(), None)
            .unwrap();
        let mut a = role
            .attempt(info(false, &["openai-dep"]), 1, &host)
            .unwrap();
        let (headers, _) = a
            .request(&[], br#"{"model":"g","messages":[]}"#, None)
            .unwrap();
        assert!(headers.contains(&("authorization".into(), format!("Bearer {token}"))));
        a.on_response_headers(401, Some("application/json"));
        let f = a.finish_body(
            format!(r#"{{"error":{{"message":"bad token {token}"}}}}"#).as_bytes(),
            &[],
            &host,
        );
        let body = String::from_utf8(f.body).unwrap();
        assert!(
            !body.contains(token) && body.contains("[redacted]"),
            "{body}"
        );
    }

    #[test]
    fn delivered_answers_are_priced_logged_and_counted() {
        let mut c = config(Provider::Openai, "gpt-4o-mini", "/v1", "OA_KEY");
        c.deployment.prices = switchyard_config::Prices {
            input: 0.001,
            output: 0.002,
            ..Default::default()
        };
        let role = Rc::new(ProviderRole::new(c, env));
        let host = MemoryHost::at(5_000);
        let mut i = info(false, &["openai-dep"]);
        i.received_ms = 4_000;
        i.key = Some(switchyard_config::KeyIdentity {
            hash: "kh".into(),
            team_id: Some("t".into()),
            ..Default::default()
        });
        i.end_user = Some("eu".into());
        // Counted against a tpm limit of 20 by the gateway.
        let l = switchyard_config::Limits {
            tpm_limit: Some(20),
            ..Default::default()
        };
        let subject = [crate::limits::Subject {
            kind: "key",
            id: "kh",
            limits: &l,
        }];
        let admitted = crate::limits::admit(&host, &subject, 5_000, false).unwrap();
        i.limits_tokens = admitted.tokens;
        i.rate_limit_headers = admitted.headers;
        let mut a = role.attempt(i, 1, &host).unwrap();
        a.request(
            &[("x-request-id".into(), "req-1".into())],
            br#"{"model":"g","messages":[]}"#,
            None,
        )
        .unwrap();
        a.on_response_headers(200, Some("application/json"));
        let provider = h(&[("x-ratelimit-remaining-tokens", "99999")]);
        let f = a.finish_body(
            br#"{"id":"x","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#,
            &provider,
            &host,
        );
        let out = f.headers.apply(vec![]);
        assert_eq!(get(&out, "x-litellm-response-cost"), Some("0.02"));
        assert_eq!(
            get(&out, "x-ratelimit-remaining-tokens"),
            Some("20"),
            "the gateway's"
        );
        assert_eq!(
            get(&out, "llm_provider-x-ratelimit-remaining-tokens"),
            Some("99999"),
            "the provider's, renamed"
        );
        let next = crate::limits::admit(&host, &subject, 5_000, false).unwrap();
        assert!(
            next.headers
                .contains(&("x-ratelimit-remaining-tokens".into(), "5".into())),
            "the answer's 15 tokens counted: {:?}",
            next.headers
        );
        let events = crate::spend::drain(&host);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            (
                e.request_id.as_str(),
                e.key_hash.as_str(),
                e.status.as_str()
            ),
            ("req-1", "kh", "success")
        );
        assert_eq!(
            (e.prompt_tokens, e.completion_tokens, e.cost),
            (10, 5, 0.02)
        );
        assert_eq!(
            (e.team_id.as_deref(), e.end_user.as_deref()),
            (Some("t"), Some("eu"))
        );
        assert_eq!((e.start_ms, e.end_ms, e.http_status), (4_000, 5_000, 200));

        // A delivered error costs nothing but is logged; a retried one is not logged at all.
        let mut a = role
            .attempt(info(false, &["openai-dep", "other"]), 1, &host)
            .unwrap();
        a.on_response_headers(500, Some("application/json"));
        a.finish_body(b"{}", &[], &host);
        assert!(
            crate::spend::drain(&host).is_empty(),
            "retried: nothing delivered"
        );
        let mut a = role
            .attempt(info(false, &["openai-dep"]), 1, &host)
            .unwrap();
        a.on_response_headers(500, Some("application/json"));
        a.finish_body(b"{}", &[], &host);
        let events = crate::spend::drain(&host);
        assert_eq!(
            (events[0].status.as_str(), events[0].cost),
            ("failure", 0.0)
        );
    }

    #[test]
    fn a_stream_is_logged_at_its_end_with_its_usage() {
        let role = openai();
        let host = MemoryHost::at(0);
        let mut a = role.attempt(info(true, &["openai-dep"]), 1, &host).unwrap();
        let (_, body) = a
            .request(&[], br#"{"model":"g","stream":true,"messages":[]}"#, None)
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["stream_options"]["include_usage"], true,
            "asked for spend's sake"
        );
        a.on_response_headers(200, Some("text/event-stream"));
        let p = a.stream_chunk(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: [DONE]\n\n",
            true,
            &[],
            &host,
        );
        let text = String::from_utf8(p.bytes).unwrap();
        assert!(
            !text.contains("usage"),
            "the client did not ask for the usage chunk: {text}"
        );
        let events = crate::spend::drain(&host);
        assert_eq!(
            (events[0].prompt_tokens, events[0].completion_tokens),
            (3, 1)
        );
    }

    #[test]
    fn missing_key_is_a_clear_error() {
        let role = Rc::new(ProviderRole::new(
            config(Provider::Openai, "m", "/v1", "UNSET"),
            env,
        ));
        let e = role
            .attempt(info(false, &["x"]), 1, &MemoryHost::at(0))
            .err()
            .unwrap();
        assert_eq!(e.status, 401);
        assert!(e.message.contains("UNSET"), "{}", e.message);
    }

    #[test]
    fn a_retried_attempt_is_in_the_answering_attempts_event() {
        let role = openai();
        let host = MemoryHost::at(0);
        let mut i = info(false, &["openai-dep", "openai-dep"]);
        i.request_id = "req-7".into();
        let client = h(&[(":method", "POST"), (":path", "/v1/chat/completions")]);
        let body = br#"{"model":"g","messages":[]}"#;
        let mut first = role.attempt(i.clone(), 1, &host).unwrap();
        first.request(&client, body, None).unwrap();
        first.on_response_headers(429, Some("application/json"));
        let f = first.finish_body(br#"{"error":{"message":"slow down"}}"#, &[], &host);
        assert!(f.retries());
        first.done(&host);
        let mut second = role.attempt(i, 2, &host).unwrap();
        // The header map was rebuilt for the provider: no x-request-id in it any more.
        second.request(&[], body, None).unwrap();
        second.on_response_headers(200, Some("application/json"));
        second.provider_limits(&h(&[("x-ratelimit-remaining-requests", "41")]));
        let answer = br#"{"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        second.finish_body(answer, &[], &host);
        second.done(&host);
        let events = crate::spend::drain(&host);
        assert_eq!(events.len(), 1, "only the answer is logged");
        let e = &events[0];
        assert_eq!(e.request_id, "req-7");
        assert_eq!(e.retries, 1);
        assert_eq!(e.provider_remaining_requests, Some(41));
        assert_eq!(e.failed_attempts.len(), 1);
        let failed = &e.failed_attempts[0];
        assert_eq!(
            (failed.deployment.as_str(), failed.http_status),
            ("openai-dep", 429)
        );
        assert_eq!(failed.error_class, ErrorClass::RateLimit);
    }

    #[test]
    fn errors_are_retried_while_the_plan_lasts_and_keep_their_status() {
        let role = openai();
        let provider = h(&[
            (":status", "429"),
            ("content-type", "application/json"),
            ("x-ratelimit-remaining-requests", "0"),
            ("set-cookie", "s=1"),
            ("x-switchyard-retry", "forged"),
        ]);
        let mut a = role
            .attempt(info(false, &["openai-dep", "other"]), 1, &MemoryHost::at(0))
            .unwrap();
        assert_eq!(
            a.on_response_headers(429, Some("application/json")),
            ResponsePlan::Buffer
        );
        let f = a.finish_body(
            br#"{"error":{"message":"Rate limit reached"}}"#,
            &provider,
            &MemoryHost::at(5),
        );
        assert_eq!(f.status, 429, "the client sees the provider's status");
        let out = f.headers.apply(provider.clone());
        assert_eq!(get(&out, RETRY_HEADER), Some("1"));
        assert_eq!(get(&out, "x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(get(&out, "set-cookie"), None);
        assert_eq!(get(&out, ":status"), Some("429"));

        let mut last = role
            .attempt(info(false, &["other", "openai-dep"]), 2, &MemoryHost::at(0))
            .unwrap();
        last.on_response_headers(429, Some("application/json"));
        let f = last.finish_body(b"", &provider, &MemoryHost::at(5));
        let out = f.headers.apply(provider);
        assert_eq!(get(&out, RETRY_HEADER), None, "the plan is over: deliver");
        assert_eq!(
            get(&out, "x-switchyard-retry"),
            None,
            "a provider cannot forge the cue"
        );
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        assert_eq!(v["error"]["code"], "429");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("empty body"),
            "{v}"
        );
    }

    #[test]
    fn answers_carry_litellm_headers() {
        let role = openai();
        // The third pass's second attempt; two fallback passes made four attempts before it.
        let mut i = info(false, &["other", "openai-dep"]);
        (i.fallback_depth, i.earlier_attempts, i.received_ms) = (2, 4, 1_000);
        let mut a = role.attempt(i, 2, &MemoryHost::at(1_040)).unwrap();
        a.on_response_headers(200, Some("application/json"));
        let body = br#"{"id":"x","object":"chat.completion","choices":[]}"#;
        let f = a.finish_body(body, &h(&[(":status", "200")]), &MemoryHost::at(1_100));
        let out = f.headers.apply(h(&[(":status", "200")]));
        assert_eq!(get(&out, "x-litellm-model-group"), Some("g"));
        assert_eq!(get(&out, "x-litellm-attempted-fallbacks"), Some("2"));
        assert_eq!(
            get(&out, "x-litellm-attempted-retries"),
            Some("3"),
            "5 attempts, 2 of them fallbacks' first"
        );
        assert_eq!(get(&out, "x-litellm-response-duration-ms"), Some("100"));
        assert_eq!(
            get(&out, "x-litellm-overhead-duration-ms"),
            Some("40"),
            "before the provider was asked"
        );
        assert_eq!(get(&out, "x-litellm-model-id"), Some("openai-dep"));
    }

    #[test]
    fn echoed_keys_are_scrubbed() {
        let role = openai();
        let mut a = role
            .attempt(info(false, &["openai-dep"]), 1, &MemoryHost::at(0))
            .unwrap();
        a.on_response_headers(401, Some("application/json"));
        let f = a.finish_body(
            br#"{"error":{"message":"Incorrect API key provided: sk-oa-0123456789 and az-secret-0123456789"}}"#,
            &[],
            &MemoryHost::at(0),
        );
        let text = String::from_utf8(f.body).unwrap();
        assert!(!text.contains("0123456789"), "{text}");
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn keys_echoed_in_a_stream_are_scrubbed() {
        let role = openai();
        let mut a = role
            .attempt(info(true, &["openai-dep"]), 1, &MemoryHost::at(0))
            .unwrap();
        a.on_response_headers(200, Some("text/event-stream"));
        let p = a.stream_chunk(
            b"data: {\"error\":{\"message\":\"bad key sk-oa-0123456789\"}}\n\n",
            true,
            &[],
            &MemoryHost::at(0),
        );
        let text = String::from_utf8(p.bytes).unwrap();
        assert!(
            !text.contains("0123456789") && text.contains("[redacted]"),
            "{text}"
        );
    }

    #[test]
    fn fallback_hands_off_through_a_redirect() {
        let role = openai();
        let mut i = info(false, &["openai-dep"]);
        i.fallbacks = vec!["backup".into()];
        let mut a = role.attempt(i, 1, &MemoryHost::at(0)).unwrap();
        a.on_response_headers(500, None);
        let f = a.finish_body(b"oops", &[], &MemoryHost::at(0));
        assert_eq!(f.status, 307);
        let out = f.headers.apply(vec![]);
        assert_eq!(
            get(&out, "location"),
            Some("http://gw:4000/v1/chat/completions")
        );
        let nonce = get(&out, REPLAN_HEADER).unwrap();
        let r = replan::take(nonce).unwrap();
        assert_eq!(
            (r.status, r.kind, r.attempts),
            (500, FallbackKind::Regular, 1)
        );
    }

    #[test]
    fn attempts_count_for_cooldowns_only_when_the_provider_failed() {
        use crate::router::state;
        let mut cfg = config(Provider::Openai, "m", "/v1", "OA_KEY");
        cfg.cooldown.allowed_fails = 0;
        let role = Rc::new(ProviderRole::new(cfg, env));
        let host = MemoryHost::at(1_000);
        // The client left mid-stream: not the deployment's failure.
        let mut left = role
            .attempt(info(true, &["openai-dep", "x"]), 1, &MemoryHost::at(0))
            .unwrap();
        left.on_response_headers(200, Some("text/event-stream"));
        left.stream_chunk(
            b"data: {\"choices\":[]}\n\n",
            false,
            &[],
            &MemoryHost::at(10),
        );
        left.done(&host);
        assert!(!state::read(&host, "g")
            .deployments
            .get("openai-dep")
            .is_some_and(|d| d.cooling_down(1_000)));
        // No answer at all (reset, refused, timed out): a failure.
        let silent = role
            .attempt(info(false, &["openai-dep", "x"]), 1, &MemoryHost::at(0))
            .unwrap();
        silent.done(&host);
        assert!(state::read(&host, "g").deployments["openai-dep"].cooling_down(1_000));
    }

    #[test]
    fn streams_hold_headers_until_the_first_event_and_flag_a_cut() {
        let role = openai();
        let mut s = role
            .attempt(info(true, &["openai-dep"]), 1, &MemoryHost::at(100))
            .unwrap();
        assert_eq!(
            s.on_response_headers(200, Some("text/event-stream; charset=utf-8")),
            ResponsePlan::Stream
        );
        let provider = h(&[(":status", "200"), ("content-type", "text/event-stream")]);
        let p = s.stream_chunk(
            b"data: {\"model\":\"x\",\"cho",
            false,
            &provider,
            &MemoryHost::at(150),
        );
        assert!(p.release.is_none() && p.bytes.is_empty() && s.holding());
        let p = s.stream_chunk(b"ices\":[]}\n\n", false, &provider, &MemoryHost::at(180));
        assert!(p.release.is_some(), "the first event releases the headers");
        assert_eq!(
            String::from_utf8(p.bytes).unwrap(),
            "data: {\"model\":\"g\",\"choices\":[]}\n\n"
        );
        let p = s.stream_chunk(b"", true, &provider, &MemoryHost::at(300));
        let text = String::from_utf8(p.bytes).unwrap();
        assert!(
            text.starts_with("data: {\"error\"") && text.contains("before it was complete"),
            "{text}"
        );

        let mut ok = role
            .attempt(info(true, &["openai-dep"]), 1, &MemoryHost::at(0))
            .unwrap();
        ok.on_response_headers(200, Some("text/event-stream"));
        let p = ok.stream_chunk(
            b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
            true,
            &provider,
            &MemoryHost::at(10),
        );
        assert_eq!(
            String::from_utf8(p.bytes).unwrap(),
            "data: {\"choices\":[]}\n\ndata: [DONE]\n\n"
        );
    }

    fn anthropic() -> Rc<ProviderRole> {
        Rc::new(ProviderRole::new(
            config(Provider::Anthropic, "claude-x", "", "OA_KEY"),
            env,
        ))
    }

    #[test]
    fn a_messages_request_to_anthropic_passes_untouched_and_its_answer_too() {
        let mut i = info(false, &["anthropic-dep"]);
        i.dialect = Dialect::Anthropic;
        i.client.anthropic_beta = Some("interleaved-thinking-2025-05-14".into());
        let host = MemoryHost::at(0);
        let mut a = anthropic().attempt(i, 1, &host).unwrap();
        let client = br#"{"model":"g","max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"}}]}],"thinking":{"type":"enabled","budget_tokens":1024},"num_retries":2}"#;
        let (headers, body) = a.request(&[], client, None).unwrap();
        assert_eq!(get(&headers, ":path"), Some("/v1/messages"));
        assert_eq!(get(&headers, "x-api-key"), Some("sk-oa-0123456789"));
        assert_eq!(
            get(&headers, "anthropic-beta"),
            Some("interleaved-thinking-2025-05-14")
        );
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut expected: serde_json::Value = serde_json::from_slice(client).unwrap();
        expected["model"] = "claude-x".into();
        assert_eq!(
            sent, expected,
            "only the model changes (router params go only when asked)"
        );

        a.on_response_headers(200, Some("application/json"));
        let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"thinking","thinking":"t","signature":"sig"},{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"cache_read_input_tokens":10,"output_tokens":2}}"#;
        let f = a.finish_body(answer, &[], &host);
        assert_eq!((f.status, f.body.as_slice()), (200, answer.as_slice()));
        let events = crate::spend::drain(&host);
        assert_eq!((events[0].prompt_tokens, events[0].cached_tokens), (15, 10));
    }

    #[test]
    fn a_native_stream_passes_its_bytes_and_a_cut_ends_in_the_apis_error_event() {
        let mut i = info(true, &["anthropic-dep"]);
        i.dialect = Dialect::Anthropic;
        let host = MemoryHost::at(0);
        let mut a = anthropic().attempt(i, 1, &host).unwrap();
        a.request(
            &[],
            br#"{"model":"g","max_tokens":9,"stream":true,"messages":[]}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            a.on_response_headers(200, Some("text/event-stream")),
            ResponsePlan::Stream
        );
        let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n";
        let p = a.stream_chunk(start, false, &[], &host);
        assert_eq!(p.bytes, start.to_vec(), "byte for byte");
        let p = a.stream_chunk(b"", true, &[], &host);
        let text = String::from_utf8(p.bytes).unwrap();
        assert!(
            text.starts_with("event: error\ndata: {\"type\":\"error\"")
                && text.contains("before it was complete"),
            "{text}"
        );
        let events = crate::spend::drain(&host);
        assert_eq!(
            (events[0].status.as_str(), events[0].prompt_tokens),
            ("failure", 4)
        );
    }

    #[test]
    fn token_counts_go_to_anthropics_count_api_and_cost_nothing() {
        let mut i = info(false, &["anthropic-dep"]);
        i.dialect = Dialect::Anthropic;
        i.endpoint = Endpoint::CountTokens;
        let host = MemoryHost::at(0);
        let mut a = anthropic().attempt(i.clone(), 1, &host).unwrap();
        let (headers, _) = a
            .request(&[], br#"{"model":"g","messages":[]}"#, None)
            .unwrap();
        assert_eq!(get(&headers, ":path"), Some("/v1/messages/count_tokens"));
        a.on_response_headers(200, Some("application/json"));
        let f = a.finish_body(br#"{"input_tokens":12}"#, &[], &host);
        assert_eq!(f.body, br#"{"input_tokens":12}"#);
        assert!(crate::spend::drain(&host).is_empty());
        // A deployment without the API (a fallback group's) says so.
        let mut o = openai().attempt(i, 1, &host).unwrap();
        let e = o
            .request(&[], br#"{"model":"g","messages":[]}"#, None)
            .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn a_responses_request_goes_to_openais_responses_api_and_azures() {
        let mut i = info(false, &["openai-dep"]);
        i.dialect = Dialect::Responses;
        let host = MemoryHost::at(0);
        let client = br#"{"model":"g","input":"hi","tools":[{"type":"web_search"}],"previous_response_id":"resp_1"}"#;
        let mut a = openai().attempt(i.clone(), 1, &host).unwrap();
        let (headers, body) = a.request(&[], client, None).unwrap();
        assert_eq!(get(&headers, ":path"), Some("/v1/responses"));
        assert!(String::from_utf8(body)
            .unwrap()
            .contains("\"previous_response_id\":\"resp_1\""));
        a.on_response_headers(200, Some("application/json"));
        let answer = br#"{"id":"resp_2","object":"response","output":[],"usage":{"input_tokens":3,"output_tokens":2}}"#;
        let f = a.finish_body(answer, &[], &host);
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        let ours = crate::dialects::responses::stored_id("openai-dep", "resp_2");
        assert_eq!(v["id"], ours.as_str(), "the id names where it is stored");
        assert_eq!(crate::spend::drain(&host)[0].completion_tokens, 2);
        // The next turn names it so: the provider gets its own id back.
        let mut b = openai().attempt(i.clone(), 1, &host).unwrap();
        let next = format!(r#"{{"model":"g","input":"more","previous_response_id":"{ours}"}}"#);
        let (_, body) = b.request(&[], next.as_bytes(), None).unwrap();
        assert!(String::from_utf8(body)
            .unwrap()
            .contains("\"previous_response_id\":\"resp_2\""));

        let mut z = azure().attempt(i, 1, &host).unwrap();
        let (headers, _) = z.request(&[], client, None).unwrap();
        assert_eq!(
            get(&headers, ":path"),
            Some("/openai/responses?api-version=2024-10-21")
        );
        // An error is read by the translator, written in the client's API.
        z.on_response_headers(429, Some("application/json"));
        let f = z.finish_body(br#"{"error":{"message":"slow down"}}"#, &[], &host);
        assert_eq!(f.status, 429);
        assert!(String::from_utf8(f.body).unwrap().contains("slow down"));
    }
}
