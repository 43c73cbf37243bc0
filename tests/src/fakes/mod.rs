//! Strict fakes of the providers with their own APIs, one file each: the [`crate::strict::Handler`]
//! that checks a request against the provider's API reference and answers from
//! tests/fixtures/<provider>/.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod ollama;
