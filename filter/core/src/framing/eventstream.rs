//! The AWS event stream (`application/vnd.amazon.eventstream`), Bedrock's stream framing:
//! binary messages, each a prelude (total length, headers length, CRC32 of the two), typed
//! headers, a payload and a CRC32 of the whole message. Both checksums are checked: a corrupt
//! stream is an error, never a half-read answer.

use super::Frame;

/// Messages above this are refused rather than buffered (AWS caps a message at 16 MiB).
const MAX_MESSAGE: usize = 24 << 20;
const PRELUDE: usize = 12;

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, String> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut start = 0;
        while let Some((frame, len)) = message(&self.buf[start..])? {
            frames.push(frame);
            start += len;
        }
        self.buf.drain(..start);
        Ok(frames)
    }

    pub fn finish(&mut self) -> Result<Vec<Frame>, String> {
        if self.buf.is_empty() {
            Ok(Vec::new())
        } else {
            let n = self.buf.len();
            self.buf.clear();
            Err(format!(
                "the event stream ended inside a message ({n} bytes left)"
            ))
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The first message of `buf` and its length, or None if it is not complete yet.
fn message(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    if buf.len() < PRELUDE {
        return Ok(None);
    }
    let total = be32(&buf[0..4]) as usize;
    let headers_len = be32(&buf[4..8]) as usize;
    if crc32fast::hash(&buf[0..8]) != be32(&buf[8..12]) {
        return Err("event stream: the prelude checksum does not match".into());
    }
    if total > MAX_MESSAGE || total < PRELUDE + 4 + headers_len {
        return Err(format!("event stream: bad message length {total}"));
    }
    if buf.len() < total {
        return Ok(None);
    }
    let msg = &buf[..total];
    if crc32fast::hash(&msg[..total - 4]) != be32(&msg[total - 4..]) {
        return Err("event stream: the message checksum does not match".into());
    }
    let headers = parse_headers(&msg[PRELUDE..PRELUDE + headers_len])?;
    let payload = &msg[PRELUDE + headers_len..total - 4];
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let frame = match get(":message-type").as_deref() {
        Some("exception") => Frame {
            event: get(":exception-type"),
            data: String::from_utf8_lossy(payload).into_owned(),
            exception: true,
        },
        Some("error") => Frame {
            event: get(":error-code"),
            data: serde_json::json!({"message": get(":error-message").unwrap_or_default()})
                .to_string(),
            exception: true,
        },
        _ => Frame {
            event: get(":event-type"),
            data: String::from_utf8_lossy(payload).into_owned(),
            exception: false,
        },
    };
    Ok(Some((frame, total)))
}

/// The string headers of a message (other types are skipped).
fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let bad = || "event stream: malformed headers".to_string();
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = *b.first().ok_or_else(bad)? as usize;
        let name = b.get(1..1 + name_len).ok_or_else(bad)?;
        let kind = *b.get(1 + name_len).ok_or_else(bad)?;
        b = &b[2 + name_len..];
        let value_len = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = b.get(0..2).ok_or_else(bad)?;
                2 + u16::from_be_bytes([len[0], len[1]]) as usize
            }
            _ => return Err(bad()),
        };
        let value = b.get(..value_len).ok_or_else(bad)?;
        if kind == 7 {
            out.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(&value[2..]).into_owned(),
            ));
        }
        b = &b[value_len..];
    }
    Ok(out)
}

/// One message with string headers: what Bedrock sends (for tests and the fake provider).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::framing::tests::decode_every_way;
    use crate::framing::{Decoder as Any, Framing};

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn messages_split_anywhere() {
        let mut bytes = event("messageStart", r#"{"role":"assistant"}"#);
        bytes.extend(event("contentBlockDelta", r#"{"delta":{"text":"é✓"}}"#));
        bytes.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":message-type", "exception"),
            ],
            br#"{"message":"slow down"}"#,
        ));
        let frames = decode_every_way(Framing::EventStream, &bytes);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].event.as_deref(), Some("messageStart"));
        assert_eq!(frames[1].data, r#"{"delta":{"text":"é✓"}}"#);
        assert!(frames[2].exception);
        assert_eq!(frames[2].event.as_deref(), Some("throttlingException"));
    }

    #[test]
    fn corruption_and_truncation_are_errors() {
        let mut bytes = event("messageStop", r#"{"stopReason":"end_turn"}"#);
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        assert!(Any::new(Framing::EventStream).push(&bytes).is_err());
        let mut bad_prelude = event("x", "{}");
        bad_prelude[9] ^= 1;
        assert!(Any::new(Framing::EventStream).push(&bad_prelude).is_err());
        let whole = event("x", "{}");
        let mut d = Any::new(Framing::EventStream);
        assert!(d.push(&whole[..whole.len() - 1]).unwrap().is_empty());
        assert!(d.finish().is_err());
    }

    #[test]
    fn other_header_types_are_skipped() {
        // A header of type 4 (int32) before the strings.
        let mut h = vec![3u8];
        h.extend_from_slice(b"num");
        h.push(4);
        h.extend_from_slice(&7u32.to_be_bytes());
        let mut tail = encode(&[(":event-type", "x")], b"{}");
        // Rebuild with the extra header in front.
        let headers_len = be32(&tail[4..8]) as usize;
        let strings = tail[PRELUDE..PRELUDE + headers_len].to_vec();
        h.extend(strings);
        let payload = b"{}";
        let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
        tail.clear();
        tail.extend_from_slice(&total.to_be_bytes());
        tail.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let c = crc32fast::hash(&tail);
        tail.extend_from_slice(&c.to_be_bytes());
        tail.extend_from_slice(&h);
        tail.extend_from_slice(payload);
        let c = crc32fast::hash(&tail);
        tail.extend_from_slice(&c.to_be_bytes());
        let frames = Any::new(Framing::EventStream).push(&tail).unwrap();
        assert_eq!(frames[0].event.as_deref(), Some("x"));
    }
}
