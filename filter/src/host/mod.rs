//! Host glue: the root context reads the plugin configuration once and hands each request an
//! `Rc` of the role it plays; [`EnvoyHost`] is switchyard-core's `Host` on proxy-wasm calls.

mod gateway;
mod provider;

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, ContextType, LogLevel, Status};
use switchyard_config::{
    token_path, Auth, FilterConfig, TokenAnswer, SIDECAR_CLUSTER, TOKEN_KEY, VM_ID,
};
use switchyard_core::gateway::Gateway;
use switchyard_core::host::{CasMismatch, Host};
use switchyard_core::provider_role::ProviderRole;
use switchyard_core::ApiError;

pub enum Configured {
    Gateway(Rc<Gateway>),
    Provider(Rc<ProviderRole>),
}

#[derive(Default)]
pub struct Root {
    role: Option<Configured>,
    /// A deployment whose access token the sidecar mints (Vertex AI with a service account):
    /// this root context keeps the token in shared data fresh.
    token_for: Option<String>,
}

/// How soon the token is fetched again: soon while there is none, then well within its hour.
const TOKEN_RETRY: Duration = Duration::from_secs(2);
const TOKEN_REFRESH: Duration = Duration::from_secs(60);

impl Context for Root {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _: usize) {
        let Some(id) = &self.token_for else { return };
        let status = self.get_http_call_response_header(":status");
        let answer = self
            .get_http_call_response_body(0, body_size)
            .and_then(|b| serde_json::from_slice::<TokenAnswer>(&b).ok());
        match (status.as_deref(), answer) {
            (Some("200"), Some(answer)) => {
                let _ = hostcalls::set_shared_data(
                    &format!("{TOKEN_KEY}{id}"),
                    Some(answer.access_token.as_bytes()),
                    None,
                );
                self.set_tick_period(TOKEN_REFRESH);
            }
            _ => {
                log(
                    LogLevel::Warn,
                    &format!("no access token for deployment {id} from the sidecar yet (status {status:?}); see the sidecar's log"),
                );
                self.set_tick_period(TOKEN_RETRY);
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        match self.configure() {
            Ok(role) => {
                if let Configured::Provider(p) = &role {
                    if p.deployment().auth == Auth::GoogleServiceAccount {
                        self.token_for = Some(p.deployment().id.clone());
                        // The first fetch right away; on_tick paces the rest.
                        self.set_tick_period(Duration::from_millis(10));
                    }
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
        let Some(id) = &self.token_for else { return };
        let path = token_path(id);
        let call = self.dispatch_http_call(
            SIDECAR_CLUSTER,
            vec![
                (":method", "GET"),
                (":path", &path),
                (":authority", "switchyard-sidecar"),
            ],
            None,
            vec![],
            Duration::from_secs(25),
        );
        // Wait for the answer before asking again.
        self.set_tick_period(if call.is_ok() {
            TOKEN_REFRESH
        } else {
            TOKEN_RETRY
        });
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
        let bytes = self
            .get_plugin_configuration()
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

/// Answers with an OpenAI-shaped error from this filter.
pub fn send_error(ctx: &dyn HttpContext, err: &ApiError) {
    let retry_after = err.retry_after_s.map(|s| s.to_string());
    let mut headers = vec![("content-type", "application/json")];
    if let Some(s) = &retry_after {
        headers.push(("retry-after", s.as_str()));
    }
    ctx.send_http_response(u32::from(err.status), headers, Some(&err.body()));
}

/// Replaces a response that has no body with a local reply carrying `body`, keeping the
/// headers that are not about the body's framing.
pub fn reply(
    ctx: &dyn HttpContext,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Action {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':') && n != "content-length" && n != "transfer-encoding")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    ctx.send_http_response(u32::from(status), headers, Some(body));
    Action::Pause
}

/// A property as UTF-8 text.
pub fn property_string(ctx: &dyn Context, path: Vec<&str>) -> Option<String> {
    ctx.get_property(path)
        .and_then(|b: Bytes| String::from_utf8(b).ok())
}

/// proxy-wasm wants borrowed pairs.
pub fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}
