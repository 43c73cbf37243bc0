//! Every provider Switchyard serves, in one table: LiteLLM's model prefixes, the wire format
//! (which names the translator file in switchyard-core, `providers/<wire>.rs`), the endpoints
//! it serves, its default api_base, the environment variables LiteLLM reads for it, its kind
//! of credentials and the settings it takes (api_version, region, project, location).
//!
//! Adding a provider: a row here, a translator in switchyard-core if its wire is new, fixtures
//! under tests/fixtures/<provider>/, and a fake for the end-to-end tests.

use serde::{Deserialize, Serialize};

use crate::contract::{Endpoint, ProviderParams};

/// The wire format a provider speaks: one translator per wire in switchyard-core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// The OpenAI API itself, or a server compatible with it.
    OpenAi,
    /// Azure OpenAI: deployment in the path, `api-version` query, `api-key` header.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's generateContent (AI Studio and Vertex AI).
    Gemini,
    /// Amazon Bedrock's Converse API, SigV4 signed.
    Bedrock,
    /// Cohere's v2 API.
    Cohere,
    /// Ollama's own API (`/api/generate`, `/api/chat`, `/api/embed`).
    Ollama,
}

/// The kind of credentials a provider takes. Which header carries them is the translator's
/// business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// An API key (`api_key`, else the provider's variable).
    Key,
    /// AWS access key, secret and optional session token (SigV4).
    Aws,
    /// A Google OAuth access token, or a service account the sidecar mints tokens for.
    Google,
}

/// A provider setting LiteLLM reads from `litellm_params.<param>`, else from the first of
/// `envs` that is set, else `default`.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub param: &'static str,
    pub envs: &'static [&'static str],
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Azure,
    Groq,
    TogetherAi,
    Mistral,
    Deepseek,
    FireworksAi,
    Openrouter,
    Xai,
    Perplexity,
    HostedVllm,
    LmStudio,
    /// Switchyard's built-in demo model, served by the sidecar; needs no key.
    Demo,
    Anthropic,
    Gemini,
    VertexAi,
    Bedrock,
    Cohere,
    Ollama,
    OllamaChat,
    /// Hugging Face's router (OpenAI-compatible), or a TGI endpoint given as api_base.
    Huggingface,
    /// Databricks model serving (OpenAI-compatible, api_base `.../serving-endpoints`).
    Databricks,
    Cerebras,
    Sambanova,
    NvidiaNim,
    Deepinfra,
    /// Another LiteLLM proxy (or Switchyard) in front.
    LitellmProxy,
}

/// What Switchyard knows of a provider.
pub struct ProviderInfo {
    pub provider: Provider,
    /// LiteLLM's model prefixes for it (`groq/llama3-8b-8192`); the first is its name.
    pub prefixes: &'static [&'static str],
    pub wire: Wire,
    pub auth: AuthKind,
    /// What it serves. A deployment serves these unless its `model_info.mode` narrows them.
    pub endpoints: &'static [Endpoint],
    /// The api_base when the deployment sets none and `api_base_env` is unset.
    pub default_api_base: fn(&ProviderParams) -> Option<String>,
    /// The environment variable LiteLLM reads for the api_base.
    pub api_base_env: Option<&'static str>,
    /// The environment variable LiteLLM reads for the key when the deployment sets none.
    pub api_key_env: Option<&'static str>,
    /// Whether a request without a key is a configuration error (self-hosted servers are often open).
    pub key_required: bool,
    pub api_version: Option<Setting>,
    pub region: Option<Setting>,
    pub project: Option<Setting>,
    pub location: Option<Setting>,
}

const ALL: &[Endpoint] = &[
    Endpoint::ChatCompletions,
    Endpoint::Completions,
    Endpoint::Embeddings,
];
/// Anthropic's own API: chat, and counting a Messages request's tokens.
const MESSAGES: &[Endpoint] = &[Endpoint::ChatCompletions, Endpoint::CountTokens];
const CHAT_AND_EMBEDDINGS: &[Endpoint] = &[Endpoint::ChatCompletions, Endpoint::Embeddings];

fn no_base(_: &ProviderParams) -> Option<String> {
    None
}

