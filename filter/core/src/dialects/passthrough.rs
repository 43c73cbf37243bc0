//! A client's API that the deployment speaks itself: Anthropic's Messages API (and its
//! token counting) to Anthropic, OpenAI's Responses API to OpenAI and Azure. The request goes
//! as the client wrote it (only `model` is the deployment's) and the answer comes back
//! byte for byte, so nothing is lost in a translation: thinking blocks and their signatures,
//! cache_control, documents, built-in tools, stored responses. Switchyard only reads the
//! answer for its usage (spend, limits) and, for a stream, whether it completed; a stream
//! cut short gets a last error event in the API's shape. The one change: a Responses
//! answer's response ids become ids that name the deployment holding the response
//! (`responses::stored_id`), so what refers to it later goes back there.

use serde_json::{json, Value};
use switchyard_config::Dialect;

use std::borrow::Cow;

use base64::Engine;

use crate::error::ApiError;
use crate::framing::{Frame, Framing};
use crate::openai::Usage;

#[derive(Debug)]
pub struct Passthrough {
    dialect: Dialect,
    /// Anthropic: the usage of message_start, updated by message_delta's.
    reported: Option<Value>,
    /// The stream reached its end event (message_stop; response.completed / incomplete /
    /// failed).
    complete: bool,
    /// The provider ended the stream with an error event.
    failed: bool,
    /// The Responses API's last sequence number, so an error event added follows it.
    sequence: u64,
    /// The Responses API: the deployment whose stored responses the answer names, and the
    /// provider's ids seen so far with the ids the client gets instead.
    ids: Option<(String, Vec<(String, String)>)>,
    /// Bedrock's event stream: each event carries one of the API's events, base64 in `bytes`.
    chunked: bool,
}

impl Passthrough {
    pub fn new(dialect: Dialect) -> Passthrough {
        Passthrough {
            dialect,
            reported: None,
            complete: false,
            failed: false,
            sequence: 0,
            ids: None,
            chunked: false,
        }
    }

    /// A provider framing its stream so: Bedrock's event stream carries the API's events
    /// wrapped, and they are written as the API's own SSE.
    pub fn framed_by(mut self, framing: Framing) -> Passthrough {
        self.chunked = framing == Framing::EventStream;
        self
    }

