//! Host glue: the root context reads the plugin configuration once and hands each request an
//! `Rc` of the role it plays; [`EnvoyHost`] is switchyard-core's `Host` on proxy-wasm calls.

mod calls;
mod gateway;
mod provider;

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, Status};
use switchyard_config::{Auth, FilterConfig, CACHE_QUEUE, SPEND_QUEUE, VM_ID};
use switchyard_core::feeds::{Call, GatewayFeeds, TokenFeed};
use switchyard_core::gateway::Gateway;
use switchyard_core::host::{CasMismatch, Host};
use switchyard_core::provider_role::ProviderRole;
use switchyard_core::ApiError;

use calls::Failed;

pub enum Configured {
    Gateway(Rc<Gateway>),
    Provider(Rc<ProviderRole>),
}

/// What a root context keeps running between requests.
enum Feeds {
    None,
    /// The gateway's: spend to the sidecar, changes from it.
    Gateway(GatewayFeeds),
    /// A provider role whose access token the sidecar mints.
    Token(TokenFeed),
}

pub struct Root {
    role: Option<Configured>,
    feeds: Feeds,
}

impl Default for Root {
    fn default() -> Self {
        Root {
            role: None,
            feeds: Feeds::None,
        }
    }
}

/// How often the feeds are looked at.
const TICK: Duration = Duration::from_millis(200);

