//! The providers Switchyard serves, with LiteLLM's prefixes, default api_base and the
//! environment variables LiteLLM reads for them.

use serde::{Deserialize, Serialize};

/// The wire format a provider speaks. switchyard-core has one translator file per wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// The OpenAI API itself, or a server compatible with it.
    OpenAi,
    /// Azure OpenAI: deployment in the path, `api-version` query, `api-key` header.
    Azure,
}

/// How the provider wants its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `api-key: <key>` (Azure)
    ApiKeyHeader,
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
}

/// What LiteLLM knows of a provider, as Switchyard uses it.
pub struct ProviderInfo {
    pub provider: Provider,
    /// LiteLLM's model prefixes for it (`groq/llama3-8b-8192`).
    pub prefixes: &'static [&'static str],
    pub wire: Wire,
    pub auth: AuthStyle,
    /// Used when the deployment sets no api_base and `api_base_env` is unset.
    pub default_api_base: Option<&'static str>,
    /// The environment variable LiteLLM reads for the api_base.
    pub api_base_env: Option<&'static str>,
    /// The environment variable LiteLLM reads for the key when the deployment sets none.
    pub api_key_env: Option<&'static str>,
    /// Whether a request without a key is a configuration error (self-hosted servers are often open).
    pub key_required: bool,
}

const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        provider: Provider::Openai,
        prefixes: &["openai", "custom_openai", "text-completion-openai"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.openai.com/v1"),
        api_base_env: Some("OPENAI_API_BASE"),
        api_key_env: Some("OPENAI_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Azure,
        prefixes: &["azure", "azure_text"],
        wire: Wire::Azure,
        auth: AuthStyle::ApiKeyHeader,
        default_api_base: None,
        api_base_env: Some("AZURE_API_BASE"),
        api_key_env: Some("AZURE_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Groq,
        prefixes: &["groq"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.groq.com/openai/v1"),
        api_base_env: Some("GROQ_API_BASE"),
        api_key_env: Some("GROQ_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::TogetherAi,
        prefixes: &["together_ai"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.together.xyz/v1"),
        api_base_env: Some("TOGETHER_AI_API_BASE"),
        api_key_env: Some("TOGETHERAI_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Mistral,
        prefixes: &["mistral"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.mistral.ai/v1"),
        api_base_env: Some("MISTRAL_API_BASE"),
        api_key_env: Some("MISTRAL_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Deepseek,
        prefixes: &["deepseek"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.deepseek.com/v1"),
        api_base_env: Some("DEEPSEEK_API_BASE"),
        api_key_env: Some("DEEPSEEK_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::FireworksAi,
        prefixes: &["fireworks_ai"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.fireworks.ai/inference/v1"),
        api_base_env: Some("FIREWORKS_API_BASE"),
        api_key_env: Some("FIREWORKS_AI_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Openrouter,
        prefixes: &["openrouter"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://openrouter.ai/api/v1"),
        api_base_env: Some("OPENROUTER_API_BASE"),
        api_key_env: Some("OPENROUTER_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Xai,
        prefixes: &["xai"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.x.ai/v1"),
        api_base_env: Some("XAI_API_BASE"),
        api_key_env: Some("XAI_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::Perplexity,
        prefixes: &["perplexity"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("https://api.perplexity.ai"),
        api_base_env: Some("PERPLEXITY_API_BASE"),
        api_key_env: Some("PERPLEXITYAI_API_KEY"),
        key_required: true,
    },
    ProviderInfo {
        provider: Provider::HostedVllm,
        prefixes: &["hosted_vllm", "vllm"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: None,
        api_base_env: Some("HOSTED_VLLM_API_BASE"),
        api_key_env: Some("HOSTED_VLLM_API_KEY"),
        key_required: false,
    },
    ProviderInfo {
        provider: Provider::LmStudio,
        prefixes: &["lm_studio"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        default_api_base: Some("http://localhost:1234/v1"),
        api_base_env: Some("LM_STUDIO_API_BASE"),
        api_key_env: Some("LM_STUDIO_API_KEY"),
        key_required: false,
    },
    ProviderInfo {
        provider: Provider::Demo,
        prefixes: &["switchyard_demo"],
        wire: Wire::OpenAi,
        auth: AuthStyle::Bearer,
        // Filled in by the renderer with the sidecar's address.
        default_api_base: None,
        api_base_env: None,
        api_key_env: None,
        key_required: false,
    },
];

/// LiteLLM providers that Switchyard does not serve yet: naming one is a clear error, not a silent drop.
pub const NOT_YET_SERVED: &[&str] = &[
    "anthropic",
    "bedrock",
    "bedrock_converse",
    "cohere",
    "cohere_chat",
    "gemini",
    "vertex_ai",
    "vertex_ai_beta",
    "ollama",
    "ollama_chat",
    "huggingface",
    "replicate",
    "sagemaker",
    "watsonx",
    "databricks",
    "cloudflare",
    "ai21",
    "nlp_cloud",
    "aleph_alpha",
    "petals",
    "palm",
    "text-completion-codestral",
    "codestral",
    "voyage",
    "cerebras",
    "sambanova",
    "nvidia_nim",
    "friendliai",
    "github",
    "deepinfra",
    "anyscale",
    "predibase",
    "triton",
    "clarifai",
    "baseten",
    "azure_ai",
    "jina_ai",
    "infinity",
    "litellm_proxy",
];

impl Provider {
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
        }
    }

    #[test]
    fn prefixes_resolve() {
        assert_eq!(Provider::from_prefix("vllm"), Some(Provider::HostedVllm));
        assert_eq!(
            Provider::from_prefix("together_ai"),
            Some(Provider::TogetherAi)
        );
        assert_eq!(Provider::from_prefix("anthropic"), None);
        for p in Provider::all() {
            assert_eq!(Provider::from_prefix(p.name()), Some(p));
        }
    }
}
