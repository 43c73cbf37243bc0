//! A strict fake of Amazon Bedrock's runtime API: Converse (`POST /model/{modelId}/converse`),
//! ConverseStream (`/converse-stream`, answered as an AWS event stream) and InvokeModel
//! (`/invoke`) for the embedding models. It checks every request as AWS would:
//!
//! - the SigV4 signature, recomputed here from the request as received (its own canonical
//!   request, with the double encoding of the path AWS uses for services other than S3),
//!   with [`SECRET_ACCESS_KEY`]; the credential scope (date, [`REGION`], `bedrock`), the
//!   body's SHA-256 in `x-amz-content-sha256`, a fresh `x-amz-date`, the session token;
//! - the body against the service model (botocore's `bedrock-runtime`): known top-level
//!   members only, alternating user/assistant turns starting with the user, each content
//!   block one member of the union with the right shape, tool results answering the tool
//!   calls of the turn before, a toolConfig whenever tools are used, inference parameters
//!   in range; the embedding models' own bodies.
//!
//! It answers from the golden fixtures under tests/fixtures/bedrock/, by what the request
//! is (a stream, tools, a tool result, an image, JSON mode, an embedding model), and fails
//! on demand when a marker is in the body ([`THROTTLED`], [`SERVER_ERROR`], [`TOO_LONG`],
//! [`STREAM_CUT`], [`STREAM_RESET`], [`STREAM_ERROR`]). A request signed with another access
//! key or session token is refused 403, as AWS refuses it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use switchyard_core::framing::eventstream;

use crate::fake::Recorded;
use crate::strict::{fixture, FakeReply, Handler};

pub const ACCESS_KEY_ID: &str = "AKIAFAKEBEDROCK00001";
pub const SECRET_ACCESS_KEY: &str = "fake/bedrock/Secret+Key/0000000000000001";
/// The session token of temporary credentials the fake also accepts.
pub const SESSION_TOKEN: &str = "FwoGZXIvYXdzEFakeSessionToken//0001";
pub const REGION: &str = "us-west-2";
/// The chat model of the fixtures (any Converse model id is served).
pub const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
pub const TITAN_EMBED: &str = "amazon.titan-embed-text-v2:0";
pub const COHERE_EMBED: &str = "cohere.embed-english-v3";
/// The text of the chat fixture, and of the streamed one.
pub const CHAT_TEXT: &str = "The capital of France is Paris.";
pub const STREAM_TEXT: &str = "Hello! How can I help you today?";
/// The seconds of `retry-after` with a throttled request.
pub const RETRY_AFTER: &str = "7";

/// Markers: put one in a message to make the fake fail that way.
pub const THROTTLED: &str = "bedrock-fail-throttled";
pub const SERVER_ERROR: &str = "bedrock-fail-500";
pub const TOO_LONG: &str = "bedrock-fail-too-long";
/// A stream that ends cleanly but without messageStop.
pub const STREAM_CUT: &str = "bedrock-stream-cut";
/// A stream whose connection drops after a few events.
pub const STREAM_RESET: &str = "bedrock-stream-reset";
/// A stream that carries a modelStreamErrorException.
pub const STREAM_ERROR: &str = "bedrock-stream-error";

const CONVERSE_MEMBERS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
];

/// The fake's rules and answers.
pub fn handler() -> Handler {
    Arc::new(|r: &Recorded| answer(r))
}

