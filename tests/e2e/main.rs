//! The layer on a real server of each stack on loopback, with real clients: axum
//! (`on_axum`), a plain hyper service served by hyper-util (`on_hyper`) and tonic
//! (`on_tonic`). gRPC health over each is in the `grpc` target.

mod on_axum;
mod on_hyper;
mod on_tonic;
