//! The APIs clients speak besides OpenAI's chat completions, bridged to and from the chat
//! format the translators take (issue 10): Anthropic's Messages API and OpenAI's Responses
//! API. Each file has the same shape: request → chat request, chat answer → answer, chat
//! chunks → the API's event sequence, error → the API's error.

pub mod anthropic;
pub mod responses;

use switchyard_config::Dialect;

use crate::error::ApiError;

/// An error as a client of `dialect` reads it.
pub fn error_body(dialect: Dialect, e: &ApiError) -> Vec<u8> {
    match dialect {
        // The Responses API's errors are OpenAI's.
        Dialect::Chat | Dialect::Responses => e.body(),
        Dialect::Anthropic => anthropic::error_body(e),
    }
}

/// The API a path speaks.
pub fn of_path(path: &str) -> Dialect {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    match path {
        "/v1/messages" | "/messages" => Dialect::Anthropic,
        "/v1/responses" | "/responses" => Dialect::Responses,
        _ => Dialect::Chat,
    }
}
