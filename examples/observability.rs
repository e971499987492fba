//! Health you can watch: Prometheus metrics on `/metrics` next to the probes, the page for
//! people on every probe path, and every change of health as a log line.
//!
//! ```text
//! cargo run -p examples --example observability --features metrics
//! curl localhost:3000/metrics                      # health_check_status{check="database"} 1 ...
//! curl -X POST localhost:3000/dependencies/database/down
//! # then open http://localhost:3000/readyz?verbose in a browser
//! curl -X POST localhost:3000/dependencies/database/up
//! ```
//!
//! Three simulated dependencies: `database` (critical), `cache` (non-critical: when it is
//! down readiness only degrades to `warn`) and `search` (critical, 20 ms per call).
//! `POST /dependencies/NAME/down` and `/up` break and mend one. Reasons are shown to
//! loopback clients only, so the page you open through `kubectl port-forward` says why a
//! check fails and a remote client learns only which.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the
//! whole shutdown, counted from SIGTERM, default 20000), `RUST_LOG` (default `info`).

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::net::TcpListener;
use tower_health::metrics::CHECK_DURATION_SECONDS;
use tower_health::{Change, Check, Health, Reasons};

#[path = "support/mod.rs"]
mod support;

/// Whether each simulated dependency is down.
type Dependencies = Arc<HashMap<&'static str, AtomicBool>>;

/// Histogram buckets for check durations, in seconds: from a local ping to the budget.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    // The recorder first, so that the Health built below describes its metrics to it.
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CHECK_DURATION_SECONDS.into()), BUCKETS)?
        .install_recorder()?;

    let deps: Dependencies = Arc::new(
        ["database", "cache", "search"]
            .into_iter()
            .map(|name| (name, AtomicBool::new(false)))
            .collect(),
    );
    let builder = Health::builder()
        .check(simulated(&deps, "database", Duration::from_millis(2)))
        .check(simulated(&deps, "cache", Duration::from_millis(1)).non_critical())
        .check(simulated(&deps, "search", Duration::from_millis(20)))
        .refresh_every(Duration::from_secs(1))
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let shutdown = health.shutdown_signal();

    // Every change as one log line, with the reason that remote probes do not get. A
    // webhook or a chat message would go here too.
    let mut changes = health.changes();
    tokio::spawn(async move {
        while let Some(change) = changes.next().await {
            match change {
                Change::Check(c) => tracing::warn!(
                    check = c.name(),
                    from = ?c.from(),
                    to = ?c.to(),
                    reason = c.reason().unwrap_or(""),
                    "health changed"
                ),
                other => tracing::warn!(change = ?other, "health changed"),
            }
        }
    });

    let app = Router::new()
        .route(
            "/",
            get(|| async { "See /metrics, and /readyz?verbose in a browser.\n" }),
        )
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .route("/dependencies/{name}/{state}", post(set_dependency))
        .with_state(deps)
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.refresh().await;
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

/// A dependency that answers after `latency`, or fails while it is marked down. A real
/// check runs `SELECT 1` or calls the service's own health endpoint.
fn simulated(deps: &Dependencies, name: &'static str, latency: Duration) -> Check {
    let deps = deps.clone();
    Check::new(name, move || {
        let down = deps[name].load(Ordering::Relaxed);
        async move {
            tokio::time::sleep(latency).await;
            if down {
                Err(format!("{name}: connection refused (simulated)"))
            } else {
                Ok(())
            }
        }
    })
}

/// `POST /dependencies/NAME/down` or `/up`.
async fn set_dependency(
    State(deps): State<Dependencies>,
    Path((name, state)): Path<(String, String)>,
) -> (StatusCode, String) {
    let Some(flag) = deps.get(name.as_str()) else {
        return (StatusCode::NOT_FOUND, format!("no dependency {name:?}\n"));
    };
    let down = match state.as_str() {
        "down" => true,
        "up" => false,
        _ => return (StatusCode::NOT_FOUND, "use /down or /up\n".to_owned()),
    };
    flag.store(down, Ordering::Relaxed);
    tracing::warn!(dependency = name, down, "simulated dependency changed");
    (StatusCode::OK, format!("{name} is {state}\n"))
}
