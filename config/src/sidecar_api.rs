//! The contract between the filter and the sidecar: the internal API's paths and messages,
//! the shared-data keys and queue the filter keeps its caches in, and the one OpenAI error
//! body both sides answer with. The filter reaches the internal API only through Envoy's
//! [`SIDECAR_CLUSTER`]; the public listener never routes `/internal/` (the gateway refuses it).
//!
//! | path | method | request | answer |
//! | --- | --- | --- | --- |
//! | [`key_path`] `/internal/v1/keys/{sha256 hex}` | GET | | 200 [`KeyRecord`], 404 unknown key |
//! | [`customer_path`] `/internal/v1/customers/{end user id}` | GET | | 200 [`CustomerRecord`] (an unknown end user: no budget) |
//! | [`SPEND_PATH`] `/internal/v1/spend` | POST | [`SpendBatch`] | 200 [`SpendAck`] once the batch is stored |
//! | [`changes_path`] `/internal/v1/changes?after=N` | GET | | 200 [`Changes`], at once when there are, else after up to [`CHANGES_WAIT_S`] |
//! | [`token_path`] `/internal/v1/token/{deployment}` | GET | | 200 [`TokenAnswer`] |

use std::collections::BTreeMap;

use crate::contract::ErrorClass;
use serde::{Deserialize, Serialize};

/// Envoy's cluster for the sidecar.
pub const SIDECAR_CLUSTER: &str = "switchyard_sidecar";
/// `:authority` of the filter's calls to the sidecar.
pub const SIDECAR_AUTHORITY: &str = "switchyard-sidecar";
/// The wasm VM every Switchyard filter runs in (shared data and queues are per VM id).
pub const VM_ID: &str = "switchyard";
/// Prefix of the internal API: never served on the public listener.
pub const INTERNAL_PREFIX: &str = "/internal/";

// ---------------------------------------------------------------------------------------
// Keys

/// The record of a virtual key the gateway enforces, as the sidecar answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// SHA-256 of the key, hex (how keys are stored and looked up).
    pub token: String,
    #[serde(default)]
    pub key_alias: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// Model names (or groups, or `*`-patterns) the key may call; empty: every model its
    /// team allows.
    #[serde(default)]
    pub models: Vec<String>,
    /// The team's list; empty: every model.
    #[serde(default)]
    pub team_models: Vec<String>,
    /// Per-key model aliases: the name a client sends → the model_name served.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub blocked: bool,
    /// ms since the epoch; None: never.
    #[serde(default)]
    pub expires_ms: Option<u64>,
    /// The key's, its user's and its team's budgets, with their spend in the current
    /// budget period.
    #[serde(default)]
    pub key_budget: Budget,
    #[serde(default)]
    pub user_budget: Budget,
    #[serde(default)]
    pub team_budget: Budget,
    #[serde(default)]
    pub team_blocked: bool,
    /// The key's, its user's and its team's rate limits.
    #[serde(default)]
    pub key_limits: Limits,
    #[serde(default)]
    pub user_limits: Limits,
    #[serde(default)]
    pub team_limits: Limits,
    /// Logged with every request of the key (`tags` included).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A budget and what was spent against it (USD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default)]
    pub max_budget: Option<f64>,
    #[serde(default)]
    pub spend: f64,
    /// When the period ends and spend starts again from 0 (ms since the epoch).
    #[serde(default)]
    pub resets_at_ms: Option<u64>,
}

impl Budget {
    /// Whether `spend + pending` reaches the budget.
    pub fn exhausted(&self, pending: f64) -> bool {
        self.max_budget
            .is_some_and(|max| self.spend + pending >= max)
    }
}

/// An end user (the `user` field of a request), as the sidecar answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub user_id: String,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub limits: Limits,
}

/// A holder's rate limits (LiteLLM's names); None: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default)]
    pub rpm_limit: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(default)]
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_parallel_requests: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm_limit.is_none() && self.tpm_limit.is_none() && self.max_parallel_requests.is_none()
    }
}

pub fn key_path(token_sha256_hex: &str) -> String {
    format!("/internal/v1/keys/{token_sha256_hex}")
}

pub fn customer_path(end_user: &str) -> String {
    format!("/internal/v1/customers/{}", percent_encode(end_user))
}

/// `[A-Za-z0-9_.~-]` as is, anything else %XX (for ids in paths).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Spend

pub const SPEND_PATH: &str = "/internal/v1/spend";

