//! A JSON array streamed element by element (Gemini's streamGenerateContent without
//! `alt=sse`): `[{...},\r\n{...}]`. Each complete top-level element is a frame.

use super::Frame;

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Scan position in `buf`.
    pos: usize,
    /// The opening `[` was seen.
    opened: bool,
    /// The closing `]` was seen.
    closed: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Where the element being scanned starts.
    element: Option<usize>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, String> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            if self.element.is_some() {
                self.scan_element(b, &mut frames);
            } else if b.is_ascii_whitespace() || (b == b',' && self.opened) {
            } else if b == b'[' && !self.opened {
                self.opened = true;
            } else if b == b']' && self.opened && !self.closed {
                self.closed = true;
            } else if self.opened && !self.closed {
                self.element = Some(self.pos);
                self.scan_element(b, &mut frames);
            } else {
                return Err(format!(
                    "the stream is not a JSON array (unexpected {:?})",
                    char::from(b)
                ));
            }
            self.pos += 1;
        }
        // Keep only the element in progress.
        let keep = self.element.unwrap_or(self.pos);
        self.buf.drain(..keep);
        self.pos -= keep;
        if let Some(e) = self.element.as_mut() {
            *e = 0;
        }
        Ok(frames)
    }

    fn scan_element(&mut self, b: u8, frames: &mut Vec<Frame>) {
        if self.in_string {
            match b {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                _ => {}
            }
            return;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        if self.depth == 0 && matches!(b, b'}' | b']') {
            if let Some(start) = self.element.take() {
                frames.push(Frame {
                    event: None,
                    data: String::from_utf8_lossy(&self.buf[start..=self.pos]).into_owned(),
                    exception: false,
                });
            }
        }
    }

    pub fn finish(&mut self) -> Result<Vec<Frame>, String> {
        if self.element.is_some() || (self.opened && !self.closed) {
            Err("the JSON array stream ended before its end".into())
        } else {
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::tests::decode_every_way;
    use crate::framing::{Decoder, Framing};

    #[test]
    fn elements_split_anywhere() {
        let bytes = "[{\"a\":\"}]\\\"é\"},\r\n{\"b\":[1,{\"c\":2}]}\n]".as_bytes();
        let frames = decode_every_way(Framing::JsonArray, bytes);
        let data: Vec<&str> = frames.iter().map(|f| f.data.as_str()).collect();
        assert_eq!(data, ["{\"a\":\"}]\\\"é\"}", "{\"b\":[1,{\"c\":2}]}"]);
    }

    #[test]
    fn a_cut_array_is_an_error() {
        let mut d = Decoder::new(Framing::JsonArray);
        assert_eq!(d.push(b"[{\"a\":1},{\"b\"").unwrap().len(), 1);
        assert!(d.finish().is_err());
        let mut d = Decoder::new(Framing::JsonArray);
        assert!(d.push(b"oops").is_err());
    }
}
