//! The gateway role's callbacks (downstream, once per request and once per fallback pass).
//! The core decides; this carries its effects out: answer, read the body, ask the sidecar
//! (and wait), route, resume.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use switchyard_config::{RequestInfo, REQUEST_INFO_PROPERTY};
use switchyard_core::gateway::{
    after_change, edits_response, error_message, on_done, on_response, rejection_event, Answered,
    Gateway, Local, OnBody, OnHeaders, Pending, Sidecar, SidecarCall,
};
use switchyard_core::host::Host;
use switchyard_core::router::rng::Rng;
use switchyard_core::ApiError;

use super::calls::{self, Failed};
use super::{log_failure, pairs, reply, send_error, EnvoyHost};

/// Where the request is.
enum Phase {
    /// Headers not decided yet (or a request the gateway let pass).
    Start,
    /// Waiting for the sidecar: the call's token, what it asks, and what then resumes.
    Asking(u32, SidecarCall, After),
    /// Reading the body.
    Body(Box<Pending>),
    /// Routed (or answered).
    Done,
}

/// What resumes once the sidecar answered.
enum After {
    Headers,
    Body(Box<Pending>),
}

/// What the callback that decided must do.
enum Next {
    Continue,
    Pause,
}

pub struct GatewayHttp {
    gateway: Rc<Gateway>,
    /// The request headers as they arrived.
    headers: Vec<(String, String)>,
    phase: Phase,
    /// The body's size once its end arrived (while the request waits for the sidecar).
    body_done: Option<usize>,
    /// The request as routed, for the response's headers.
    info: Option<RequestInfo>,
    /// This filter answered itself: leave the response alone.
    answered: bool,
    /// A body replacing the response's (Envoy's own replies).
    replacement: Option<Vec<u8>>,
    /// Counted against global_max_parallel_requests.
    admitted: bool,
    /// A management call that may change cached records (see `after_change`).
    change: bool,
    /// Routed to the sidecar (readiness, the management API), not to a provider.
    to_sidecar: bool,
}

impl GatewayHttp {
    pub fn new(gateway: Rc<Gateway>) -> Self {
        GatewayHttp {
            gateway,
            headers: Vec::new(),
            phase: Phase::Start,
            body_done: None,
            info: None,
            answered: false,
            replacement: None,
            admitted: false,
            change: false,
            to_sidecar: false,
        }
    }

