//! LiteLLM's key management: `/key/generate`, `/key/info`, `/key/update`, `/key/delete`,
//! `/key/list`, `/key/regenerate`, `/key/block`, `/key/unblock`. A key is shown once, when it
//! is made; the store keeps its SHA-256.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::auth::{caller, require_admin, Caller};
use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::store::budget::first_reset;
use crate::store::changes::{self, Kind};
use crate::store::keys::{self, token_of, KeyRow};
use crate::store::time::{expiry, iso, now_ms, parse_period};
use crate::store::{flag, from_json, json_text, teams, StoreError};

/// Bytes of OS randomness in a new key (LiteLLM takes 16).
const KEY_BYTES: usize = 32;

/// A new key: `sk-` and 43 url-safe characters.
fn new_key() -> Result<String, ApiError> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no randomness from the OS for a key: {e}")))?;
    Ok(format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// How LiteLLM names a key in lists: `sk-...` and its last four characters.
fn key_name(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// The fields of a key a request may set (LiteLLM's names). Absent: unchanged.
#[derive(Debug, Default, Deserialize)]
pub struct KeyFields {
    /// The key a request is about; for /key/generate, a key you choose (`sk-...`).
    key: Option<String>,
    /// /key/regenerate: the new key you choose, else one is made.
    new_key: Option<String>,
    key_alias: Option<String>,
    /// How long the key is valid ("30d", "1h"); absent at creation: forever.
    duration: Option<String>,
    models: Option<Vec<String>>,
    spend: Option<f64>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    user_id: Option<String>,
    team_id: Option<String>,
    max_parallel_requests: Option<u64>,
    metadata: Option<Map<String, Value>>,
    tpm_limit: Option<u64>,
    rpm_limit: Option<u64>,
    budget_duration: Option<String>,
    aliases: Option<BTreeMap<String, String>>,
    blocked: Option<bool>,
    /// Kept in metadata.tags, as LiteLLM does.
    tags: Option<Vec<String>>,
}

/// USD amounts are finite and not negative.
pub(super) fn money(field: &str, value: Option<f64>) -> Result<Option<f64>, ApiError> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => Err(ApiError::invalid(
            field,
            format!("{field}: must be a positive number of USD, not {v}"),
        )),
        v => Ok(v),
    }
}

/// `metadata` as given, else as stored, with `tags` in it when given (LiteLLM keeps them there).
pub(super) fn merged_metadata(
    given: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    stored: &str,
) -> String {
    let mut metadata = given.unwrap_or_else(|| from_json(stored));
    if let Some(tags) = tags {
        metadata.insert("tags".into(), Value::from(tags));
    }
    json_text(&metadata)
}

/// Pages are numbered from 1 and hold 1 to 100 rows (`size_field` names the size).
pub(super) fn check_page(page: i64, size: i64, size_field: &str) -> Result<(), ApiError> {
    if page < 1 {
        return Err(ApiError::invalid("page", "page: pages start at 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(ApiError::invalid(
            size_field,
            format!("{size_field}: between 1 and 100"),
        ));
    }
    Ok(())
}

