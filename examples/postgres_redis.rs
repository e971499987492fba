//! A service backed by PostgreSQL and Redis: `SELECT 1` gates readiness, a Redis `PING`
//! only degrades it, start-up waits for the database, and SIGTERM drains before the server
//! stops. Both connections are opened again by the checks when their server comes back.
//!
//! ```text
//! DATABASE_URL='host=127.0.0.1 port=5432 user=postgres' REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo run -p examples --example postgres_redis
//! curl -H 'accept: text/plain' 'localhost:3000/readyz?verbose'
//! # [+]liveness ok
//! # [+]lifecycle ok
//! # [+]postgres ok
//! # [+]redis ok
//! # readyz check passed
//! ```
//!
//! Stop Redis and readiness stays 200 with status `warn` (`[-]redis failed: ...
//! (non-critical)`): the service still answers without its cache. Stop PostgreSQL and it
//! is 503 naming `postgres`. Start them again and the next refresh reconnects.
//!
//! With `PEERS` set, PostgreSQL is a dependency the whole fleet shares: when it fails for
//! most replicas at once (the database is down), every replica stays ready and says
//! `failing on 3 of 3 replicas: readiness held`, so `/` keeps answering and `/time` fails
//! fast with its own 503; when it fails for this replica alone (its node, its network),
//! this replica leaves the Service. A failed query on `/time` asks for a new check at
//! once (`Health::recheck`), so that a local outage is seen within a request.
//!
//! Without PostgreSQL, start-up says where it looks and how long it waits, repeats the
//! reason every ten seconds, and after `STARTUP_TIMEOUT_MS` exits with an error that
//! names the address, `DATABASE_URL` and `STARTUP_TIMEOUT_MS`.
//!
//! PostgreSQL and Redis on a laptop: with Docker or Podman, one command each
//! (`docker stop postgres redis` removes them):
//!
//! ```text
//! docker run --rm -d --name postgres -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17
//! docker run --rm -d --name redis -p 6379:6379 redis:7
//! ```
//!
//! Without containers: on Debian or Ubuntu, `sudo apt-get install postgresql redis-server`
//! starts both; PostgreSQL there asks for a password over TCP, so give it one
//! (`sudo -u postgres psql -c "ALTER USER postgres PASSWORD 'postgres'"`) and set
//! `DATABASE_URL='host=127.0.0.1 port=5432 user=postgres password=postgres'`. On macOS,
//! `brew install postgresql@17 redis`, `brew services start postgresql@17`,
//! `brew services start redis`, and
//! `DATABASE_URL="host=127.0.0.1 port=5432 user=$USER dbname=postgres"`.
//!
//! Environment: `DATABASE_URL` (a libpq key/value string or a `postgresql://` URL, default
//! `host=127.0.0.1 port=5432 user=postgres`), `REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `ADDR` (default `127.0.0.1:3000`), `STARTUP_TIMEOUT_MS`
//! (how long start-up waits for PostgreSQL before it gives up, default 60000),
//! `DRAIN_DELAY_MS` (how long to keep serving after SIGTERM, default 5000),
//! `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the whole shutdown, counted from SIGTERM,
//! default 20000), `PEERS` (the fleet: `host:port` entries separated by commas, or one
//! `name:port` that DNS resolves to every replica, such as a headless Service; unset, no
//! fleet), `RUST_LOG` (default `info`).

use std::env;
use std::error::Error;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{ConnectInfo, State as AppState};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tower_health::{Check, Fleet, Health, Reasons, State, Status};

#[path = "support/mod.rs"]
mod support;

