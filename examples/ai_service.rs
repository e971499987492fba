//! An AI-style service: probes on `/health`, `/health/ready` and `/health/started`, a
//! database, a Redis and an OpenAI-style API checked concurrently under 2 s, 1 s and 3 s
//! timeouts, and an embedding model whose loading holds back the startup and readiness
//! probes: a start-up gate, opened when the model is in memory.
//!
//! The checks are the ready-made ones: a TCP connect for the database and Redis, an HTTP
//! `GET /v1/models` for the API. Point them at real servers with `DATABASE_ADDR`,
//! `REDIS_ADDR` and `OPENAI_URL`; without them the example starts stand-ins on loopback
//! (the API one answers after `OPENAI_LATENCY_MS`), so it needs no network: make the API
//! slower than its timeout to see it fail.
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
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DATABASE_ADDR` and `REDIS_ADDR`
//! (`host:port`), `OPENAI_URL` (the API's base URL), `OPENAI_LATENCY_MS` (the stand-in
//! API's, default 250), `MODEL_LOAD_MS`
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
use tower_health::{checks, Gate, Health, Paths, Reasons};

#[path = "support/mod.rs"]
mod support;

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let database = match std::env::var("DATABASE_ADDR") {
        Ok(addr) => addr,
        Err(_) => stand_in_tcp().await?,
    };
    let redis = match std::env::var("REDIS_ADDR") {
        Ok(addr) => addr,
        Err(_) => stand_in_tcp().await?,
    };
    let openai = match std::env::var("OPENAI_URL") {
        Ok(url) => url,
        Err(_) => stand_in_api(support::millis_from_env("OPENAI_LATENCY_MS")?).await?,
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let models = format!("{}/v1/models", openai.trim_end_matches('/')).parse()?;
    // Closed until the model is in memory: until then startup and readiness fail.
    let model = Gate::new("embedding-model");

    let builder = Health::builder()
        .paths(Paths::health())
        .check(checks::tcp::connect("database", database).timeout(Duration::from_secs(2)))
        .check(checks::tcp::connect("redis", redis).timeout(Duration::from_secs(1)))
        .check(
            checks::http::hyper("openai", client, models, http::StatusCode::OK)
                .timeout(Duration::from_secs(3)),
        )
        .gate(&model)
        // Every check's timeout is capped by the budget (900 ms unless raised), so the
        // 2 s and 3 s timeouts above need a 3 s budget. The budget is also how long a
        // probe that finds no result at all waits, which is longer than the kubelet's
        // default 1 s probe timeout: refreshing in the background keeps results warm, so
        // that probes are answered from them and never wait.
        .budget(Duration::from_secs(3))
        .refresh_every(Duration::from_secs(5))
        .every(Duration::from_secs(10))
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

/// A stand-in database or Redis: a loopback port that accepts connections; its address.
async fn stand_in_tcp() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    Ok(addr)
}

/// A stand-in OpenAI-style API on loopback whose `GET /v1/models` answers after
/// `latency` (250 ms unless set); its base URL.
async fn stand_in_api(latency: Option<Duration>) -> std::io::Result<String> {
    let latency = latency.unwrap_or(Duration::from_millis(250));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let models = get(move || async move {
        tokio::time::sleep(latency).await;
        Json(json!({ "object": "list", "data": [] }))
    });
    let api = Router::new().route("/v1/models", models);
    tokio::spawn(async move { axum::serve(listener, api).await });
    Ok(url)
}
