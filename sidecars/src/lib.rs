//! The switchyard binary: the CLI (`up`, `render`, `check`, `sidecar`), the sidecar service and
//! its store.

pub mod cache;
pub mod callbacks;
pub mod cli;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod redis;
pub mod semantic;
pub mod service;
pub mod store;