const DEFAULT_DATABASE_URL: &str = "host=127.0.0.1 port=5432 user=postgres";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // On stderr as a sentence, not as a `Debug` value: it says what to do.
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let database_url = env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
    let postgres = Arc::new(Postgres::new(&database_url).map_err(|e| {
        format!(
            "DATABASE_URL={database_url:?} is not a PostgreSQL connection string ({}); \
             write it as `host=HOST port=PORT user=USER` or `postgresql://USER@HOST:PORT/DB`",
            with_causes(&e)
        )
    })?);
    let redis_url = env_or("REDIS_URL", DEFAULT_REDIS_URL);
    let redis = Arc::new(Redis::new(&redis_url).map_err(|e| {
        format!("REDIS_URL={redis_url:?} is not a Redis URL ({e}); write it as `redis://HOST:PORT`")
    })?);
    tracing::info!(
        "redis at {} (REDIS_URL): not waited for, since the service works without its cache",
        redis.address()
    );

    let mut builder = Health::builder()
        .check(postgres_check(&postgres))
        .check(redis_check(&redis))
        // Run the checks every second in the background too. Without it, a probe that
        // finds a stale result is answered from it and starts a refresh, so with probes
        // every 10 s each answer would be 10 s old; with it, never more than a second.
        .refresh_every(Duration::from_secs(1))
        // The error texts (host names, driver messages) are shown to loopback clients
        // such as `kubectl port-forward`, and logged; anyone else sees only which check
        // failed.
        .reasons(Reasons::loopback_peer(|ext| {
            ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
        }));
    if let Ok(peers) = env::var("PEERS") {
        let fleet: Fleet = peers.parse().map_err(|e| format!("PEERS={peers:?}: {e}"))?;
        tracing::info!("fleet: {peers} (PEERS), asked while postgres fails");
        builder = builder.fleet(fleet);
    }
    let health = support::shutdown_from_env(builder)?.build();
    // SIGTERM is caught from here on: a signal while start-up waits for PostgreSQL
    // drains, it never kills.
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(|| async { "Hello from postgres_redis!\n" }))
        .route("/time", get(database_time))
        .with_state(Db {
            postgres: postgres.clone(),
            health: health.clone(),
        })
        .layer(health.layer());

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Probes are answered while start-up runs: liveness passes, readiness and startup say
    // "starting".
    let server = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .into_future(),
    );

    let startup_timeout =
        support::millis_from_env("STARTUP_TIMEOUT_MS")?.unwrap_or(DEFAULT_STARTUP_TIMEOUT);
    start_up(&health, &postgres, startup_timeout).await?;

    // Returns when the server has finished, or at the shutdown deadline, whatever its
    // clients do (one that never acknowledges HTTP/2's GOAWAY would hold it for ever).
    if let Some(served) = health.with_deadline(server).await {
        served??;
    }
    tracing::info!("server stopped");
    Ok(())
}

/// How often start-up says that it is still waiting.
const WAITING_NOTICE: Duration = Duration::from_secs(10);

/// Start-up: readiness stays "starting" until PostgreSQL has answered once, for at most
/// `timeout`. Redis is not waited for: the service works without its cache.
pub async fn start_up(
    health: &Health,
    postgres: &Postgres,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut notice = started;
    tracing::info!(
        "start-up: waiting up to {} for PostgreSQL at {} (DATABASE_URL sets where, \
         STARTUP_TIMEOUT_MS how long)",
        seconds(timeout),
        postgres.address(),
    );
    loop {
        // Runs every check now, so that the first probe after ready() finds results.
        let report = health.refresh().await;
        let postgres_check = report.check("postgres");
        if postgres_check.map(|c| c.status()) == Some(Status::Pass) {
            health.ready();
            tracing::info!("start-up done: ready");
            return Ok(());
        }
        if health.state() == State::Draining {
            return Ok(());
        }
        let why = postgres_check
            .and_then(|c| c.output())
            .unwrap_or("no answer yet")
            .to_owned();
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(format!(
                "PostgreSQL at {} did not answer within {} ({why}). Start it (the first lines of \
                 examples/postgres_redis.rs give one command), point DATABASE_URL at the one \
                 you have, or wait longer with STARTUP_TIMEOUT_MS (in \
                 milliseconds, now {}).",
                postgres.address(),
                seconds(timeout),
                timeout.as_millis(),
            ));
        }
        // The first failure at once, then one line every ten seconds rather than one per
        // attempt.
        if notice == started || notice.elapsed() >= WAITING_NOTICE {
            notice = Instant::now();
            tracing::warn!(
                "start-up: PostgreSQL at {} does not answer yet ({why}); waited {} s of {}",
                postgres.address(),
                waited.as_secs(),
                seconds(timeout),
            );
        }
        tokio::time::sleep(Duration::from_secs(1).min(timeout - waited)).await;
    }
}

/// `d` in whole seconds, or in milliseconds below one second.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// `SELECT 1` on the application's connection: critical, so readiness fails while
/// PostgreSQL is down, and shared by every replica, so that with a fleet (`PEERS`) an
/// outage of the database itself holds readiness instead. Its timeout stays under the
/// default 900 ms budget, which caps it.
pub fn postgres_check(postgres: &Arc<Postgres>) -> Check {
    let postgres = postgres.clone();
    Check::new("postgres", move || {
        let postgres = postgres.clone();
        async move { postgres.ping().await.map_err(|e| with_causes(&e)) }
    })
    .timeout(Duration::from_millis(800))
    .shared()
}

