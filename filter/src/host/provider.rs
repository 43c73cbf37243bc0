//! The provider role's callbacks (upstream, once per attempt).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use switchyard_config::{RequestInfo, METADATA_NAMESPACE, REQUEST_INFO_PROPERTY};
use switchyard_core::provider_role::{Attempt, HeaderEdits, ProviderRole, ResponsePlan};
use switchyard_core::ApiError;

use super::{property_string, send_error};

pub struct ProviderHttp {
    role: Rc<ProviderRole>,
    attempt: Option<Attempt>,
    plan: Option<ResponsePlan>,
    /// The provider's response headers, held while its body is buffered.
    response_headers: Vec<(String, String)>,
}

impl ProviderHttp {
    pub fn new(role: Rc<ProviderRole>) -> Self {
        ProviderHttp {
            role,
            attempt: None,
            plan: None,
            response_headers: Vec::new(),
        }
    }

    /// A local reply: Envoy never retries it, so only for what another deployment cannot fix.
    fn fail(&mut self, err: &ApiError) -> Action {
        self.attempt = None;
        send_error(self, err);
        Action::Pause
    }

    fn start(&self) -> Result<Attempt, ApiError> {
        let deployment = property_string(
            self,
            vec![
                "xds",
                "upstream_host_metadata",
                "filter_metadata",
                METADATA_NAMESPACE,
                "deployment",
            ],
        )
        .ok_or_else(|| {
            ApiError::internal("The upstream endpoint carries no Switchyard deployment metadata.")
        })?;
        let info: RequestInfo = self
            .get_property(vec![REQUEST_INFO_PROPERTY])
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                ApiError::internal("The request did not pass Switchyard's gateway filter.")
            })?;
        self.role.attempt(&deployment, info)
    }
}

impl Context for ProviderHttp {}

impl HttpContext for ProviderHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let attempt = match self.start() {
            Ok(a) => a,
            Err(e) => return self.fail(&e),
        };
        let edits = attempt.request_headers(self.role.owned_headers());
        let headers = edits.apply(self.get_http_request_headers());
        self.set_http_request_headers(pairs(&headers));
        self.attempt = Some(attempt);
        if end_of_stream {
            Action::Continue
        } else {
            // Hold the headers until the body is translated, to send its true content-length.
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(attempt) = &self.attempt else {
            return Action::Continue;
        };
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match attempt.request_body(&body) {
            Ok(new) => {
                self.set_http_request_header("content-length", Some(&new.len().to_string()));
                self.set_http_request_body(0, body_size, &new);
                Action::Continue
            }
            Err(e) => self.fail(&e),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.attempt.is_none() {
            return Action::Continue;
        }
        let headers = self.get_http_response_headers();
        let Some(attempt) = self.attempt.as_mut() else {
            return Action::Continue;
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let status: u16 = find(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        let plan = attempt.on_response_headers(status, find("content-type"));
        match plan {
            ResponsePlan::Stream => {
                let edits = HeaderEdits {
                    remove: vec!["content-length".into()],
                    set: attempt
                        .response_headers()
                        .into_iter()
                        .map(|(n, v)| (n.to_string(), v))
                        .collect(),
                };
                let headers = edits.apply(headers);
                self.set_http_response_headers(pairs(&headers));
                self.plan = Some(plan);
                Action::Continue
            }
            ResponsePlan::Buffer if end_of_stream => {
                // Nothing to buffer: at least give the router the status it must act on.
                let finished = attempt.finish_body(b"");
                let mut headers = finished.response_headers(headers);
                headers.retain(|(n, _)| n != "content-length");
                self.set_http_response_headers(pairs(&headers));
                Action::Continue
            }
            ResponsePlan::Buffer => {
                self.response_headers = headers;
                self.plan = Some(plan);
                Action::Pause
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.plan {
            Some(ResponsePlan::Stream) => {
                let chunk = self
                    .get_http_response_body(0, body_size)
                    .unwrap_or_default();
                let Some(attempt) = self.attempt.as_mut() else {
                    return Action::Continue;
                };
                let out = attempt.stream_chunk(&chunk, end_of_stream);
                self.set_http_response_body(0, body_size, &out);
                Action::Continue
            }
            Some(ResponsePlan::Buffer) => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = self
                    .get_http_response_body(0, body_size)
                    .unwrap_or_default();
                let Some(attempt) = &self.attempt else {
                    return Action::Continue;
                };
                let finished = attempt.finish_body(&body);
                let headers = finished.response_headers(std::mem::take(&mut self.response_headers));
                self.set_http_response_headers(pairs(&headers));
                self.set_http_response_body(0, body_size, &finished.body);
                Action::Continue
            }
            None => Action::Continue,
        }
    }
}

/// proxy-wasm wants borrowed pairs.
fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}
