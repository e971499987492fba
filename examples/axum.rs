//! An axum application with its own middleware, routes and fallback, and the health layer
//! outermost: probes are answered before the token check and before routing, so the
//! kubelet needs no token and never meets the application's 404.
//!
//! ```text
//! cargo run --example axum
//! curl -i localhost:3000/readyz                                   # 200, no token needed
//! curl -i localhost:3000/items/7                                  # 401
//! curl -i -H 'authorization: Bearer demo-token' localhost:3000/items/7
//! ```
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `RUST_LOG` (default `info`).

use std::env;
use std::error::Error;
use std::io::IsTerminal;
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower_health::Health;
use tracing_subscriber::EnvFilter;

const TOKEN: &str = "Bearer demo-token";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let mut builder = Health::builder();
    if let Some(delay) = millis_from_env("DRAIN_DELAY_MS")? {
        builder = builder.drain_delay(delay);
    }
    let health = builder.build();

    let app = Router::new()
        .route("/", get(root))
        .route("/items/{id}", get(item))
        .fallback(not_found)
        .layer(middleware::from_fn(require_token))
        // Last, so outermost: it sees every request first.
        .layer(health.layer());

    let listener = TcpListener::bind(addr()).await?;
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

fn addr() -> String {
    env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
}

fn millis_from_env(name: &str) -> Result<Option<Duration>, Box<dyn Error>> {
    match env::var(name) {
        Ok(value) => {
            let ms: u64 = value
                .parse()
                .map_err(|e| format!("{name}={value:?} is not a number of milliseconds: {e}"))?;
            Ok(Some(Duration::from_millis(ms)))
        }
        Err(env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(format!("{name}: {e}").into()),
    }
}