fn answer(r: &Recorded) -> Result<FakeReply, String> {
    if r.method != "POST" {
        return Err(format!("Bedrock's runtime takes POST, not {}", r.method));
    }
    if r.query().is_some() {
        return Err(format!(
            "no Bedrock runtime operation takes a query: {}",
            r.uri
        ));
    }
    let segments: Vec<&str> = r.path().split('/').collect();
    let [_, "model", model, operation] = segments.as_slice() else {
        return Err(format!(
            "Bedrock serves /model/{{modelId}}/{{operation}}, not {}",
            r.path()
        ));
    };
    let model = percent_decode(model)?;
    if model.contains(':') && !r.path().contains("%3A") {
        return Err(format!(
            "the model id must be URI-encoded in the path: {}",
            r.path()
        ));
    }
    if let Some(refused) = check_signature(r)? {
        return Ok(refused);
    }
    if r.header("content-type") != Some("application/json") {
        return Err(format!(
            "content-type must be application/json, not {:?}",
            r.header("content-type")
        ));
    }
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("the body is not JSON ({e}): {}", r.body_text()))?;
    let text = r.body_text();
    let embeds = model.contains("embed");
    match *operation {
        "converse" | "converse-stream" if !embeds => {
            check_converse(&body)?;
            if text.contains(THROTTLED) {
                return Ok(error_reply("rate_limit", 429, "ThrottlingException").with_header("retry-after", RETRY_AFTER));
            }
            if text.contains(SERVER_ERROR) {
                return Ok(FakeReply::json(500, json!({"message": "The server encountered an internal error while processing the request."}).to_string())
                    .with_header("x-amzn-errortype", "InternalServerException:http://internal.amazon.com/coral/com.amazon.bedrock/"));
            }
            if text.contains(TOO_LONG) {
                return Ok(error_reply("context_window", 400, "ValidationException"));
            }
            if *operation == "converse" {
                Ok(FakeReply::json(200, fixture("bedrock", converse_case(&body), "provider_response.json")))
            } else {
                stream_reply(&body, &text)
            }
        }
        "invoke" if embeds => embeddings_reply(&model, &body),
        // Claude's own Messages API (Anthropic's body, Bedrock's version): answered from
        // Anthropic's fixtures, a stream as Bedrock wraps it.
        "invoke" | "invoke-with-response-stream" if model.contains("anthropic.") => {
            check_invoke(&body)?;
            if *operation == "invoke" {
                return Ok(FakeReply::json(
                    200,
                    fixture("anthropic", "chat", "provider_response.json"),
                ));
            }
            Ok(invoke_stream_reply())
        }
        other => Err(format!(
            "{model} is not served by {other}: chat models take converse and converse-stream, embedding models invoke"
        )),
    }
}

/// The fixture case answering a Converse request.
fn converse_case(body: &Value) -> &'static str {
    let turns = body["messages"].as_array().cloned().unwrap_or_default();
    let last = turns
        .last()
        .map(|t| t["content"].clone())
        .unwrap_or_default();
    let has = |blocks: &Value, kind: &str| {
        blocks
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b.get(kind).is_some()))
    };
    if body["toolConfig"]["toolChoice"]["tool"]["name"] == "json_tool_call" {
        "json_schema"
    } else if has(&last, "toolResult") {
        "tool_result"
    } else if body["toolConfig"]["tools"].is_array() {
        "chat_tools"
    } else if has(&last, "image") {
        "image"
    } else {
        "chat"
    }
}

/// An InvokeModel body for Claude: Anthropic's Messages body with Bedrock's
/// `anthropic_version` and without `model` or `stream` (the path says them).
fn check_invoke(body: &Value) -> Result<(), String> {
    if body["anthropic_version"] != "bedrock-2023-05-31" {
        return Err(format!(
            "anthropic_version must be bedrock-2023-05-31, got {}",
            body["anthropic_version"]
        ));
    }
    for field in ["model", "stream"] {
        if body.get(field).is_some() {
            return Err(format!("InvokeModel takes no `{field}` in the body"));
        }
    }
    if !body["max_tokens"].is_u64() || !body["messages"].is_array() {
        return Err("max_tokens and messages are required".into());
    }
    if let Some(betas) = body.get("anthropic_beta") {
        betas
            .as_array()
            .filter(|b| b.iter().all(Value::is_string))
            .ok_or("anthropic_beta must be a list of strings")?;
    }
    Ok(())
}