/// What one request cost, as the filter reports it. Idempotent by `request_id`: the sidecar
/// stores an event once however often it is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendEvent {
    /// Envoy's x-request-id.
    pub request_id: String,
    /// SHA-256 of the virtual key, hex; empty for the master key (or an open gateway).
    #[serde(default)]
    pub key_hash: String,
    #[serde(default)]
    pub key_alias: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// The request's `user` field.
    #[serde(default)]
    pub end_user: Option<String>,
    /// The model the client asked for, and the group that served it.
    pub requested_model: String,
    pub model_group: String,
    /// The deployment id, its provider and its model.
    #[serde(default)]
    pub deployment: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    pub endpoint: String,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// USD.
    #[serde(default)]
    pub cost: f64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// `success` or `failure`.
    pub status: String,
    /// The HTTP status the client got.
    #[serde(default)]
    pub http_status: u16,
    #[serde(default)]
    pub cache_hit: bool,
    /// The key's metadata and the request's (`tags`, ...).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    // What operators see besides the spend (metrics, traces, logging callbacks).
    /// The serving deployment's api_base.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_base: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    /// When the serving attempt started, and how long its provider took (to the whole
    /// answer, or a stream's end); 0 when no provider answered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt_start_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub llm_api_ms: u64,
    /// A stream's first event after the attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    /// Retries within the group(s), and fallback groups gone to.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub fallbacks: u32,
    /// A failure's class, when a provider's error was classified, and its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempts that failed before this one answered (or before the request failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<AttemptLog>,
    /// The response cache was asked and had nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cache_miss: bool,
    /// The provider's `x-ratelimit-remaining-requests` and `-tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_remaining_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_remaining_tokens: Option<u64>,
    /// What the gateway's own rate limits left the caller after this request (the tightest
    /// of its key's, user's, team's and end user's): requests and tokens this minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_remaining_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_remaining_tokens: Option<u64>,
    /// The prompt (`messages`, `prompt` or `input`) and the answer, when a logging callback
    /// takes them ([`LOGGED_MESSAGE_BYTES`] at most each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// The gateway refused the request itself (a bad key, a limit, a bad request): counted
    /// and logged, never written to the spend logs (anyone can send those).
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_only: bool,
}

/// A prompt or an answer larger than this is logged as a note of its size: events wait in
/// Envoy's memory until the sidecar takes them.
pub const LOGGED_MESSAGE_BYTES: usize = 64 * 1024;

/// One attempt that failed: where it went, when, and how it failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptLog {
    pub model_group: String,
    pub deployment: String,
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub api_base: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The provider's status; 0 when it never answered (reset, refused, timed out).
    pub http_status: u16,
    pub error_class: ErrorClass,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendBatch {
    pub events: Vec<SpendEvent>,
}

/// The sidecar stored the batch (in one transaction): `stored` new events, `duplicates`
/// already known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendAck {
    pub stored: u64,
    pub duplicates: u64,
}

// ---------------------------------------------------------------------------------------
// Changes: how a blocked, deleted or updated key reaches every Envoy at once

/// Seconds the sidecar holds a changes request open when nothing changed.
pub const CHANGES_WAIT_S: u64 = 20;

pub fn changes_path(after: u64) -> String {
    format!("/internal/v1/changes?after={after}")
}

/// What changed since `after`: the cached records to drop. `seq` is the value to ask with
/// next. `all`: drop every cached record (the sidecar lost track, e.g. it restarted with
/// an older sequence).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub seq: u64,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub customers: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

// ---------------------------------------------------------------------------------------
// The response cache

/// `POST`: a batch of answers to keep ([`CachePutBatch`]), from the gateway's root context.
pub const CACHE_PUT_PATH: &str = "/internal/v1/cache";

/// The shared queue answers to cache wait in ([`CachePut`], JSON) until the gateway's root
/// context sends them.
pub const CACHE_QUEUE: &str = "switchyard.cache_put";

/// `GET`: the answer cached under `key`, 200 with a [`CachedAnswer`] or 404. With
/// `max_age_s` (a request's `s-maxage`), only an answer stored at most that long ago.
pub fn cache_path(key: &str, max_age_s: Option<u64>) -> String {
    let path = format!("{CACHE_PUT_PATH}/{}", percent_encode(key));
    match max_age_s {
        Some(age) => format!("{path}?max_age_s={age}"),
        None => path,
    }
}

/// A cached answer: the provider's answer as the client got it (OpenAI JSON), and when it
/// was stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub body: String,
    pub stored_ms: u64,
}

/// An answer to keep for `ttl_s` seconds under `key`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachePut {
    pub key: String,
    pub ttl_s: u64,
    pub body: String,
    /// Semantic cache: also find this answer by its prompt's meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticEntry>,
}

/// What a semantic cache indexes an answer by: the prompt's text, embedded by the sidecar
/// with `embedding_model`, within one model group and namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticEntry {
    pub group: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub prompt: String,
    pub embedding_model: String,
}

