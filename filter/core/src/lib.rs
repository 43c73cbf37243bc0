//! switchyard-core: every per-request decision of the Switchyard filter, in pure Rust.
//!
//! The wasm crate (switchyard-filter) only turns proxy-wasm callbacks into calls on
//! [`gateway::Gateway`] (downstream, once per request) and [`provider_role::ProviderRole`]
//! (upstream, once per attempt).

pub mod cache;
pub mod dialects;
pub mod digest;
pub mod error;
pub mod feeds;
pub mod framing;
pub mod gateway;
pub mod headers;
pub mod host;
pub mod json;
pub mod keys;
pub mod limits;
pub mod observe;
pub mod openai;
pub mod provider_role;
pub mod providers;
pub mod router;
pub mod spend;
#[doc(hidden)]
pub mod testing;

pub use error::ApiError;
