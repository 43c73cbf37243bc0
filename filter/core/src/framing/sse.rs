//! Server-Sent Events, incrementally: push bytes as they come, take complete events.
//!
//! Chunks from Envoy can split an event, a line or a UTF-8 character anywhere; bytes are kept
//! until an event is complete and decoded per event. `data` joins multiple `data:` lines
//! with `\n`, as the SSE spec says; `event:` names the frame.

use super::Frame;

#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Where the next scan for an event boundary starts (everything before it has no boundary).
    scanned: usize,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = self.scanned.max(start);
        while i < self.buf.len() {
            if let Some(end) = blank_line_end(&self.buf, i) {
                if let Some(ev) = parse_event(&self.buf[start..i]) {
                    events.push(ev);
                }
                start = end;
                i = end;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        // A boundary can straddle the next chunk: rescan the last two bytes.
        self.scanned = self.buf.len().saturating_sub(2);
        events
    }

    /// Ends the stream: whatever is left is the last event, if it has any data.
    pub fn finish(&mut self) -> Option<Frame> {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        parse_event(&rest)
    }
}

/// If a blank line (event terminator) starts at `i` — i.e. a line ending at `i` followed by
/// another line ending — returns the index just past it.
fn blank_line_end(buf: &[u8], i: usize) -> Option<usize> {
    let first = line_ending_len(buf, i)?;
    let second = line_ending_len(buf, i + first)?;
    Some(i + first + second)
}

fn line_ending_len(buf: &[u8], i: usize) -> Option<usize> {
    match buf.get(i)? {
        b'\n' => Some(1),
        // A lone \r at the end of the buffer may be the start of \r\n: wait for more.
        b'\r' => match buf.get(i + 1) {
            Some(b'\n') => Some(2),
            Some(_) => Some(1),
            None => None,
        },
        _ => None,
    }
}

fn parse_event(raw: &[u8]) -> Option<Frame> {
    let text = String::from_utf8_lossy(raw);
    let mut event = Frame::default();
    let mut has_data = false;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                has_data = true;
            }
            "event" => event.event = Some(value.to_string()),
            _ => {}
        }
    }
    has_data.then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "data: {\"a\":1}\n\nevent: ping\ndata: x\ndata: y\n\n: comment\n\ndata: é✓\r\n\r\ndata: [DONE]\n\n";

    fn expected() -> Vec<Frame> {
        vec![
            Frame {
                event: None,
                data: "{\"a\":1}".into(),
                exception: false,
            },
            Frame {
                event: Some("ping".into()),
                data: "x\ny".into(),
                exception: false,
            },
            Frame {
                event: None,
                data: "é✓".into(),
                exception: false,
            },
            Frame {
                event: None,
                data: "[DONE]".into(),
                exception: false,
            },
        ]
    }

    #[test]
    fn whole_stream() {
        let mut p = Parser::new();
        let mut got = p.push(STREAM.as_bytes());
        got.extend(p.finish());
        assert_eq!(got, expected());
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut p = Parser::new();
        let mut got = Vec::new();
        for b in STREAM.as_bytes() {
            got.extend(p.push(&[*b]));
        }
        got.extend(p.finish());
        assert_eq!(got, expected());
    }

    #[test]
    fn split_at_every_offset() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = Parser::new();
            let mut got = p.push(&bytes[..cut]);
            got.extend(p.push(&bytes[cut..]));
            got.extend(p.finish());
            assert_eq!(got, expected(), "split at {cut}");
        }
    }

    #[test]
    fn unterminated_last_event_is_flushed() {
        let mut p = Parser::new();
        assert!(p.push(b"data: tail").is_empty());
        assert_eq!(
            p.finish(),
            Some(Frame {
                event: None,
                data: "tail".into(),
                exception: false,
            })
        );
        assert_eq!(p.finish(), None);
    }
}
