//! The sidecar HTTP service: readiness for the public `/health/readiness`, LiteLLM's management
//! API (`/key/...`, `/user/...`, `/team/...`, `/customer/...`, `/spend/...`, `/model/info`; the
//! gateway passes these paths through), the internal API under `/internal/v1/...` (reached
//! only through Envoy's sidecar cluster) and the built-in demo model under `/demo/v1`.

mod auth;
mod cache;
mod customers;
mod demo;
mod error;
mod extract;
#[cfg(test)]
mod fleet_tests;
mod health;
mod internal;
mod keys;
mod limits;
mod metrics;
mod models;
mod spend;
mod teams;
pub mod tokens;
mod ui;
mod users;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use switchyard_config::{ProxyConfig, LIMITS_SYNC_PATH, SEMANTIC_LOOKUP_PATH};
use tokio::net::TcpListener;

pub use auth::MasterKey;
pub use error::ApiError;
pub(crate) use spend::call_type;

use crate::store::Store;

/// The largest spend batch accepted, in bytes.
const SPEND_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What every handler can read.
#[derive(Clone)]
pub struct AppState {
    /// The loaded config.yaml.
    pub config: Arc<ProxyConfig>,
    /// Vertex AI access tokens minted from service accounts.
    pub tokens: Arc<tokens::Tokens>,
    /// Keys, users, teams, spend. None only where a test serves without one: the routes
    /// that need it then answer 503.
    pub store: Option<Arc<Store>>,
    /// What the management API checks callers against.
    pub master_key: MasterKey,
    /// Cached answers: in Redis when there is one, else in memory.
    pub cache: crate::cache::Answers,
    /// The semantic cache's index, and where it embeds prompts.
    pub semantic: Arc<crate::semantic::Semantic>,
    /// Redis, when configured: the shared cache, vectors and fleet rate limits.
    pub redis: Option<crate::redis::Redis>,
    /// LiteLLM's metrics, counted from the request events.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Envoy's admin (`http://127.0.0.1:9901`), whose statistics `/metrics` adds.
    pub envoy_admin: Option<String>,
    /// Where request events go besides the spend logs (LiteLLM's logging callbacks).
    pub callbacks: crate::callbacks::Callbacks,
    /// The gateway's public URL and master key: `/health` calls the deployments through it.
    pub gateway: Option<crate::semantic::Gateway>,
    /// The last background health check (background_health_checks).
    pub health: Arc<std::sync::Mutex<crate::health::Last>>,
}

impl AppState {
    /// The state for a config; fails when a deployment's service account cannot be read.
    pub fn new(config: ProxyConfig) -> Result<AppState, String> {
        let tokens = tokens::from_config(&config)?;
        let master_key = MasterKey::from_config(&config, &|name| std::env::var(name).ok());
        keys::KeyFields::defaults(&config)?;
        retention(&config)?;
        auth::use_key_header(&config);
        let track_end_users = config
            .litellm_settings
            .enable_end_user_cost_tracking_prometheus_only
            == Some(true);
        let metrics = crate::metrics::Metrics::new(track_end_users)
            .map_err(|e| format!("the metrics could not be set up: {e}"))?;
        Ok(AppState {
            config: Arc::new(config),
            tokens,
            store: None,
            master_key,
            cache: crate::cache::Answers::default(),
            semantic: Arc::default(),
            redis: None,
            metrics: Arc::new(metrics),
            envoy_admin: None,
            callbacks: crate::callbacks::Callbacks::default(),
            gateway: None,
            health: Arc::default(),
        })
    }

    /// The same state, starting its tasks on the current Tokio runtime: the config's logging
    /// callbacks, and the background health checks. Fails with what a callback lacks.
    pub fn start_tasks(mut self) -> Result<AppState, String> {
        self.callbacks = crate::callbacks::Callbacks::start(
            &self.config,
            &|name| std::env::var(name).ok(),
            self.metrics.callback_events(),
        )?;
        let gs = &self.config.general_settings;
        if let (Some(true), Some(gateway)) = (gs.background_health_checks, &self.gateway) {
            let interval = gs
                .health_check_interval
                .unwrap_or(crate::health::DEFAULT_INTERVAL_S)
                .max(1.0);
            tokio::spawn(crate::health::background(
                Arc::clone(&self.config),
                gateway.clone(),
                std::time::Duration::from_secs_f64(interval),
                Arc::clone(&self.health),
            ));
        }
        Ok(self)
    }

    /// The same state, adding Envoy's statistics from its admin at `url` to `/metrics`.
    pub fn with_envoy_admin(mut self, url: &str) -> AppState {
        self.envoy_admin = Some(url.to_string());
        self
    }

    /// The same state, keeping answers, vectors and rate-limit counts in `redis`.
    pub fn with_redis(mut self, redis: crate::redis::Redis) -> AppState {
        // cache_params type local keeps answers in memory, Redis or not (as LiteLLM).
        if self.config.cache_in_redis() {
            self.cache = crate::cache::Answers::new(Some(redis.clone()));
        }
        self.redis = Some(redis);
        self
    }