/// `POST`: a [`SemanticLookup`]; 200 with the [`CachedAnswer`] of the most similar prompt at
/// or above the threshold, else 404.
pub const SEMANTIC_LOOKUP_PATH: &str = "/internal/v1/semantic/lookup";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticLookup {
    #[serde(flatten)]
    pub entry: SemanticEntry,
    pub similarity_threshold: f64,
    /// A request's `s-maxage`: only answers stored at most this long ago.
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Rate limits across a fleet (Redis)

/// `POST`: a [`LimitSync`]; 200 with [`LimitTotals`], or 503 when the sidecar has no Redis
/// or Redis does not answer (each Envoy then counts alone).
pub const LIMITS_SYNC_PATH: &str = "/internal/v1/limits/sync";

/// One Envoy's counts since its last sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitSync {
    /// Which Envoy this is (stable for its life, unique in the fleet).
    pub instance: String,
    pub counters: Vec<LimitCount>,
}

/// A counter (named as in shared data, [`RATE_LIMIT_PREFIX`]) in one minute (since the
/// epoch). In a [`LimitSync`]: the requests and tokens counted since the last sync, and the
/// requests this Envoy has in flight now. In [`LimitTotals`]: the other Envoys' totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitCount {
    pub name: String,
    pub minute: u64,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub in_flight: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitTotals {
    pub counters: Vec<LimitCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachePutBatch {
    pub entries: Vec<CachePut>,
}

// ---------------------------------------------------------------------------------------
// Tokens (Vertex AI service accounts)

/// Shared-data key of the access token the sidecar minted for a deployment (Vertex AI with a
/// service account); the deployment id follows.
pub const TOKEN_KEY: &str = "switchyard.token.";

/// The sidecar's path for a deployment's current access token.
pub fn token_path(deployment: &str) -> String {
    format!("/internal/v1/token/{deployment}")
}

/// The sidecar's answer at [`token_path`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    /// Seconds the token is still valid.
    pub expires_in: u64,
}

// ---------------------------------------------------------------------------------------
// Shared data (per Envoy process, shared by its workers)

/// Cached [`KeyRecord`]s: the key's SHA-256 hex follows. The value is a
/// `CachedKey` (switchyard-core) with the time it was fetched.
pub const KEY_CACHE_PREFIX: &str = "switchyard.key.";
/// Cached [`CustomerRecord`]s: the end user's id follows.
pub const CUSTOMER_CACHE_PREFIX: &str = "switchyard.customer.";
/// Spend not yet acknowledged by the sidecar, per budget holder: `key.<hash>`,
/// `user.<id>`, `team.<id>`, `customer.<id>` follow; an f64 in text.
pub const PENDING_SPEND_PREFIX: &str = "switchyard.pending.";
/// The shared queue [`SpendEvent`]s wait in (JSON, one per item) until the gateway's root
/// context sends them to the sidecar.
pub const SPEND_QUEUE: &str = "switchyard.spend";
/// Rate-limit counters per holder (`key.<hash>`, `user.<id>`, `team.<id>`, `customer.<id>`
/// follow): the minute, its requests and tokens, and the requests in flight, as 4 u64 LE.
pub const RATE_LIMIT_PREFIX: &str = "switchyard.limit.";

// ---------------------------------------------------------------------------------------
// Errors

/// The one error body both the filter and the sidecar answer with: OpenAI's shape, `code`
/// the status as a string, as LiteLLM sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: String,
}

impl ErrorBody {
    pub fn new(status: u16, kind: &str, message: impl Into<String>, param: Option<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                kind: kind.to_string(),
                param,
                code: status.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_budgets() {
        assert_eq!(
            customer_path("a b/é"),
            "/internal/v1/customers/a%20b%2F%C3%A9"
        );
        assert_eq!(changes_path(7), "/internal/v1/changes?after=7");
        assert_eq!(cache_path("ns:ab", None), "/internal/v1/cache/ns%3Aab");
        assert_eq!(
            cache_path("ab", Some(30)),
            "/internal/v1/cache/ab?max_age_s=30"
        );
        let b = Budget {
            max_budget: Some(1.0),
            spend: 0.6,
            resets_at_ms: None,
        };
        assert!(!b.exhausted(0.3));
        assert!(b.exhausted(0.4));
        assert!(!Budget::default().exhausted(1e9), "no budget, no limit");
    }

    #[test]
    fn the_error_body_is_litellms() {
        let v =
            serde_json::to_value(ErrorBody::new(401, "auth_error", "no", None)).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "no", "type": "auth_error", "param": null, "code": "401"}})
        );
    }
}
