//! An AI-style service: probes on `/health`, `/health/ready` and `/health/started`, a
//! database, a Redis and an OpenAI-style API checked concurrently under 2 s, 1 s and 3 s
//! timeouts, and an embedding model whose loading holds back the startup and readiness
//! probes: a start-up gate, opened when the model is in memory.
//!
//! The three dependencies are simulated by async functions that take a configurable time,
//! so the example needs no network: make one slower than its timeout to see it fail.
//!
//! ```text
//! cargo run -p examples --example ai_service
//! curl -i localhost:3000/health/started     # 503 while the model loads (5 s), then 200
//! curl -H 'accept: text/plain' 'localhost:3000/health/ready?verbose'
//! # [+]liveness ok
//! # [+]lifecycle ok
//! # [+]database ok
//! # [+]redis ok
//! # [+]openai ok
//! # [+]embedding-model ok
//! # readyz check passed
//! OPENAI_LATENCY_MS=5000 cargo run -p examples --example ai_service   # [-]openai failed: timed out after 3000 ms
//! ```
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DATABASE_LATENCY_MS` (default 3),
//! `REDIS_LATENCY_MS` (default 1), `OPENAI_LATENCY_MS` (default 250), `MODEL_LOAD_MS`
//! (how long loading the model takes, default 5000), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the
//! whole shutdown, counted from SIGTERM, default 20000), `RUST_LOG` (default `info`).

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_health::{Check, Gate, Health, Paths, Reasons};

#[path = "support/mod.rs"]
mod support;

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let database = Simulated::from_env("DATABASE_LATENCY_MS", 3)?;
    let redis = Simulated::from_env("REDIS_LATENCY_MS", 1)?;
    let openai = Simulated::from_env("OPENAI_LATENCY_MS", 250)?;
    // Closed until the model is in memory: until then startup and readiness fail.
    let model = Gate::new("embedding-model");

    let builder = Health::builder()
        .paths(Paths::health())
        .check(database.check("database").timeout(Duration::from_secs(2)))
        .check(redis.check("redis").timeout(Duration::from_secs(1)))
        .check(openai.check("openai").timeout(Duration::from_secs(3)))
        .gate(&model)
        // Every check's timeout is capped by the budget (900 ms unless raised), so the
        // 2 s and 3 s timeouts above need a 3 s budget. The budget is also how long a
        // probe that finds no result at all waits, which is longer than the kubelet's
        // default 1 s probe timeout: refreshing in the background keeps results warm, so
        // that probes are answered from them and never wait.
        .budget(Duration::from_secs(3))
        .refresh_every(Duration::from_secs(5))
        .cache_for(Duration::from_secs(10))
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route(
            "/",
            get(|| async { Json(json!({ "service": "ai-platform" })) }),
        )
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);

    // The pools are up; the model loads in the background. Until its gate opens, the
    // startup and readiness probes fail while liveness passes: the orchestrator waits (up
    // to the startup probe's failureThreshold) instead of restarting a container that is
    // merely slow to start. Readiness passes once `ready()` was called and the gate is
    // open, whichever comes last.
    health.ready();
    let load_time = support::millis_from_env("MODEL_LOAD_MS")?.unwrap_or(Duration::from_secs(5));
    tokio::spawn(async move {
        tracing::info!("loading the embedding model");
        tokio::time::sleep(load_time).await;
        tracing::info!("embedding model loaded");
        // The very next probe passes: no refresh, no tick to wait for.
        model.open();
    });

    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    // Returns when the server has finished, or at the shutdown deadline, whatever its
    // clients do (one that never acknowledges HTTP/2's GOAWAY would hold it for ever).
    health.with_deadline(server).await.unwrap_or(Ok(()))?;
    tracing::info!("server stopped");
    Ok(())
}

/// A dependency whose check takes `latency`: stands for `SELECT 1`, `PING` or
/// `GET /openai/deployments`.
#[derive(Clone, Copy)]
struct Simulated {
    latency: Duration,
}

impl Simulated {
    fn from_env(name: &str, default_ms: u64) -> Result<Self, Box<dyn Error>> {
        let latency = support::millis_from_env(name)?.unwrap_or(Duration::from_millis(default_ms));
        Ok(Simulated { latency })
    }

    fn check(self, name: &'static str) -> Check {
        Check::new(name, move || async move {
            tokio::time::sleep(self.latency).await;
            Ok::<(), std::convert::Infallible>(())
        })
    }
}
