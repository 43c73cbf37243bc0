//! LiteLLM's teams: `/team/new`, `/team/info`, `/team/update`, `/team/delete`, `/team/list`,
//! `/team/member_add`, `/team/member_delete`. A team's budget, models and block bound every
//! key of the team; a change to any of them reaches the gateways through the change log.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::auth::require_admin;
use super::error::ApiError;
use super::extract::{parse, Body, Params};
use super::keys::{budget_period, key_info, limit, merged_metadata, money};
use super::users::{blank_user, chosen_id, new_id, user_info};
use super::AppState;
use crate::store::changes::{self, Kind};
use crate::store::keys as key_store;
use crate::store::teams::{self as store_teams, MemberRow, TeamRow};
use crate::store::time::{iso, now_ms};
use crate::store::users as user_store;
use crate::store::{flag, from_json, json_text, StoreError};

/// A member as LiteLLM shows it in `members_with_roles`.
#[derive(Debug, Serialize)]
struct MemberInfo {
    user_id: String,
    user_email: Option<String>,
    role: String,
}

/// A team as LiteLLM shows it (`LiteLLM_TeamTable`).
#[derive(Debug, Serialize)]
pub(super) struct TeamInfo {
    team_id: String,
    team_alias: Option<String>,
    models: Vec<String>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    spend: f64,
    budget_duration: Option<String>,
    budget_reset_at: Option<String>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    metadata: Map<String, Value>,
    blocked: bool,
    admins: Vec<String>,
    members: Vec<String>,
    members_with_roles: Vec<MemberInfo>,
    created_at: String,
    updated_at: String,
}

pub(super) fn team_info(t: &TeamRow, members: &[MemberRow]) -> TeamInfo {
    TeamInfo {
        team_id: t.team_id.clone(),
        team_alias: t.team_alias.clone(),
        models: from_json(&t.models),
        max_budget: t.max_budget,
        soft_budget: t.soft_budget,
        spend: t.spend,
        budget_duration: t.budget_duration.clone(),
        budget_reset_at: t.budget_reset_at.map(iso),
        tpm_limit: t.tpm_limit,
        rpm_limit: t.rpm_limit,
        max_parallel_requests: t.max_parallel_requests,
        metadata: from_json(&t.metadata),
        blocked: t.blocked != 0,
        admins: Vec::new(),
        members: Vec::new(),
        members_with_roles: members
            .iter()
            .map(|m| MemberInfo {
                user_id: m.user_id.clone(),
                user_email: None,
                role: m.role.clone(),
            })
            .collect(),
        created_at: iso(t.created_at),
        updated_at: iso(t.updated_at),
    }
}

/// LiteLLM's `team_memberships`: a member's spend and budget within the team.
fn membership(m: &MemberRow) -> Value {
    serde_json::json!({
        "user_id": m.user_id,
        "team_id": m.team_id,
        "spend": m.spend,
        "budget_id": null,
        "litellm_budget_table": m.max_budget_in_team.map(|b| serde_json::json!({"max_budget": b})),
    })
}

/// The fields of a team a request may set. Absent: unchanged.
#[derive(Debug, Default, Deserialize)]
pub struct TeamFields {
    team_alias: Option<String>,
    models: Option<Vec<String>>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    budget_duration: Option<String>,
    tpm_limit: Option<u64>,
    rpm_limit: Option<u64>,
    max_parallel_requests: Option<u64>,
    metadata: Option<Map<String, Value>>,
    blocked: Option<bool>,
    /// Kept in metadata.tags, as LiteLLM does.
    tags: Option<Vec<String>>,
}

impl TeamFields {
    fn apply(self, t: &mut TeamRow, now: i64) -> Result<(), ApiError> {
        if let Some(d) = &self.budget_duration {
            let (text, reset) = budget_period(d, now)?;
            t.budget_duration = Some(text);
            t.budget_reset_at = reset;
        }
        if let Some(v) = money("max_budget", self.max_budget)? {
            t.max_budget = Some(v);
        }
        if let Some(v) = money("soft_budget", self.soft_budget)? {
            t.soft_budget = Some(v);
        }
        if let Some(alias) = self.team_alias {
            t.team_alias = Some(alias);
        }
        if let Some(models) = &self.models {
            t.models = json_text(models);
        }
        t.metadata = merged_metadata(self.metadata, self.tags, &t.metadata);
        if self.tpm_limit.is_some() {
            t.tpm_limit = limit(self.tpm_limit);
        }
        if self.rpm_limit.is_some() {
            t.rpm_limit = limit(self.rpm_limit);
        }
        if self.max_parallel_requests.is_some() {
            t.max_parallel_requests = limit(self.max_parallel_requests);
        }
        if let Some(b) = self.blocked {
            t.blocked = flag(b);
        }
        Ok(())
    }
}

