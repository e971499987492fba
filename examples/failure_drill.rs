//! A failure drill: a "database" and an "external service" whose health is an in-process
//! flag, endpoints that make either fail and recover, and readiness that follows within
//! a second. Written by hand, such a service has two probe handlers that read the flags;
//! here they are two checks.
//!
//! ```text
//! cargo run -p examples --example failure_drill
//! curl -i localhost:3000/ready                              # 200 {"status":"pass"}
//! curl -X POST localhost:3000/simulate_db_failure
//! curl -H 'accept: text/plain' 'localhost:3000/ready?verbose'
//! # [+]liveness ok
//! # [+]lifecycle ok
//! # [-]database failed: Database not available
//! # [+]external-service ok
//! # readyz check failed
//! curl -X POST localhost:3000/simulate_db_recovery       # and readiness passes again
//! ```
//!
//! The other drill endpoints are `POST /simulate_external_service_failure` and
//! `POST /simulate_external_service_recovery`. Liveness (`/health`) stays 200 throughout:
//! a dependency that is down must take the replica out of the load balancer, not restart
//! it. Reasons ("Database not available") are shown to loopback clients only; anyone else
//! learns which check failed and not why.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `RUST_LOG` (default `info`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_health::{Check, Health, Paths, Reasons};

#[path = "support/mod.rs"]
mod support;

/// The simulated dependencies: each flag is set while that dependency is down.
#[derive(Clone, Default)]
struct Dependencies {
    database_down: Arc<AtomicBool>,
    external_service_down: Arc<AtomicBool>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let deps = Dependencies::default();
    let builder = Health::builder()
        // The seed's paths: liveness on /health, readiness on /ready.
        .paths(Paths::kubernetes().liveness("/health").readiness("/ready"))
        .check(flag_check(
            "database",
            &deps.database_down,
            "Database not available",
        ))
        .check(flag_check(
            "external-service",
            &deps.external_service_down,
            "External service not available",
        ))
        // Run the checks every second in the background, so a probe always finds a result
        // at most a second old: readiness follows a failure or a recovery within a second.
        .refresh_every(Duration::from_secs(1))
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    let health = support::drain_delay_from_env(builder)?.build();

    let app = Router::new()
        .route("/", get(|| async { Json(json!({ "Hello": "World" })) }))
        .route("/status", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/simulate_db_failure", post(simulate_db_failure))
        .route("/simulate_db_recovery", post(simulate_db_recovery))
        .route(
            "/simulate_external_service_failure",
            post(simulate_external_service_failure),
        )
        .route(
            "/simulate_external_service_recovery",
            post(simulate_external_service_recovery),
        )
        .with_state(deps)
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.ready();

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(health.shutdown_signal())
    .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// A check that fails with `error` while `down` is set. A real one would run
/// `SELECT 1` or call the service's own health endpoint.
fn flag_check(name: &'static str, down: &Arc<AtomicBool>, error: &'static str) -> Check {
    let down = down.clone();
    Check::new(name, move || {
        let result = if down.load(Ordering::Relaxed) {
            Err(error)
        } else {
            Ok(())
        };
        std::future::ready(result)
    })
}

async fn simulate_db_failure(State(deps): State<Dependencies>) -> Json<Value> {
    deps.database_down.store(true, Ordering::Relaxed);
    tracing::warn!("simulating database failure");
    Json(json!({ "message": "Database connection simulated as failed" }))
}

async fn simulate_db_recovery(State(deps): State<Dependencies>) -> Json<Value> {
    deps.database_down.store(false, Ordering::Relaxed);
    tracing::warn!("simulating database recovery");
    Json(json!({ "message": "Database connection simulated as recovered" }))
}

async fn simulate_external_service_failure(State(deps): State<Dependencies>) -> Json<Value> {
    deps.external_service_down.store(true, Ordering::Relaxed);
    tracing::warn!("simulating external service failure");
    Json(json!({ "message": "External service simulated as unavailable" }))
}

async fn simulate_external_service_recovery(State(deps): State<Dependencies>) -> Json<Value> {
    deps.external_service_down.store(false, Ordering::Relaxed);
    tracing::warn!("simulating external service recovery");
    Json(json!({ "message": "External service simulated as available" }))
}
