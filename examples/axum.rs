//! An axum application with its own middleware, routes and fallback, and the health layer
//! outermost: probes are answered before the token check and before routing, so the
//! kubelet needs no token and never meets the application's 404.
//!
//! ```text
//! cargo run -p examples --example axum
//! curl -i localhost:3000/readyz                                   # 200, no token needed
//! curl -i localhost:3000/items/7                                  # 401
//! curl -i -H 'authorization: Bearer demo-token' localhost:3000/items/7
//! ```
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `RUST_LOG` (default `info`).

use std::error::Error;

use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower_health::Health;

#[path = "support/mod.rs"]
mod support;

const TOKEN: &str = "Bearer demo-token";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let health = support::drain_delay_from_env(Health::builder())?.build();

    let app = Router::new()
        .route("/", get(root))
        .route("/items/{id}", get(item))
        .fallback(not_found)
        .layer(middleware::from_fn(require_token))
        // Last, so outermost: it sees every request first.
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.ready();

    axum::serve(listener, app)
        .with_graceful_shutdown(health.shutdown_signal())
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

async fn root() -> &'static str {
    "Hello from axum!\n"
}

async fn item(Path(id): Path<u32>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": format!("item {id}") }))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "no such page\n")
}

/// Stands for any authentication middleware: it would reject the kubelet's probes if they
/// ever reached it.
async fn require_token(request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value == TOKEN);
    if authorized {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "missing or wrong token\n").into_response()
    }
}