impl Root {
    /// Makes the feeds' calls; tells the feeds the tokens.
    fn dispatch(&mut self, calls: Vec<Call>) {
        for call in calls {
            let token = calls::sidecar(
                call.method,
                &call.path,
                call.body.as_deref(),
                call.timeout_ms,
            )
            .ok();
            match &mut self.feeds {
                Feeds::Gateway(f) => f.sent(call.kind, token, &EnvoyHost),
                Feeds::Token(f) => f.sent(token, &EnvoyHost),
                Feeds::None => {}
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let status = calls::call_response_status();
        let body = calls::call_response_body(body_size).unwrap_or_default();
        let next = match &mut self.feeds {
            Feeds::Gateway(f) => f.on_answer(token, status, &body, &EnvoyHost),
            Feeds::Token(f) => {
                if let Err(message) = f.on_answer(token, status, &body, &EnvoyHost) {
                    log(LogLevel::Warn, &message);
                }
                Vec::new()
            }
            Feeds::None => Vec::new(),
        };
        self.dispatch(next);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        match self.configure() {
            Ok(role) => {
                self.feeds = match &role {
                    Configured::Gateway(g) => {
                        g.prepare(&EnvoyHost);
                        // Where the provider roles put spend events (one queue per Envoy
                        // process; a second gateway context finds it there).
                        for queue in [SPEND_QUEUE, CACHE_QUEUE] {
                            if let Err(s) = hostcalls::register_shared_queue(queue) {
                                log(
                                    LogLevel::Error,
                                    &format!("cannot open the shared queue {queue}: {s:?}"),
                                );
                            }
                        }
                        Feeds::Gateway(GatewayFeeds::new(g.fleet_limits()))
                    }
                    Configured::Provider(p)
                        if p.deployment().auth == Auth::GoogleServiceAccount =>
                    {
                        Feeds::Token(TokenFeed::new(&p.deployment().id))
                    }
                    Configured::Provider(_) => Feeds::None,
                };
                if !matches!(self.feeds, Feeds::None) {
                    calls::set_tick_period(TICK);
                }
                self.role = Some(role);
                true
            }
            Err(e) => {
                // Returning false makes Envoy refuse the configuration, with this reason in its log.
                log(LogLevel::Error, &format!("bad configuration: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let calls = match &mut self.feeds {
            Feeds::Gateway(f) => {
                let calls = f.on_tick(&EnvoyHost);
                if let Some(warning) = f.take_warning() {
                    log(LogLevel::Warn, &warning);
                }
                calls
            }
            Feeds::Token(f) => f.on_tick(&EnvoyHost).into_iter().collect(),
            Feeds::None => Vec::new(),
        };
        self.dispatch(calls);
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        match self.role.as_ref()? {
            Configured::Gateway(g) => Some(Box::new(gateway::GatewayHttp::new(Rc::clone(g)))),
            Configured::Provider(p) => Some(Box::new(provider::ProviderHttp::new(Rc::clone(p)))),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    fn configure(&self) -> Result<Configured, String> {
        let bytes = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        )
        .ok()
        .flatten()
        .ok_or("the plugin configuration is empty")?;
        let cfg: FilterConfig = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the plugin configuration is not Switchyard's: {e}"))?;
        let env = |name: &str| std::env::var(name).ok();
        Ok(match cfg {
            FilterConfig::Gateway(cfg) => {
                let master_key = cfg.master_key_env.as_deref().and_then(env);
                let gateway = Gateway::new(cfg, master_key.as_deref())?;
                if gateway.is_open() {
                    log(
                        LogLevel::Info,
                        "no master_key set: the gateway is open to anyone who can reach it",
                    );
                }
                Configured::Gateway(Rc::new(gateway))
            }
            FilterConfig::Provider(cfg) => {
                Configured::Provider(Rc::new(ProviderRole::new(*cfg, env)))
            }
        })
    }
}

/// switchyard-core's view of Envoy: the clock and shared data.
pub struct EnvoyHost;

impl Host for EnvoyHost {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Some((value, cas)),
            _ => None,
        }
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), CasMismatch> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Err(Status::CasMismatch) => Err(CasMismatch),
            // Any other failure: the state is advisory, carry on.
            _ => Ok(()),
        }
    }

    fn enqueue(&self, queue: &str, item: &[u8]) -> bool {
        match hostcalls::resolve_shared_queue(VM_ID, queue) {
            Ok(Some(id)) => hostcalls::enqueue_shared_queue(id, Some(item)).is_ok(),
            _ => false,
        }
    }

    fn dequeue(&self, queue: &str) -> Option<Vec<u8>> {
        let id = hostcalls::resolve_shared_queue(VM_ID, queue).ok()??;
        hostcalls::dequeue_shared_queue(id).ok()?
    }
}

pub fn log(level: LogLevel, message: &str) {
    // Logging only fails when the host is gone; nothing useful to do then.
    let _ = hostcalls::log(level, message);
}

/// A host call that failed, in Envoy's log.
pub fn log_failure(e: &Failed) {
    log(LogLevel::Error, &e.to_string());
}

/// The result of a host call the request can do without, its failure logged.
pub fn logged<T>(r: Result<T, Failed>) -> Option<T> {
    r.map_err(|e| log_failure(&e)).ok()
}

/// A host call the request cannot do without failed: logged, and the client's 500.
pub fn internal(e: Failed) -> ApiError {
    log_failure(&e);
    ApiError::internal(format!(
        "Switchyard could not handle this request ({e}). Retry; if it persists, check Envoy's log."
    ))
}

/// Answers with an OpenAI-shaped error from this filter.
pub fn send_error(err: &ApiError, dialect: switchyard_config::Dialect) {
    let extra = err.response_headers();
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
    let body = switchyard_core::dialects::error_body(dialect, err);
    if let Err(e) = calls::send_response(err.status, headers, &body) {
        log_failure(&e);
    }
}

/// Replaces a response that has no body with a local reply carrying `body`, keeping the
/// headers that are not about the body's framing.
pub fn reply(status: u16, headers: &[(String, String)], body: &[u8]) -> Action {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':') && n != "content-length" && n != "transfer-encoding")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Err(e) = calls::send_response(status, headers, body) {
        log_failure(&e);
    }
    Action::Pause
}

/// A property as UTF-8 text.
pub fn property_string(path: Vec<&str>) -> Option<String> {
    calls::property(path).and_then(|b| String::from_utf8(b).ok())
}

/// proxy-wasm wants borrowed pairs.
pub fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}
