//! gRPC health (`grpc.health.v1`) answered by the layer: in process through `oneshot`
//! (`in_process`), and over real HTTP/2 connections on tonic, axum and hyper (`e2e`).

mod e2e;
mod in_process;
