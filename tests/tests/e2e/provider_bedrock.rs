//! bedrock end to end: not written yet.
