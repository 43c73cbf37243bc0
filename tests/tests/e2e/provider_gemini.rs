//! gemini end to end: not written yet.
