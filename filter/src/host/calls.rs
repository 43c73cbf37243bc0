//! Host calls that can fail, as values. The proxy-wasm SDK's trait helpers unwrap their
//! results, and a panic kills the VM for every request of the worker; these return the
//! error for the glue to handle (log it, answer the request with a clear 500, carry on).

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, Bytes, MapType, Status};

pub type Headers = Vec<(String, String)>;

/// A host call that failed: which one, and Envoy's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed(pub &'static str, pub Status);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host call {} failed: {:?}", self.0, self.1)
    }
}

type Result<T> = std::result::Result<T, Failed>;

fn map(map: MapType, what: &'static str) -> Result<Headers> {
    hostcalls::get_map(map).map_err(|s| Failed(what, s))
}

pub fn request_headers() -> Result<Headers> {
    map(MapType::HttpRequestHeaders, "get request headers")
}

pub fn response_headers() -> Result<Headers> {
    map(MapType::HttpResponseHeaders, "get response headers")
}

pub fn response_header(name: &str) -> Result<Option<String>> {
    hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
        .map_err(|s| Failed("get a response header", s))
}

pub fn set_request_headers(headers: Vec<(&str, &str)>) -> Result<()> {
    hostcalls::set_map(MapType::HttpRequestHeaders, headers)
        .map_err(|s| Failed("set request headers", s))
}

pub fn set_request_header(name: &str, value: Option<&str>) -> Result<()> {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value)
        .map_err(|s| Failed("set a request header", s))
}

pub fn set_response_headers(headers: Vec<(&str, &str)>) -> Result<()> {
    hostcalls::set_map(MapType::HttpResponseHeaders, headers)
        .map_err(|s| Failed("set response headers", s))
}

fn buffer(kind: BufferType, start: usize, size: usize, what: &'static str) -> Result<Bytes> {
    hostcalls::get_buffer(kind, start, size)
        .map(Option::unwrap_or_default)
        .map_err(|s| Failed(what, s))
}

pub fn request_body(start: usize, size: usize) -> Result<Bytes> {
    buffer(
        BufferType::HttpRequestBody,
        start,
        size,
        "get the request body",
    )
}

pub fn response_body(start: usize, size: usize) -> Result<Bytes> {
    buffer(
        BufferType::HttpResponseBody,
        start,
        size,
        "get the response body",
    )
}

pub fn call_response_body(size: usize) -> Result<Bytes> {
    buffer(
        BufferType::HttpCallResponseBody,
        0,
        size,
        "get a call's answer",
    )
}

pub fn call_response_status() -> Option<u16> {
    hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
}

pub fn set_request_body(start: usize, size: usize, body: &[u8]) -> Result<()> {
    hostcalls::set_buffer(BufferType::HttpRequestBody, start, size, body)
        .map_err(|s| Failed("set the request body", s))
}

pub fn set_response_body(start: usize, size: usize, body: &[u8]) -> Result<()> {
    hostcalls::set_buffer(BufferType::HttpResponseBody, start, size, body)
        .map_err(|s| Failed("set the response body", s))
}

pub fn property(path: Vec<&str>) -> Option<Bytes> {
    hostcalls::get_property(path).ok().flatten()
}

pub fn set_property(path: Vec<&str>, value: &[u8]) -> Result<()> {
    hostcalls::set_property(path, Some(value)).map_err(|s| Failed("set a property", s))
}

/// An HTTP call from the filter (to the sidecar's cluster); the answer comes to
/// `on_http_call_response` with the returned token.
pub fn dispatch(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32> {
    hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
        .map_err(|s| Failed("dispatch a call", s))
}

/// A call on the sidecar's internal API (JSON both ways).
pub fn sidecar(method: &str, path: &str, body: Option<&[u8]>, timeout_ms: u64) -> Result<u32> {
    let headers = vec![
        (":method", method),
        (":path", path),
        (":authority", switchyard_config::SIDECAR_AUTHORITY),
        ("content-type", "application/json"),
    ];
    dispatch(
        switchyard_config::SIDECAR_CLUSTER,
        headers,
        body,
        Duration::from_millis(timeout_ms),
    )
}

pub fn resume_request() -> Result<()> {
    hostcalls::resume_http_request().map_err(|s| Failed("resume the request", s))
}

pub fn send_response(status: u16, headers: Vec<(&str, &str)>, body: &[u8]) -> Result<()> {
    hostcalls::send_http_response(u32::from(status), headers, Some(body))
        .map_err(|s| Failed("send a local reply", s))
}

pub fn set_tick_period(period: Duration) {
    // Only fails when the host is gone.
    let _ = hostcalls::set_tick_period(period);
}
