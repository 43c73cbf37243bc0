//! AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the `authorization` header), as Bedrock
//! requires: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
//!
//! The canonical request is built from the request as it goes on the wire. Bedrock is not
//! S3, so each path segment is URI-encoded once more for the canonical URI: the `%3A` of a
//! model id (`...-v1%3A0`) is `%253A` there, as AWS's SDKs sign it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::digest::{hex, sha256_hex};

/// The credentials and scope of a signature.
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Temporary credentials' token: sent and signed as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

impl Signer<'_> {
    /// The headers that sign a request: `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` (with a session token) and `authorization`. `headers` are the
    /// other headers to sign (`host` first of all; names lowercase), as they are sent.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
        now_ms: u64,
    ) -> Vec<(String, String)> {
        let date = amz_date(now_ms);
        let payload = sha256_hex(body);
        let mut added = vec![
            ("x-amz-date".to_string(), date.clone()),
            ("x-amz-content-sha256".to_string(), payload.clone()),
        ];
        if let Some(token) = self.session_token {
            added.push(("x-amz-security-token".to_string(), token.to_string()));
        }
        let signed: Vec<(String, String)> = headers.iter().chain(&added).cloned().collect();
        let authorization = self.authorization(method, path, &signed, &payload, &date);
        added.push(("authorization".to_string(), authorization));
        added
    }

    /// The `authorization` value for a request whose signed headers are exactly `headers`
    /// (`x-amz-date` among them), with the hex SHA-256 of its body.
    pub fn authorization(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        payload_sha256: &str,
        amz_date: &str,
    ) -> String {
        let day = amz_date.get(..8).unwrap_or_default();
        let scope = format!("{day}/{}/{}/aws4_request", self.region, self.service);
        let (canonical, signed_headers) = canonical_request(method, path, headers, payload_sha256);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_access_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [self.region, self.service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id
        )
    }
}

/// The canonical request and its signed-headers list.
fn canonical_request(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
) -> (String, String) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let uri: Vec<String> = path.split('/').map(uri_encode).collect();
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Names lowercase and sorted; a repeated header's values joined by commas; values
    // trimmed with inner runs of spaces made one.
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let mut canonical = format!("{method}\n{}\n{}\n", uri.join("/"), query.join("&"));
    for name in &names {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signed_headers = names.join(";");
    canonical.push_str(&format!("\n{signed_headers}\n{payload_sha256}"));
    (canonical, signed_headers)
}

/// AWS's URI encoding: every byte but the unreserved characters (`A-Z a-z 0-9 - _ . ~`) as
/// `%XX`, upper-case hex.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for ms since the epoch.
pub fn amz_date(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The Gregorian date of a day number since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // AWS's SigV4 test suite (aws-sig-v4-test-suite): these credentials, service "service",
    // us-east-1, 2015-08-30T12:36:00Z.
    const SUITE: Signer = Signer {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
        region: "us-east-1",
        service: "service",
    };
    const DATE: &str = "20150830T123600Z";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn published_vectors() {
        let base = h(&[("host", "example.amazonaws.com"), ("x-amz-date", DATE)]);
        let auth = SUITE.authorization("GET", "/", &base, EMPTY, DATE);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        // post-vanilla
        assert_eq!(
            signature(&SUITE.authorization("POST", "/", &base, EMPTY, DATE)),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        // get-vanilla-query-order-key-case: the query is sorted.
        assert_eq!(
            signature(&SUITE.authorization(
                "GET",
                "/?Param2=value2&Param1=value1",
                &base,
                EMPTY,
                DATE
            )),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
        // post-x-www-form-urlencoded: a signed content type and a body.
        let form = h(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
        ]);
        let body_hash = sha256_hex(b"Param1=value1");
        assert_eq!(
            body_hash,
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
        assert_eq!(
            SUITE.authorization("POST", "/", &form, &body_hash, DATE),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
        // get-header-value-trim: values trimmed, inner spaces made one, names sorted.
        let trim = h(&[
            ("host", "example.amazonaws.com"),
            ("My-Header1", " value1"),
            ("My-Header2", "\"a   b   c\""),
            ("x-amz-date", DATE),
        ]);
        assert_eq!(
            signature(&SUITE.authorization("GET", "/", &trim, EMPTY, DATE)),
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        );
        // post-sts-token/post-sts-header-before: the session token is signed.
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        let sts = h(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            ("x-amz-security-token", token),
        ]);
        let auth = SUITE.authorization("POST", "/", &sts, EMPTY, DATE);
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"));
        assert_eq!(
            signature(&auth),
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    #[test]
    fn bedrock_paths_are_encoded_twice() {
        let (canonical, signed) = canonical_request(
            "POST",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            &h(&[("host", "h"), ("x-amz-date", DATE)]),
            EMPTY,
        );
        assert!(
            canonical.starts_with(
                "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"
            ),
            "{canonical}"
        );
        assert_eq!(signed, "host;x-amz-date");
        assert_eq!(uri_encode("a:b/c d~"), "a%3Ab%2Fc%20d~");
    }

    #[test]
    fn sign_adds_the_amz_headers_and_signs_them() {
        let signer = Signer {
            session_token: Some("tok"),
            region: "eu-west-1",
            service: "bedrock",
            ..SUITE
        };
        let out = signer.sign(
            "POST",
            "/model/m/converse",
            &h(&[("host", "bedrock-runtime.eu-west-1.amazonaws.com")]),
            b"{}",
            1_700_000_000_000,
        );
        let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(
            get("x-amz-content-sha256"),
            Some(sha256_hex(b"{}").as_str())
        );
        assert_eq!(get("x-amz-security-token"), Some("tok"));
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
        ));
    }

    #[test]
    fn dates_from_epoch_ms() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160_000), DATE);
        assert_eq!(amz_date(951_782_400_000), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799_999), "20991231T235959Z");
    }
}
