//! Azure OpenAI: the OpenAI schema, with the deployment in the path, the `api-version` query
//! and the key in the `api-key` header.

use super::openai::OpenAi;
use super::{Ctx, ProviderRequest, Translator};
use crate::error::ApiError;
use crate::framing::Frame;
use switchyard_config::Dialect;

#[derive(Default)]
pub struct Azure(OpenAi);

impl Translator for Azure {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["api-key", "authorization"]
    }

    fn native(&mut self, ctx: &Ctx, body: &[u8]) -> Option<Result<ProviderRequest, ApiError>> {
        if ctx.info.dialect != Dialect::Responses {
            return None;
        }
        // Azure's Responses API: `model` names the deployment; the dated preview API takes
        // api-version, the v1 API none.
        let d = ctx.deployment;
        // A stored response's path (and the client's query) after /responses.
        let stored = ctx.info.stored.as_deref();
        let (tail, query) = match stored.map(|s| s.split_once('?').unwrap_or((s, ""))) {
            Some((path, query)) => (format!("/{path}"), query),
            None => (String::new(), ""),
        };
        let mut path = match &d.params.api_version {
            Some(v) if v != "v1" => {
                format!("{}/openai/responses{tail}?api-version={v}", d.base_path)
            }
            _ => format!("{}/openai/v1/responses{tail}", d.base_path),
        };
        if !query.is_empty() {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(query);
        }
        let headers = ctx.credentials.key_header("api-key").into_iter().collect();
        if stored.is_some() {
            return Some(Ok(ProviderRequest {
                path,
                headers,
                body: Vec::new(),
            }));
        }
        Some(
            super::openai::request_body(ctx, body).map(|body| ProviderRequest {
                path,
                headers,
                body,
            }),
        )
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
