//! How providers frame a stream, and one incremental decoder per framing. Envoy hands the
//! body over in chunks split anywhere (inside an event, a line, a UTF-8 character, a binary
//! header): a decoder keeps what is incomplete and returns only whole frames. The translator
//! of a provider chooses its framing; every decoder yields the same [`Frame`].

pub mod eventstream;
pub mod json_array;
pub mod ndjson;
pub mod sse;

/// A provider's stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-Sent Events (`text/event-stream`), named events included.
    Sse,
    /// AWS event stream (`application/vnd.amazon.eventstream`): binary, CRC-checked messages.
    EventStream,
    /// One JSON value per line (`application/x-ndjson`).
    Ndjson,
    /// A JSON array whose elements arrive one after another (`application/json`).
    JsonArray,
}

impl Framing {
    /// Whether a response with this content type is a stream in this framing (a provider
    /// that answers a stream request with a JSON error is not).
    pub fn accepts(self, content_type: Option<&str>) -> bool {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        match self {
            Framing::Sse => ct.contains("text/event-stream"),
            Framing::EventStream => ct.contains("amazon.eventstream"),
            // Ollama says application/x-ndjson; some servers in front of it say nothing.
            Framing::Ndjson => !ct.contains("text/html"),
            Framing::JsonArray => ct.contains("json"),
        }
    }
}

/// One unit of a stream: an SSE event, an event-stream message, an NDJSON line, an array
/// element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The SSE `event:` name, or the event stream's `:event-type` (`:exception-type` for an
    /// exception).
    pub event: Option<String>,
    /// The payload, as text (every framing here carries JSON).
    pub data: String,
    /// The provider signalled an error in-band (an event-stream exception or error message).
    pub exception: bool,
}

/// The incremental decoder for a framing.
#[derive(Debug)]
pub enum Decoder {
    Sse(sse::Parser),
    EventStream(eventstream::Decoder),
    Ndjson(ndjson::Decoder),
    JsonArray(json_array::Decoder),
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Sse => Decoder::Sse(sse::Parser::new()),
            Framing::EventStream => Decoder::EventStream(eventstream::Decoder::default()),
            Framing::Ndjson => Decoder::Ndjson(ndjson::Decoder::default()),
            Framing::JsonArray => Decoder::JsonArray(json_array::Decoder::default()),
        }
    }

    /// Adds bytes; returns the frames they completed, or why the stream cannot be decoded.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, String> {
        match self {
            Decoder::Sse(p) => Ok(p.push(bytes)),
            Decoder::EventStream(d) => d.push(bytes),
            Decoder::Ndjson(d) => Ok(d.push(bytes)),
            Decoder::JsonArray(d) => d.push(bytes),
        }
    }

    /// The stream ended: the last frame if one was pending, or why what is left is not one.
    pub fn finish(&mut self) -> Result<Vec<Frame>, String> {
        match self {
            Decoder::Sse(p) => Ok(p.finish().into_iter().collect()),
            Decoder::EventStream(d) => d.finish(),
            Decoder::Ndjson(d) => Ok(d.finish().into_iter().collect()),
            Decoder::JsonArray(d) => d.finish(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes `bytes` split at `cut`, and in one piece, and one byte at a time: the frames
    /// must be the same every way.
    pub fn decode_every_way(framing: Framing, bytes: &[u8]) -> Vec<Frame> {
        let whole = {
            let mut d = Decoder::new(framing);
            let mut got = d.push(bytes).unwrap_or_default();
            got.extend(d.finish().unwrap_or_default());
            got
        };
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new(framing);
            let mut got = d.push(&bytes[..cut]).unwrap_or_default();
            got.extend(d.push(&bytes[cut..]).unwrap_or_default());
            got.extend(d.finish().unwrap_or_default());
            assert_eq!(got, whole, "{framing:?} split at {cut}");
        }
        let mut d = Decoder::new(framing);
        let mut got = Vec::new();
        for b in bytes {
            got.extend(d.push(&[*b]).unwrap_or_default());
        }
        got.extend(d.finish().unwrap_or_default());
        assert_eq!(got, whole, "{framing:?} one byte at a time");
        whole
    }

    #[test]
    fn content_types() {
        assert!(Framing::Sse.accepts(Some("text/event-stream; charset=utf-8")));
        assert!(!Framing::Sse.accepts(Some("application/json")));
        assert!(Framing::EventStream.accepts(Some("application/vnd.amazon.eventstream")));
        assert!(Framing::Ndjson.accepts(Some("application/x-ndjson")));
        assert!(Framing::JsonArray.accepts(Some("application/json; charset=UTF-8")));
    }
}
