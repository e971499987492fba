//! A tonic gRPC server (here serving `grpc.health.v1` from tonic-health) with the health
//! layer in front. The server also accepts HTTP/1.1, so the kubelet's HTTP probes reach the
//! layer, while gRPC clients keep talking HTTP/2 on the same port.
//!
//! ```text
//! cargo run -p examples --example tonic
//! curl -i localhost:3000/readyz                                        # HTTP/1.1 probe
//! grpc-health-probe -addr localhost:3000                               # gRPC over HTTP/2
//! ```
//!
//! The gRPC health status of the server (service name `""`) follows the lifecycle: it is
//! `SERVING` exactly when the readiness probe passes.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `RUST_LOG` (default `info`).

use std::error::Error;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower_health::{Health, State};

#[path = "support/mod.rs"]
mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let health = support::drain_delay_from_env(Health::builder())?.build();

    let (reporter, grpc_health) = tonic_health::server::health_reporter();
    tokio::spawn(mirror_readiness(health.clone(), reporter));

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.ready();

    Server::builder()
        // Kubelet probes are HTTP/1.1; without this tonic would only speak HTTP/2.
        .accept_http1(true)
        .layer(health.layer())
        .add_service(grpc_health)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), health.shutdown_signal())
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// Keeps the gRPC health status of the whole server (service name `""`) equal to the
/// readiness probe: serving when ready and live, not serving while starting or draining.
async fn mirror_readiness(health: Health, reporter: HealthReporter) {
    let mut last = None;
    loop {
        // Subscribe before reading, so that no change slips between the two.
        let changed = health.changed();
        let status = if health.state() == State::Ready && health.is_live() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            last = Some(status);
        }
        changed.await;
    }
}