    /// The API's event a frame of the provider's stream carries: the frame itself, or the
    /// event inside Bedrock's chunk (an exception becomes the API's error event).
    pub fn event<'f>(&self, frame: &'f Frame) -> Cow<'f, Frame> {
        if !self.chunked {
            return Cow::Borrowed(frame);
        }
        let payload: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
        if frame.exception {
            let kind = frame.event.as_deref().unwrap_or("exception");
            let status = match kind {
                "throttlingException" => 429,
                "validationException" => 400,
                "serviceUnavailableException" => 503,
                "internalServerException" => 500,
                _ => 502,
            };
            let message = payload
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(&frame.data);
            let e = ApiError::new(status, "api_error", format!("bedrock {kind}: {message}"));
            return Cow::Owned(Frame {
                event: Some("error".into()),
                data: String::from_utf8(super::anthropic::error_body(&e)).unwrap_or_default(),
                exception: false,
            });
        }
        let inner = payload
            .get("bytes")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        match inner {
            Some(data) => {
                let event = serde_json::from_str::<Value>(&data)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
                Cow::Owned(Frame {
                    event,
                    data,
                    exception: false,
                })
            }
            None => Cow::Borrowed(frame),
        }
    }

    /// The Responses API from `deployment`: its response ids are rewritten.
    pub fn holding_responses_of(mut self, deployment: &str) -> Passthrough {
        if self.dialect == Dialect::Responses {
            self.ids = Some((deployment.to_string(), Vec::new()));
        }
        self
    }

    /// A whole answer as the client gets it: the provider's, with a Responses answer's
    /// `id` and `previous_response_id` naming the deployment.
    pub fn answer(&self, body: Vec<u8>) -> Vec<u8> {
        let Some((deployment, _)) = &self.ids else {
            return body;
        };
        let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        for field in ["id", "previous_response_id"] {
            if let Some(Value::String(id)) = answer.get_mut(field) {
                if id.starts_with("resp_") {
                    *id = super::responses::stored_id(deployment, id);
                }
            }
        }
        serde_json::to_vec(&answer).unwrap_or(body)
    }

    /// Whether a stream's events are written anew (their ids rewritten) rather than passed
    /// on as they came.
    pub fn rewrites(&self) -> bool {
        self.ids.is_some() || self.chunked
    }

    /// Writes one event of the stream with the provider's response ids replaced: the events
    /// about the response as a whole carry them (deltas and items are left as they came).
    pub fn write(&self, frame: &Frame, out: &mut Vec<u8>) {
        let mut data = std::borrow::Cow::Borrowed(frame.data.as_str());
        let whole = frame.event.as_deref().is_some_and(|e| {
            // response.created, .in_progress, .completed, .failed, .incomplete, .queued
            e.starts_with("response.") && e.matches('.').count() == 1
        });
        if let (Some((_, seen)), true) = (&self.ids, whole) {
            if let Ok(mut event) = serde_json::from_str::<Value>(&frame.data) {
                if let Some(response) = event.get_mut("response").and_then(Value::as_object_mut) {
                    for field in ["id", "previous_response_id"] {
                        if let Some(Value::String(id)) = response.get_mut(field) {
                            if let Some((_, ours)) = seen.iter().find(|(p, _)| p == id) {
                                *id = ours.clone();
                            }
                        }
                    }
                }
                if let Ok(text) = serde_json::to_string(&event) {
                    data = std::borrow::Cow::Owned(text);
                }
            }
        }
        if let Some(event) = &frame.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data.as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    /// The usage of a whole answer (none for a token count).
    pub fn answer_usage(&self, body: &[u8]) -> Option<Usage> {
        let answer: Value = serde_json::from_slice(body).ok()?;
        let usage = answer.get("usage").filter(|u| u.is_object())?;
        Some(self.usage_of(usage))
    }

    /// One event of the provider's stream.
    pub fn frame(&mut self, frame: &Frame) {
        // Most events are deltas: only the few that carry usage or end the stream are parsed.
        let kind = frame.event.as_deref().unwrap_or_default();
        if self.dialect == Dialect::Responses {
            if let Some(n) = sequence_number(&frame.data) {
                self.sequence = n;
            }
        }
        let interesting = match self.dialect {
            Dialect::Anthropic => matches!(
                kind,
                "message_start" | "message_delta" | "message_stop" | "error"
            ),
            _ => !kind.ends_with(".delta"),
        };
        if !interesting {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(&frame.data) else {
            return;
        };
        let kind = event.get("type").and_then(Value::as_str).unwrap_or(kind);
        if let (Some((deployment, seen)), Some(response)) = (&mut self.ids, event.get("response")) {
            for field in ["id", "previous_response_id"] {
                if let Some(id) = response.get(field).and_then(Value::as_str) {
                    if id.starts_with("resp_") && !seen.iter().any(|(p, _)| p == id) {
                        seen.push((id.to_string(), super::responses::stored_id(deployment, id)));
                    }
                }
            }
        }
        match (self.dialect, kind) {
            (Dialect::Anthropic, "message_start") => {
                self.reported = event.pointer("/message/usage").cloned();
            }
            (Dialect::Anthropic, "message_delta") => {
                if let (Some(Value::Object(base)), Some(Value::Object(later))) =
                    (self.reported.as_mut(), event.get("usage"))
                {
                    for (k, v) in later {
                        if !v.is_null() {
                            base.insert(k.clone(), v.clone());
                        }
                    }
                } else if let Some(u) = event.get("usage") {
                    self.reported = Some(u.clone());
                }
            }
            (Dialect::Anthropic, "message_stop") => self.complete = true,
            (_, "response.completed" | "response.incomplete") => {
                self.reported = event.pointer("/response/usage").cloned();
                self.complete = true;
            }
            (_, "error" | "response.failed") => {
                self.complete = true;
                self.failed = true;
            }
            _ => {}
        }
    }

    /// The stream's usage, as far as it was reported.
    pub fn usage(&self) -> Option<Usage> {
        self.reported
            .as_ref()
            .filter(|u| u.is_object())
            .map(|u| self.usage_of(u))
    }

    /// Whether the stream reached its end event.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Whether the provider ended the stream with an error event.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The last event of a stream Switchyard ends with an error (cut short, unreadable).
    pub fn error_event(&mut self, e: &ApiError) -> Vec<u8> {
        self.complete = true;
        self.failed = true;
        let (event, data) = match self.dialect {
            Dialect::Anthropic => ("error", super::anthropic::error_body(e)),
            _ => {
                self.sequence += 1;
                let data = json!({
                    "type": "error",
                    "code": e.kind,
                    "message": e.message,
                    "param": null,
                    "sequence_number": self.sequence,
                });
                ("error", serde_json::to_vec(&data).unwrap_or_default())
            }
        };
        let mut out = Vec::with_capacity(data.len() + 24);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\n\n");
        out
    }

    fn usage_of(&self, usage: &Value) -> Usage {
        match self.dialect {
            Dialect::Anthropic => crate::providers::anthropic::usage_of(usage),
            _ => super::responses::usage_to_chat(usage),
        }
    }
}

/// An event's `sequence_number`, found without parsing the event.
fn sequence_number(data: &str) -> Option<u64> {
    const FIELD: &str = "\"sequence_number\":";
    let at = data.rfind(FIELD)? + FIELD.len();
    let digits = data[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::framing::sse::Parser;

    fn feed(p: &mut Passthrough, stream: &str) {
        for f in Parser::default().push(stream.as_bytes()) {
            p.frame(&f);
        }
    }

    #[test]
    fn an_anthropic_stream_gives_its_usage_with_cache_reads_in_the_prompt() {
        let mut p = Passthrough::new(Dialect::Anthropic);
        feed(
            &mut p,
            concat!(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":90,\"output_tokens\":1}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
            ),
        );
        assert!(!p.complete(), "no message_stop yet");
        feed(
            &mut p,
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        assert!(p.complete() && !p.failed());
        let u = p.usage().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (100, 7));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 90);
    }

    #[test]
    fn a_responses_stream_gives_the_completed_usage_and_an_error_follows_its_sequence() {
        let mut p = Passthrough::new(Dialect::Responses);
        feed(
            &mut p,
            concat!(
                "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{}}\n\n",
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"hi\"}\n\n",
            ),
        );
        assert!(!p.complete());
        let e = p.error_event(&ApiError::new(502, "api_error", "cut"));
        let text = String::from_utf8(e).unwrap();
        assert!(text.starts_with("event: error\ndata: "), "{text}");
        assert!(text.contains("\"sequence_number\":2"), "{text}");

        let mut p = Passthrough::new(Dialect::Responses);
        feed(
            &mut p,
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":3,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens_details\":{\"reasoning_tokens\":1}}}}\n\n",
        );
        assert!(p.complete());
        let u = p.usage().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (5, 3, 8)
        );
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 1);
    }

    #[test]
    fn responses_ids_name_the_deployment_in_answers_and_streams() {
        let p = Passthrough::new(Dialect::Responses).holding_responses_of("east");
        let out =
            p.answer(br#"{"id":"resp_1","previous_response_id":"resp_0","output":[]}"#.to_vec());
        let v: Value = serde_json::from_slice(&out).unwrap();
        let ours = super::super::responses::stored_id("east", "resp_1");
        assert_eq!(v["id"], ours.as_str());
        assert_eq!(
            super::super::responses::parse_stored_id(v["previous_response_id"].as_str().unwrap()),
            Some(("east".into(), "resp_0".into()))
        );
        // An Anthropic answer passes as it came.
        let a = Passthrough::new(Dialect::Anthropic).holding_responses_of("east");
        assert!(!a.rewrites());
        assert_eq!(
            a.answer(b"{\"id\":\"msg_1\"}".to_vec()),
            b"{\"id\":\"msg_1\"}"
        );

        let mut p = Passthrough::new(Dialect::Responses).holding_responses_of("east");
        let mut out = Vec::new();
        for f in Parser::default().push(
            b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\"}}\n\nevent: response.output_text.delta\ndata: {\"delta\":\"resp_1\"}\n\n",
        ) {
            p.frame(&f);
            p.write(&f, &mut out);
        }
        let frames = Parser::default().push(&out);
        let created: Value = serde_json::from_str(&frames[0].data).unwrap();
        assert_eq!(created["response"]["id"], ours.as_str());
        assert_eq!(frames[0].event.as_deref(), Some("response.created"));
        assert_eq!(
            frames[1].data, "{\"delta\":\"resp_1\"}",
            "only the id, not text that looks like it"
        );
    }

    #[test]
    fn bedrocks_chunks_carry_anthropics_events() {
        use base64::Engine;
        let mut p = Passthrough::new(Dialect::Anthropic).framed_by(Framing::EventStream);
        assert!(p.rewrites());
        let wrap = |event: &str| Frame {
            event: Some("chunk".into()),
            data: json!({"bytes": base64::engine::general_purpose::STANDARD.encode(event)})
                .to_string(),
            exception: false,
        };
        let mut out = Vec::new();
        for raw in [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            let f = wrap(raw);
            let e = p.event(&f);
            p.frame(&e);
            p.write(&e, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("event: message_start\ndata: {\"type\":\"message_start\""),
            "{text}"
        );
        assert!(
            text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{text}"
        );
        assert!(p.complete() && !p.failed());
        assert_eq!(p.usage().unwrap().total_tokens, 8);

        let mut p = Passthrough::new(Dialect::Anthropic).framed_by(Framing::EventStream);
        let thrown = Frame {
            event: Some("throttlingException".into()),
            data: r#"{"message":"Too many requests"}"#.into(),
            exception: true,
        };
        let e = p.event(&thrown);
        p.frame(&e);
        assert!(p.failed());
        assert!(
            e.data.contains("rate_limit_error") && e.data.contains("Too many requests"),
            "{}",
            e.data
        );
    }

    #[test]
    fn a_whole_answer_gives_its_usage_and_a_token_count_none() {
        let p = Passthrough::new(Dialect::Anthropic);
        let u = p
            .answer_usage(br#"{"type":"message","usage":{"input_tokens":3,"output_tokens":4}}"#)
            .unwrap();
        assert_eq!(u.total_tokens, 7);
        assert!(p.answer_usage(br#"{"input_tokens":3}"#).is_none());
        assert!(p.answer_usage(b"not json").is_none());
    }
}
