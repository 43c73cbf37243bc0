//! ollama end to end: not written yet.