/// A member to add: by user_id or user_email, with a role.
#[derive(Debug, Deserialize)]
pub struct Member {
    user_id: Option<String>,
    user_email: Option<String>,
    #[serde(default = "user_role")]
    role: String,
}

fn user_role() -> String {
    "user".into()
}

/// One member or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Members {
    One(Member),
    Many(Vec<Member>),
}

/// Adds a member; a user not known yet is created (as LiteLLM does). Returns the user id.
async fn add_member(
    conn: &mut AnyConnection,
    team_id: &str,
    member: &Member,
    budget: Option<f64>,
    field: &str,
    now: i64,
) -> Result<String, ApiError> {
    if member.role != "admin" && member.role != "user" {
        return Err(ApiError::invalid(
            &format!("{field}.role"),
            format!("{field}.role: \"admin\" or \"user\", not {:?}", member.role),
        ));
    }
    let by_email = match &member.user_email {
        Some(email) => user_store::id_by_email(conn, email).await?,
        None => None,
    };
    let user_id = match (&member.user_id, by_email) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => id,
        (None, None) if member.user_email.is_some() => new_id()?,
        (None, None) => {
            return Err(ApiError::invalid(
                &format!("{field}.user_id"),
                format!("{field}: give the member's user_id or user_email"),
            ))
        }
    };
    if user_store::get(conn, &user_id, now).await?.is_none() {
        let mut user = blank_user(user_id.clone(), now);
        user.user_email = member.user_email.clone();
        user.user_role = Some("internal_user".into());
        user_store::insert(conn, &user).await?;
    }
    store_teams::upsert_member(
        conn,
        &MemberRow {
            team_id: team_id.to_string(),
            user_id: user_id.clone(),
            role: member.role.clone(),
            max_budget_in_team: budget,
            spend: 0.0,
            created_at: now,
        },
    )
    .await?;
    Ok(user_id)
}

#[derive(Deserialize)]
pub struct NewRequest {
    team_id: Option<String>,
    #[serde(default)]
    members_with_roles: Vec<Member>,
}

/// `POST /team/new`.
pub async fn new(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<TeamInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: NewRequest = parse(&body)?;
    let fields: TeamFields = parse(&body)?;
    let store = state.store()?;
    let now = now_ms();
    let team_id = chosen_id("team_id", req.team_id)?;
    let mut tx = store.begin().await?;
    if store_teams::get(&mut tx, &team_id, now).await?.is_some() {
        return Err(ApiError::conflict(
            "team_id",
            format!("team_id: team {team_id:?} exists already"),
        ));
    }
    let mut team = TeamRow {
        team_id: team_id.clone(),
        models: "[]".into(),
        metadata: "{}".into(),
        created_at: now,
        updated_at: now,
        ..TeamRow::default()
    };
    fields.apply(&mut team, now)?;
    store_teams::insert(&mut tx, &team).await?;
    for (i, m) in req.members_with_roles.iter().enumerate() {
        add_member(
            &mut tx,
            &team_id,
            m,
            None,
            &format!("members_with_roles[{i}]"),
            now,
        )
        .await?;
    }
    let members = store_teams::members(&mut tx, &team_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(team_info(&team, &members)))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    team_id: Option<String>,
}

/// `GET /team/info?team_id=`: the team, its keys and its members' spend.
pub async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<InfoQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let team_id = q
        .team_id
        .ok_or_else(|| ApiError::invalid("team_id", "team_id: which team?"))?;
    let store = state.store()?;
    let now = now_ms();
    let mut conn = store.conn().await?;
    let team = store_teams::get(&mut conn, &team_id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("team_id", format!("team_id: no team {team_id:?}")))?;
    let members = store_teams::members(&mut conn, &team_id).await?;
    let keys = team_keys(&mut conn, &team_id, now).await?;
    Ok(Json(serde_json::json!({
        "team_id": team_id,
        "team_info": team_info(&team, &members),
        "keys": keys,
        "team_memberships": members.iter().map(membership).collect::<Vec<_>>(),
    })))
}

async fn team_keys(
    conn: &mut AnyConnection,
    team_id: &str,
    now: i64,
) -> Result<Vec<Value>, ApiError> {
    let mut keys = Vec::new();
    for token in key_store::tokens_of_team(conn, team_id).await? {
        if let Some(row) = key_store::get(conn, &token, now).await? {
            keys.push(serde_json::to_value(key_info(&row, true)).unwrap_or(Value::Null));
        }
    }
    Ok(keys)
}

#[derive(Deserialize)]
pub struct UpdateRequest {
    team_id: String,
}

/// `POST /team/update`: the fields given change; the team's keys are refreshed everywhere.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<TeamInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: UpdateRequest = parse(&body)?;
    let fields: TeamFields = parse(&body)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut team = store_teams::get(&mut tx, &req.team_id, now)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("team_id", format!("team_id: no team {:?}", req.team_id))
        })?;
    fields.apply(&mut team, now)?;
    team.updated_at = now;
    store_teams::save(&mut tx, &team).await?;
    let tokens = key_store::tokens_of_team(&mut tx, &req.team_id).await?;
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    let members = store_teams::members(&mut tx, &req.team_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(team_info(&team, &members)))
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    team_ids: Vec<String>,
}