    fn answer(&mut self, local: &Local) -> Next {
        self.answered = true;
        self.phase = Phase::Done;
        let mut headers: Vec<(&str, &str)> = local
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        if !headers.iter().any(|(n, _)| *n == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        if let Err(e) = calls::send_response(local.status, headers, &local.body) {
            log_failure(&e);
        }
        Next::Pause
    }

    fn fail(&mut self, err: &ApiError) -> Next {
        self.answered = true;
        self.phase = Phase::Done;
        // Errors are rare: the client's API is read from its path only then.
        let path = self
            .headers
            .iter()
            .find(|(n, _)| n == ":path")
            .map_or("", |(_, v)| v.as_str());
        send_error(err, switchyard_core::dialects::of_path(path));
        Next::Pause
    }

    /// Logs a request the gateway refused itself (for the metrics and request logs).
    fn rejected(&self, pending: Option<&Pending>, body: &[u8], status: u16, message: &str) {
        let now_ms = EnvoyHost.now_ms();
        if let Some(event) =
            rejection_event(&self.headers, pending, body, (status, message), now_ms)
        {
            switchyard_core::spend::record(&EnvoyHost, &event);
        }
    }

    /// A host call failed: answer the client rather than guess.
    fn broken(&mut self, e: Failed) -> Next {
        log_failure(&e);
        self.fail(&ApiError::internal(format!(
            "Switchyard could not handle this request ({e}). Retry; if it persists, check Envoy's log."
        )))
    }

    fn ask(&mut self, call: SidecarCall, after: After) -> Next {
        match calls::sidecar(
            call.method,
            &call.path,
            call.body.as_deref(),
            call.timeout_ms,
        ) {
            Ok(token) => {
                self.phase = Phase::Asking(token, call, after);
                Next::Pause
            }
            // The sidecar's cluster is not there: as if it did not answer.
            Err(_) => self.resume(after, Sidecar::Unreachable),
        }
    }

    /// Decides from the headers (again, once the sidecar answered).
    fn decide_headers(&mut self, sidecar: Sidecar, end_of_stream: bool) -> Next {
        match self.gateway.on_headers(&self.headers, &EnvoyHost, sidecar) {
            OnHeaders::Respond(local) => {
                if local.status >= 400 {
                    self.rejected(None, &[], local.status, &error_message(&local.body));
                }
                self.answer(&local)
            }
            OnHeaders::PassThrough => {
                self.to_sidecar = true;
                self.phase = Phase::Done;
                Next::Continue
            }
            OnHeaders::Change => {
                self.change = true;
                self.to_sidecar = true;
                self.phase = Phase::Done;
                Next::Continue
            }
            OnHeaders::Ask(call) => self.ask(call, After::Headers),
            OnHeaders::ReadBody(pending) => {
                if !self.admitted {
                    if !self.gateway.admit(&EnvoyHost, pending.replan.is_none()) {
                        let e = self.gateway.at_capacity();
                        self.rejected(Some(&pending), &[], e.status, &e.message);
                        return self.fail(&e);
                    }
                    self.admitted = true;
                }
                if end_of_stream {
                    // A stored response is read and deleted without a body.
                    if pending.stored.is_none() {
                        return self.fail(&ApiError::bad_request("The request has no body."));
                    }
                    self.body_done = Some(0);
                }
                self.phase = Phase::Body(pending);
                match self.body_done {
                    Some(size) => self.decide_body(size, Sidecar::Unasked),
                    None => Next::Pause,
                }
            }
        }
    }

    /// Decides from the whole body (again, once the sidecar answered).
    fn decide_body(&mut self, size: usize, sidecar: Sidecar) -> Next {
        let Phase::Body(pending) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return Next::Continue;
        };
        let body = match size {
            0 => Vec::new(),
            _ => match calls::request_body(0, size) {
                Ok(b) => b,
                Err(e) => return self.broken(e),
            },
        };
        let mut rng = Rng::from_entropy();
        match self
            .gateway
            .on_body(&pending, &body, &EnvoyHost, &mut rng, sidecar)
        {
            Err(e) => {
                self.rejected(Some(&pending), &body, e.status, &e.message);
                self.fail(&e)
            }
            Ok(OnBody::Respond(local)) => {
                if local.status >= 400 {
                    let message = error_message(&local.body);
                    self.rejected(Some(&pending), &body, local.status, &message);
                }
                self.answer(&local)
            }
            Ok(OnBody::Ask(call)) => self.ask(call, After::Body(pending)),
            Ok(OnBody::Route(routed)) => {
                let edits = routed.request_edits(&self.headers);
                // Kept before anything can fail: on_done releases what it counted.
                let info = serde_json::to_vec(&routed.info);
                self.info = Some(routed.info);
                let info = match info {
                    Ok(info) => info,
                    Err(e) => return self.fail(&ApiError::internal(e.to_string())),
                };
                let set = calls::set_property(vec![REQUEST_INFO_PROPERTY], &info)
                    .and_then(|()| {
                        edits
                            .remove
                            .iter()
                            .try_for_each(|n| calls::set_request_header(n, None))
                    })
                    .and_then(|()| {
                        edits
                            .set
                            .iter()
                            .try_for_each(|(n, v)| calls::set_request_header(n, Some(v)))
                    });
                if let Err(e) = set {
                    return self.broken(e);
                }
                Next::Continue
            }
        }
    }