pub(super) fn limit(value: Option<u64>) -> Option<i64> {
    value.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// A budget period: its text and first reset time, or 400 naming the field.
pub(super) fn budget_period(text: &str, now: i64) -> Result<(String, Option<i64>), ApiError> {
    let reset = first_reset(Some(text), now)
        .map_err(|e| ApiError::invalid("budget_duration", format!("budget_duration: {e}")))?;
    Ok((text.to_string(), reset))
}

impl KeyFields {
    /// The key `/user/new` makes for a user.
    pub(super) fn for_user(
        user_id: &str,
        models: Option<Vec<String>>,
        duration: Option<String>,
        key_alias: Option<String>,
        aliases: Option<BTreeMap<String, String>>,
    ) -> KeyFields {
        KeyFields {
            user_id: Some(user_id.to_string()),
            models,
            duration,
            key_alias,
            aliases,
            ..KeyFields::default()
        }
    }

    /// Checks the fields and writes them into `row`.
    async fn apply(
        self,
        conn: &mut AnyConnection,
        row: &mut KeyRow,
        now: i64,
    ) -> Result<(), ApiError> {
        if let Some(d) = &self.duration {
            let period = parse_period(d)
                .map_err(|e| ApiError::invalid("duration", format!("duration: {e}")))?;
            row.expires = Some(expiry(period, now));
        }
        if let Some(d) = &self.budget_duration {
            let (text, reset) = budget_period(d, now)?;
            row.budget_duration = Some(text);
            row.budget_reset_at = reset;
        }
        if let Some(v) = money("max_budget", self.max_budget)? {
            row.max_budget = Some(v);
        }
        if let Some(v) = money("soft_budget", self.soft_budget)? {
            row.soft_budget = Some(v);
        }
        if let Some(v) = money("spend", self.spend)? {
            row.spend = v;
        }
        if let Some(team) = &self.team_id {
            if teams::get(conn, team, now).await?.is_none() {
                return Err(ApiError::invalid(
                    "team_id",
                    format!("team_id: there is no team {team:?}; create it with /team/new first"),
                ));
            }
            row.team_id = Some(team.clone());
        }
        if let Some(alias) = &self.key_alias {
            let others = keys::tokens_by_alias(conn, alias).await?;
            if others.iter().any(|t| *t != row.token) {
                return Err(ApiError::invalid(
                    "key_alias",
                    format!("key_alias: another key is already called {alias:?}"),
                ));
            }
            row.key_alias = Some(alias.clone());
        }
        if let Some(user) = self.user_id {
            row.user_id = Some(user);
        }
        if let Some(models) = &self.models {
            row.models = json_text(models);
        }
        if let Some(aliases) = &self.aliases {
            row.aliases = json_text(aliases);
        }
        row.metadata = merged_metadata(self.metadata, self.tags, &row.metadata);
        if self.max_parallel_requests.is_some() {
            row.max_parallel_requests = limit(self.max_parallel_requests);
        }
        if self.tpm_limit.is_some() {
            row.tpm_limit = limit(self.tpm_limit);
        }
        if self.rpm_limit.is_some() {
            row.rpm_limit = limit(self.rpm_limit);
        }
        if let Some(b) = self.blocked {
            row.blocked = flag(b);
        }
        Ok(())
    }
}

/// A key as LiteLLM shows it (`LiteLLM_VerificationToken`); `token`, the hash, in lists.
#[derive(Debug, Serialize)]
pub(super) struct KeyInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    key_name: Option<String>,
    key_alias: Option<String>,
    spend: f64,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    expires: Option<String>,
    models: Vec<String>,
    aliases: Map<String, Value>,
    config: Map<String, Value>,
    user_id: Option<String>,
    team_id: Option<String>,
    max_parallel_requests: Option<i64>,
    metadata: Map<String, Value>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    budget_duration: Option<String>,
    budget_reset_at: Option<String>,
    allowed_cache_controls: Vec<String>,
    permissions: Map<String, Value>,
    model_spend: Map<String, Value>,
    model_max_budget: Map<String, Value>,
    blocked: bool,
    created_at: String,
    updated_at: String,
}

pub(super) fn key_info(row: &KeyRow, with_token: bool) -> KeyInfo {
    KeyInfo {
        token: with_token.then(|| row.token.clone()),
        key_name: row.key_name.clone(),
        key_alias: row.key_alias.clone(),
        spend: row.spend,
        max_budget: row.max_budget,
        soft_budget: row.soft_budget,
        expires: row.expires.map(iso),
        models: from_json(&row.models),
        aliases: from_json(&row.aliases),
        config: Map::new(),
        user_id: row.user_id.clone(),
        team_id: row.team_id.clone(),
        max_parallel_requests: row.max_parallel_requests,
        metadata: from_json(&row.metadata),
        tpm_limit: row.tpm_limit,
        rpm_limit: row.rpm_limit,
        budget_duration: row.budget_duration.clone(),
        budget_reset_at: row.budget_reset_at.map(iso),
        allowed_cache_controls: Vec::new(),
        permissions: Map::new(),
        model_spend: Map::new(),
        model_max_budget: Map::new(),
        blocked: row.blocked != 0,
        created_at: iso(row.created_at),
        updated_at: iso(row.updated_at),
    }
}

