//! The gemini fake: not written yet.