/// Anthropic's chat stream as InvokeModelWithResponseStream sends it: each event a `chunk`
/// whose payload holds the event's JSON, base64, in `bytes`.
fn invoke_stream_reply() -> FakeReply {
    use base64::Engine;
    let sse = fixture("anthropic", "chat_stream", "provider_stream.sse");
    let pieces = String::from_utf8_lossy(&sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|data| {
            let bytes = base64::engine::general_purpose::STANDARD.encode(data.trim());
            eventstream::encode(
                &[
                    (":event-type", "chunk"),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                json!({ "bytes": bytes }).to_string().as_bytes(),
            )
        })
        .collect();
    FakeReply::stream("application/vnd.amazon.eventstream", pieces)
}

fn stream_reply(body: &Value, text: &str) -> Result<FakeReply, String> {
    let case = if text.contains(STREAM_CUT) {
        "stream_cut"
    } else if text.contains(STREAM_ERROR) {
        "stream_error"
    } else if body["toolConfig"]["tools"].is_array() {
        "stream_tools"
    } else {
        "chat_stream"
    };
    let messages: Vec<Value> = serde_json::from_slice(&fixture(
        "bedrock",
        case,
        "provider_stream.eventstream.json",
    ))
    .map_err(|e| format!("fixture {case}: {e}"))?;
    let mut pieces: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| {
            let headers: Vec<(&str, &str)> = m["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            eventstream::encode(&headers, m["payload"].to_string().as_bytes())
        })
        .collect();
    let mut reply = FakeReply::stream("application/vnd.amazon.eventstream", Vec::new());
    if text.contains(STREAM_RESET) {
        pieces.truncate(2);
        if let FakeReply::Stream { cut, .. } = &mut reply {
            *cut = true;
        }
    }
    if let FakeReply::Stream { pieces: p, .. } = &mut reply {
        *p = pieces;
    }
    Ok(reply)
}

fn embeddings_reply(model: &str, body: &Value) -> Result<FakeReply, String> {
    let obj = object(body, "the body")?;
    if model.starts_with("amazon.titan-embed-text-v2") {
        only(
            obj,
            &["inputText", "dimensions", "normalize", "embeddingTypes"],
            "the body",
        )?;
        let text = obj
            .get("inputText")
            .and_then(Value::as_str)
            .ok_or("inputText (a string) is required")?;
        if text.is_empty() {
            return Err("inputText must not be empty".into());
        }
        if let Some(d) = obj.get("dimensions") {
            if !matches!(d.as_u64(), Some(256 | 512 | 1024)) {
                return Err(format!("dimensions must be 256, 512 or 1024, not {d}"));
            }
        }
        if obj.get("normalize").is_some_and(|n| !n.is_boolean()) {
            return Err("normalize must be a boolean".into());
        }
        Ok(FakeReply::json(
            200,
            fixture("bedrock", "embeddings_titan", "provider_response.json"),
        ))
    } else if model.starts_with("cohere.embed") {
        only(
            obj,
            &[
                "texts",
                "images",
                "input_type",
                "truncate",
                "embedding_types",
            ],
            "the body",
        )?;
        let texts = obj
            .get("texts")
            .and_then(Value::as_array)
            .ok_or("texts (an array of strings) is required")?;
        if texts.is_empty() || texts.len() > 96 || !texts.iter().all(Value::is_string) {
            return Err(format!("texts must hold 1 to 96 strings: {}", obj["texts"]));
        }
        let input_type = obj.get("input_type").and_then(Value::as_str);
        if !matches!(
            input_type,
            Some("search_document" | "search_query" | "classification" | "clustering")
        ) {
            return Err(format!("input_type is required, one of search_document, search_query, classification, clustering; not {input_type:?}"));
        }
        if let Some(t) = obj.get("truncate") {
            if !matches!(t.as_str(), Some("NONE" | "START" | "END")) {
                return Err(format!("truncate must be NONE, START or END, not {t}"));
            }
        }
        // One vector per text, taken in turn from the fixture's.
        let mut answer: Value = serde_json::from_slice(&fixture(
            "bedrock",
            "embeddings_cohere",
            "provider_response.json",
        ))
        .map_err(|e| e.to_string())?;
        let vectors = answer["embeddings"].as_array().cloned().unwrap_or_default();
        answer["embeddings"] = texts
            .iter()
            .enumerate()
            .map(|(i, _)| vectors[i % vectors.len()].clone())
            .collect();
        answer["texts"] = json!(texts);
        Ok(FakeReply::json(200, answer.to_string()))
    } else {
        Err(format!(
            "the fake embeds with {TITAN_EMBED} and {COHERE_EMBED}, not {model}"
        ))
    }
}

/// A fixture's error answer, with Bedrock's error type header.
fn error_reply(case: &str, status: u16, kind: &str) -> FakeReply {
    FakeReply::json(status, fixture("bedrock", case, "provider_response.json")).with_header(
        "x-amzn-errortype",
        &format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

// ---------------------------------------------------------------------------------------
// SigV4, checked from the request as received.

type HmacSha256 = Hmac<Sha256>;

/// None if the signature is right; a 403 for credentials AWS would not know; Err (a broken
/// rule) for anything a correct client never sends.
fn check_signature(r: &Recorded) -> Result<Option<FakeReply>, String> {
    let auth = r
        .header("authorization")
        .ok_or("no authorization header: Bedrock requests are SigV4-signed")?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("authorization must be AWS4-HMAC-SHA256: {auth}"))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(", ") {
        match field.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(format!(
                    "authorization has an unknown field {field:?}: {auth}"
                ))
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(format!(
            "authorization needs Credential, SignedHeaders and Signature: {auth}"
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, day, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("bad credential scope {credential}"));
    };
    if *key_id != ACCESS_KEY_ID {
        return Ok(Some(refused(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )));
    }
    match r.header("x-amz-security-token") {
        None => {}
        Some(SESSION_TOKEN) => {}
        Some(_) => {
            return Ok(Some(refused(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )))
        }
    }
    let date = r.header("x-amz-date").ok_or("no x-amz-date header")?;
    if date.len() != 16 || !date.ends_with('Z') || date.as_bytes()[8] != b'T' {
        return Err(format!("x-amz-date must be YYYYMMDDTHHMMSSZ, not {date}"));
    }
    if !date.starts_with(day) {
        return Err(format!(
            "the credential's day {day} is not x-amz-date's {date}"
        ));
    }
    let skew = seconds_since_epoch(date)?.abs_diff(now());
    if skew > 5 * 60 {
        return Err(format!(
            "x-amz-date {date} is {skew} s from now: AWS refuses signatures over 5 minutes off"
        ));
    }
    if *region != REGION || *service != "bedrock" {
        return Err(format!(
            "the scope must be {REGION}/bedrock, not {region}/{service}"
        ));
    }
    let body_hash = hex(&Sha256::digest(&r.body));
    if r.header("x-amz-content-sha256") != Some(body_hash.as_str()) {
        return Err(format!(
            "x-amz-content-sha256 is {:?}, the body's SHA-256 is {body_hash}",
            r.header("x-amz-content-sha256")
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted != names {
        return Err(format!(
            "SignedHeaders must be sorted and unique: {signed_headers}"
        ));
    }
    for required in ["host", "x-amz-date", "x-amz-content-sha256", "content-type"] {
        if !names.contains(&required) {
            return Err(format!(
                "{required} must be signed: SignedHeaders={signed_headers}"
            ));
        }
    }
    if r.header("x-amz-security-token").is_some() && !names.contains(&"x-amz-security-token") {
        return Err("x-amz-security-token must be signed".into());
    }
    // The canonical request, from what arrived.
    let uri: Vec<String> = r.path().split('/').map(aws_encode).collect();
    let mut canonical = format!("{}\n{}\n\n", r.method, uri.join("/"));
    for name in &names {
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} was not received"));
        }
        canonical += &format!("{name}:{}\n", values.join(","));
    }
    canonical += &format!("\n{signed_headers}\n{body_hash}");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{day}/{REGION}/bedrock/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = mac(
        format!("AWS4{SECRET_ACCESS_KEY}").as_bytes(),
        day.as_bytes(),
    );
    key = mac(&key, REGION.as_bytes());
    key = mac(&key, b"bedrock");
    key = mac(&key, b"aws4_request");
    let expected = hex(&mac(&key, to_sign.as_bytes()));
    if signature != expected {
        return Err(format!(
            "the signature does not match the request (AWS: InvalidSignatureException). Canonical request:\n{canonical}"
        ));
    }
    Ok(None)
}

fn refused(kind: &str, message: &str) -> FakeReply {
    FakeReply::json(403, json!({"message": message}).to_string()).with_header(
        "x-amzn-errortype",
        &format!("{kind}:http://internal.amazon.com/coral/com.amazon.coral.service/"),
    )
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding of every byte but A-Z a-z 0-9 - . _ ~ (so an encoded `%3A` becomes
/// `%253A`: AWS encodes the path's segments once more).
fn aws_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
            let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(format!("bad percent-encoding in {s}")),
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|e| format!("{s}: {e}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
fn seconds_since_epoch(date: &str) -> Result<u64, String> {
    let n = |range: std::ops::Range<usize>| -> Result<i64, String> {
        date.get(range)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("x-amz-date {date} is not a date"))
    };
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days * 86_400 + n(9..11)? * 3600 + n(11..13)? * 60 + n(13..15)?) as u64)
}

// ---------------------------------------------------------------------------------------
// The Converse body, against the service model.

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object: {v}"))
}

fn only(obj: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what} has an unknown member {k:?} (known: {known:?})"
        )),
        None => Ok(()),
    }
}

