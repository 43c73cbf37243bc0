//! The fixtures of `switchyard_core::testing`, for the integration tests and the bench.
#![allow(unused_imports)]

pub use switchyard_core::testing::*;
