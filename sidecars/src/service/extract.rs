//! Request bodies and query strings parsed into typed structs, with a 400 that names the field
//! at fault (`param`) instead of axum's plain-text rejections. A body is read as JSON whatever
//! its content type (curl's `-d` sends form-urlencoded), and an empty body is `{}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let mut de = serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(&mut de)
            .map(Body)
            .map_err(|e| {
                let inner = e.inner().to_string();
                let path = e.path().to_string();
                field_error(&path, &inner, "the request body")
            })
    }
}

/// A query string.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::try_from_uri(&parts.uri)
            .map(|Query(t)| Params(t))
            .map_err(|e| {
                // axum says "Failed to deserialize query string: <path>: <error>".
                let text = e.body_text();
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
                match detail.split_once(": ") {
                    Some((path, inner)) if !path.contains(' ') => {
                        field_error(path, inner, "the query string")
                    }
                    _ => field_error(".", detail, "the query string"),
                }
            })
    }
}

/// 400 naming the field: from the path, or from serde's "missing field `x`".
fn field_error(path: &str, inner: &str, whole: &str) -> ApiError {
    let named = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(field)) => ApiError::invalid(field, format!("{field}: is required")),
        (".", None) => ApiError::bad_request(format!("{whole} is not valid: {inner}")),
        (path, _) => ApiError::invalid(path, format!("{path}: {inner}")),
    }
}

/// One view of a JSON body (a body read as [`Body<Value>`] may be read as several structs, each
/// naming its own fields when they are wrong).
pub fn parse<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        field_error(&path, &inner, "the request body")
    })
}
