//! Answering a probe: which requests are probes ([`matching`]), what a probe request asks
//! for ([`request`]), the state answers are read from ([`shared`]), the answer to a matched
//! request ([`respond`]), the answer formats and their cache ([`render`]) and gRPC's health
//! service ([`grpc`], feature `grpc`).

#[cfg(feature = "grpc")]
pub(crate) mod grpc;
pub(crate) mod matching;
pub(crate) mod render;
pub(crate) mod request;
pub(crate) mod respond;
pub(crate) mod shared;
