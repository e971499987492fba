//! A service on PostgreSQL and Redis with the ready-made checks: `SELECT 1` on the
//! application's own pool gates readiness, a Redis `PING` only degrades it, start-up waits
//! for the database, SIGTERM drains. Both pools reconnect when their server comes back.
//!
//! ```text
//! DATABASE_URL='host=127.0.0.1 port=5432 user=postgres' cargo run -p examples --example postgres_redis
//! curl -H 'accept: text/plain' 'localhost:3000/readyz?verbose'    # [+]postgres ok ...
//! ```
//!
//! Redis down: readiness 200 `warn`. PostgreSQL down: 503 naming `postgres`, unless
//! `PEERS` names the fleet and most of it fails too: then every replica stays ready
//! (`failing on 3 of 3 replicas: readiness held`) and `/` keeps answering. A failed query
//! on `/time` rechecks at once. Without PostgreSQL, start-up gives up after
//! `STARTUP_TIMEOUT_MS`. On a laptop: `docker run --rm -d -p 5432:5432 -e
//! POSTGRES_HOST_AUTH_METHOD=trust postgres:17`.
//!
//! Environment: `DATABASE_URL` (libpq key/value or URL), `REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `ADDR`, `STARTUP_TIMEOUT_MS` (60000), `DRAIN_DELAY_MS`,
//! `SHUTDOWN_TIMEOUT_MS`, `PEERS` (`host:port,...` or one `name:port` resolved by DNS),
//! `RUST_LOG`.

use std::env;
use std::error::Error;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::{ConnectInfo, State as AppState};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower_health::{checks, Check, Fleet, Health, Lifecycle, Reasons, Status};

#[path = "support/mod.rs"]
mod support;

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    let ran = run().await;
    ran.inspect_err(|e| eprintln!("error: {e}"))
        .map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let url = env::var("DATABASE_URL");
    let postgres = Postgres::new(
        url.as_deref()
            .unwrap_or("host=127.0.0.1 port=5432 user=postgres"),
    )?;
    let redis = redis_pool(&env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()))?;
    let mut builder = Health::builder()
        .check(postgres_check(&postgres))
        .check(redis_check(&redis))
        // Reasons (host names, driver messages) for loopback clients such as
        // `kubectl port-forward`; anyone else sees only which check failed.
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    if let Ok(peers) = env::var("PEERS") {
        let fleet: Fleet = peers.parse().map_err(|e| format!("PEERS={peers:?}: {e}"))?;
        builder = builder.fleet(fleet);
    }
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: during start-up it drains, it never kills.
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(|| async { "Hello from postgres_redis!\n" }))
        .route("/time", get(database_time))
        .with_state((postgres.pool.clone(), health.clone()))
        .layer(health.layer());
    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let server = tokio::spawn(server.into_future());

    let timeout =
        support::millis_from_env("STARTUP_TIMEOUT_MS")?.unwrap_or(Duration::from_secs(60));
    start_up(&health, &postgres, timeout).await?;
    if let Some(served) = health.with_deadline(server).await {
        served??;
    }
    Ok(())
}

/// Start-up: readiness stays "starting" until PostgreSQL has answered once, for at most
/// `timeout`, saying why every ten seconds. Redis is not waited for.
pub async fn start_up(
    health: &Health,
    postgres: &Postgres,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let (mut said, address) = (None::<Instant>, postgres.address());
    loop {
        let report = health.refresh().await;
        let check = report.check("postgres");
        if check.map(|c| c.status()) == Some(Status::Pass) || health.state() == Lifecycle::Draining
        {
            health.ready();
            return Ok(());
        }
        let why = check
            .and_then(|c| c.output())
            .unwrap_or("no answer yet")
            .to_owned();
        let waited = started.elapsed();
        if waited >= timeout {
            let (s, ms) = (timeout.as_secs(), timeout.as_millis());
            return Err(format!(
                "PostgreSQL at {address} did not answer within {s} s ({why}). Start it, point \
                 DATABASE_URL at yours, or wait longer with STARTUP_TIMEOUT_MS (now {ms})."
            ));
        }
        if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            said = Some(Instant::now());
            tracing::warn!("start-up: PostgreSQL at {address} does not answer yet ({why})");
        }
        tokio::time::sleep(Duration::from_secs(1).min(timeout - waited)).await;
    }
}

/// `SELECT 1` on the application's pool: critical, and shared by every replica, so that
/// with a fleet (`PEERS`) an outage of the database itself holds readiness.
pub fn postgres_check(postgres: &Postgres) -> Check {
    checks::postgres::deadpool("postgres", postgres.pool.clone())
        .timeout(Duration::from_millis(800))
        .shared()
}

/// `PING`: non-critical, so Redis being down degrades readiness to `warn` (still 200).
pub fn redis_check(redis: &deadpool_redis::Pool) -> Check {
    checks::redis::deadpool("redis", redis.clone())
        .timeout(Duration::from_millis(500))
        .non_critical()
}

async fn database_time(
    AppState((pool, health)): AppState<(deadpool_postgres::Pool, Health)>,
) -> Result<String, (StatusCode, &'static str)> {
    if let Ok(client) = pool.get().await {
        if let Ok(row) = client.query_one("SELECT now()::text", &[]).await {
            return Ok(format!("{}\n", row.get::<_, String>(0)));
        }
    }
    // Run the check now, not at the next interval (at most every 250 ms).
    health.recheck("postgres");
    Err((StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"))
}

/// The application's PostgreSQL pool, and where it connects.
pub struct Postgres {
    pub pool: deadpool_postgres::Pool,
    config: tokio_postgres::Config,
}

impl Postgres {
    pub fn new(url: &str) -> Result<Self, String> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            format!("DATABASE_URL={url:?} is not a PostgreSQL connection string ({e})")
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(2));
        }
        let manager = deadpool_postgres::Manager::new(config.clone(), tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(8)
            .build();
        let pool = pool.map_err(|e| e.to_string())?;
        Ok(Postgres { pool, config })
    }

    /// Where it connects, as `HOST:PORT as user USER`.
    pub fn address(&self) -> String {
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(name)) => format!("{name}:{port}"),
            Some(tokio_postgres::config::Host::Unix(dir)) => format!("{}", dir.display()),
            None => "no host".to_owned(),
        };
        let user = self.config.get_user().map(|u| format!(" as user {u}"));
        format!("{host}{}", user.unwrap_or_default())
    }
}

/// The application's Redis pool.
pub fn redis_pool(url: &str) -> Result<deadpool_redis::Pool, String> {
    let config = deadpool_redis::Config::from_url(url);
    let pool = config.create_pool(Some(deadpool_redis::Runtime::Tokio1));
    pool.map_err(|e| format!("REDIS_URL={url:?} is not a Redis URL ({e})"))
}
