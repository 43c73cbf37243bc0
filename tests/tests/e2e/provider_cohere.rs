//! cohere end to end: not written yet.