/// An OpenAI-compatible provider with a key.
const fn openai_like(
    provider: Provider,
    prefixes: &'static [&'static str],
    base: fn(&ProviderParams) -> Option<String>,
    api_base_env: &'static str,
    api_key_env: &'static str,
) -> ProviderInfo {
    ProviderInfo {
        provider,
        prefixes,
        wire: Wire::OpenAi,
        auth: AuthKind::Key,
        endpoints: ALL,
        default_api_base: base,
        api_base_env: Some(api_base_env),
        api_key_env: Some(api_key_env),
        key_required: true,
        api_version: None,
        region: None,
        project: None,
        location: None,
    }
}

macro_rules! base {
    ($url:expr) => {{
        fn f(_: &ProviderParams) -> Option<String> {
            Some($url.to_string())
        }
        f
    }};
}

fn bedrock_base(p: &ProviderParams) -> Option<String> {
    let region = p.region.as_deref().unwrap_or("us-east-1");
    Some(format!("https://bedrock-runtime.{region}.amazonaws.com"))
}

fn vertex_base(p: &ProviderParams) -> Option<String> {
    match p.location.as_deref() {
        Some("global") | None => Some("https://aiplatform.googleapis.com".to_string()),
        Some(loc) => Some(format!("https://{loc}-aiplatform.googleapis.com")),
    }
}

