//! A failure drill: a "database" and an "external service" whose health the application
//! knows itself, endpoints that make either fail and recover, and a deadlock. Written by
//! hand, such a service has two probe handlers that read its flags; here the flags are two
//! switches, so the very first probe after a `POST` shows it, as the hand-written handlers
//! would.
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
//! STUCK_AFTER_MS=2000 cargo run -p examples --example failure_drill
//! curl -X POST localhost:3000/simulate_deadlock
//! curl -m 1 localhost:3000/                                 # waits forever on a lock
//! curl -i localhost:3000/health                             # 503 after 2 s: restart me
//! ```
//!
//! The other drill endpoints are `POST /simulate_external_service_failure` and
//! `POST /simulate_external_service_recovery`. Liveness (`/health`) stays 200 through
//! those: a dependency that is down must take the replica out of the load balancer, not
//! restart it. `POST /simulate_deadlock` takes the lock that `GET /` needs and never gives
//! it back: every `GET /` from then on waits forever, and liveness fails once requests
//! have waited `STUCK_AFTER_MS` with no response (the wedge detector, which a restart is
//! for). Reasons ("Database not available") are shown to loopback clients only; anyone
//! else learns which check failed and not why.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `STUCK_AFTER_MS` (how long requests
//! may wait with no response before liveness fails, default 10000), `DRAIN_DELAY_MS` (how
//! long to keep serving after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard
//! deadline of the whole shutdown, counted from SIGTERM, default 20000), `RUST_LOG`
//! (default `info`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tower_health::{Health, Paths, Reasons, Switch};

#[path = "support/mod.rs"]
mod support;

/// The simulated dependencies, as the application knows them, and the lock `GET /` needs.
#[derive(Clone)]
struct Dependencies {
    database: Switch,
    external_service: Switch,
    lock: Arc<Mutex<()>>,
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let deps = Dependencies {
        database: Switch::new("database"),
        external_service: Switch::new("external-service"),
        lock: Arc::default(),
    };
    let stuck_after =
        support::millis_from_env("STUCK_AFTER_MS")?.unwrap_or(Duration::from_secs(10));
    let builder = Health::builder()
        // The seed's paths: liveness on /health, readiness on /ready.
        .paths(Paths::kubernetes().liveness("/health").readiness("/ready"))
        .switch(&deps.database)
        .switch(&deps.external_service)
        .liveness_fails_when_stuck(stuck_after)
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(root))
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
        .route("/simulate_deadlock", post(simulate_deadlock))
        .with_state(deps)
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.ready();

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

async fn root(State(deps): State<Dependencies>) -> Json<Value> {
    // Free unless the deadlock was simulated: then this waits forever.
    let _held = deps.lock.lock().await;
    Json(json!({ "Hello": "World" }))
}

async fn simulate_db_failure(State(deps): State<Dependencies>) -> Json<Value> {
    deps.database.fail("Database not available");
    tracing::warn!("simulating database failure");
    Json(json!({ "message": "Database connection simulated as failed" }))
}

async fn simulate_db_recovery(State(deps): State<Dependencies>) -> Json<Value> {
    deps.database.pass();
    tracing::warn!("simulating database recovery");
    Json(json!({ "message": "Database connection simulated as recovered" }))
}

async fn simulate_external_service_failure(State(deps): State<Dependencies>) -> Json<Value> {
    deps.external_service.fail("External service not available");
    tracing::warn!("simulating external service failure");
    Json(json!({ "message": "External service simulated as unavailable" }))
}

async fn simulate_external_service_recovery(State(deps): State<Dependencies>) -> Json<Value> {
    deps.external_service.pass();
    tracing::warn!("simulating external service recovery");
    Json(json!({ "message": "External service simulated as available" }))
}

async fn simulate_deadlock(State(deps): State<Dependencies>) -> Json<Value> {
    // Taken and never given back: a lock whose holder is stuck for good.
    std::mem::forget(deps.lock.clone().lock_owned().await);
    tracing::warn!("simulating a deadlock: GET / now waits forever");
    Json(json!({ "message": "Deadlock simulated: GET / waits forever" }))
}