/// The answer to a new or regenerated key: the key itself, once, with its record
/// (LiteLLM's `GenerateKeyResponse`; `token_id` is the hash).
pub(super) fn generated(key: &str, row: &KeyRow) -> Value {
    let mut out = Map::new();
    out.insert("key".into(), Value::from(key));
    out.insert("token_id".into(), Value::from(row.token.clone()));
    if let Ok(Value::Object(info)) = serde_json::to_value(key_info(row, false)) {
        out.extend(info);
    }
    Value::Object(out)
}

/// A fresh row for a new key.
pub(super) fn blank_row(key: &str, now: i64) -> KeyRow {
    KeyRow {
        token: keys::hash_key(key),
        key_name: Some(key_name(key)),
        models: "[]".into(),
        aliases: "{}".into(),
        metadata: "{}".into(),
        created_at: now,
        updated_at: now,
        ..KeyRow::default()
    }
}

/// Makes a key with `fields` in the caller's transaction; returns the key and its row.
pub(super) async fn create(
    conn: &mut AnyConnection,
    custom: Option<String>,
    fields: KeyFields,
    now: i64,
) -> Result<(String, KeyRow), ApiError> {
    let key = match custom {
        Some(k) if !k.starts_with("sk-") || k.len() < 8 => {
            return Err(ApiError::invalid(
                "key",
                "key: a key you choose must start with \"sk-\" and be at least 8 characters",
            ))
        }
        Some(k) => k,
        None => new_key()?,
    };
    let mut row = blank_row(&key, now);
    if keys::get(conn, &row.token, now).await?.is_some() {
        return Err(ApiError::conflict("key", "key: this key exists already"));
    }
    fields.apply(conn, &mut row, now).await?;
    keys::insert(conn, &row).await?;
    Ok((key, row))
}

impl KeyFields {
    /// litellm_settings.default_key_generate_params, as key fields (checked at startup).
    pub fn defaults(config: &switchyard_config::ProxyConfig) -> Result<KeyFields, String> {
        match &config.litellm_settings.default_key_generate_params {
            None => Ok(KeyFields::default()),
            Some(d) => serde_json::from_value(Value::Object(d.clone()))
                .map_err(|e| format!("litellm_settings.default_key_generate_params: {e}")),
        }
    }

    /// What the request leaves out, from `defaults`.
    fn or(self, d: KeyFields) -> KeyFields {
        KeyFields {
            duration: self.duration.or(d.duration),
            models: self.models.or(d.models),
            max_budget: self.max_budget.or(d.max_budget),
            soft_budget: self.soft_budget.or(d.soft_budget),
            team_id: self.team_id.or(d.team_id),
            max_parallel_requests: self.max_parallel_requests.or(d.max_parallel_requests),
            metadata: self.metadata.or(d.metadata),
            tpm_limit: self.tpm_limit.or(d.tpm_limit),
            rpm_limit: self.rpm_limit.or(d.rpm_limit),
            budget_duration: self.budget_duration.or(d.budget_duration),
            aliases: self.aliases.or(d.aliases),
            tags: self.tags.or(d.tags),
            ..self
        }
    }
}

/// `POST /key/generate`: the request's fields, else default_key_generate_params'.
pub async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(fields): Body<KeyFields>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let defaults = KeyFields::defaults(&state.config).map_err(ApiError::bad_request)?;
    let mut fields = fields.or(defaults);
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let (key, row) = create(&mut tx, fields.key.take(), fields, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(generated(&key, &row)))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    key: Option<String>,
}

