//! LiteLLM's internal users: `/user/new`, `/user/info`, `/user/update`, `/user/delete`,
//! `/user/list`. A user's budget bounds every key of the user.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::auth::require_admin;
use super::error::ApiError;
use super::extract::{parse, Body, Params};
use super::keys::{
    budget_period, check_page, create, generated, key_info, limit, money, KeyFields,
};
use super::teams::team_info;
use super::AppState;
use crate::store::changes::{self, Kind};
use crate::store::keys as key_store;
use crate::store::teams::{self as team_store, MemberRow};
use crate::store::time::{iso, now_ms};
use crate::store::users::{self as store_users, UserRow};
use crate::store::{from_json, json_text, StoreError};

const ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];

/// A user as LiteLLM shows it (`LiteLLM_UserTable`).
#[derive(Debug, Serialize)]
pub(super) struct UserInfo {
    user_id: String,
    user_email: Option<String>,
    user_alias: Option<String>,
    user_role: Option<String>,
    teams: Vec<String>,
    models: Vec<String>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    spend: f64,
    budget_duration: Option<String>,
    budget_reset_at: Option<String>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    model_max_budget: Map<String, Value>,
    model_spend: Map<String, Value>,
    metadata: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

pub(super) fn user_info(u: &UserRow, teams: Vec<String>) -> UserInfo {
    UserInfo {
        user_id: u.user_id.clone(),
        user_email: u.user_email.clone(),
        user_alias: u.user_alias.clone(),
        user_role: u.user_role.clone(),
        teams,
        models: from_json(&u.models),
        max_budget: u.max_budget,
        soft_budget: u.soft_budget,
        spend: u.spend,
        budget_duration: u.budget_duration.clone(),
        budget_reset_at: u.budget_reset_at.map(iso),
        tpm_limit: u.tpm_limit,
        rpm_limit: u.rpm_limit,
        max_parallel_requests: u.max_parallel_requests,
        model_max_budget: Map::new(),
        model_spend: Map::new(),
        metadata: from_json(&u.metadata),
        created_at: iso(u.created_at),
        updated_at: iso(u.updated_at),
    }
}

/// The fields of a user a request may set. Absent: unchanged.
#[derive(Debug, Default, Deserialize)]
pub struct UserFields {
    user_email: Option<String>,
    user_alias: Option<String>,
    user_role: Option<String>,
    models: Option<Vec<String>>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    spend: Option<f64>,
    budget_duration: Option<String>,
    tpm_limit: Option<u64>,
    rpm_limit: Option<u64>,
    max_parallel_requests: Option<u64>,
    metadata: Option<Map<String, Value>>,
}

impl UserFields {
    async fn apply(
        self,
        conn: &mut AnyConnection,
        u: &mut UserRow,
        now: i64,
    ) -> Result<(), ApiError> {
        if let Some(role) = &self.user_role {
            if !ROLES.contains(&role.as_str()) {
                return Err(ApiError::invalid(
                    "user_role",
                    format!("user_role: {role:?} is not one of {}", ROLES.join(", ")),
                ));
            }
            u.user_role = Some(role.clone());
        }
        if let Some(email) = &self.user_email {
            if let Some(other) = store_users::id_by_email(conn, email).await? {
                if other != u.user_id {
                    return Err(ApiError::conflict(
                        "user_email",
                        format!("user_email: user {other:?} has this email already"),
                    ));
                }
            }
            u.user_email = Some(email.clone());
        }
        if let Some(d) = &self.budget_duration {
            let (text, reset) = budget_period(d, now)?;
            u.budget_duration = Some(text);
            u.budget_reset_at = reset;
        }
        if let Some(v) = money("max_budget", self.max_budget)? {
            u.max_budget = Some(v);
        }
        if let Some(v) = money("soft_budget", self.soft_budget)? {
            u.soft_budget = Some(v);
        }
        if let Some(v) = money("spend", self.spend)? {
            u.spend = v;
        }
        if let Some(alias) = self.user_alias {
            u.user_alias = Some(alias);
        }
        if let Some(models) = &self.models {
            u.models = json_text(models);
        }
        if let Some(m) = &self.metadata {
            u.metadata = json_text(m);
        }
        if self.tpm_limit.is_some() {
            u.tpm_limit = limit(self.tpm_limit);
        }
        if self.rpm_limit.is_some() {
            u.rpm_limit = limit(self.rpm_limit);
        }
        if self.max_parallel_requests.is_some() {
            u.max_parallel_requests = limit(self.max_parallel_requests);
        }
        Ok(())
    }
}

/// A team in `/user/new`'s `teams`: its id, or `{team_id, max_budget_in_team, user_role}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TeamRef {
    Id(String),
    Detailed {
        team_id: String,
        #[serde(default)]
        max_budget_in_team: Option<f64>,
        #[serde(default)]
        user_role: Option<String>,
    },
}

