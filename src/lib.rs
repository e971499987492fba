//! Kubernetes liveness, readiness and startup probes for any tower HTTP service, answered
//! before routing, with a lock-free lifecycle and a shutdown that loses no request.
//!
//! Wrap the service with [`Health::layer`]; requests to the probe paths are answered by
//! the layer and every other request goes to your service untouched. Call
//! [`Health::ready`] when start-up is done, and hand [`Health::shutdown_signal`] to the
//! server so that SIGTERM fails readiness first and stops the server only once traffic
//! has moved away.
//!
//! # Example
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tower_health::Health;
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let health = Health::builder().build();
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .layer(health.layer());
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // ... start-up work: connect pools, warm caches ...
//!     health.ready();
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(health.shutdown_signal())
//!         .await
//! }
//! ```
//!
//! # Probes
//!
//! | state of the application | liveness | readiness | startup |
//! |---|---|---|---|
//! | [`State::Starting`] | 200 | 503 `starting` | 503 |
//! | [`State::Ready`] | 200 | 200 | 200 |
//! | [`State::Draining`] | 200 | 503 `draining` | 200 |
//! | liveness marked failed ([`Health::fail_liveness`]) | 503 | 503 | unchanged |
//!
//! - Paths default to `/livez`, `/readyz`, `/startupz` ([`Paths`] changes them).
//! - `GET` and `HEAD` are answered (`HEAD` with the same status and headers and no body);
//!   any other method on a probe path gets `405` with `Allow: GET, HEAD`.
//! - Bodies are `application/health+json` (`{"status":"pass"}`), or the Kubernetes API
//!   server's text (`ok`) when the client asks for `text/plain`. `?verbose` lists what the
//!   answer was made of.
//! - Answers carry `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
//! - Any other path, `/readyzz` included, goes to the inner service.
//!
//! # With tonic
//!
//! Kubelet probes are HTTP/1.1 and tonic's server speaks only HTTP/2 unless told
//! otherwise: build it with `Server::builder().accept_http1(true).layer(health.layer())`
//! so that the layer sees the probes (see `examples/tonic.rs`).
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs, rust_2018_idioms, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod check;
mod future;
mod health;
mod layer;
mod lifecycle;
mod probe;
mod render;
mod report;
mod service;
mod shutdown;

pub use crate::body::HealthBody;
pub use crate::check::{Check, HealthCheck, Outcome};
pub use crate::future::ResponseFuture;
pub use crate::health::{Builder, Health};
pub use crate::layer::HealthLayer;
pub use crate::lifecycle::State;
pub use crate::probe::{Paths, Probe, ProbeRequest, Reasons};
pub use crate::report::{CheckReport, Observed, Report, Status};
pub use crate::service::HealthService;
