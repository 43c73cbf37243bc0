//! The bedrock fake: not written yet.