/// `GET /key/info?key=`: the master key reads any key; a key reads its own.
pub async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<InfoQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store()?;
    let who = caller(&state.master_key, store, &headers).await?;
    let (shown, token) = match (&who, q.key) {
        (_, Some(k)) => (k.clone(), token_of(&k)),
        (Caller::Key(own), None) => (own.token.clone(), own.token.clone()),
        (Caller::Admin, None) => {
            return Err(ApiError::invalid(
                "key",
                "key: which key? e.g. /key/info?key=sk-...",
            ))
        }
    };
    if let Caller::Key(own) = &who {
        if own.token != token {
            return Err(ApiError::forbidden(
                "a key may read only its own info; use the master key for others",
            ));
        }
    }
    let mut conn = store.conn().await?;
    let row = keys::get(&mut conn, &token, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("key", "key: no such key"))?;
    Ok(Json(
        serde_json::json!({"key": shown, "info": key_info(&row, false)}),
    ))
}

/// `POST /key/update`: the fields given change; the others stay.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(mut fields): Body<KeyFields>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let key = fields
        .key
        .take()
        .ok_or_else(|| ApiError::invalid("key", "key: is required (the key to update)"))?;
    let store = state.store()?;
    let now = now_ms();
    let token = token_of(&key);
    let mut tx = store.begin().await?;
    let mut row = keys::get(&mut tx, &token, now)
        .await?
        .ok_or_else(|| ApiError::not_found("key", "key: no such key"))?;
    fields.apply(&mut tx, &mut row, now).await?;
    row.updated_at = now;
    keys::save(&mut tx, &token, &row).await?;
    changes::record(&mut tx, Kind::Key, std::slice::from_ref(&token), now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    let mut out = Map::new();
    out.insert("key".into(), Value::from(key));
    if let Ok(Value::Object(info)) = serde_json::to_value(key_info(&row, true)) {
        out.extend(info);
    }
    Ok(Json(Value::Object(out)))
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    keys: Option<Vec<String>>,
    key_aliases: Option<Vec<String>>,
}

/// `POST /key/delete`: by keys (or their hashes) or by aliases; all or none.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let (named, tokens) = match (req.keys, req.key_aliases) {
        (Some(ks), _) if !ks.is_empty() => {
            let tokens: Vec<String> = ks.iter().map(|k| token_of(k)).collect();
            for (key, token) in ks.iter().zip(&tokens) {
                if keys::get(&mut tx, token, now).await?.is_none() {
                    return Err(ApiError::not_found(
                        "keys",
                        format!("keys: no such key {}; nothing was deleted", shown_key(key)),
                    ));
                }
            }
            (ks, tokens)
        }
        (_, Some(aliases)) if !aliases.is_empty() => {
            let mut tokens = Vec::new();
            for alias in &aliases {
                let found = keys::tokens_by_alias(&mut tx, alias).await?;
                if found.is_empty() {
                    return Err(ApiError::not_found(
                        "key_aliases",
                        format!("key_aliases: no key is called {alias:?}; nothing was deleted"),
                    ));
                }
                tokens.extend(found);
            }
            (aliases, tokens)
        }
        _ => {
            return Err(ApiError::invalid(
                "keys",
                "keys: give the keys to delete (or key_aliases)",
            ))
        }
    };
    for token in &tokens {
        keys::delete(&mut tx, token).await?;
    }
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(serde_json::json!({"deleted_keys": named})))
}

/// A key in an error message: never a whole secret.
fn shown_key(key: &str) -> String {
    if key.starts_with("sk-") {
        key_name(key)
    } else {
        key.to_string()
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default = "first_page")]
    page: i64,
    #[serde(default = "ten")]
    size: i64,
    user_id: Option<String>,
    team_id: Option<String>,
    key_alias: Option<String>,
    #[serde(default)]
    return_full_object: bool,
}

