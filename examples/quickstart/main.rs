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
//! The file stands alone: copy it with the dependencies of its `Cargo.toml`. The same port
//! answers gRPC health (`grpc.health.v1`) over HTTP/2 (the feature `grpc`).
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `STARTUP_MS` (how long the simulated
//! start-up takes, default 2000), `DRAIN_DELAY_MS` (how long to keep serving after
//! SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the whole shutdown,
//! counted from SIGTERM, default 20000), `RUST_LOG` (default `info`).

use std::env;
use std::error::Error;
use std::io::IsTerminal;
use std::time::Duration;

use axum::{routing::get, Router};
use tokio::net::TcpListener;
use tower_health::{Check, Health};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Logs on stderr at `RUST_LOG` (`info`, or `info,tower_health=debug`), so that stdout
    // carries only the `listening on` line.
    let filter: Targets = env::var("RUST_LOG").as_deref().unwrap_or("info").parse()?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry()
        .with(logs)
        .with(filter)
        .init();

    // A demo check that needs no external service: a synchronous write, so it runs on
    // Tokio's blocking pool. A real service checks its database, cache, upstream API...
    let scratch = env::temp_dir().join("tower-health-quickstart");
    let health = Health::builder()
        .check(Check::blocking("tmp-writable", move || {
            std::fs::write(&scratch, b"ok")
        }))
        // After SIGTERM, keep serving this long so that traffic moves elsewhere, and end
        // the whole shutdown by this deadline.
        .drain_delay(millis("DRAIN_DELAY_MS", 5_000)?)
        .shutdown_timeout(millis("SHUTDOWN_TIMEOUT_MS", 20_000)?)
        // Counting requests lets the shutdown end as soon as the drain delay is over and
        // nothing is in flight, rather than at the deadline when a client never
        // acknowledges HTTP/2's GOAWAY.
        .track_in_flight(true)
        .build();
    // SIGTERM and Ctrl-C are caught from here on: one that comes during start-up starts
    // the drain, and the server, once it runs, stops after the drain delay (exit 0).
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(|| async { "Hello from the quickstart!\n" }))
        .layer(health.layer());

    let addr = env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);

    // Start-up work (connecting pools, loading a model...) runs while the server already
    // answers probes: liveness passes, readiness and startup say "starting".
    let startup = millis("STARTUP_MS", 2_000)?;
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

/// The environment variable `name` read as milliseconds, or `default`.
fn millis(name: &str, default: u64) -> Result<Duration, Box<dyn Error>> {
    let ms = match env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|e| format!("{name}={value:?}: {e}"))?,
        Err(_) => default,
    };
    Ok(Duration::from_millis(ms))
}
