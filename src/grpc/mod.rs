//! `grpc.health.v1`: the layer answers the gRPC health service's Check, Watch and List
//! before routing, from the same state as the HTTP probes (feature `grpc`).

// The service answers with these once gRPC requests are matched; until then they are
// exercised by their own tests only.
#![allow(dead_code)]

pub(crate) mod messages;
pub(crate) mod names;
pub(crate) mod wire;