fn first_page() -> i64 {
    1
}

fn ten() -> i64 {
    10
}

/// `GET /key/list`: hashes (or whole records with `return_full_object=true`), a page at a time.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    check_page(q.page, q.size, "size")?;
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let filter = keys::Filter {
        user_id: q.user_id,
        team_id: q.team_id,
        key_alias: q.key_alias,
    };
    let (rows, total) = keys::list(&mut conn, &filter, (q.page - 1) * q.size, q.size).await?;
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            if q.return_full_object {
                serde_json::to_value(key_info(r, true)).unwrap_or(Value::Null)
            } else {
                Value::from(r.token.clone())
            }
        })
        .collect();
    Ok(Json(serde_json::json!({
        "keys": keys,
        "total_count": total,
        "current_page": q.page,
        "total_pages": (total + q.size - 1) / q.size,
    })))
}

/// `POST /key/regenerate`: a new key for the same record (the old one stops working).
pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(mut fields): Body<KeyFields>,
) -> Result<Json<Value>, ApiError> {
    let key = fields
        .key
        .take()
        .ok_or_else(|| ApiError::invalid("key", "key: which key to regenerate?"))?;
    regenerate_key(state, headers, key, fields).await
}

/// `POST /key/{key}/regenerate`.
pub async fn regenerate_path(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Body(mut fields): Body<KeyFields>,
) -> Result<Json<Value>, ApiError> {
    fields.key = None;
    regenerate_key(state, headers, key, fields).await
}

async fn regenerate_key(
    state: AppState,
    headers: HeaderMap,
    key: String,
    mut fields: KeyFields,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let old = token_of(&key);
    let new = match fields.new_key.take() {
        Some(k) if !k.starts_with("sk-") || k.len() < 8 => {
            return Err(ApiError::invalid(
                "new_key",
                "new_key: must start with \"sk-\" (a key hash is not a key) and be at least 8 characters",
            ))
        }
        Some(k) => k,
        None => new_key()?,
    };
    let mut tx = store.begin().await?;
    let mut row = keys::get(&mut tx, &old, now)
        .await?
        .ok_or_else(|| ApiError::not_found("key", "key: no such key"))?;
    fields.apply(&mut tx, &mut row, now).await?;
    row.token = keys::hash_key(&new);
    if keys::get(&mut tx, &row.token, now).await?.is_some() {
        return Err(ApiError::conflict(
            "new_key",
            "new_key: this key exists already",
        ));
    }
    row.key_name = Some(key_name(&new));
    row.updated_at = now;
    keys::save(&mut tx, &old, &row).await?;
    changes::record(&mut tx, Kind::Key, &[old], now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(generated(&new, &row)))
}

#[derive(Deserialize)]
pub struct BlockRequest {
    key: String,
}

/// `POST /key/block`.
pub async fn block(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<BlockRequest>,
) -> Result<Json<KeyInfo>, ApiError> {
    set_blocked(state, headers, req.key, true).await
}

/// `POST /key/unblock`.
pub async fn unblock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<BlockRequest>,
) -> Result<Json<KeyInfo>, ApiError> {
    set_blocked(state, headers, req.key, false).await
}

async fn set_blocked(
    state: AppState,
    headers: HeaderMap,
    key: String,
    blocked: bool,
) -> Result<Json<KeyInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let token = token_of(&key);
    let mut tx = store.begin().await?;
    let mut row = keys::get(&mut tx, &token, now)
        .await?
        .ok_or_else(|| ApiError::not_found("key", "key: no such key"))?;
    row.blocked = flag(blocked);
    row.updated_at = now;
    keys::save(&mut tx, &token, &row).await?;
    changes::record(&mut tx, Kind::Key, &[token], now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(key_info(&row, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_are_long_random_and_named_by_their_tail() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-"));
        assert_eq!(a.len(), 3 + 43);
        assert!(a[3..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(key_name("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(shown_key("sk-secretsecret"), "sk-...cret");
    }
}
