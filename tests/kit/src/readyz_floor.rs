//! The floor of a probe answered from cache, shared by `benches/probe.rs` and
//! `examples/load.rs`: the body and headers the layer answers `GET /readyz` with when its
//! one check passes, rendered once and shared (as an answer that can change would be),
//! not static.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, HeaderValue};

/// The body of a passing readiness answer.
pub const PASS: &[u8] = br#"{"status":"pass"}"#;

/// The layer's `/readyz` answer with one passing check: its four headers and its body.
pub fn readyz_answer() -> Arc<(HeaderMap, Bytes)> {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/health+json"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(PASS.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Arc::new((headers, Bytes::from(PASS.to_vec())))
}