/// The one member of a union object.
fn union_member<'a>(v: &'a Value, what: &str) -> Result<(&'a str, &'a Value), String> {
    let obj = object(v, what)?;
    let mut members = obj.iter();
    match (members.next(), members.next()) {
        (Some((k, v)), None) => Ok((k, v)),
        _ => Err(format!("{what} must have exactly one member: {v}")),
    }
}

fn check_converse(body: &Value) -> Result<(), String> {
    let obj = object(body, "the body")?;
    only(obj, CONVERSE_MEMBERS, "the body")?;
    let turns = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages must be a non-empty array")?;
    let mut tool_uses: Vec<String> = Vec::new();
    let mut uses_tools = false;
    for (i, turn) in turns.iter().enumerate() {
        let t = object(turn, &format!("messages[{i}]"))?;
        only(t, &["role", "content"], &format!("messages[{i}]"))?;
        let role = t.get("role").and_then(Value::as_str).unwrap_or_default();
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if role != expected {
            return Err(format!(
                "messages[{i}] has role {role:?}: a conversation starts with the user and alternates user and assistant"
            ));
        }
        let blocks = t
            .get("content")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("messages[{i}].content must be a non-empty array"))?;
        let mut answered = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            let (kind, value) = union_member(block, &at)?;
            match kind {
                "text" => {
                    if value.as_str().is_none_or(|s| s.trim().is_empty()) {
                        return Err(format!("{at}.text must be a non-blank string"));
                    }
                }
                "image" => check_image(value, &at)?,
                "cachePoint" => check_cache_point(value, &at)?,
                "toolUse" if role == "assistant" => {
                    uses_tools = true;
                    let u = object(value, &at)?;
                    only(u, &["toolUseId", "name", "input"], &at)?;
                    let id = tool_id(u.get("toolUseId"), &at)?;
                    tool_name(u.get("name"), &at)?;
                    if !u.get("input").is_some_and(Value::is_object) {
                        return Err(format!("{at}.toolUse.input must be an object"));
                    }
                    answered.push(id);
                }
                "toolResult" if role == "user" => {
                    uses_tools = true;
                    let u = object(value, &at)?;
                    only(u, &["toolUseId", "content", "status"], &at)?;
                    let id = tool_id(u.get("toolUseId"), &at)?;
                    if !tool_uses.contains(&id) {
                        return Err(format!(
                            "{at}: toolResult {id} answers no toolUse of the turn before"
                        ));
                    }
                    let content = u
                        .get("content")
                        .and_then(Value::as_array)
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| {
                            format!("{at}.toolResult.content must be a non-empty array")
                        })?;
                    for c in content {
                        let (k, v) = union_member(c, &format!("{at}.toolResult.content[]"))?;
                        match k {
                            "text" if v.is_string() => {}
                            "json" => {}
                            "image" => check_image(v, &at)?,
                            _ => {
                                return Err(format!("{at}.toolResult.content has a bad block {c}"))
                            }
                        }
                    }
                    if let Some(s) = u.get("status") {
                        if !matches!(s.as_str(), Some("success" | "error")) {
                            return Err(format!("{at}.toolResult.status must be success or error"));
                        }
                    }
                }
                "reasoningContent" if role == "assistant" => {}
                "document" | "video" | "guardContent" => {}
                other => {
                    return Err(format!(
                        "{at}: a {other:?} block has no place in a {role} turn"
                    ))
                }
            }
        }
        tool_uses = answered;
    }
    if let Some(system) = obj.get("system") {
        for (j, block) in system
            .as_array()
            .ok_or("system must be an array")?
            .iter()
            .enumerate()
        {
            let at = format!("system[{j}]");
            match union_member(block, &at)? {
                ("text", v) if v.as_str().is_some_and(|s| !s.is_empty()) => {}
                ("cachePoint", v) => check_cache_point(v, &at)?,
                ("guardContent", _) => {}
                _ => {
                    return Err(format!(
                        "{at} must be a non-empty text or a cachePoint: {block}"
                    ))
                }
            }
        }
    }
    if let Some(config) = obj.get("inferenceConfig") {
        let c = object(config, "inferenceConfig")?;
        only(
            c,
            &["maxTokens", "temperature", "topP", "stopSequences"],
            "inferenceConfig",
        )?;
        if let Some(m) = c.get("maxTokens") {
            if m.as_u64().is_none_or(|m| m < 1) {
                return Err(format!(
                    "inferenceConfig.maxTokens must be an integer >= 1, not {m}"
                ));
            }
        }
        for name in ["temperature", "topP"] {
            if let Some(v) = c.get(name) {
                if !v.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)) {
                    return Err(format!("inferenceConfig.{name} must be in [0, 1], not {v}"));
                }
            }
        }
        if let Some(stops) = c.get("stopSequences") {
            let ok = stops
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s.as_str().is_some_and(|s| !s.is_empty())));
            if !ok {
                return Err(format!(
                    "inferenceConfig.stopSequences must be non-empty strings: {stops}"
                ));
            }
        }
    }
    if let Some(fields) = obj.get("additionalModelRequestFields") {
        object(fields, "additionalModelRequestFields")?;
    }
    match obj.get("toolConfig") {
        Some(config) => check_tool_config(config)?,
        None if uses_tools => {
            return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into())
        }
        None => {}
    }
    Ok(())
}

