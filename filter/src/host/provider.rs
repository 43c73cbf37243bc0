//! The provider role's callbacks (upstream, once per attempt on one deployment's cluster).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use switchyard_config::{RequestInfo, REQUEST_INFO_PROPERTY};
use switchyard_core::provider_role::{Attempt, ProviderRole, ResponsePlan};
use switchyard_core::ApiError;

use super::calls;
use super::{internal, logged, pairs, property_string, reply, send_error, EnvoyHost};

pub struct ProviderHttp {
    role: Rc<ProviderRole>,
    attempt: Option<Attempt>,
    plan: Option<ResponsePlan>,
    /// The request headers, held until the body is translated.
    request_headers: Vec<(String, String)>,
    /// A replica's own `:authority`.
    authority: Option<String>,
    /// The provider's response headers, held while its body is buffered or a stream starts.
    response_headers: Vec<(String, String)>,
    /// Bytes of a held stream already given to the parser.
    seen: usize,
    /// The answer was replaced (too large): drop what else arrives.
    discard: bool,
}

impl ProviderHttp {
    pub fn new(role: Rc<ProviderRole>) -> Self {
        ProviderHttp {
            role,
            attempt: None,
            plan: None,
            request_headers: Vec::new(),
            authority: None,
            response_headers: Vec::new(),
            seen: 0,
            discard: false,
        }
    }

    /// A local reply: Envoy never retries it, so only for what no other deployment can fix.
    fn fail(&mut self, err: &ApiError) -> Action {
        let dialect = self.attempt.take().map(|a| a.dialect()).unwrap_or_default();
        send_error(err, dialect);
        Action::Pause
    }

    /// Translates the request: sets its whole header map, returns its body.
    fn translate(&mut self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let Some(attempt) = self.attempt.as_mut() else {
            return Err(ApiError::internal("no attempt"));
        };
        let (headers, body) =
            attempt.request(&self.request_headers, body, self.authority.as_deref())?;
        calls::set_request_headers(pairs(&headers)).map_err(internal)?;
        Ok(body)
    }

    fn start(&self, headers: &[(String, String)]) -> Result<Attempt, ApiError> {
        let info: RequestInfo = calls::property(vec![REQUEST_INFO_PROPERTY])
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                ApiError::internal("The request did not pass Switchyard's gateway filter.")
            })?;
        let attempt = headers
            .iter()
            .find(|(n, _)| n == "x-envoy-attempt-count")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        self.role.attempt(info, attempt, &EnvoyHost)
    }
}

impl Context for ProviderHttp {
    // Once per attempt, answered or not (on_log never runs in an upstream filter).
    fn on_done(&mut self) -> bool {
        if let Some(attempt) = &self.attempt {
            attempt.done(&EnvoyHost);
        }
        true
    }
}

impl HttpContext for ProviderHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = match calls::request_headers() {
            Ok(h) => h,
            Err(e) => return self.fail(&internal(e)),
        };
        let mut attempt = match self.start(&headers) {
            Ok(a) => a,
            Err(e) => return self.fail(&e),
        };
        attempt.start(&EnvoyHost);
        self.authority = if self.role.has_replicas() {
            property_string(vec![
                "xds",
                "upstream_host_metadata",
                "filter_metadata",
                "switchyard",
                "authority",
            ])
        } else {
            None
        };
        self.attempt = Some(attempt);
        self.request_headers = headers;
        if end_of_stream {
            match self.translate(&[]) {
                Ok(_) => Action::Continue,
                Err(e) => self.fail(&e),
            }
        } else {
            // Hold the headers until the body is translated: the translator builds them
            // with the body (its length, a signature over it).
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        if self.attempt.is_none() {
            return Action::Continue;
        }
        let body = match calls::request_body(0, body_size) {
            Ok(b) => b,
            Err(e) => return self.fail(&internal(e)),
        };
        match self.translate(&body) {
            Ok(new) => {
                if let Err(e) = calls::set_request_body(0, body_size, &new) {
                    return self.fail(&internal(e));
                }
                Action::Continue
            }
            Err(e) => self.fail(&e),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.attempt.is_none() {
            return Action::Continue;
        }
        let Some(headers) = logged(calls::response_headers()) else {
            return Action::Continue;
        };
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
        attempt.provider_limits(&headers);
        if end_of_stream {
            // Nothing follows: the answer is what the headers say. A headers-only response
            // cannot be given a body, so a delivered answer is replaced by a local reply
            // (which Envoy does not retry; a retry or a fallback needs only the headers).
            let finished = attempt.finish_body(b"", &headers, &EnvoyHost);
            let headers = finished.headers.apply(headers);
            if finished.body.is_empty() || finished.retries() || finished.status == 307 {
                logged(calls::set_response_headers(pairs(&headers)));
                return Action::Continue;
            }
            return reply(finished.status, &headers, &finished.body);
        }
        // Buffer the answer, or hold a stream until its first event: either way the router
        // sees nothing yet and can still retry.
        self.response_headers = headers;
        self.plan = Some(plan);
        Action::Pause
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.discard {
            logged(calls::set_response_body(0, body_size, b""));
            return Action::Continue;
        }
        match self.plan {
            Some(ResponsePlan::Stream) => {
                let Some(attempt) = self.attempt.as_mut() else {
                    return Action::Continue;
                };
                if attempt.holding() {
                    // Paused: the buffer grows; parse only what is new.
                    let new = calls::response_body(self.seen, body_size.saturating_sub(self.seen))
                        .unwrap_or_default();
                    self.seen = body_size;
                    let Some(attempt) = self.attempt.as_mut() else {
                        return Action::Continue;
                    };
                    let piece = attempt.stream_chunk(
                        &new,
                        end_of_stream,
                        &self.response_headers,
                        &EnvoyHost,
                    );
                    let Some(release) = piece.release else {
                        return Action::Pause;
                    };
                    let headers = release.apply(std::mem::take(&mut self.response_headers));
                    logged(calls::set_response_headers(pairs(&headers)));
                    logged(calls::set_response_body(0, body_size, &piece.bytes));
                    return Action::Continue;
                }
                let chunk = calls::response_body(0, body_size).unwrap_or_default();
                let Some(attempt) = self.attempt.as_mut() else {
                    return Action::Continue;
                };
                let piece = attempt.stream_chunk(&chunk, end_of_stream, &[], &EnvoyHost);
                logged(calls::set_response_body(0, body_size, &piece.bytes));
                Action::Continue
            }
            Some(ResponsePlan::Buffer) => {
                let Some(attempt) = self.attempt.as_mut() else {
                    return Action::Continue;
                };
                if attempt.too_large(body_size) {
                    let finished = attempt.finish_too_large(&self.response_headers, &EnvoyHost);
                    let headers = finished
                        .headers
                        .apply(std::mem::take(&mut self.response_headers));
                    logged(calls::set_response_headers(pairs(&headers)));
                    logged(calls::set_response_body(0, body_size, &finished.body));
                    self.discard = true;
                    return Action::Continue;
                }
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = calls::response_body(0, body_size).unwrap_or_default();
                let Some(attempt) = self.attempt.as_mut() else {
                    return Action::Continue;
                };
                let finished = attempt.finish_body(&body, &self.response_headers, &EnvoyHost);
                let headers = finished
                    .headers
                    .apply(std::mem::take(&mut self.response_headers));
                logged(calls::set_response_headers(pairs(&headers)));
                logged(calls::set_response_body(0, body_size, &finished.body));
                Action::Continue
            }
            None => Action::Continue,
        }
    }
}
