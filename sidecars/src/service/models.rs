//! `GET /model/info` (and `/v1/model/info`): the config's deployments as LiteLLM shows them,
//! with no secret ever: litellm_params are copied from an allowlist (never api_key,
//! credentials or headers, which may hold keys).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_config::model::ModelEntry;

use super::auth::caller;
use super::error::ApiError;
use super::extract::Params;
use super::AppState;

#[derive(Deserialize)]
pub struct InfoQuery {
    /// Only this deployment.
    litellm_model_id: Option<String>,
}

fn put<T: serde::Serialize>(map: &mut Map<String, Value>, name: &str, value: &Option<T>) {
    if let Some(v) = value {
        if let Ok(v) = serde_json::to_value(v) {
            map.insert(name.into(), v);
        }
    }
}

fn entry_info(entry: &ModelEntry, id: &str) -> Value {
    let p = &entry.litellm_params;
    let mut params = Map::new();
    params.insert("model".into(), Value::from(p.model.clone()));
    if let Some(base) = &p.api_base {
        let urls = base.urls();
        let shown = match urls.as_slice() {
            [one] => Value::from(*one),
            many => Value::from(many.to_vec()),
        };
        params.insert("api_base".into(), shown);
    }
    put(&mut params, "api_version", &p.api_version);
    put(&mut params, "timeout", &p.timeout);
    put(&mut params, "stream_timeout", &p.stream_timeout);
    put(&mut params, "max_retries", &p.max_retries);
    put(&mut params, "rpm", &p.rpm);
    put(&mut params, "tpm", &p.tpm);
    put(&mut params, "weight", &p.weight);
    put(
        &mut params,
        "max_parallel_requests",
        &p.max_parallel_requests,
    );
    put(&mut params, "input_cost_per_token", &p.input_cost_per_token);
    put(
        &mut params,
        "output_cost_per_token",
        &p.output_cost_per_token,
    );
    let m = &entry.model_info;
    let mut info = Map::new();
    info.insert("id".into(), Value::from(id));
    info.insert("db_model".into(), Value::from(false));
    put(&mut info, "mode", &m.mode);
    put(&mut info, "base_model", &m.base_model);
    put(&mut info, "max_input_tokens", &m.max_input_tokens);
    put(&mut info, "max_tokens", &m.max_tokens);
    put(
        &mut info,
        "input_cost_per_token",
        &m.input_cost_per_token.or(p.input_cost_per_token),
    );
    put(
        &mut info,
        "output_cost_per_token",
        &m.output_cost_per_token.or(p.output_cost_per_token),
    );
    serde_json::json!({
        "model_name": entry.model_name,
        "litellm_params": params,
        "model_info": info,
    })
}

/// `GET /model/info`: for the master key and any valid key.
pub async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<InfoQuery>,
) -> Result<Json<Value>, ApiError> {
    caller(&state.master_key, state.store()?, &headers).await?;
    // The ids the gateway uses (x-litellm-model-id), generated where the config has none.
    let ids: Vec<String> = match state.config.resolve_deployments(("127.0.0.1", 0)) {
        Ok(resolved) => {
            let mut ids = vec![String::new(); state.config.model_list.len()];
            for r in resolved {
                if let Some(slot) = ids.get_mut(r.index) {
                    *slot = r.config.id;
                }
            }
            ids
        }
        Err(_) => Vec::new(),
    };
    let data: Vec<Value> = state
        .config
        .model_list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = ids
                .get(i)
                .filter(|id| !id.is_empty())
                .cloned()
                .or_else(|| e.model_info.id.clone())
                .unwrap_or_else(|| i.to_string());
            (id, e)
        })
        .filter(|(id, _)| q.litellm_model_id.as_deref().is_none_or(|want| want == id))
        .map(|(id, e)| entry_info(e, &id))
        .collect();
    Ok(Json(serde_json::json!({ "data": data })))
}
