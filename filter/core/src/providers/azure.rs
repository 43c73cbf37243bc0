//! Azure OpenAI: the OpenAI schema, with the deployment in the path, the `api-version` query
//! and the key in the `api-key` header.

use super::openai::OpenAi;
use super::{Ctx, ProviderRequest, Translator};
use crate::error::ApiError;
use crate::framing::Frame;

#[derive(Default)]
pub struct Azure(OpenAi);

impl Translator for Azure {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["api-key", "authorization"]
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let d = ctx.deployment;
        let mut path = format!(
            "{}/openai/deployments/{}{}",
            d.base_path,
            d.model,
            ctx.info.endpoint.path()
        );
        if let Some(v) = &d.params.api_version {
            path.push_str("?api-version=");
            path.push_str(v);
        }
        Ok(ProviderRequest {
            path,
            headers: ctx.credentials.key_header("api-key").into_iter().collect(),
            body: super::openai::request_body(ctx, body)?,
        })
    }

    // The answers, streams and errors are OpenAI's own.
    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.0.response(ctx, body)
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        self.0.stream_frame(ctx, frame, out)
    }

    fn stream_end(&mut self, ctx: &Ctx, out: &mut Vec<u8>) -> Result<(), ApiError> {
        self.0.stream_end(ctx, out)
    }

    fn stream_usage(&self) -> Option<crate::openai::Usage> {
        self.0.stream_usage()
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        self.0.error(ctx, status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;
    use switchyard_config::{Endpoint, Provider};

    #[test]
    fn deployment_path_version_and_key() {
        let (mut d, i) = ctx_for(Provider::Azure, Endpoint::Embeddings, "");
        d.model = "my-deploy".into();
        d.params.api_version = Some("2024-10-21".into());
        let key = Credentials::Key("az-key".into());
        let r = Azure::default()
            .request(&ctx(&d, &i, &key), br#"{"model":"fast","input":"x"}"#)
            .unwrap();
        assert_eq!(
            r.path,
            "/openai/deployments/my-deploy/embeddings?api-version=2024-10-21"
        );
        assert_eq!(r.body, br#"{"model":"my-deploy","input":"x"}"#);
        assert_eq!(r.headers, [("api-key".to_string(), "az-key".to_string())]);
    }
}
