//! End-to-end tests: `switchyard up` (the real Envoy loading the built .wasm, and the
//! sidecar) in front of fake providers, over real HTTP. Each test asserts what the client got
//! and what the provider received.
//!
//! One test binary, so every test can run in parallel with every other; each module starts
//! one Switchyard for its tests (on first use) and gives each test its own fake provider or
//! marker, so parallel tests never see each other's requests.
//!
//! Needs `make build` (release binary and .wasm) and `make setup` (.venv with Envoy and the
//! openai SDK). Set SWITCHYARD_E2E_DEBUG=1 to run Envoy and the filter with debug logs; a
//! failing test prints the logs of its Switchyard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_ui;
mod anthropic_messages;
mod auth;
mod cache;
mod callbacks;
mod chat;
mod common;
mod compose;
mod drop_in;
mod errors;
mod every_provider;
mod failover;
mod fallbacks;
mod fleet;
mod headers;
mod health;
mod keys_and_spend;
mod metrics;
mod original_systems;
mod provider_anthropic;
mod provider_bedrock;
mod provider_cohere;
mod provider_gemini;
mod provider_ollama;
mod providers;
mod python_sdk;
mod quickstart;
mod rate_limits;
mod responses_api;
mod retries;
mod routing;
mod tls;
mod vertex_service_account;
