//! The gateway role's callbacks (downstream, once per request).

use std::borrow::Cow;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use switchyard_config::{
    Endpoint, CLUSTER_HEADER, INTERNAL_HEADERS, REQUEST_INFO_PROPERTY, UPSTREAM_STATUS_HEADER,
};
use switchyard_core::gateway::{local_reply_error, Gateway, OnHeaders};
use switchyard_core::ApiError;

use super::{property_string, send_error};

pub struct GatewayHttp {
    gateway: Rc<Gateway>,
    /// Set while the request body is being read.
    endpoint: Option<Endpoint>,
    /// This filter answered itself: leave the response alone.
    answered: bool,
    /// An Envoy local reply whose body is replaced by this OpenAI-shaped one.
    replacement: Option<Vec<u8>>,
}

impl GatewayHttp {
    pub fn new(gateway: Rc<Gateway>) -> Self {
        GatewayHttp {
            gateway,
            endpoint: None,
            answered: false,
            replacement: None,
        }
    }

    fn answer(&mut self, status: u16, body: &[u8]) -> Action {
        self.answered = true;
        self.send_http_response(
            u32::from(status),
            vec![("content-type", "application/json")],
            Some(body),
        );
        Action::Pause
    }

    fn fail(&mut self, err: &ApiError) -> Action {
        self.answered = true;
        send_error(self, err);
        Action::Pause
    }
}

impl Context for GatewayHttp {}

impl HttpContext for GatewayHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // One host call for every header: cheaper than one per header we look at.
        let headers = self.get_http_request_headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        // Clients must not steer internal routing, nor Envoy's retries and timeouts.
        for (name, _) in &headers {
            if name.starts_with("x-envoy-") || INTERNAL_HEADERS.contains(&name.as_str()) {
                self.remove_http_request_header(name);
            }
        }
        let method = find(":method").unwrap_or_default();
        let path = find(":path").unwrap_or_default();
        let outcome = self
            .gateway
            .on_headers(method, path, |name| find(name).map(Cow::Borrowed));
        match outcome {
            OnHeaders::Respond(local) => self.answer(local.status, &local.body),
            OnHeaders::PassThrough => Action::Continue,
            OnHeaders::ReadBody(endpoint) if end_of_stream => {
                match self.gateway.on_body(endpoint, b"") {
                    Err(e) => self.fail(&e),
                    Ok(_) => self.fail(&ApiError::bad_request("The request has no body.")),
                }
            }
            OnHeaders::ReadBody(endpoint) => {
                self.endpoint = Some(endpoint);
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(endpoint) = self.endpoint else {
            return Action::Continue;
        };
        if body_size as u64 > self.gateway.max_request_bytes() {
            self.endpoint = None;
            return self.fail(&ApiError::too_large(self.gateway.max_request_bytes()));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.endpoint = None;
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match self.gateway.on_body(endpoint, &body) {
            Err(e) => self.fail(&e),
            Ok(routed) => {
                let info = match serde_json::to_vec(&routed.info) {
                    Ok(info) => info,
                    Err(e) => return self.fail(&ApiError::internal(e.to_string())),
                };
                self.set_property(vec![REQUEST_INFO_PROPERTY], Some(&info));
                self.set_http_request_header(CLUSTER_HEADER, Some(&routed.cluster));
                self.set_http_request_header(
                    "x-envoy-upstream-rq-timeout-ms",
                    Some(&routed.timeout_ms.to_string()),
                );
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        let headers = self.get_http_response_headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(original) = find(UPSTREAM_STATUS_HEADER) {
            self.set_http_response_header(":status", Some(original));
            self.remove_http_response_header(UPSTREAM_STATUS_HEADER);
            return Action::Continue;
        }
        let status: u16 = find(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        if status < 400 {
            return Action::Continue;
        }
        let details = property_string(self, vec!["response", "code_details"]).unwrap_or_default();
        if details == "via_upstream" {
            return Action::Continue;
        }
        // Envoy answered itself (timeout, refused connection, no healthy host): say it OpenAI's way.
        let err = local_reply_error(status, &details);
        self.set_http_response_header(":status", Some(&err.status.to_string()));
        self.set_http_response_header("content-type", Some("application/json"));
        self.remove_http_response_header("content-length");
        self.replacement = Some(err.body());
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
