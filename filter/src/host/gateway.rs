//! The gateway role's callbacks (downstream, once per request and once per fallback pass).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use switchyard_config::{RequestInfo, REQUEST_INFO_PROPERTY};
use switchyard_core::gateway::{
    edits_response, on_response, Answered, Gateway, Local, OnHeaders, Pending,
};
use switchyard_core::host::Host;
use switchyard_core::router::rng::Rng;
use switchyard_core::ApiError;

use super::{pairs, property_string, reply, send_error, EnvoyHost};

pub struct GatewayHttp {
    gateway: Rc<Gateway>,
    /// The request headers as they arrived.
    headers: Vec<(String, String)>,
    /// Set while the request body is being read.
    pending: Option<Box<Pending>>,
    /// The request as routed, for the response's headers.
    info: Option<RequestInfo>,
    /// This filter answered itself: leave the response alone.
    answered: bool,
    /// A body replacing the response's (Envoy's own replies).
    replacement: Option<Vec<u8>>,
    /// Counted against global_max_parallel_requests.
    admitted: bool,
}

impl GatewayHttp {
    pub fn new(gateway: Rc<Gateway>) -> Self {
        GatewayHttp {
            gateway,
            headers: Vec::new(),
            pending: None,
            info: None,
            answered: false,
            replacement: None,
            admitted: false,
        }
    }

    fn answer(&mut self, local: &Local) -> Action {
        self.answered = true;
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(local.headers.iter().map(|(n, v)| (*n, v.as_str())));
        self.send_http_response(u32::from(local.status), headers, Some(&local.body));
        Action::Pause
    }

    fn fail(&mut self, err: &ApiError) -> Action {
        self.answered = true;
        self.pending = None;
        send_error(self, err);
        Action::Pause
    }
}

impl Context for GatewayHttp {
    // On done rather than on log: a request handed to a fallback group is recreated by
    // Envoy, and its first filter chain goes away without logging.
    fn on_done(&mut self) -> bool {
        if self.admitted {
            self.admitted = false;
            self.gateway.release(&EnvoyHost);
        }
        true
    }
}

impl HttpContext for GatewayHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // One host call for every header: cheaper than one per header we look at.
        self.headers = self.get_http_request_headers();
        match self.gateway.on_headers(&self.headers) {
            OnHeaders::Respond(local) => self.answer(&local),
            OnHeaders::PassThrough => Action::Continue,
            OnHeaders::ReadBody(pending) => {
                if !self.gateway.admit(&EnvoyHost, pending.replan.is_none()) {
                    return self.fail(&self.gateway.at_capacity());
                }
                self.admitted = true;
                if end_of_stream {
                    return self.fail(&ApiError::bad_request("The request has no body."));
                }
                self.pending = Some(pending);
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        if body_size as u64 > self.gateway.max_request_bytes() {
            return self.fail(&ApiError::too_large(self.gateway.max_request_bytes()));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(pending) = self.pending.take() else {
            return Action::Continue;
        };
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let mut rng = Rng::from_entropy();
        match self.gateway.on_body(&pending, &body, &EnvoyHost, &mut rng) {
            Err(e) => self.fail(&e),
            Ok(routed) => {
                let info = match serde_json::to_vec(&routed.info) {
                    Ok(info) => info,
                    Err(e) => return self.fail(&ApiError::internal(e.to_string())),
                };
                self.set_property(vec![REQUEST_INFO_PROPERTY], Some(&info));
                let edits = routed.request_edits(&self.headers);
                for name in &edits.remove {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &edits.set {
                    self.set_http_request_header(name, Some(value));
                }
                self.info = Some(routed.info);
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        // One header, not the map: most answers need nothing more.
        let status: u16 = self
            .get_http_response_header(":status")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if !edits_response(status) {
            return Action::Continue;
        }
        let headers = self.get_http_response_headers();
        let details = property_string(self, vec!["response", "code_details"]).unwrap_or_default();
        let edit = on_response(&Answered {
            status,
            headers: &headers,
            details: &details,
            info: self.info.as_ref(),
            now_ms: EnvoyHost.now_ms(),
        });
        let headers = edit.headers.apply(headers);
        if let (Some(body), true) = (&edit.body, end_of_stream) {
            // A headers-only response cannot be given a body: reply instead.
            let status = headers
                .iter()
                .find(|(n, _)| n == ":status")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(502);
            self.answered = true;
            return reply(self, status, &headers, body);
        }
        self.set_http_response_headers(pairs(&headers));
        self.replacement = edit.body;
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replacement.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if let Some(body) = self.replacement.take() {
            self.set_http_response_body(0, body_size, &body);
        }
        Action::Continue
    }
}
