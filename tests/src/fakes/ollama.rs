//! The ollama fake: not written yet.