#[derive(Deserialize)]
pub struct NewRequest {
    user_id: Option<String>,
    #[serde(default)]
    teams: Vec<TeamRef>,
    /// LiteLLM makes a key for the new user unless this is false.
    #[serde(default = "yes")]
    auto_create_key: bool,
    /// For that key.
    duration: Option<String>,
    key_alias: Option<String>,
    aliases: Option<std::collections::BTreeMap<String, String>>,
}

fn yes() -> bool {
    true
}

/// The id the caller chose (not blank), else a new one.
pub(super) fn chosen_id(field: &str, given: Option<String>) -> Result<String, ApiError> {
    match given {
        Some(id) if id.trim().is_empty() => Err(ApiError::invalid(
            field,
            format!("{field}: must not be empty"),
        )),
        Some(id) => Ok(id),
        None => new_id(),
    }
}

/// A new id where the caller gave none (LiteLLM uses a UUID; any unique text will do).
pub(super) fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no randomness from the OS: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

pub(super) fn blank_user(user_id: String, now: i64) -> UserRow {
    UserRow {
        user_id,
        models: "[]".into(),
        metadata: "{}".into(),
        created_at: now,
        updated_at: now,
        ..UserRow::default()
    }
}

/// `POST /user/new`: the user, and (unless `auto_create_key: false`) a key of theirs.
pub async fn new(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: NewRequest = parse(&body)?;
    let fields: UserFields = parse(&body)?;
    let store = state.store()?;
    let now = now_ms();
    let user_id = chosen_id("user_id", req.user_id)?;
    let mut tx = store.begin().await?;
    if store_users::get(&mut tx, &user_id, now).await?.is_some() {
        return Err(ApiError::conflict(
            "user_id",
            format!("user_id: user {user_id:?} exists already"),
        ));
    }
    let mut user = blank_user(user_id.clone(), now);
    let models = fields.models.clone();
    fields.apply(&mut tx, &mut user, now).await?;
    store_users::insert(&mut tx, &user).await?;
    for (i, team) in req.teams.iter().enumerate() {
        let (team_id, budget, role) = match team {
            TeamRef::Id(id) => (id, None, None),
            TeamRef::Detailed {
                team_id,
                max_budget_in_team,
                user_role,
            } => (team_id, *max_budget_in_team, user_role.clone()),
        };
        if team_store::get(&mut tx, team_id, now).await?.is_none() {
            return Err(ApiError::invalid(
                &format!("teams[{i}]"),
                format!("teams[{i}]: there is no team {team_id:?}"),
            ));
        }
        team_store::upsert_member(
            &mut tx,
            &MemberRow {
                team_id: team_id.clone(),
                user_id: user_id.clone(),
                role: role.unwrap_or_else(|| "user".into()),
                max_budget_in_team: money("max_budget_in_team", budget)?,
                spend: 0.0,
                created_at: now,
            },
        )
        .await?;
    }
    let key = if req.auto_create_key {
        let fields =
            KeyFields::for_user(&user_id, models, req.duration, req.key_alias, req.aliases);
        Some(create(&mut tx, None, fields, now).await?)
    } else {
        None
    };
    let teams = store_users::team_ids(&mut tx, &user_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let mut out = match &key {
        Some((k, row)) => match generated(k, row) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    if let Ok(Value::Object(info)) = serde_json::to_value(user_info(&user, teams)) {
        out.extend(info);
    }
    Ok(Json(Value::Object(out)))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    user_id: Option<String>,
}

/// `GET /user/info?user_id=`: the user, their keys and their teams.
pub async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<InfoQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let user_id = q
        .user_id
        .ok_or_else(|| ApiError::invalid("user_id", "user_id: which user?"))?;
    let store = state.store()?;
    let now = now_ms();
    let mut conn = store.conn().await?;
    let user = store_users::get(&mut conn, &user_id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("user_id", format!("user_id: no user {user_id:?}")))?;
    let team_ids = store_users::team_ids(&mut conn, &user_id).await?;
    let mut keys = Vec::new();
    for token in key_store::tokens_of_user(&mut conn, &user_id, None).await? {
        if let Some(row) = key_store::get(&mut conn, &token, now).await? {
            keys.push(key_info(&row, true));
        }
    }
    let mut teams = Vec::new();
    for id in &team_ids {
        if let Some(team) = team_store::get(&mut conn, id, now).await? {
            let members = team_store::members(&mut conn, id).await?;
            teams.push(team_info(&team, &members));
        }
    }
    Ok(Json(serde_json::json!({
        "user_id": user_id,
        "user_info": user_info(&user, team_ids),
        "keys": keys,
        "teams": teams,
    })))
}

#[derive(Deserialize)]
pub struct UpdateRequest {
    user_id: Option<String>,
}

/// `POST /user/update`: by user_id (or user_email); the fields given change.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<UserInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: UpdateRequest = parse(&body)?;
    let fields: UserFields = parse(&body)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let user_id = match (&req.user_id, &fields.user_email) {
        (Some(id), _) => id.clone(),
        (None, Some(email)) => {
            store_users::id_by_email(&mut tx, email)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("user_email", format!("user_email: no user has {email:?}"))
                })?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "user_id",
                "user_id: which user? give user_id or user_email",
            ))
        }
    };
    let mut user = store_users::get(&mut tx, &user_id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("user_id", format!("user_id: no user {user_id:?}")))?;
    fields.apply(&mut tx, &mut user, now).await?;
    user.updated_at = now;
    store_users::save(&mut tx, &user).await?;
    // The user's budget is in every record of their keys.
    let tokens = key_store::tokens_of_user(&mut tx, &user_id, None).await?;
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    let teams = store_users::team_ids(&mut tx, &user_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(user_info(&user, teams)))
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    user_ids: Vec<String>,
}

