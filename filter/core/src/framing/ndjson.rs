//! Newline-delimited JSON (Ollama): one value per line; blank lines are skipped.

use super::Frame;

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|b| *b == b'\n') {
            frames.extend(line(&self.buf[start..start + nl]));
            start += nl + 1;
        }
        self.buf.drain(..start);
        frames
    }

    pub fn finish(&mut self) -> Option<Frame> {
        let rest = std::mem::take(&mut self.buf);
        line(&rest)
    }
}

fn line(raw: &[u8]) -> Option<Frame> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    (!text.is_empty()).then(|| Frame {
        event: None,
        data: text.to_string(),
        exception: false,
    })
}

#[cfg(test)]
mod tests {
    use crate::framing::tests::decode_every_way;
    use crate::framing::Framing;

    #[test]
    fn lines_split_anywhere() {
        let bytes = "{\"a\":\"é\"}\n\n{\"b\":2}\r\n{\"done\":true}".as_bytes();
        let frames = decode_every_way(Framing::Ndjson, bytes);
        let data: Vec<&str> = frames.iter().map(|f| f.data.as_str()).collect();
        assert_eq!(data, ["{\"a\":\"é\"}", "{\"b\":2}", "{\"done\":true}"]);
    }
}