const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        prefixes: &["openai", "custom_openai", "text-completion-openai"],
        ..openai_like(
            Provider::Openai,
            &[],
            base!("https://api.openai.com/v1"),
            "OPENAI_API_BASE",
            "OPENAI_API_KEY",
        )
    },
    ProviderInfo {
        provider: Provider::Azure,
        prefixes: &["azure", "azure_text"],
        wire: Wire::Azure,
        auth: AuthKind::Key,
        endpoints: ALL,
        default_api_base: no_base,
        api_base_env: Some("AZURE_API_BASE"),
        api_key_env: Some("AZURE_API_KEY"),
        key_required: true,
        api_version: Some(Setting {
            param: "api_version",
            envs: &["AZURE_API_VERSION"],
            default: Some("2024-10-21"),
        }),
        region: None,
        project: None,
        location: None,
    },
    openai_like(
        Provider::Groq,
        &["groq"],
        base!("https://api.groq.com/openai/v1"),
        "GROQ_API_BASE",
        "GROQ_API_KEY",
    ),
    openai_like(
        Provider::TogetherAi,
        &["together_ai"],
        base!("https://api.together.xyz/v1"),
        "TOGETHER_AI_API_BASE",
        "TOGETHERAI_API_KEY",
    ),
    openai_like(
        Provider::Mistral,
        &["mistral"],
        base!("https://api.mistral.ai/v1"),
        "MISTRAL_API_BASE",
        "MISTRAL_API_KEY",
    ),
    openai_like(
        Provider::Deepseek,
        &["deepseek"],
        base!("https://api.deepseek.com/v1"),
        "DEEPSEEK_API_BASE",
        "DEEPSEEK_API_KEY",
    ),
    openai_like(
        Provider::FireworksAi,
        &["fireworks_ai"],
        base!("https://api.fireworks.ai/inference/v1"),
        "FIREWORKS_API_BASE",
        "FIREWORKS_AI_API_KEY",
    ),
    openai_like(
        Provider::Openrouter,
        &["openrouter"],
        base!("https://openrouter.ai/api/v1"),
        "OPENROUTER_API_BASE",
        "OPENROUTER_API_KEY",
    ),
    openai_like(
        Provider::Xai,
        &["xai"],
        base!("https://api.x.ai/v1"),
        "XAI_API_BASE",
        "XAI_API_KEY",
    ),
    openai_like(
        Provider::Perplexity,
        &["perplexity"],
        base!("https://api.perplexity.ai"),
        "PERPLEXITY_API_BASE",
        "PERPLEXITYAI_API_KEY",
    ),
    ProviderInfo {
        key_required: false,
        ..openai_like(
            Provider::HostedVllm,
            &["hosted_vllm", "vllm"],
            no_base,
            "HOSTED_VLLM_API_BASE",
            "HOSTED_VLLM_API_KEY",
        )
    },
    ProviderInfo {
        key_required: false,
        ..openai_like(
            Provider::LmStudio,
            &["lm_studio"],
            base!("http://localhost:1234/v1"),
            "LM_STUDIO_API_BASE",
            "LM_STUDIO_API_KEY",
        )
    },
    ProviderInfo {
        provider: Provider::Demo,
        prefixes: &["switchyard_demo"],
        wire: Wire::OpenAi,
        auth: AuthKind::Key,
        endpoints: ALL,
        // The renderer points it at the sidecar.
        default_api_base: no_base,
        api_base_env: None,
        api_key_env: None,
        key_required: false,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::Anthropic,
        prefixes: &["anthropic"],
        wire: Wire::Anthropic,
        auth: AuthKind::Key,
        endpoints: MESSAGES,
        default_api_base: base!("https://api.anthropic.com"),
        api_base_env: Some("ANTHROPIC_API_BASE"),
        api_key_env: Some("ANTHROPIC_API_KEY"),
        key_required: true,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::Gemini,
        prefixes: &["gemini"],
        wire: Wire::Gemini,
        auth: AuthKind::Key,
        endpoints: CHAT_AND_EMBEDDINGS,
        default_api_base: base!("https://generativelanguage.googleapis.com"),
        api_base_env: Some("GEMINI_API_BASE"),
        api_key_env: Some("GEMINI_API_KEY"),
        key_required: true,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::VertexAi,
        prefixes: &["vertex_ai", "vertex_ai_beta"],
        wire: Wire::Gemini,
        auth: AuthKind::Google,
        endpoints: CHAT_AND_EMBEDDINGS,
        default_api_base: vertex_base,
        api_base_env: None,
        api_key_env: None,
        key_required: true,
        api_version: None,
        region: None,
        project: Some(Setting {
            param: "vertex_project",
            envs: &["VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT"],
            default: None,
        }),
        location: Some(Setting {
            param: "vertex_location",
            envs: &["VERTEXAI_LOCATION", "VERTEX_LOCATION"],
            default: Some("us-central1"),
        }),
    },
    ProviderInfo {
        provider: Provider::Bedrock,
        prefixes: &["bedrock", "bedrock_converse"],
        wire: Wire::Bedrock,
        auth: AuthKind::Aws,
        endpoints: CHAT_AND_EMBEDDINGS,
        default_api_base: bedrock_base,
        api_base_env: Some("AWS_BEDROCK_RUNTIME_ENDPOINT"),
        api_key_env: None,
        key_required: true,
        api_version: None,
        region: Some(Setting {
            param: "aws_region_name",
            envs: &["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"],
            default: Some("us-east-1"),
        }),
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::Cohere,
        prefixes: &["cohere", "cohere_chat"],
        wire: Wire::Cohere,
        auth: AuthKind::Key,
        endpoints: CHAT_AND_EMBEDDINGS,
        default_api_base: base!("https://api.cohere.com"),
        api_base_env: Some("COHERE_API_BASE"),
        api_key_env: Some("COHERE_API_KEY"),
        key_required: true,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::Ollama,
        prefixes: &["ollama"],
        wire: Wire::Ollama,
        auth: AuthKind::Key,
        endpoints: ALL,
        default_api_base: base!("http://localhost:11434"),
        api_base_env: Some("OLLAMA_API_BASE"),
        api_key_env: Some("OLLAMA_API_KEY"),
        key_required: false,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    ProviderInfo {
        provider: Provider::OllamaChat,
        prefixes: &["ollama_chat"],
        wire: Wire::Ollama,
        auth: AuthKind::Key,
        endpoints: CHAT_AND_EMBEDDINGS,
        default_api_base: base!("http://localhost:11434"),
        api_base_env: Some("OLLAMA_API_BASE"),
        api_key_env: Some("OLLAMA_API_KEY"),
        key_required: false,
        api_version: None,
        region: None,
        project: None,
        location: None,
    },
    openai_like(
        Provider::Huggingface,
        &["huggingface"],
        base!("https://router.huggingface.co/v1"),
        "HUGGINGFACE_API_BASE",
        "HUGGINGFACE_API_KEY",
    ),
    openai_like(
        Provider::Databricks,
        &["databricks"],
        no_base,
        "DATABRICKS_API_BASE",
        "DATABRICKS_API_KEY",
    ),
    openai_like(
        Provider::Cerebras,
        &["cerebras"],
        base!("https://api.cerebras.ai/v1"),
        "CEREBRAS_API_BASE",
        "CEREBRAS_API_KEY",
    ),
    openai_like(
        Provider::Sambanova,
        &["sambanova"],
        base!("https://api.sambanova.ai/v1"),
        "SAMBANOVA_API_BASE",
        "SAMBANOVA_API_KEY",
    ),
    openai_like(
        Provider::NvidiaNim,
        &["nvidia_nim"],
        base!("https://integrate.api.nvidia.com/v1"),
        "NVIDIA_NIM_API_BASE",
        "NVIDIA_NIM_API_KEY",
    ),
    openai_like(
        Provider::Deepinfra,
        &["deepinfra"],
        base!("https://api.deepinfra.com/v1/openai"),
        "DEEPINFRA_API_BASE",
        "DEEPINFRA_API_KEY",
    ),
    ProviderInfo {
        key_required: false,
        ..openai_like(
            Provider::LitellmProxy,
            &["litellm_proxy"],
            no_base,
            "LITELLM_PROXY_API_BASE",
            "LITELLM_PROXY_API_KEY",
        )
    },
];