/// `POST /team/delete`: the teams, their memberships and their keys; all or none. Answers how
/// many were deleted.
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
    for id in &req.team_ids {
        if store_teams::get(&mut tx, id, now).await?.is_none() {
            return Err(ApiError::not_found(
                "team_ids",
                format!("team_ids: no team {id:?}; nothing was deleted"),
            ));
        }
        tokens.extend(key_store::tokens_of_team(&mut tx, id).await?);
    }
    for token in &tokens {
        key_store::delete(&mut tx, token).await?;
    }
    for id in &req.team_ids {
        store_teams::delete(&mut tx, id).await?;
    }
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(Value::from(req.team_ids.len())))
}

#[derive(Deserialize)]
pub struct ListQuery {
    user_id: Option<String>,
}

/// `GET /team/list` (of a member with `?user_id=`): each team with its keys and memberships.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut conn = store.conn().await?;
    let mut out = Vec::new();
    for t in store_teams::list(&mut conn, q.user_id.as_deref()).await? {
        let team = store_teams::get(&mut conn, &t.team_id, now)
            .await?
            .unwrap_or(t);
        let members = store_teams::members(&mut conn, &team.team_id).await?;
        let mut info = match serde_json::to_value(team_info(&team, &members)) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        info.insert(
            "team_memberships".into(),
            Value::from(members.iter().map(membership).collect::<Vec<_>>()),
        );
        info.insert(
            "keys".into(),
            Value::from(team_keys(&mut conn, &team.team_id, now).await?),
        );
        out.push(Value::Object(info));
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct MemberAddRequest {
    team_id: String,
    member: Members,
    max_budget_in_team: Option<f64>,
}

/// `POST /team/member_add`: one member or several.
pub async fn member_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<MemberAddRequest>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let budget = money("max_budget_in_team", req.max_budget_in_team)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let team = store_teams::get(&mut tx, &req.team_id, now)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("team_id", format!("team_id: no team {:?}", req.team_id))
        })?;
    let members = match &req.member {
        Members::One(m) => vec![(m, "member".to_string())],
        Members::Many(ms) => ms
            .iter()
            .enumerate()
            .map(|(i, m)| (m, format!("member[{i}]")))
            .collect(),
    };
    let mut updated_users = Vec::new();
    let mut tokens = Vec::new();
    for (m, field) in members {
        let user_id = add_member(&mut tx, &req.team_id, m, budget, &field, now).await?;
        tokens.extend(key_store::tokens_of_user(&mut tx, &user_id, Some(&req.team_id)).await?);
        if let Some(u) = user_store::get(&mut tx, &user_id, now).await? {
            let teams = user_store::team_ids(&mut tx, &user_id).await?;
            updated_users.push(user_info(&u, teams));
        }
    }
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    let all = store_teams::members(&mut tx, &req.team_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    let mut out = match serde_json::to_value(team_info(&team, &all)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    out.insert(
        "updated_users".into(),
        serde_json::to_value(updated_users).unwrap_or(Value::Null),
    );
    out.insert(
        "updated_team_memberships".into(),
        Value::from(all.iter().map(membership).collect::<Vec<_>>()),
    );
    Ok(Json(Value::Object(out)))
}

#[derive(Deserialize)]
pub struct MemberDeleteRequest {
    team_id: String,
    user_id: Option<String>,
    user_email: Option<String>,
}

/// `POST /team/member_delete`: by user_id or user_email.
pub async fn member_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<MemberDeleteRequest>,
) -> Result<Json<TeamInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let team = store_teams::get(&mut tx, &req.team_id, now)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("team_id", format!("team_id: no team {:?}", req.team_id))
        })?;
    let user_id = match (&req.user_id, &req.user_email) {
        (Some(id), _) => id.clone(),
        (None, Some(email)) => user_store::id_by_email(&mut tx, email)
            .await?
            .ok_or_else(|| {
                ApiError::not_found("user_email", format!("user_email: no user has {email:?}"))
            })?,
        (None, None) => {
            return Err(ApiError::invalid(
                "user_id",
                "user_id: which member? give user_id or user_email",
            ))
        }
    };
    if !store_teams::delete_member(&mut tx, &req.team_id, &user_id).await? {
        return Err(ApiError::not_found(
            "user_id",
            format!(
                "user_id: {user_id:?} is not a member of team {:?}",
                req.team_id
            ),
        ));
    }
    let tokens = key_store::tokens_of_user(&mut tx, &user_id, Some(&req.team_id)).await?;
    changes::record(&mut tx, Kind::Key, &tokens, now).await?;
    let members = store_teams::members(&mut tx, &req.team_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(team_info(&team, &members)))
}
