//! The sidecar's HTTP client: token endpoints, the gateway (embeddings, health checks),
//! Envoy's admin, and where request events go (webhooks, Langfuse, OTLP).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for http and https: TLS with the system's roots, its crypto provider given
/// explicitly (no process-wide default that other clients would have to share).
pub fn https() -> Option<Https> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| tracing::warn!("no TLS roots for outbound calls: {e}"))
        .ok()?
        .https_or_http()
        .enable_http1()
        .build();
    Some(Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends a request and reads the whole answer within `timeout`; the error says what failed
/// and where.
pub async fn call(
    client: &Https,
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let url = request.uri().to_string();
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url} broke off its answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url} did not answer within {} s", timeout.as_secs_f64()))?
}