/// LiteLLM providers that Switchyard does not serve yet: naming one is a clear error, not a silent drop.
pub const NOT_YET_SERVED: &[&str] = &[
    "replicate",
    "sagemaker",
    "sagemaker_chat",
    "watsonx",
    "watsonx_text",
    "cloudflare",
    "ai21",
    "nlp_cloud",
    "aleph_alpha",
    "petals",
    "palm",
    "text-completion-codestral",
    "codestral",
    "voyage",
    "friendliai",
    "github",
    "anyscale",
    "predibase",
    "triton",
    "clarifai",
    "baseten",
    "azure_ai",
    "jina_ai",
    "infinity",
];

impl Provider {
    /// The client APIs besides chat this provider speaks itself for `model`, so that a
    /// request in one passes to it untouched rather than bridged through chat: Anthropic's
    /// Messages API to Anthropic and to Claude on Bedrock (InvokeModel), OpenAI's Responses
    /// API to OpenAI and Azure (not the OpenAI-compatible servers, which have no Responses
    /// API).
    pub fn speaks(self, model: &str) -> &'static [crate::Dialect] {
        match self {
            Provider::Anthropic => &[crate::Dialect::Anthropic],
            Provider::Bedrock if model.contains("anthropic.") => &[crate::Dialect::Anthropic],
            Provider::Openai | Provider::Azure => &[crate::Dialect::Responses],
            _ => &[],
        }
    }

    pub fn info(self) -> &'static ProviderInfo {
        // PROVIDERS holds one entry per variant, in declaration order (checked by a test).
        &PROVIDERS[self as usize]
    }

    /// The provider for a LiteLLM prefix (`groq`, `hosted_vllm`, ...).
    pub fn from_prefix(prefix: &str) -> Option<Provider> {
        PROVIDERS
            .iter()
            .find(|p| p.prefixes.contains(&prefix))
            .map(|p| p.provider)
    }

    pub fn name(self) -> &'static str {
        self.info().prefixes[0]
    }

    pub fn wire(self) -> Wire {
        self.info().wire
    }

    pub fn all() -> impl Iterator<Item = Provider> {
        PROVIDERS.iter().map(|p| p.provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, p) in PROVIDERS.iter().enumerate() {
            assert_eq!(p.provider as usize, i, "{:?} out of order", p.provider);
            assert!(!p.prefixes.is_empty(), "{:?} has no prefix", p.provider);
        }
    }

    #[test]
    fn prefixes_resolve() {
        assert_eq!(Provider::from_prefix("vllm"), Some(Provider::HostedVllm));
        assert_eq!(
            Provider::from_prefix("together_ai"),
            Some(Provider::TogetherAi)
        );
        assert_eq!(
            Provider::from_prefix("bedrock_converse"),
            Some(Provider::Bedrock)
        );
        assert_eq!(Provider::from_prefix("sagemaker"), None);
        for p in Provider::all() {
            assert_eq!(Provider::from_prefix(p.name()), Some(p));
            for other in NOT_YET_SERVED {
                assert!(!p.info().prefixes.contains(other), "{other} is served");
            }
        }
    }

    #[test]
    fn regional_bases() {
        let p = |region: Option<&str>, location: Option<&str>| ProviderParams {
            region: region.map(str::to_string),
            location: location.map(str::to_string),
            ..ProviderParams::default()
        };
        assert_eq!(
            (Provider::Bedrock.info().default_api_base)(&p(Some("eu-west-1"), None)).as_deref(),
            Some("https://bedrock-runtime.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            (Provider::VertexAi.info().default_api_base)(&p(None, Some("europe-west4"))).as_deref(),
            Some("https://europe-west4-aiplatform.googleapis.com")
        );
        assert_eq!(
            (Provider::VertexAi.info().default_api_base)(&p(None, Some("global"))).as_deref(),
            Some("https://aiplatform.googleapis.com")
        );
    }
}
