//! The sidecar HTTP service. (Stub.)