    /// The same state, embedding prompts for the semantic cache at the gateway's public
    /// `url` (with the master key, when the config has one).
    pub fn with_gateway(mut self, url: &str) -> AppState {
        let master_key = self
            .config
            .general_settings
            .master_key
            .as_ref()
            .and_then(|k| k.resolve(&|name| std::env::var(name).ok()))
            .filter(|k| !k.is_empty());
        let gateway = crate::semantic::Gateway {
            url: url.to_string(),
            master_key,
        };
        self.semantic = Arc::new(crate::semantic::Semantic::new(Some(gateway.clone())));
        self.gateway = Some(gateway);
        self
    }

    /// The same state, serving keys and spend from `store`.
    pub fn with_store(mut self, store: Store) -> AppState {
        self.store = Some(Arc::new(store));
        self
    }

    /// The store, or 503 when this sidecar runs without one.
    fn store(&self) -> Result<&Store, ApiError> {
        self.store.as_deref().ok_or_else(|| {
            ApiError::unavailable("this sidecar runs without a database: keys and spend are off")
        })
    }
}

/// All routes of the sidecar.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/readiness", get(health::readiness))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::scrape))
        .route("/metrics/", get(metrics::scrape))
        .route("/internal/v1/health", get(health::internal))
        .route("/internal/v1/token/{deployment}", get(tokens::token))
        .route("/internal/v1/keys/{token}", get(internal::key))
        .route("/internal/v1/customers/{id}", get(internal::customer))
        // A batch of spend events may be larger than axum's default 2 MB.
        .route(
            "/internal/v1/spend",
            post(internal::spend).layer(DefaultBodyLimit::max(SPEND_BODY_LIMIT)),
        )
        .route("/internal/v1/changes", get(internal::changes))
        .route(
            "/internal/v1/cache",
            post(cache::put).layer(DefaultBodyLimit::max(SPEND_BODY_LIMIT)),
        )
        .route("/internal/v1/cache/{key}", get(cache::get))
        .route(SEMANTIC_LOOKUP_PATH, post(cache::semantic_lookup))
        .route(LIMITS_SYNC_PATH, post(limits::sync))
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/list", get(keys::list))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/team/new", post(teams::new))
        .route("/team/info", get(teams::info))
        .route("/team/update", post(teams::update))
        .route("/team/delete", post(teams::delete))
        .route("/team/list", get(teams::list))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .merge(customers::routes("/customer"))
        .merge(customers::routes("/end_user"))
        .route("/spend/logs", get(spend::logs))
        .route("/global/spend", get(spend::global))
        .route("/global/spend/report", get(spend::report))
        .route("/model/info", get(models::info))
        .route("/v1/model/info", get(models::info))
        .route("/demo/v1/chat/completions", post(demo::chat_completions))
        .route("/demo/v1/completions", post(demo::completions))
        .route("/demo/v1/embeddings", post(demo::embeddings))
        .merge(ui::routes())
        .with_state(state)
}

/// Serves the sidecar on `listener` until `shutdown` completes, then lets in-flight requests
/// finish (the changes long-polls answer at once).
/// general_settings.maximum_spend_logs_retention_period and _interval (default 1d), in ms.
fn retention(config: &ProxyConfig) -> Result<Option<(i64, i64)>, String> {
    let gs = &config.general_settings;
    let ms = |field: &str, text: &str| {
        let period = crate::store::time::parse_period(text)
            .map_err(|e| format!("general_settings.{field}: {e}"))?;
        let now = crate::store::time::now_ms();
        Ok::<i64, String>((crate::store::time::expiry(period, now) - now).max(1000))
    };
    let Some(period) = gs.maximum_spend_logs_retention_period.as_deref() else {
        return Ok(None);
    };
    let keep = ms("maximum_spend_logs_retention_period", period)?;
    let every = match gs.maximum_spend_logs_retention_interval.as_deref() {
        Some(text) => ms("maximum_spend_logs_retention_interval", text)?,
        None => 86_400_000,
    };
    Ok(Some((keep, every)))
}

/// Deletes spend logs older than `keep` ms now and every `every` ms.
async fn prune_spend_logs(store: Arc<crate::store::Store>, keep: i64, every: i64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(every.unsigned_abs()));
    loop {
        tick.tick().await;
        let before = crate::store::time::now_ms() - keep;
        match crate::store::spend::delete_logs_before(&store, before).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("deleted {n} spend logs past maximum_spend_logs_retention_period")
            }
            Err(e) => tracing::warn!("could not delete old spend logs: {e}"),
        }
    }
}

pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("sidecar listening on http://{addr}");
    }
    if let (Ok(Some((keep, every))), Some(store)) = (retention(&state.config), &state.store) {
        tokio::spawn(prune_spend_logs(store.clone(), keep, every));
    }
    let store = state.store.clone();
    let shutdown = async move {
        shutdown.await;
        if let Some(store) = store {
            store.close();
        }
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
