//! What a deployment's tokens cost, and its context window: from its config, else from the
//! price table shipped with Switchyard (`config/prices/model_prices.json`, trimmed from
//! LiteLLM's model price map; `config/prices/README.md` says from which revision).
//!
//! The order, per deployment:
//! 1. its own prices: `input_cost_per_token`, `output_cost_per_token`,
//!    `cache_read_input_token_cost`, `cache_creation_input_token_cost` and
//!    `output_cost_per_reasoning_token`, each from `litellm_params`, else `model_info`. Setting
//!    the input or output price makes them the deployment's prices (LiteLLM's custom pricing):
//!    what they leave out costs 0 (input, output) or the input/output price (cache, reasoning);
//! 2. else the table's entry for `model_info.base_model` if set, else for `litellm_params.model`,
//!    found by LiteLLM's key conventions ([`PriceTable::find`]); cache or reasoning prices set
//!    in the config still win over the table's;
//! 3. else nothing is known: 0, and the loader warns.
//!
//! `model_info.max_input_tokens` likewise falls back to the table's.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::contract::Prices;
use crate::model::ModelEntry;
use crate::provider::Provider;

/// The shipped table, embedded so the binary needs no file at run time.
const TABLE_JSON: &str = include_str!("../prices/model_prices.json");

/// One model of the table: LiteLLM's field names, USD per token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TableEntry {
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    #[serde(default)]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default)]
    pub cache_creation_input_token_cost: Option<f64>,
    #[serde(default)]
    pub output_cost_per_reasoning_token: Option<f64>,
    /// LiteLLM's provider name (`openai`, `bedrock_converse`, `vertex_ai-anthropic_models`, ...).
    pub litellm_provider: String,
    /// `chat`, `completion` or `embedding`.
    pub mode: String,
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
}

/// Where the table came from (written by tools/update-prices.py).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TableSource {
    pub repository: String,
    pub revision: String,
    pub sha256: String,
    pub license: String,
}

#[derive(Deserialize)]
struct TableFile {
    source: TableSource,
    models: HashMap<String, TableEntry>,
}

/// LiteLLM's model price map, trimmed to the providers and fields Switchyard uses.
#[derive(Debug, Default)]
pub struct PriceTable {
    pub source: TableSource,
    models: HashMap<String, TableEntry>,
    /// Lower-cased key → key: LiteLLM falls back to a case-insensitive match.
    lowercase: HashMap<String, String>,
}

impl PriceTable {
    pub fn parse(json: &str) -> Result<PriceTable, serde_json::Error> {
        let file: TableFile = serde_json::from_str(json)?;
        let lowercase = file
            .models
            .keys()
            .map(|k| (k.to_ascii_lowercase(), k.clone()))
            .collect();
        Ok(PriceTable {
            source: file.source,
            models: file.models,
            lowercase,
        })
    }

    /// The table shipped in the binary, parsed on first use. A test guarantees it parses; were
    /// it broken, every deployment would be unpriced and warned about.
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| PriceTable::parse(TABLE_JSON).unwrap_or_default())
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The entry under exactly this key, else under the same key in another case.
    pub fn get(&self, key: &str) -> Option<(&str, &TableEntry)> {
        self.models
            .get_key_value(key)
            .or_else(|| {
                let k = self.lowercase.get(&key.to_ascii_lowercase())?;
                self.models.get_key_value(k)
            })
            .map(|(k, e)| (k.as_str(), e))
    }

    /// The entry for `model` (as litellm_params.model writes it, with or without its provider
    /// prefix) served by `provider`, by LiteLLM's lookup (`get_model_info`): the first of these
    /// keys that the table holds for the same provider:
    /// 1. `bedrock/<region>/<id>` (Bedrock, when the region is known: regional prices);
    /// 2. `<provider>/<model>`, then the model as written, then the bare model;
    /// 3. the same with the version stripped: Bedrock's cross-region prefix (`us.`), region
    ///    path, ARN and throughput suffix; Vertex AI's and Gemini's `-001`; a fine-tune's
    ///    `ft:<base>:<org>:<suffix>:<id>` to `ft:<base>`; else a `-YYYY-MM-DD` snapshot date;
    /// 4. `<provider>/<model as written>` (providers whose model ids repeat their name).
    ///
    /// A `litellm_proxy` deployment takes any provider's price for its model, as LiteLLM does.
    pub fn find(
        &self,
        provider: Provider,
        model: &str,
        region: Option<&str>,
    ) -> Option<(&str, &TableEntry)> {
        let prefix = provider.name();
        let bare = match model.split_once('/') {
            Some((p, rest)) if Provider::from_prefix(p) == Some(provider) => rest,
            _ => model,
        };
        let bare = match provider {
            Provider::Bedrock => bedrock_model_id(bare),
            _ => bare,
        };
        let stripped = strip_version(provider, bare);
        let mut keys = Vec::with_capacity(7);
        if let (Provider::Bedrock, Some(region)) = (provider, region) {
            keys.push(format!("bedrock/{region}/{bare}"));
        }
        keys.push(format!("{prefix}/{bare}"));
        keys.push(model.to_string());
        keys.push(bare.to_string());
        keys.push(format!("{prefix}/{stripped}"));
        keys.push(stripped.to_string());
        if model.starts_with(&format!("{prefix}/")) {
            keys.push(format!("{prefix}/{model}"));
        }
        let found = keys.iter().find_map(|key| {
            self.get(key)
                .filter(|(_, e)| provider == Provider::LitellmProxy || family(e) == Some(provider))
        });
        match found {
            Some(hit) => Some(hit),
            // `litellm_proxy/anthropic/claude-...`: the model names its own provider.
            None if provider == Provider::LitellmProxy => match bare.split_once('/') {
                Some((p, _)) => {
                    let inner = Provider::from_prefix(p)?;
                    (inner != provider)
                        .then(|| self.find(inner, bare, None))
                        .flatten()
                }
                None => None,
            },
            None => None,
        }
    }
}

