//! Editing a JSON object's top-level fields without parsing what is inside them.
//!
//! Same-schema passthrough (an OpenAI-compatible provider) only needs to change `model`; the
//! messages, tools and everything else stay raw bytes, so a large request costs one scan.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The top-level members of a JSON object, in order, values unparsed.
#[derive(Debug)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
}

impl<'a> RawObject<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The member as a string, when it is one.
    pub fn get_str(&self, key: &str) -> Option<Cow<'_, str>> {
        let raw = self.get(key)?;
        serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
    }

    /// Sets a member to a JSON string, keeping its position when it exists.
    pub fn set_str(&mut self, key: &str, value: &str) {
        let encoded = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
        // A serialised string is always a valid raw value.
        if let Ok(raw) = RawValue::from_string(encoded) {
            self.set_raw(key, raw);
        }
    }

    pub fn set_raw(&mut self, key: &str, value: Box<RawValue>) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = Cow::Owned(value),
            None => self
                .members
                .push((Cow::Owned(key.to_string()), Cow::Owned(value))),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let len = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>();
        let mut out = Vec::with_capacity(len + 2);
        out.push(b'{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Keys came from valid JSON or from our own code; re-encode to be safe. Writing a
            // string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k.as_ref());
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// `bytes` (a JSON object) with its top-level member `key` set to the string `value`: only
/// that value's bytes change, everything else is copied as it came. `None` when the object
/// has no such member.
pub fn replace_str_member(
    bytes: &[u8],
    key: &str,
    value: &str,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let obj = RawObject::parse(bytes)?;
    let Some(range) = obj.get(key).and_then(|raw| span_in(bytes, raw.get())) else {
        return Ok(None);
    };
    let encoded = serde_json::to_string(value)?;
    let mut out = Vec::with_capacity(bytes.len() - range.len() + encoded.len());
    out.extend_from_slice(&bytes[..range.start]);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(&bytes[range.end..]);
    Ok(Some(out))
}

/// Like [`replace_str_member`], adding the member when it is missing.
pub fn with_str_member(bytes: &[u8], key: &str, value: &str) -> Result<Vec<u8>, serde_json::Error> {
    if let Some(out) = replace_str_member(bytes, key, value)? {
        return Ok(out);
    }
    let mut obj = RawObject::parse(bytes)?;
    obj.set_str(key, value);
    Ok(obj.to_vec())
}

/// Where `part`, a slice borrowed from `whole`, lies in it.
fn span_in(whole: &[u8], part: &str) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len() && whole.get(start..end) == Some(part.as_bytes())).then_some(start..end)
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, Cow::Borrowed(value)));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_model_and_keeps_the_rest_byte_for_byte() {
        let body = br#"{"model":"gpt","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.5,"extra":{"a":[1,2]}}"#;
        let mut o = RawObject::parse(body).unwrap();
        assert_eq!(o.get_str("model").unwrap(), "gpt");
        o.set_str("model", "gpt-4o-mini");
        let out = String::from_utf8(o.to_vec()).unwrap();
        assert_eq!(
            out,
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.5,"extra":{"a":[1,2]}}"#
        );
    }

    #[test]
    fn escaped_keys_and_missing_members() {
        let mut o = RawObject::parse(br#"{"mo\u0064el":"x"}"#).unwrap();
        assert_eq!(o.get_str("model").unwrap(), "x");
        assert!(o.get("stream").is_none());
        o.set_str("user", "u");
        o.remove("model");
        assert_eq!(o.to_vec(), br#"{"user":"u"}"#);
    }

    #[test]
    fn member_replaced_in_place() {
        let body = br#"{ "model" : "a\"b", "x": [1, 2] }"#;
        assert_eq!(
            with_str_member(body, "model", "new").unwrap(),
            br#"{ "model" : "new", "x": [1, 2] }"#
        );
        assert_eq!(
            with_str_member(br#"{"x":1}"#, "model", "m").unwrap(),
            br#"{"x":1,"model":"m"}"#
        );
        assert!(with_str_member(b"[]", "model", "m").is_err());
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert!(RawObject::parse(b"[1]").is_err());
        assert!(RawObject::parse(b"{\"a\":").is_err());
        assert!(RawObject::parse(b"").is_err());
        assert!(RawObject::parse(b"{} trailing").is_err());
    }
}
