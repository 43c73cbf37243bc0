//! anthropic end to end: not written yet.