fn check_tool_config(config: &Value) -> Result<(), String> {
    let c = object(config, "toolConfig")?;
    only(c, &["tools", "toolChoice"], "toolConfig")?;
    let tools = c
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or("toolConfig.tools must be a non-empty array")?;
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("toolConfig.tools[{i}]");
        match union_member(tool, &at)? {
            ("toolSpec", spec) => {
                let s = object(spec, &at)?;
                only(s, &["name", "description", "inputSchema", "strict"], &at)?;
                names.push(tool_name(s.get("name"), &at)?);
                if let Some(d) = s.get("description") {
                    if d.as_str().is_none_or(str::is_empty) {
                        return Err(format!(
                            "{at}.toolSpec.description must be a non-empty string"
                        ));
                    }
                }
                let schema = s
                    .get("inputSchema")
                    .ok_or_else(|| format!("{at}.toolSpec.inputSchema is required"))?;
                match union_member(schema, &format!("{at}.toolSpec.inputSchema"))? {
                    ("json", json) if json.get("type") == Some(&json!("object")) => {}
                    _ => return Err(format!("{at}.toolSpec.inputSchema must be {{\"json\": <an object schema>}}: {schema}")),
                }
            }
            ("cachePoint", v) => check_cache_point(v, &at)?,
            _ => return Err(format!("{at} must be a toolSpec or a cachePoint: {tool}")),
        }
    }
    if let Some(choice) = c.get("toolChoice") {
        match union_member(choice, "toolConfig.toolChoice")? {
            ("auto" | "any", v) if v == &json!({}) => {}
            ("tool", v) => {
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
                if !names.iter().any(|n| n == name) {
                    return Err(format!("toolConfig.toolChoice names {name:?}, which is not among the tools {names:?}"));
                }
            }
            _ => return Err(format!("toolConfig.toolChoice must be {{auto: {{}}}}, {{any: {{}}}} or {{tool: {{name}}}}: {choice}")),
        }
    }
    Ok(())
}

