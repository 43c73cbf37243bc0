//! A fake OpenAI upstream fast enough not to be the bottleneck of `make bench`: fixed answers,
//! one thread, HTTP/1.1 keep-alive. Usage: `bench-upstream PORT`.
//!
//! POST .../chat/completions → a chat.completion, or an SSE stream of 20 chunks when the body
//! has `"stream":true`; POST .../embeddings → one embedding; POST .../messages → an Anthropic
//! message.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const CHAT: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog. This is a typical short answer from the model.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":20,"total_tokens":45},"system_fingerprint":"fp_bench"}"#;
const EMBEDDING: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,0.015797347,-0.0077780345,-0.0046922187,0.014785346,-0.009617947,0.0056151175]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
const ANTHROPIC: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"The quick brown fox jumps over the lazy dog. This is a typical short answer from the model."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":20}}"#;

fn stream_body() -> Bytes {
    let mut out = String::new();
    for i in 0..20 {
        out.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    out.push_str("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    Bytes::from(out)
}

async fn handle(
    req: Request<Incoming>,
    stream: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let streaming = body
        .windows(13)
        .any(|w| w == b"\"stream\":true" || w == b"\"stream\": tru");
    let (content_type, answer) = if path.ends_with("/embeddings") {
        ("application/json", Bytes::from_static(EMBEDDING.as_bytes()))
    } else if path.ends_with("/messages") {
        ("application/json", Bytes::from_static(ANTHROPIC.as_bytes()))
    } else if streaming {
        ("text/event-stream", stream)
    } else {
        ("application/json", Bytes::from_static(CHAT.as_bytes()))
    };
    let response = Response::builder()
        .header("content-type", content_type)
        .body(Full::new(answer));
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(43500);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let stream = stream_body();
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let stream = stream.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, stream.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
