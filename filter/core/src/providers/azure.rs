//! Azure OpenAI: the OpenAI schema, with the deployment in the path, the `api-version` query and
//! the `api-key` header (set from the deployment's auth style).

use super::openai::OpenAi;
use super::{Ctx, Translator};
use crate::error::ApiError;
use crate::sse::Event;

pub struct Azure;

impl Translator for Azure {
    fn path(&self, ctx: &Ctx) -> String {
        let d = ctx.deployment;
        let mut path = format!(
            "{}/openai/deployments/{}{}",
            d.base_path,
            d.model,
            ctx.info.endpoint.path()
        );
        if let Some(v) = &d.api_version {
            path.push_str("?api-version=");
            path.push_str(v);
        }
        path
    }

    // The body, answers, streams and errors are OpenAI's own.
    fn request(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        OpenAi.request(ctx, body)
    }

    fn response(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        OpenAi.response(ctx, body)
    }

    fn stream_event(&mut self, ctx: &Ctx, event: &Event, out: &mut Vec<u8>) {
        OpenAi.stream_event(ctx, event, out)
    }

    fn error(&self, ctx: &Ctx, status: u16, body: &[u8]) -> ApiError {
        OpenAi.error(ctx, status, body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::ctx_for;
    use switchyard_config::{Endpoint, Provider};

    #[test]
    fn deployment_path_and_version() {
        let (mut d, i) = ctx_for(Provider::Azure, Endpoint::Embeddings, "");
        d.model = "my-deploy".into();
        d.api_version = Some("2024-10-21".into());
        let ctx = Ctx {
            deployment: &d,
            info: &i,
        };
        assert_eq!(
            Azure.path(&ctx),
            "/openai/deployments/my-deploy/embeddings?api-version=2024-10-21"
        );
        let out = Azure
            .request(&ctx, br#"{"model":"fast","input":"x"}"#)
            .unwrap();
        assert_eq!(out, br#"{"model":"my-deploy","input":"x"}"#);
    }
}
