//! The end-to-end test harness: a real `switchyard up` (Envoy, the built .wasm, the sidecar)
//! on free ports, fake providers that speak the OpenAI wire format and record what they
//! received, and a small HTTP client for the tests.
//!
//! The tests themselves are in `tests/e2e/`. They use the release artefacts `make build`
//! produces; a missing or stale one fails the test with the command that builds it.
//!
//! This whole crate is test code: a failed expectation is a panic with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod artefacts;
pub mod client;
pub mod dashboard;
pub mod fake;
pub mod fakes;
pub mod ports;
pub mod postgres;
pub mod redis;
pub mod split;
pub mod strict;
pub mod switchyard;

pub use client::{assert_openai_error, marker, sse_data, Client, Reply, StreamReply};
pub use dashboard::dashboard_metric_names;
pub use fake::{FakeProvider, Match, Mode, Recorded, Rule};
pub use ports::{closed_port, free_port};
pub use strict::{FakeReply, StrictFake};
pub use switchyard::Switchyard;

use std::sync::OnceLock;

/// The value a test file shares between its tests (a Switchyard and its fakes), made on
/// first use. If making it failed, every test that asks gets that failure at once, instead
/// of each trying again for the full startup timeout.
pub fn shared<T: Send + Sync>(
    cell: &'static OnceLock<Result<T, String>>,
    init: impl FnOnce() -> T + std::panic::UnwindSafe,
) -> &'static T {
    cell.get_or_init(|| std::panic::catch_unwind(init).map_err(|p| panic_text(&*p)))
        .as_ref()
        .unwrap_or_else(|e| panic!("the shared setup of this test file failed: {e}"))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}