/// The Switchyard provider of a table entry: LiteLLM files some models under
/// `<provider>-<kind>` (`vertex_ai-anthropic_models`, `fireworks_ai-embedding-models`).
fn family(entry: &TableEntry) -> Option<Provider> {
    let p = entry.litellm_provider.as_str();
    Provider::from_prefix(p).or_else(|| Provider::from_prefix(p.split_once('-')?.0))
}

/// LiteLLM's routing prefixes in a Bedrock model (`converse/`, `invoke/`, ...) and an ARN
/// (its last segment names the model or inference profile) removed.
fn bedrock_model_id(model: &str) -> &str {
    let mut m = model;
    for route in [
        "bedrock/",
        "chat_completions/",
        "converse/",
        "invoke/",
        "openai/",
        "mantle/",
        "nova-2/",
        "nova/",
    ] {
        m = m.strip_prefix(route).unwrap_or(m);
    }
    let (_, id) = split_region_path(m);
    if id.starts_with("arn:") {
        return id.rsplit('/').next().unwrap_or(id);
    }
    m
}

/// `us-east-1/<id>` → (Some("us-east-1"), <id>).
fn split_region_path(model: &str) -> (Option<&str>, &str) {
    match model.split_once('/') {
        Some((region, id)) if is_aws_region(region) => (Some(region), id),
        _ => (None, model),
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-3`, ...
fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    matches!(parts.len(), 3 | 4)
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(lower)
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Bedrock's cross-region inference prefixes (`us.anthropic.claude-...`).
const CROSS_REGION: &[&str] = &["global", "us", "eu", "apac", "jp", "au", "us-gov"];

/// The model without its version, as LiteLLM's `_strip_model_name`.
fn strip_version(provider: Provider, model: &str) -> &str {
    match provider {
        Provider::Bedrock => bedrock_base_model(model),
        // `gemini-2.0-flash-001` → `gemini-2.0-flash`.
        Provider::VertexAi | Provider::Gemini | Provider::Databricks => {
            match model.rsplit_once('-') {
                Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
                _ => model,
            }
        }
        // `ft:gpt-4o-mini-2024-07-18:org:suffix:id` → `ft:gpt-4o-mini-2024-07-18`.
        _ if model.contains("ft:") => match model.rmatch_indices(':').nth(2) {
            Some((i, _)) => &model[..i],
            None => model,
        },
        _ => strip_date(model),
    }
}

/// `gpt-4o-2024-08-06` → `gpt-4o`.
fn strip_date(model: &str) -> &str {
    let Some(cut) = model.len().checked_sub(11) else {
        return model;
    };
    let Some(tail) = model.get(cut..) else {
        return model;
    };
    let dated = tail.bytes().enumerate().all(|(i, b)| match i {
        0 | 5 | 8 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    if dated {
        &model[..cut]
    } else {
        model
    }
}

/// `us.anthropic.claude-3-5-haiku-20241022-v1:0` → `anthropic.claude-3-5-haiku-20241022-v1:0`;
/// also a region path, an ARN, a throughput suffix (`:0:51k`) and a context suffix (`[1m]`).
fn bedrock_base_model(model: &str) -> &str {
    let mut m = bedrock_model_id(model);
    // `<id>:<version>:<n>k` (provisioned throughput) → `<id>:<version>`.
    if let Some((head, tier)) = m.rsplit_once(':') {
        let throughput = tier
            .strip_suffix('k')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let versioned = head
            .rsplit_once(':')
            .is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if throughput && versioned {
            m = head;
        }
    }
    if let Some(open) = m.strip_suffix(']').and_then(|s| s.rfind('[')) {
        m = &m[..open];
    }
    match m.split_once('.') {
        Some((region, rest)) if CROSS_REGION.contains(&region) => rest,
        _ => split_region_path(m).1,
    }
}

/// A deployment's prices, where they came from, and its context window.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPrices {
    pub prices: Prices,
    pub source: PriceSource,
    /// model_info.max_input_tokens, else the table's.
    pub max_input_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PriceSource {
    /// The deployment's own input_cost_per_token / output_cost_per_token.
    Config,
    /// The table's entry under this key.
    Table(String),
    /// Nowhere: its requests cost 0.
    Unknown,
}

impl DeploymentPrices {
    /// Input and output price for cost-based-routing; None when unknown, so that such a
    /// deployment goes after the priced ones instead of passing for free.
    pub fn routing_costs(&self) -> (Option<f64>, Option<f64>) {
        match self.source {
            PriceSource::Unknown => (None, None),
            _ => (Some(self.prices.input), Some(self.prices.output)),
        }
    }
}

/// The prices of one model_list entry from the shipped table. `region` is Bedrock's AWS
/// region when known.
pub fn deployment_prices(entry: &ModelEntry, region: Option<&str>) -> DeploymentPrices {
    prices_in(PriceTable::builtin(), entry, region)
}

/// [`deployment_prices`] from another table (tests).
pub fn prices_in(table: &PriceTable, entry: &ModelEntry, region: Option<&str>) -> DeploymentPrices {
    let p = &entry.litellm_params;
    let i = &entry.model_info;
    let input = p.input_cost_per_token.or(i.input_cost_per_token);
    let output = p.output_cost_per_token.or(i.output_cost_per_token);
    let cache_read = p
        .cache_read_input_token_cost
        .or(i.cache_read_input_token_cost);
    let cache_creation = p
        .cache_creation_input_token_cost
        .or(i.cache_creation_input_token_cost);
    let reasoning = p
        .output_cost_per_reasoning_token
        .or(i.output_cost_per_reasoning_token);
    let per_second = match (p.input_cost_per_second, p.output_cost_per_second) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    let found = table_entry(table, entry, region);
    let max_input_tokens = i
        .max_input_tokens
        .or_else(|| found.and_then(|(_, e)| e.max_input_tokens));
    let (prices, source) = if input.is_some() || output.is_some() || per_second.is_some() {
        let own = Prices {
            input: input.unwrap_or(0.0),
            output: output.unwrap_or(0.0),
            cache_read,
            cache_creation,
            reasoning,
            per_second,
        };
        (own, PriceSource::Config)
    } else if let Some((key, e)) = found {
        let listed = Prices {
            input: e.input_cost_per_token.unwrap_or(0.0),
            output: e.output_cost_per_token.unwrap_or(0.0),
            cache_read: cache_read.or(e.cache_read_input_token_cost),
            cache_creation: cache_creation.or(e.cache_creation_input_token_cost),
            reasoning: reasoning.or(e.output_cost_per_reasoning_token),
            per_second: None,
        };
        (listed, PriceSource::Table(key.to_string()))
    } else {
        let unknown = Prices {
            cache_read,
            cache_creation,
            reasoning,
            ..Prices::default()
        };
        (unknown, PriceSource::Unknown)
    };
    DeploymentPrices {
        prices,
        source,
        max_input_tokens,
    }
}

/// The table's entry for a deployment: its base_model's if set (under the deployment's
/// provider, else the one the base_model names), else its model's.
fn table_entry<'t>(
    table: &'t PriceTable,
    entry: &ModelEntry,
    region: Option<&str>,
) -> Option<(&'t str, &'t TableEntry)> {
    let model = entry.litellm_params.model.as_str();
    let (provider, _) = crate::load::provider_of(model).ok()?;
    match entry.model_info.base_model.as_deref() {
        Some(base) => table.find(provider, base, region).or_else(|| {
            let (own, _) = crate::load::provider_of(base).ok()?;
            table.find(own, base, region)
        }),
        None => table.find(provider, model, region),
    }
}

/// A pattern deployment's prices (`openai/*`, `anthropic/claude-*`): every model of its
/// provider in the table that its pattern matches, by the provider's name, unless the
/// deployment has prices of its own.
pub fn catalog(d: &crate::resolve::Resolved) -> BTreeMap<String, Prices> {
    catalog_in(PriceTable::builtin(), d)
}

fn catalog_in(table: &PriceTable, d: &crate::resolve::Resolved) -> BTreeMap<String, Prices> {
    let provider = d.config.provider;
    if !crate::wildcard::is_pattern(&d.config.model) || d.pricing.source == PriceSource::Config {
        return BTreeMap::new();
    }
    let prefix = format!("{}/", provider.name());
    table
        .models
        .iter()
        .filter(|(_, e)| family(e) == Some(provider))
        .map(|(key, e)| (key.strip_prefix(&prefix).unwrap_or(key), e))
        .filter(|(name, _)| crate::wildcard::captures(&d.config.model, name).is_some())
        .map(|(name, e)| {
            let own = &d.config.prices;
            let prices = Prices {
                input: e.input_cost_per_token.unwrap_or(0.0),
                output: e.output_cost_per_token.unwrap_or(0.0),
                cache_read: own.cache_read.or(e.cache_read_input_token_cost),
                cache_creation: own.cache_creation.or(e.cache_creation_input_token_cost),
                reasoning: own.reasoning.or(e.output_cost_per_reasoning_token),
                per_second: None,
            };
            (name.to_string(), prices)
        })
        .collect()
}

/// The loader's warning for a deployment whose price is unknown (none for the demo, which is
/// free by design).
pub fn missing_price_warning(entry: &ModelEntry) -> Option<String> {
    // A pattern's models are priced one by one, from the table.
    if crate::wildcard::is_pattern(&entry.litellm_params.model) {
        return None;
    }
    let region = entry
        .litellm_params
        .aws_region_name
        .as_deref()
        .filter(|r| !r.starts_with("os.environ/"));
    if deployment_prices(entry, region).source != PriceSource::Unknown {
        return None;
    }
    let model = &entry.litellm_params.model;
    let provider = crate::load::provider_of(model).ok().map(|(p, _)| p);
    if provider == Some(Provider::Demo) {
        return None;
    }
    let looked_up = match &entry.model_info.base_model {
        Some(base) => format!("model_info.base_model \"{base}\""),
        None => format!("\"{model}\""),
    };
    let hint = match (provider, &entry.model_info.base_model) {
        (Some(Provider::Azure), None) => {
            ", or model_info.base_model to the model it runs (e.g. azure/gpt-4o-mini)"
        }
        (Some(Provider::Bedrock), None) => {
            ", or model_info.base_model to the model it runs (e.g. anthropic.claude-3-5-haiku-20241022-v1:0)"
        }
        _ => "",
    };
    Some(format!(
        "no price known for {looked_up} (deployment \"{}\"): its requests are counted at $0; set litellm_params.input_cost_per_token and output_cost_per_token (USD per token){hint}",
        entry.model_name
    ))
}

/// The first price in a model_list entry that is negative or not a number, by its path.
pub fn invalid_price(entry: &ModelEntry) -> Option<&'static str> {
    let p = &entry.litellm_params;
    let i = &entry.model_info;
    [
        (
            "litellm_params.input_cost_per_token",
            p.input_cost_per_token,
        ),
        (
            "litellm_params.output_cost_per_token",
            p.output_cost_per_token,
        ),
        (
            "litellm_params.cache_read_input_token_cost",
            p.cache_read_input_token_cost,
        ),
        (
            "litellm_params.cache_creation_input_token_cost",
            p.cache_creation_input_token_cost,
        ),
        (
            "litellm_params.output_cost_per_reasoning_token",
            p.output_cost_per_reasoning_token,
        ),
        ("model_info.input_cost_per_token", i.input_cost_per_token),
        ("model_info.output_cost_per_token", i.output_cost_per_token),
        (
            "model_info.cache_read_input_token_cost",
            i.cache_read_input_token_cost,
        ),
        (
            "model_info.cache_creation_input_token_cost",
            i.cache_creation_input_token_cost,
        ),
        (
            "model_info.output_cost_per_reasoning_token",
            i.output_cost_per_reasoning_token,
        ),
    ]
    .into_iter()
    .find(|(_, v)| v.is_some_and(|v| !(v >= 0.0 && v.is_finite())))
    .map(|(field, _)| field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of known prices, independent of the shipped one (whose prices change).
    const TABLE: &str = r#"{
"source": {"repository": "r", "revision": "test", "sha256": "0", "license": "MIT"},
"models": {
"gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08, "litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000},
"gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "litellm_provider": "openai", "mode": "chat"},
"gpt-3.5-turbo-instruct": {"input_cost_per_token": 1.5e-06, "output_cost_per_token": 2e-06, "litellm_provider": "text-completion-openai", "mode": "completion"},
"ft:gpt-4o-mini-2024-07-18": {"input_cost_per_token": 3e-07, "output_cost_per_token": 1.2e-06, "litellm_provider": "openai", "mode": "chat"},
"azure/gpt-4o-mini": {"input_cost_per_token": 1.65e-07, "output_cost_per_token": 6.6e-07, "litellm_provider": "azure", "mode": "chat", "max_input_tokens": 128000},
"claude-haiku-4-5": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06, "cache_read_input_token_cost": 1e-07, "cache_creation_input_token_cost": 1.25e-06, "litellm_provider": "anthropic", "mode": "chat"},
"anthropic.claude-3-5-haiku-20241022-v1:0": {"input_cost_per_token": 8e-07, "output_cost_per_token": 4e-06, "cache_read_input_token_cost": 8e-08, "cache_creation_input_token_cost": 1e-06, "litellm_provider": "bedrock", "mode": "chat", "max_input_tokens": 200000},
"us.anthropic.claude-3-5-haiku-20241022-v1:0": {"input_cost_per_token": 8.8e-07, "output_cost_per_token": 4.4e-06, "litellm_provider": "bedrock", "mode": "chat"},
"meta.llama3-70b-instruct-v1:0": {"input_cost_per_token": 2.65e-06, "output_cost_per_token": 3.5e-06, "litellm_provider": "bedrock", "mode": "chat"},
"bedrock/ap-south-1/meta.llama3-70b-instruct-v1:0": {"input_cost_per_token": 3.18e-06, "output_cost_per_token": 4.2e-06, "litellm_provider": "bedrock", "mode": "chat"},
"amazon.titan-embed-text-v2:0": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0, "litellm_provider": "bedrock", "mode": "embedding", "max_input_tokens": 8192},
"vertex_ai/gemini-2.0-flash": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "litellm_provider": "vertex_ai", "mode": "chat"},
"gemini-2.5-flash": {"input_cost_per_token": 3e-07, "output_cost_per_token": 2.5e-06, "output_cost_per_reasoning_token": 2.5e-06, "litellm_provider": "vertex_ai-language-models", "mode": "chat"},
"vertex_ai/claude-haiku-4-5@20251001": {"input_cost_per_token": 1.1e-06, "output_cost_per_token": 5.5e-06, "litellm_provider": "vertex_ai-anthropic_models", "mode": "chat"},
"text-embedding-005": {"input_cost_per_token": 1e-07, "output_cost_per_token": 0, "litellm_provider": "vertex_ai-embedding-models", "mode": "embedding"},
"gemini/gemini-2.5-flash": {"input_cost_per_token": 3.5e-07, "output_cost_per_token": 2.6e-06, "litellm_provider": "gemini", "mode": "chat", "max_input_tokens": 1048576},
"gemini/gemini-embedding-001": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 0, "litellm_provider": "gemini", "mode": "embedding"},
"text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "embedding", "max_input_tokens": 8191},
"groq/openai/gpt-oss-120b": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "litellm_provider": "groq", "mode": "chat"},
"together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo": {"input_cost_per_token": 8.8e-07, "output_cost_per_token": 8.8e-07, "litellm_provider": "together_ai", "mode": "chat"},
"ollama/llama3": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": "ollama", "mode": "chat"}
}
}"#;

    fn table() -> PriceTable {
        PriceTable::parse(TABLE).unwrap()
    }

    fn entry(yaml: &str) -> ModelEntry {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    /// The table key a `litellm_params.model` (and optional base_model) resolves to.
    fn key_of(model: &str, base_model: Option<&str>, region: Option<&str>) -> Option<String> {
        let base = base_model.map_or(String::new(), |b| {
            format!("\nmodel_info: {{base_model: '{b}'}}")
        });
        let e = entry(&format!(
            "model_name: m\nlitellm_params: {{model: '{model}'}}{base}"
        ));
        match prices_in(&table(), &e, region).source {
            PriceSource::Table(key) => Some(key),
            _ => None,
        }
    }

    fn key(model: &str) -> Option<String> {
        key_of(model, None, None)
    }

    #[test]
    fn the_config_wins_in_order_over_the_table() {
        let t = table();
        // litellm_params over model_info, field by field; the table is not consulted.
        let e = entry(
            "
model_name: m
litellm_params: {model: openai/gpt-4o-mini, input_cost_per_token: 0.5, output_cost_per_token: 0.25}
model_info: {input_cost_per_token: 9, output_cost_per_token: 9, cache_read_input_token_cost: 0.1}
",
        );
        let d = prices_in(&t, &e, None);
        assert_eq!(d.source, PriceSource::Config);
        assert_eq!(
            d.prices,
            Prices {
                input: 0.5,
                output: 0.25,
                cache_read: Some(0.1),
                cache_creation: None,
                reasoning: None,
                per_second: None,
            },
            "custom pricing: the table's cache price is not mixed in"
        );
        assert_eq!(d.routing_costs(), (Some(0.5), Some(0.25)));
        assert_eq!(
            d.max_input_tokens,
            Some(128_000),
            "the table's context window still"
        );

        // model_info alone.
        let e = entry(
            "
model_name: m
litellm_params: {model: openai/gpt-4o-mini}
model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, max_input_tokens: 1000}
",
        );
        let d = prices_in(&t, &e, None);
        assert_eq!((d.prices.input, d.prices.output), (0.000001, 0.000002));
        assert_eq!(d.source, PriceSource::Config);
        assert_eq!(d.max_input_tokens, Some(1000), "model_info's window wins");

        // Only an input price: the output costs nothing, as in LiteLLM's custom pricing.
        let e = entry(
            "model_name: m\nlitellm_params: {model: openai/gpt-4o, input_cost_per_token: 0.000001}",
        );
        let d = prices_in(&t, &e, None);
        assert_eq!(d.routing_costs(), (Some(0.000001), Some(0.0)));

        // Only a cache price: the table's prices, with the config's cache price.
        let e = entry(
            "
model_name: m
litellm_params: {model: anthropic/claude-haiku-4-5, cache_read_input_token_cost: 0.00000005}
model_info: {output_cost_per_reasoning_token: 0.00001}
",
        );
        let d = prices_in(&t, &e, None);
        assert_eq!(d.source, PriceSource::Table("claude-haiku-4-5".into()));
        assert_eq!(
            d.prices,
            Prices {
                input: 1e-06,
                output: 5e-06,
                cache_read: Some(5e-08),
                cache_creation: Some(1.25e-06),
                reasoning: Some(1e-05),
                per_second: None,
            }
        );

        // Billed by time.
        let e = entry(
            "model_name: m\nlitellm_params: {model: ollama/llama3, input_cost_per_second: 0.0002, output_cost_per_second: 0.0001}",
        );
        let d = prices_in(&t, &e, None);
        assert_eq!(d.source, PriceSource::Config);
        assert!((d.prices.per_second.unwrap_or_default() - 0.0003).abs() < 1e-12);

        // The table alone.
        let e = entry("model_name: m\nlitellm_params: {model: openai/gpt-4o-mini}");
        let d = prices_in(&t, &e, None);
        assert_eq!(
            d,
            DeploymentPrices {
                prices: Prices {
                    input: 1.5e-07,
                    output: 6e-07,
                    cache_read: Some(7.5e-08),
                    cache_creation: None,
                    reasoning: None,
                    per_second: None,
                },
                source: PriceSource::Table("gpt-4o-mini".into()),
                max_input_tokens: Some(128_000),
            }
        );
    }

    #[test]
    fn provider_prefixed_and_bare_names() {
        assert_eq!(key("gpt-4o-mini").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(key("openai/gpt-4o-mini").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            key("openai/gpt-4o-mini-2024-07-18").as_deref(),
            Some("gpt-4o-mini"),
            "a dated snapshot falls back to its model"
        );
        assert_eq!(
            key("openai/ft:gpt-4o-mini-2024-07-18:my-org::abc123").as_deref(),
            Some("ft:gpt-4o-mini-2024-07-18"),
            "a fine-tune is priced as fine-tunes of its base"
        );
        assert_eq!(
            key("text-completion-openai/gpt-3.5-turbo-instruct").as_deref(),
            Some("gpt-3.5-turbo-instruct"),
            "LiteLLM's other prefixes of a provider"
        );
        assert_eq!(
            key("groq/openai/gpt-oss-120b").as_deref(),
            Some("groq/openai/gpt-oss-120b")
        );
        assert_eq!(
            key("together_ai/meta-llama/llama-3.3-70b-instruct-turbo").as_deref(),
            Some("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            "case-insensitive, as LiteLLM"
        );
        assert_eq!(
            key("anthropic/claude-haiku-4-5").as_deref(),
            Some("claude-haiku-4-5")
        );
        assert_eq!(key("ollama/llama3").as_deref(), Some("ollama/llama3"));
        // Another provider's row for the same name is not this deployment's price.
        assert_eq!(key("azure/gpt-4o"), None);
        assert_eq!(key("hosted_vllm/gpt-4o-mini"), None);
        assert_eq!(key("openrouter/openai/gpt-4o"), None);
        // A LiteLLM proxy in front serves any provider's model.
        assert_eq!(
            key("litellm_proxy/gpt-4o-mini").as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            key("litellm_proxy/anthropic/claude-haiku-4-5").as_deref(),
            Some("claude-haiku-4-5")
        );
    }

    #[test]
    fn azure_deployments_are_priced_by_their_base_model() {
        assert_eq!(
            key("azure/gpt-4o-mini").as_deref(),
            Some("azure/gpt-4o-mini")
        );
        assert_eq!(
            key("azure/my-deployment"),
            None,
            "a deployment name says nothing"
        );
        for base in ["gpt-4o-mini", "azure/gpt-4o-mini", "AZURE/GPT-4O-MINI"] {
            assert_eq!(
                key_of("azure/my-deployment", Some(base), None).as_deref(),
                Some("azure/gpt-4o-mini"),
                "{base}"
            );
        }
        assert_eq!(
            key_of("azure/my-deployment", Some("gpt-4o"), None).as_deref(),
            Some("gpt-4o"),
            "no Azure row: the base model's own provider's"
        );
        assert_eq!(
            key_of("azure/gpt-4o-mini", Some("gpt-9"), None),
            None,
            "an unknown base_model is not replaced by the deployment's name"
        );
    }

    #[test]
    fn bedrock_ids_with_regions_and_versions() {
        let haiku = "anthropic.claude-3-5-haiku-20241022-v1:0";
        for model in [
            format!("bedrock/{haiku}"),
            format!("bedrock_converse/{haiku}"),
            format!("bedrock/converse/{haiku}"),
            format!("bedrock/invoke/{haiku}"),
            format!("bedrock/eu.{haiku}"),
            format!("bedrock/apac.{haiku}"),
            format!("bedrock/us-east-1/{haiku}"),
            format!("bedrock/{haiku}:51k"),
            format!("bedrock/{haiku}[1m]"),
        ] {
            assert_eq!(key(&model).as_deref(), Some(haiku), "{model}");
        }
        let us = format!("us.{haiku}");
        assert_eq!(
            key(&format!("bedrock/{us}")).as_deref(),
            Some(us.as_str()),
            "a cross-region profile has its own price"
        );
        assert_eq!(
            key(&format!(
                "bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/{us}"
            ))
            .as_deref(),
            Some(us.as_str()),
            "an inference profile ARN names its model"
        );
        assert_eq!(
            key_of(
                "bedrock/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
                Some(haiku),
                None
            )
            .as_deref(),
            Some(haiku),
            "an application profile is priced by its base_model"
        );
        let llama = "bedrock/meta.llama3-70b-instruct-v1:0";
        assert_eq!(
            key_of(llama, None, Some("ap-south-1")).as_deref(),
            Some("bedrock/ap-south-1/meta.llama3-70b-instruct-v1:0"),
            "regional prices"
        );
        assert_eq!(
            key_of(llama, None, Some("us-east-1")).as_deref(),
            Some("meta.llama3-70b-instruct-v1:0")
        );
        assert_eq!(key("bedrock/anthropic.claude-9"), None);
    }

    #[test]
    fn vertex_ai_and_gemini() {
        assert_eq!(
            key("vertex_ai/gemini-2.0-flash").as_deref(),
            Some("vertex_ai/gemini-2.0-flash")
        );
        assert_eq!(
            key("vertex_ai/gemini-2.0-flash-001").as_deref(),
            Some("vertex_ai/gemini-2.0-flash"),
            "a stable version falls back to its model"
        );
        assert_eq!(
            key("vertex_ai/gemini-2.5-flash").as_deref(),
            Some("gemini-2.5-flash"),
            "Vertex AI's bare rows"
        );
        assert_eq!(
            key("vertex_ai_beta/gemini-2.5-flash").as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            key("vertex_ai/claude-haiku-4-5@20251001").as_deref(),
            Some("vertex_ai/claude-haiku-4-5@20251001")
        );
        assert_eq!(
            key("gemini/gemini-2.5-flash").as_deref(),
            Some("gemini/gemini-2.5-flash"),
            "AI Studio's price, not Vertex AI's"
        );
        assert_eq!(
            key("gemini/gemini-2.5-flash-001").as_deref(),
            Some("gemini/gemini-2.5-flash")
        );
        assert_eq!(
            key("gemini/gemini-2.0-flash"),
            None,
            "only Vertex AI lists it"
        );
        let e = entry("model_name: m\nlitellm_params: {model: vertex_ai/gemini-2.5-flash}");
        assert_eq!(
            prices_in(&table(), &e, None).prices.reasoning,
            Some(2.5e-06)
        );
    }

    #[test]
    fn embeddings() {
        let t = table();
        for (model, key_) in [
            ("text-embedding-3-small", "text-embedding-3-small"),
            ("openai/text-embedding-3-small", "text-embedding-3-small"),
            ("gemini/gemini-embedding-001", "gemini/gemini-embedding-001"),
            ("vertex_ai/text-embedding-005", "text-embedding-005"),
            (
                "bedrock/amazon.titan-embed-text-v2:0",
                "amazon.titan-embed-text-v2:0",
            ),
        ] {
            let e = entry(&format!(
                "model_name: m\nlitellm_params: {{model: '{model}'}}"
            ));
            let d = prices_in(&t, &e, None);
            assert_eq!(d.source, PriceSource::Table(key_.into()), "{model}");
            assert!(d.prices.input > 0.0 && d.prices.output == 0.0, "{model}");
        }
    }

    #[test]
    fn an_unknown_model_costs_nothing_and_routes_last() {
        let e = entry("model_name: m\nlitellm_params: {model: hosted_vllm/my-llama}");
        let d = prices_in(&table(), &e, None);
        assert_eq!(d.source, PriceSource::Unknown);
        assert!(d.prices.is_free());
        assert_eq!(d.routing_costs(), (None, None));
        assert_eq!(d.max_input_tokens, None);
        // A known free model is priced, at 0.
        let e = entry("model_name: m\nlitellm_params: {model: ollama/llama3}");
        assert_eq!(
            prices_in(&table(), &e, None).routing_costs(),
            (Some(0.0), Some(0.0))
        );
    }

    #[test]
    fn warnings_name_the_deployment_and_the_fix() {
        let warning = |yaml: &str| missing_price_warning(&entry(yaml));
        let w = warning("model_name: mine\nlitellm_params: {model: hosted_vllm/my-llama}").unwrap();
        assert!(w.contains("\"hosted_vllm/my-llama\""), "{w}");
        assert!(w.contains("deployment \"mine\""), "{w}");
        assert!(
            w.contains("input_cost_per_token and output_cost_per_token"),
            "{w}"
        );
        assert!(!w.contains("base_model"), "{w}");
        let w = warning("model_name: az\nlitellm_params: {model: azure/my-deployment}").unwrap();
        assert!(w.contains("model_info.base_model"), "{w}");
        let w = warning(
            "model_name: az\nlitellm_params: {model: azure/my-deployment}\nmodel_info: {base_model: azure/gpt-9}",
        )
        .unwrap();
        assert!(w.contains("model_info.base_model \"azure/gpt-9\""), "{w}");
        for priced in [
            "model_name: a\nlitellm_params: {model: openai/gpt-4o-mini}",
            "model_name: a\nlitellm_params: {model: azure/x}\nmodel_info: {base_model: azure/gpt-4o-mini}",
            "model_name: a\nlitellm_params: {model: hosted_vllm/x, input_cost_per_token: 0, output_cost_per_token: 0}",
            "model_name: a\nlitellm_params: {model: switchyard_demo/demo}",
        ] {
            assert_eq!(warning(priced), None, "{priced}");
        }
    }

    #[test]
    fn the_loader_warns_and_checks_prices() {
        let loaded = crate::load::load_str(
            "
model_list:
  - model_name: mine
    litellm_params: {model: hosted_vllm/my-llama, api_base: 'http://127.0.0.1:8000/v1'}
  - model_name: cached
    litellm_params: {model: openai/gpt-4o-mini, cache_read_input_token_cost: 0.00000001, cache_creation_input_token_cost: 0, output_cost_per_reasoning_token: 0.000001}
",
            None,
        )
        .unwrap();
        let lines: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(lines.len(), 1, "price fields are known keys: {lines:#?}");
        assert!(
            lines[0].starts_with("model_list[0].litellm_params.model: no price known for \"hosted_vllm/my-llama\" (deployment \"mine\")"),
            "{}",
            lines[0]
        );
        let e = crate::load::load_str(
            "model_list: [{model_name: m, litellm_params: {model: openai/x, output_cost_per_token: -1}}]",
            Some("c.yaml"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml: model_list[0].litellm_params.output_cost_per_token: must be zero or a positive number (USD per token)"
        );
    }

    #[test]
    fn invalid_prices_are_named() {
        let e = entry("model_name: m\nlitellm_params: {model: openai/x}\nmodel_info: {cache_read_input_token_cost: -1}");
        assert_eq!(
            invalid_price(&e),
            Some("model_info.cache_read_input_token_cost")
        );
        let e = entry("model_name: m\nlitellm_params: {model: openai/x, input_cost_per_token: 0}");
        assert_eq!(invalid_price(&e), None);
    }

    #[test]
    fn the_shipped_table_parses_and_prices_well_known_models() {
        let shipped = PriceTable::parse(TABLE_JSON).unwrap();
        assert!(shipped.len() > 1000, "{} models", shipped.len());
        assert_eq!(shipped.len(), PriceTable::builtin().len());
        assert!(!shipped.source.revision.is_empty());
        assert!(
            shipped.source.license.contains("MIT"),
            "keep LiteLLM's attribution"
        );
        for (key, e) in &shipped.models {
            assert!(
                family(e).is_some(),
                "{key}: {} is not served",
                e.litellm_provider
            );
            assert!(
                ["chat", "completion", "embedding"].contains(&e.mode.as_str()),
                "{key}: {}",
                e.mode
            );
            assert!(
                e.input_cost_per_token.is_some() || e.output_cost_per_token.is_some(),
                "{key} has no price"
            );
        }
        for (model, base_model, chat) in [
            ("openai/gpt-4o-mini", None, true),
            ("gpt-4o-mini", None, true),
            ("azure/my-deployment", Some("azure/gpt-4o-mini"), true),
            ("anthropic/claude-haiku-4-5", None, true),
            (
                "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
                None,
                true,
            ),
            (
                "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
                None,
                true,
            ),
            ("vertex_ai/claude-3-5-haiku@20241022", None, true),
            ("vertex_ai/gemini-2.0-flash", None, true),
            ("gemini/gemini-2.5-flash", None, true),
            ("text-embedding-3-small", None, false),
            ("bedrock/amazon.titan-embed-text-v2:0", None, false),
        ] {
            let base = base_model.map_or(String::new(), |b| {
                format!("\nmodel_info: {{base_model: '{b}'}}")
            });
            let e = entry(&format!(
                "model_name: m\nlitellm_params: {{model: '{model}'}}{base}"
            ));
            let d = deployment_prices(&e, None);
            assert!(matches!(d.source, PriceSource::Table(_)), "{model}: {d:?}");
            let p = d.prices;
            // USD per token: a price per 1K or 1M tokens would be far outside this.
            assert!(p.input > 1e-9 && p.input < 1e-4, "{model}: {p:?}");
            if chat {
                assert!(p.output > p.input && p.output < 1e-3, "{model}: {p:?}");
            } else {
                assert_eq!(p.output, 0.0, "{model}");
            }
        }
        let e = entry("model_name: m\nlitellm_params: {model: openai/gpt-4o-mini}");
        assert!(
            deployment_prices(&e, None)
                .max_input_tokens
                .is_some_and(|n| n >= 100_000),
            "the context window comes along"
        );
    }

    #[test]
    fn name_helpers() {
        assert!(is_aws_region("us-east-1") && is_aws_region("us-gov-west-1"));
        assert!(is_aws_region("ap-southeast-3") && is_aws_region("eu-central-2"));
        assert!(!is_aws_region("us") && !is_aws_region("converse") && !is_aws_region("us-east"));
        assert_eq!(strip_date("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(strip_date("gpt-4o"), "gpt-4o");
        assert_eq!(strip_date("o1-2024-12-1"), "o1-2024-12-1");
        assert_eq!(
            strip_version(Provider::Openai, "ft:gpt-3.5-turbo:my-org:custom:id"),
            "ft:gpt-3.5-turbo"
        );
        assert_eq!(
            strip_version(Provider::Openai, "ft:babbage-002"),
            "ft:babbage-002"
        );
        assert_eq!(
            strip_version(Provider::Gemini, "gemini-1.5-pro-002"),
            "gemini-1.5-pro"
        );
        assert_eq!(
            bedrock_base_model("us.meta.llama3-2-11b-instruct-v1:0"),
            "meta.llama3-2-11b-instruct-v1:0"
        );
        assert_eq!(
            bedrock_base_model("anthropic.claude-3-5-sonnet-20241022-v2:0:51k"),
            "anthropic.claude-3-5-sonnet-20241022-v2:0"
        );
        assert_eq!(
            bedrock_base_model("us-west-2/amazon.nova-pro-v1:0"),
            "amazon.nova-pro-v1:0"
        );
    }
}
