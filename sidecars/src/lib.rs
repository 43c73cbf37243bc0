//! The switchyard binary: the CLI (`up`, `render`, `check`, `sidecar`) and the sidecar service.

pub mod cli;
pub mod service;
