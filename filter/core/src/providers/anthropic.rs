//! Anthropic's Messages API (`/v1/messages`).
//!
//! Not written yet: every request is a clear error.

use super::{provider_error, Ctx, ProviderRequest, Translator};
use crate::error::ApiError;
use crate::framing::Frame;

#[derive(Default)]
pub struct Anthropic;

impl Translator for Anthropic {
    fn request(&mut self, ctx: &Ctx, _: &[u8]) -> Result<ProviderRequest, ApiError> {
        Err(ApiError::new(
            501,
            "not_implemented",
            format!("Switchyard cannot translate to {} yet.", ctx.provider()),
        ))
    }

    fn response(&mut self, ctx: &Ctx, _: &[u8]) -> Result<Vec<u8>, ApiError> {
        Err(super::bad_answer(ctx, "no translator"))
    }

    fn stream_frame(&mut self, ctx: &Ctx, _: &Frame, _: &mut Vec<u8>) -> Result<(), ApiError> {
        Err(super::bad_answer(ctx, "no translator"))
    }

    fn stream_end(&mut self, ctx: &Ctx, _: &mut Vec<u8>) -> Result<(), ApiError> {
        Err(super::bad_answer(ctx, "no translator"))
    }

    fn stream_tokens(&self) -> Option<u64> {
        None
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], _: &[u8]) -> ApiError {
        provider_error(ctx, status, headers, "no translator")
    }
}