/// `POST /user/delete`: the users and their keys; all or none. Answers how many were deleted,
/// as LiteLLM does.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut tokens = Vec::new();
    for id in &req.user_ids {
        if store_users::get(&mut tx, id, now).await?.is_none() {
            return Err(ApiError::not_found(
                "user_ids",
                format!("user_ids: no user {id:?}; nothing was deleted"),
            ));
        }
        tokens.extend(key_store::tokens_of_user(&mut tx, id, None).await?);
    }
    for token in &tokens {
        key_store::delete(&mut tx, token).await?;
    }
    for id in &req.user_ids {
        store_users::delete(&mut tx, id).await?;
    }
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(Value::from(req.user_ids.len())))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default = "first_page")]
    page: i64,
    #[serde(default = "page_size")]
    page_size: i64,
    /// Comma-separated ids.
    user_ids: Option<String>,
    role: Option<String>,
    team: Option<String>,
}

fn first_page() -> i64 {
    1
}

fn page_size() -> i64 {
    25
}

/// `GET /user/list`: a page of users, newest first.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    check_page(q.page, q.page_size, "page_size")?;
    let store = state.store()?;
    let now = now_ms();
    let mut conn = store.conn().await?;
    let filter = store_users::Filter {
        user_ids: q
            .user_ids
            .map(|ids| {
                ids.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        role: q.role,
        team: q.team,
    };
    let (rows, total) =
        store_users::list(&mut conn, &filter, (q.page - 1) * q.page_size, q.page_size).await?;
    let mut users = Vec::new();
    for row in rows {
        // Each user's period, started again if it ended.
        let row = store_users::get(&mut conn, &row.user_id, now)
            .await?
            .unwrap_or(row);
        let teams = store_users::team_ids(&mut conn, &row.user_id).await?;
        let key_count = key_store::tokens_of_user(&mut conn, &row.user_id, None)
            .await?
            .len();
        let mut info = match serde_json::to_value(user_info(&row, teams)) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        info.insert("key_count".into(), Value::from(key_count));
        users.push(Value::Object(info));
    }
    Ok(Json(serde_json::json!({
        "users": users,
        "total": total,
        "page": q.page,
        "page_size": q.page_size,
        "total_pages": (total + q.page_size - 1) / q.page_size,
    })))
}
