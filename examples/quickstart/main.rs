//! The smallest complete service: an axum app whose probes are answered by the layer,
//! with one demo check (the temporary directory is writable), that turns ready after a
//! simulated start-up, and drains on SIGTERM or Ctrl-C.
//!
//! ```text
//! cargo run --example quickstart
//! curl -i localhost:3000/readyz      # 503 while starting, 200 once ready
//! python3 examples/grpc_health_client.py localhost:3000 check ""    # the same, over gRPC
//! ```
//!
//! The same port answers gRPC health (`grpc.health.v1`) over HTTP/2: the feature `grpc` is
//! on for the examples.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `STARTUP_MS` (how long the simulated
//! start-up takes, default 2000), `DRAIN_DELAY_MS` (how long to keep serving after
//! SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the whole shutdown,
//! counted from SIGTERM, default 20000), `RUST_LOG` (default `info`).

use std::env;
use std::error::Error;
use std::time::Duration;

use axum::{routing::get, Router};
use tokio::net::TcpListener;
use tower_health::{Check, Health};

#[path = "../support/mod.rs"]
mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    // A demo check that needs no external service: a synchronous write, so it runs on
    // Tokio's blocking pool. A real service checks its database, cache, upstream API...
    let scratch = env::temp_dir().join("tower-health-quickstart");
    let builder = Health::builder()
        .check(Check::blocking("tmp-writable", move || {
            std::fs::write(&scratch, b"ok")
        }))
        // Counting requests lets the shutdown end as soon as the drain delay is over and
        // nothing is in flight, rather than at the deadline when a client never
        // acknowledges HTTP/2's GOAWAY.
        .track_in_flight(true);
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM and Ctrl-C are caught from here on: one that comes during start-up starts
    // the drain, and the server, once it runs, stops after the drain delay (exit 0).
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(|| async { "Hello from the quickstart!\n" }))
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);

    // Start-up work (connecting pools, loading a model...) runs while the server already
    // answers probes: liveness passes, readiness and startup say "starting".
    let startup = support::millis_from_env("STARTUP_MS")?.unwrap_or(Duration::from_secs(2));
    let starting = health.clone();
    tokio::spawn(async move {
        tokio::time::sleep(startup).await;
        starting.ready();
    });

    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    // Returns when the server has finished, when the drain delay is over and nothing is
    // in flight, or at the shutdown deadline, whatever its clients do (one that never
    // acknowledges HTTP/2's GOAWAY would hold it for ever).
    health.with_deadline(server).await.unwrap_or(Ok(()))?;
    tracing::info!("server stopped");
    Ok(())
}
