//! The anthropic fake: not written yet.
