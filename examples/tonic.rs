//! A tonic gRPC server (a `helloworld.Greeter`) with the health layer in front. The layer
//! answers `grpc.health.v1` (Check, Watch and List) from the same state as the HTTP
//! probes; the server also accepts HTTP/1.1, so the kubelet's HTTP probes reach the layer
//! on the same port.
//!
//! ```text
//! cargo run -p examples --example tonic
//! curl -i localhost:3000/readyz                                        # HTTP/1.1 probe
//! grpc_health_probe -addr localhost:3000                               # gRPC over HTTP/2
//! grpc_health_probe -addr localhost:3000 -service helloworld.Greeter
//! ```
//!
//! The names gRPC health knows here: `""` and `readiness` (the readiness probe),
//! `liveness`, `startup`, the check `greeting` (fails while the file named by
//! `FAIL_FILE` exists, default `/tmp/tower-health-tonic-fail`), and `helloworld.Greeter`,
//! mapped to readiness through tonic's own `NamedService::NAME`.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the
//! whole shutdown, counted from SIGTERM, default 20000), `FAIL_FILE`, `CHECK_DELAY_MS`
//! (how long each run of the `greeting` check takes, default 0: a slow one makes the
//! first refresh, before the server starts, take as long), `RUST_LOG` (default `info`).

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tower_health::{Check, Health, Probe};

#[path = "support/mod.rs"]
mod support;

// The service the layer stands in front of: `helloworld.Greeter`, written out by hand in
// the workspace's test kit (`tests/kit/`), which the tests and benches serve too.
use kit::greeter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let fail_file = std::env::var_os("FAIL_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tower-health-tonic-fail"));
    let check_delay = support::millis_from_env("CHECK_DELAY_MS")?.unwrap_or_default();
    let builder = Health::builder()
        // A demo dependency: failing while the file exists, so that a gRPC health client
        // can watch `""` turn NOT_SERVING and back (`touch` it, then `rm` it).
        .check(Check::new("greeting", move || {
            let failing = fail_file.exists();
            async move {
                tokio::time::sleep(check_delay).await;
                if failing {
                    Err("the fail file exists")
                } else {
                    Ok(())
                }
            }
        }))
        // Results refreshed every 500 ms, so that Watch sees a change within that.
        .refresh_every(Duration::from_millis(500))
        .grpc_service(
            <greeter::GreeterServer as NamedService>::NAME,
            Probe::Readiness,
        );
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: one that comes during the first refresh below
    // starts the drain, and the server stops after the drain delay (exit 0).
    let shutdown = health.shutdown_signal();

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.refresh().await;
    health.ready();

    let server = Server::builder()
        // Kubelet HTTP probes are HTTP/1.1; without this tonic would only speak HTTP/2.
        .accept_http1(true)
        // Dead HTTP/2 peers are found and let go, rather than holding a connection.
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(health.layer())
        .add_service(greeter::GreeterServer)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown);
    // Returns when the server has finished, or at the shutdown deadline, whatever its
    // clients do (one that never acknowledges HTTP/2's GOAWAY would hold it for ever).
    health.with_deadline(server).await.unwrap_or(Ok(()))?;
    tracing::info!("server stopped");
    Ok(())
}