    fn resume(&mut self, after: After, sidecar: Sidecar) -> Next {
        match after {
            After::Headers => self.decide_headers(sidecar, false),
            After::Body(pending) => {
                self.phase = Phase::Body(pending);
                match self.body_done {
                    Some(size) => self.decide_body(size, sidecar),
                    None => Next::Pause,
                }
            }
        }
    }
}

fn action(next: Next) -> Action {
    match next {
        Next::Continue => Action::Continue,
        Next::Pause => Action::Pause,
    }
}

impl Context for GatewayHttp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let Phase::Asking(expected, call, mut after) =
            std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return;
        };
        if token != expected {
            self.phase = Phase::Asking(expected, call, after);
            return;
        }
        let settled = match calls::call_response_status() {
            Some(status) => {
                let body = calls::call_response_body(body_size).unwrap_or_default();
                let pending = match &mut after {
                    After::Body(p) => Some(&mut **p),
                    After::Headers => None,
                };
                self.gateway
                    .on_answer(&call, status, &body, &EnvoyHost, pending)
            }
            None => false,
        };
        let sidecar = if settled {
            Sidecar::Unasked
        } else {
            Sidecar::Unreachable
        };
        if let Next::Continue = self.resume(after, sidecar) {
            if let Err(e) = calls::resume_request() {
                log_failure(&e);
            }
        }
    }

    // On done rather than on log: a request handed to a fallback group is recreated by
    // Envoy, and its first filter chain goes away without logging.
    fn on_done(&mut self) -> bool {
        if self.admitted {
            self.admitted = false;
            self.gateway.release(&EnvoyHost);
        }
        on_done(self.info.take().as_ref(), &EnvoyHost);
        true
    }
}

impl HttpContext for GatewayHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // One host call for every header: cheaper than one per header we look at.
        self.headers = match calls::request_headers() {
            Ok(h) => h,
            Err(e) => return action(self.broken(e)),
        };
        action(self.decide_headers(Sidecar::Unasked, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match &self.phase {
            Phase::Asking(..) => {
                // Held until the sidecar answers.
                if end_of_stream {
                    self.body_done = Some(body_size);
                }
                Action::Pause
            }
            Phase::Body(_) => {
                if body_size as u64 > self.gateway.max_request_bytes() {
                    return action(
                        self.fail(&ApiError::too_large(self.gateway.max_request_bytes())),
                    );
                }
                if !end_of_stream {
                    return Action::Pause;
                }
                self.body_done = Some(body_size);
                action(self.decide_body(body_size, Sidecar::Unasked))
            }
            Phase::Start | Phase::Done => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        // One header, not the map: most answers need nothing more.
        let status: u16 = calls::response_header(":status")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if self.change {
            after_change(status, &EnvoyHost);
        }
        if !edits_response(status) {
            return Action::Continue;
        }
        let headers = match calls::response_headers() {
            Ok(h) => h,
            Err(e) => {
                log_failure(&e);
                return Action::Continue;
            }
        };
        let details = calls::property(vec!["response", "code_details"])
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let request_id = self
            .headers
            .iter()
            .find(|(n, _)| n == "x-request-id")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let edit = on_response(
            &Answered {
                status,
                headers: &headers,
                details: &details,
                info: self.info.as_ref(),
                now_ms: EnvoyHost.now_ms(),
                request_id,
                to_sidecar: self.to_sidecar,
            },
            &EnvoyHost,
        );
        let headers = edit.headers.apply(headers);
        if let (Some(body), true) = (&edit.body, end_of_stream) {
            // A headers-only response cannot be given a body: reply instead.
            let status = headers
                .iter()
                .find(|(n, _)| n == ":status")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(502);
            self.answered = true;
            return reply(status, &headers, body);
        }
        if let Err(e) = calls::set_response_headers(pairs(&headers)) {
            log_failure(&e);
        }
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
            if let Err(e) = calls::set_response_body(0, body_size, &body) {
                log_failure(&e);
            }
        }
        Action::Continue
    }
}
