//! The cohere fake: not written yet.