fn check_image(v: &Value, at: &str) -> Result<(), String> {
    let i = object(v, at)?;
    only(i, &["format", "source"], at)?;
    if !matches!(
        i.get("format").and_then(Value::as_str),
        Some("png" | "jpeg" | "gif" | "webp")
    ) {
        return Err(format!(
            "{at}.image.format must be png, jpeg, gif or webp: {v}"
        ));
    }
    match i
        .get("source")
        .map(|s| union_member(s, &format!("{at}.image.source")))
        .transpose()?
    {
        Some(("bytes", b)) => {
            let b = b.as_str().unwrap_or_default();
            let base64 = !b.is_empty()
                && b.len() % 4 == 0
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
            if !base64 {
                return Err(format!("{at}.image.source.bytes must be base64"));
            }
            Ok(())
        }
        Some(("s3Location", _)) => Ok(()),
        _ => Err(format!(
            "{at}.image.source must be {{bytes}} or {{s3Location}}: {v}"
        )),
    }
}

fn check_cache_point(v: &Value, at: &str) -> Result<(), String> {
    let c = object(v, at)?;
    only(c, &["type", "ttl"], at)?;
    if c.get("type") != Some(&json!("default")) {
        return Err(format!("{at}.cachePoint.type must be \"default\": {v}"));
    }
    Ok(())
}

