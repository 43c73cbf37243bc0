//! One translator per wire format. Each file has the same shape: request → provider request,
//! provider response → OpenAI response, provider stream → OpenAI chunks, provider error →
//! OpenAI error. A translator is created per attempt and never mutates its input, so retries
//! stay safe.

pub mod azure;
pub mod openai;

use switchyard_config::{DeploymentConfig, RequestInfo, Wire};

use crate::error::ApiError;
use crate::sse::Event;

/// What a translator sees of the attempt.
pub struct Ctx<'a> {
    pub deployment: &'a DeploymentConfig,
    pub info: &'a RequestInfo,
}

pub trait Translator {
    /// `:path` (with query) of the provider request.
    fn path(&self, ctx: &Ctx) -> String;
    /// The provider request body, from the OpenAI request body.
    fn request(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError>;
    /// The OpenAI response body, from the provider's successful response body.
    fn response(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError>;
    /// Appends the OpenAI SSE bytes for one provider stream event to `out`.
    fn stream_event(&mut self, ctx: &Ctx, event: &Event, out: &mut Vec<u8>);
    /// The OpenAI error for a provider's error response.
    fn error(&self, ctx: &Ctx, status: u16, body: &[u8]) -> ApiError;
}

/// The translator for a wire format, fresh for one attempt.
pub fn translator(wire: Wire) -> Box<dyn Translator> {
    match wire {
        Wire::OpenAi => Box::new(openai::OpenAi),
        Wire::Azure => Box::new(azure::Azure),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use switchyard_config::{DeploymentConfig, Endpoint, Provider, RequestInfo};

    /// A deployment serving model_name "fast" with provider model "provider-model".
    pub fn ctx_for(
        provider: Provider,
        endpoint: Endpoint,
        base_path: &str,
    ) -> (DeploymentConfig, RequestInfo) {
        (
            DeploymentConfig {
                id: "d1".into(),
                group: "fast".into(),
                provider,
                model: "provider-model".into(),
                scheme: "https".into(),
                authority: "api.example.com".into(),
                base_path: base_path.into(),
                api_version: None,
                auth: provider.info().auth,
                key_env: Some("KEY".into()),
                organization: None,
                headers: vec![],
            },
            RequestInfo {
                endpoint,
                requested_model: "fast".into(),
                group: "fast".into(),
                ..crate::testing::info(&["d1"])
            },
        )
    }
}