/// `PING`: non-critical, so Redis being down degrades readiness to `warn` (still 200)
/// instead of taking every replica out of service.
pub fn redis_check(redis: &Arc<Redis>) -> Check {
    let redis = redis.clone();
    Check::new("redis", move || {
        let redis = redis.clone();
        async move { redis.ping().await }
    })
    .timeout(Duration::from_millis(500))
    .non_critical()
}

/// What `/time` needs: the connection, and the health to tell when it fails.
#[derive(Clone)]
struct Db {
    postgres: Arc<Postgres>,
    health: Health,
}

async fn database_time(
    AppState(Db { postgres, health }): AppState<Db>,
) -> Result<String, (StatusCode, &'static str)> {
    let unavailable = |error: tokio_postgres::Error| {
        tracing::warn!(error = with_causes(&error), "GET /time");
        // The check runs again now rather than at the next interval (at most every
        // 250 ms however many requests fail).
        health.recheck("postgres");
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    };
    let client = postgres.client().await.map_err(unavailable)?;
    let row = client
        .query_one("SELECT now()::text", &[])
        .await
        .map_err(unavailable)?;
    Ok(format!("{}\n", row.get::<_, String>(0)))
}

// === impl Postgres ===

/// The application's PostgreSQL connection, opened on first use and again whenever the
/// last one was closed or a check on it failed.
pub struct Postgres {
    config: tokio_postgres::Config,
    client: Slot<Arc<tokio_postgres::Client>>,
}

impl Postgres {
    pub fn new(url: &str) -> Result<Self, tokio_postgres::Error> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(2));
        }
        Ok(Postgres {
            config,
            client: Slot::default(),
        })
    }

    /// Where it connects, as `HOST:PORT` (several when the connection string lists
    /// several), and as which user.
    pub fn address(&self) -> String {
        let ports = self.config.get_ports();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                // libpq's rule: one port for every host, or one port for all of them.
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                    tokio_postgres::config::Host::Unix(dir) => {
                        format!("{}/.s.PGSQL.{port}", dir.display())
                    }
                }
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "no host (the connection string names none)".to_owned()
        } else {
            hosts.join(", ")
        };
        match self.config.get_user() {
            Some(user) => format!("{hosts} as user {user}"),
            None => hosts,
        }
    }

    /// The open connection, or a new one.
    pub async fn client(&self) -> Result<Arc<tokio_postgres::Client>, tokio_postgres::Error> {
        if let Some(client) = self.client.get().filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = with_causes(&error), "postgres: connection closed");
            }
        });
        let client = Arc::new(client);
        self.client.set(client.clone());
        tracing::info!("postgres: connected");
        Ok(client)
    }

    pub async fn ping(&self) -> Result<(), tokio_postgres::Error> {
        let client = self.client().await?;
        self.client
            .forget_unless_ok(client.simple_query("SELECT 1"))
            .await
            .map(drop)
    }
}

// === impl Redis ===

/// The application's Redis connection, opened on first use and again after a failure.
pub struct Redis {
    client: redis::Client,
    connection: Slot<redis::aio::MultiplexedConnection>,
}

impl Redis {
    pub fn new(url: &str) -> redis::RedisResult<Self> {
        Ok(Redis {
            client: redis::Client::open(url)?,
            connection: Slot::default(),
        })
    }

    /// Where it connects.
    pub fn address(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut connection = match self.connection.get() {
            Some(connection) => connection,
            None => {
                let connection = self.client.get_multiplexed_async_connection().await?;
                self.connection.set(connection.clone());
                tracing::info!("redis: connected");
                connection
            }
        };
        let ping = async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        self.connection.forget_unless_ok(ping).await.map(drop)
    }
}

// === impl Slot ===

/// Holds one open connection. A use that fails, or that is abandoned halfway (the
/// check's timeout dropped it, as happens when packets to the server are lost), drops the
/// connection so that the next use opens a new one instead of waiting on a dead socket.
struct Slot<C>(Mutex<Option<C>>);

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<C: Clone> Slot<C> {
    fn get(&self) -> Option<C> {
        self.lock().clone()
    }

    fn set(&self, connection: C) {
        *self.lock() = Some(connection);
    }

    async fn forget_unless_ok<T, E>(
        &self,
        using: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut guard = Forget(Some(self));
        let result = using.await;
        if result.is_ok() {
            guard.0 = None;
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, Option<C>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Forget<'a, C: Clone>(Option<&'a Slot<C>>);

impl<C: Clone> Drop for Forget<'_, C> {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            *slot.lock() = None;
        }
    }
}

/// The error and its causes: tokio-postgres keeps what went wrong ("Connection refused",
/// the server's message) in the source, not in its own text.
fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn env_or(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_owned())
}