fn tool_id(v: Option<&Value>, at: &str) -> Result<String, String> {
    let id = v.and_then(Value::as_str).unwrap_or_default();
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!(
            "{at}: toolUseId {id:?} must match [a-zA-Z0-9_.:-]{{1,64}}"
        ))
    }
}

fn tool_name(v: Option<&Value>, at: &str) -> Result<String, String> {
    let name = v.and_then(Value::as_str).unwrap_or_default();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{at}: tool name {name:?} must match [a-zA-Z0-9_-]{{1,64}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_encoding() {
        assert_eq!(
            seconds_since_epoch("20231114T221320Z").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            seconds_since_epoch("20000301T000000Z").unwrap(),
            951_868_800
        );
        assert_eq!(aws_encode("m-v1%3A0"), "m-v1%253A0");
        assert_eq!(percent_decode("a%3Ab%2Fc").unwrap(), "a:b/c");
    }

    /// Switchyard's translator signs; this fake checks on its own: they must agree.
    #[test]
    fn a_request_signed_by_the_translator_passes() {
        use switchyard_config::{Auth, DeploymentConfig, Endpoint, Provider, ProviderParams};
        use switchyard_core::providers::{translator, Credentials, Ctx};
        let d = DeploymentConfig {
            system_prompt: None,
            id: "d".into(),
            group: "g".into(),
            provider: Provider::Bedrock,
            model: MODEL.into(),
            scheme: "http".into(),
            authority: "127.0.0.1:4001".into(),
            base_path: String::new(),
            auth: Auth::None,
            params: ProviderParams {
                region: Some(REGION.into()),
                ..ProviderParams::default()
            },
            organization: None,
            headers: vec![],
            defaults: Default::default(),
            drop_params: false,
            prices: Default::default(),
        };
        let info = switchyard_core::testing::info(&["d"]);
        for (token, expect_ok) in [
            (None, true),
            (Some(SESSION_TOKEN), true),
            (Some("other"), false),
        ] {
            let credentials = Credentials::Aws {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                session_token: token.map(str::to_string),
            };
            let ctx = Ctx {
                deployment: &d,
                info: &info,
                credentials: &credentials,
                now_ms: now() * 1000,
                drop_params: false,
                authority: &d.authority,
                request_id: "",
            };
            assert_eq!(info.endpoint, Endpoint::ChatCompletions);
            let req = translator(Provider::Bedrock.wire())
                .request(&ctx, br#"{"messages":[{"role":"user","content":"hi"}]}"#)
                .unwrap();
            let mut headers = vec![("host".to_string(), d.authority.clone())];
            headers.extend(req.headers.clone());
            let recorded = Recorded {
                method: "POST".into(),
                uri: req.path.clone(),
                headers,
                body: req.body.clone(),
            };
            match (answer(&recorded), expect_ok) {
                (Ok(FakeReply::Body { status: 200, .. }), true) => {}
                (Ok(FakeReply::Body { status: 403, .. }), false) => {}
                (other, _) => panic!("token {token:?}: {other:?}"),
            }
            // A body changed after signing is caught.
            let mut tampered = recorded.clone();
            tampered.body =
                br#"{"messages":[{"role":"user","content":[{"text":"bye"}]}]}"#.to_vec();
            assert_eq!(answer(&tampered).is_err(), expect_ok);
        }
    }

    #[test]
    fn the_fixtures_pass_the_rules() {
        for case in [
            "chat",
            "chat_tools",
            "tool_result",
            "image",
            "usage_cache_reasoning",
            "json_schema",
        ] {
            let body: Value =
                serde_json::from_slice(&fixture("bedrock", case, "provider_request.json")).unwrap();
            check_converse(&body).unwrap_or_else(|e| panic!("{case}: {e}"));
        }
        let bad = json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]});
        assert!(check_converse(&bad).is_err());
        let bad = json!({"messages": [{"role": "user", "content": [{"text": "hi", "image": {}}]}]});
        assert!(check_converse(&bad).is_err());
        let bad =
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "temperature": 1});
        assert!(check_converse(&bad).is_err());
    }
}
