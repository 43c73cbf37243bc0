//! Header edits. A map that changes a lot (the provider role rebuilds every attempt's) is
//! written whole, read and set with one host call each; a map that gets a few headers (the
//! gateway's routing headers) is edited header by header, which is cheaper than both.

/// A header map as proxy-wasm reads and writes it: (name, value) pairs, names lower case.
pub type HeaderMap = Vec<(String, String)>;

/// Edits applied to a whole header map: removals first, then the values set.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

impl HeaderEdits {
    /// The new header map from the current one.
    pub fn apply(&self, current: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = current
            .into_iter()
            .filter(|(name, _)| {
                !self.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
                    && !self.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
            })
            .collect();
        out.extend(self.set.iter().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn edits_apply_to_the_whole_map() {
        let edits = HeaderEdits {
            remove: vec!["authorization".into(), "content-length".into()],
            set: vec![
                (":path".into(), "/v1/chat/completions".into()),
                ("api-key".into(), "k".into()),
            ],
        };
        let out = edits.apply(h(&[
            (":method", "POST"),
            (":path", "/old"),
            ("Authorization", "Bearer client-key"),
            ("content-length", "10"),
            ("api-key", "stale"),
            ("user-agent", "sdk"),
        ]));
        assert_eq!(
            out,
            h(&[
                (":method", "POST"),
                ("user-agent", "sdk"),
                (":path", "/v1/chat/completions"),
                ("api-key", "k")
            ])
        );
    }
}
