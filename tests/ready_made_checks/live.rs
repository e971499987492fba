//! Every ready-made check against a real server of its kind: PostgreSQL, Redis, MariaDB
//! and RabbitMQ started by the test (`kit::servers`), an HTTP server and a tonic
//! gRPC health server in process. For each: up, the check passes and observes its
//! latency; stopped, it fails naming the cause; back, it passes again with nothing
//! restarted but the server. Against a black hole (a listener that accepts and never
//! answers), each client's check fails at its own timeout and leaves no pile of open
//! connections behind; a pool whose every connection is taken warns at once.
//!
//! Without a server's binaries a test is reported as ignored with the reason, or fails
//! when `CI` is set (see `kit::needs`).

use kit::needs;
use kit::servers;
use libtest_mimic::Trial;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tonic_health::ServingStatus;
use tower_health::{checks, Check, CheckReport, Health, Status};

use crate::runtime;

/// The trials against servers, each a test of the target.
pub fn trials() -> Vec<Trial> {
    vec![
        needs::always(
            "tcp_connect_passes_while_something_listens_fails_refused_and_passes_again",
            || runtime().block_on(tcp_connect()),
        ),
        needs::always(
            "hyper_get_passes_on_the_expected_status_fails_on_another_or_refused_and_recovers",
            || runtime().block_on(http_get(Client::Hyper)),
        ),
        needs::always(
            "reqwest_get_passes_on_the_expected_status_fails_on_another_or_refused_and_recovers",
            || runtime().block_on(http_get(Client::Reqwest)),
        ),
        needs::always(
            "grpc_health_passes_while_serving_fails_naming_the_status_or_the_cause_and_recovers",
            || runtime().block_on(grpc_health()),
        ),
        needs::always(
            "every_client_check_against_a_black_hole_fails_at_its_timeout_without_piling_up_connections",
            || runtime().block_on(black_holes()),
        ),
        needs::needs(
            "postgres_client_passes_then_fails_naming_the_cause_when_its_server_stops",
            "PostgreSQL",
            servers::PostgresBinaries::find,
            |bin| runtime().block_on(postgres_client(bin)),
        ),
        needs::needs(
            "deadpool_postgres_passes_fails_when_stopped_recovers_and_warns_when_saturated",
            "PostgreSQL",
            servers::PostgresBinaries::find,
            |bin| runtime().block_on(deadpool_postgres(bin)),
        ),
        needs::needs(
            "sqlx_postgres_passes_fails_when_stopped_recovers_and_warns_when_saturated",
            "PostgreSQL",
            servers::PostgresBinaries::find,
            |bin| runtime().block_on(sqlx_postgres(bin)),
        ),
        needs::needs(
            "sqlx_mysql_on_mariadb_passes_fails_when_stopped_recovers_and_warns_when_saturated",
            "MariaDB",
            servers::MariaDbBinaries::find,
            |bin| runtime().block_on(sqlx_mysql(bin)),
        ),
        needs::needs(
            "redis_connection_manager_passes_fails_when_stopped_and_recovers",
            "Redis",
            servers::RedisBinary::find,
            |bin| runtime().block_on(redis_manager(bin)),
        ),
        needs::needs(
            "deadpool_redis_passes_fails_when_stopped_recovers_and_warns_when_saturated",
            "Redis",
            servers::RedisBinary::find,
            |bin| runtime().block_on(deadpool_redis(bin)),
        ),
        needs::needs(
            "lapin_passes_fails_when_rabbitmq_stops_and_recovers_with_auto_recovery",
            "RabbitMQ",
            servers::RabbitMqBinary::find,
            |bin| runtime().block_on(lapin(bin)),
        ),
    ]
}

// === running a check ===

/// How long a check may take against a live server: generous, for a loaded machine.
const LIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long waiting for a recovery may take at most.
const RECOVERY: Duration = Duration::from_secs(60);

/// One check in a `Health` of its own, run on demand.
struct Runner {
    health: Health,
    name: String,
    last: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl Runner {
    /// A runner for a check against a live server, under [`LIVE_TIMEOUT`].
    fn new(check: Check) -> Runner {
        Runner::timed(check, LIVE_TIMEOUT)
    }

    /// A runner for `check` under `timeout`, within a budget longer than that, so that a
    /// run that times out is always recorded before the refresh that awaits it returns.
    fn timed(check: Check, timeout: Duration) -> Runner {
        let name = check.name().to_owned();
        let health = Health::builder()
            .check(check.timeout(timeout))
            .background_refresh(false)
            .budget(timeout + Duration::from_secs(10))
            .build();
        Runner {
            health,
            name,
            last: Default::default(),
        }
    }

    /// Runs the check once and returns the report of that run.
    async fn run(&self) -> CheckReport {
        let refreshed = self.health.refresh().await;
        let report = refreshed
            .check(&self.name)
            .expect("the check's report")
            .clone();
        let mut last = self.last.lock().unwrap();
        assert_ne!(report.time(), *last, "the refresh did not run the check");
        *last = report.time();
        report
    }

    /// Runs the check until it reports `status`, at most for [`RECOVERY`], and returns the
    /// last report.
    async fn until(&self, status: Status) -> CheckReport {
        let deadline = Instant::now() + RECOVERY;
        loop {
            let report = self.run().await;
            if report.status() == status || Instant::now() >= deadline {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn output(report: &CheckReport) -> &str {
    report.output().unwrap_or("")
}

/// The report passes and observes its latency in milliseconds.
#[track_caller]
fn assert_passes(what: &str, report: &CheckReport) {
    assert_eq!(report.status(), Status::Pass, "{what}: {}", output(report));
    let observed = report.observed().expect("an observed latency");
    assert_eq!(observed.unit(), Some("ms"), "{what}");
    assert!(
        observed.value().as_f64().is_some_and(|ms| ms >= 0.0),
        "{what}"
    );
}

/// The report fails, and its reason holds each of `needles`.
#[track_caller]
fn assert_fails_with(what: &str, report: &CheckReport, needles: &[&str]) {
    assert_eq!(report.status(), Status::Fail, "{what}: {}", output(report));
    for needle in needles {
        assert!(
            output(report).contains(needle),
            "{what}: {needle:?} not in {:?}",
            output(report)
        );
    }
}

/// The report warns that the pool is saturated.
#[track_caller]
fn assert_saturated(what: &str, report: &CheckReport) {
    assert_eq!(report.status(), Status::Warn, "{what}: {}", output(report));
    assert!(
        output(report).starts_with("pool saturated: 1 of 1 connections in use"),
        "{what}: {}",
        output(report)
    );
}

/// Runs blocking server control on a thread of its own, so that the clients' tasks go on
/// meanwhile on the test's one thread (see [`runtime`]).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("server control")
}

/// Runs `control` on `server` on a thread of its own, and gives the server back.
async fn control<S: Send + 'static>(mut server: S, control: fn(&mut S)) -> S {
    blocking(move || {
        control(&mut server);
        server
    })
    .await
}

/// The reason a refused connection gives, in the chain of causes.
const REFUSED: &str = "Connection refused";

// === servers in process ===

/// An HTTP/1 and HTTP/2 server for a router, that can be stopped (every connection cut)
/// and started again on the same port.
struct InProcess {
    router: Router,
    port: u16,
    task: Option<JoinHandle<()>>,
}

impl InProcess {
    async fn start(router: Router) -> InProcess {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = Some(tokio::spawn(serve(listener, router.clone())));
        InProcess { router, port, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops accepting and cuts every connection; returns once the port is closed.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn start_again(&mut self) {
        assert!(self.task.is_none());
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("bind port {} again: {error}", self.port),
            }
        };
        self.task = Some(tokio::spawn(serve(listener, self.router.clone())));
    }
}

/// Serves `router` on every connection `listener` accepts, HTTP/1 or HTTP/2; dropping
/// the future cuts every connection.
async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                connections.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// A listener that accepts every connection and never answers, counting the connections
/// that are still open (a closed one is seen when reading it ends).
struct BlackHole {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl BlackHole {
    async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (count, live) = (accepted.clone(), open.clone());
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut stream, _)) = accepted else { continue };
                        count.fetch_add(1, Ordering::SeqCst);
                        live.fetch_add(1, Ordering::SeqCst);
                        let live = live.clone();
                        connections.spawn(async move {
                            let mut buffer = [0u8; 1024];
                            while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                            live.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        BlackHole {
            address,
            accepted,
            open,
            task,
        }
    }

    /// The connections still open once they have had up to 10 s to close: the ones a
    /// client keeps on purpose.
    async fn settled_open(&self, at_most: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.open.load(Ordering::SeqCst) > at_most && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// === TCP ===

async fn tcp_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let runner = Runner::new(checks::tcp::connect("tcp", address.to_string()));
    assert_passes("listening", &runner.run().await);

    drop(listener);
    let report = runner.run().await;
    assert_fails_with(
        "closed",
        &report,
        &[&format!("connecting to {address}: "), REFUSED],
    );

    let _listener = TcpListener::bind(address).await.unwrap();
    assert_passes("listening again", &runner.until(Status::Pass).await);
}

// === HTTP ===

#[derive(Clone, Copy, Debug)]
enum Client {
    Hyper,
    Reqwest,
}

fn http_check(client: Client, url: &str) -> Check {
    match client {
        Client::Hyper => {
            let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build_http::<Empty<bytes::Bytes>>();
            checks::http::hyper("upstream", hyper, url.parse().unwrap(), StatusCode::OK)
        }
        Client::Reqwest => {
            checks::http::reqwest("upstream", reqwest::Client::new(), url, StatusCode::OK)
        }
    }
}

async fn http_get(client: Client) {
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    let router = Router::new().route(
        "/healthz",
        get(move || {
            let status = answer.load(Ordering::SeqCst);
            async move { StatusCode::from_u16(status).unwrap() }
        }),
    );
    let mut server = InProcess::start(router).await;
    let url = server.url("/healthz");
    let runner = Runner::new(http_check(client, &url));
    assert_passes("up", &runner.run().await);

    status.store(503, Ordering::SeqCst);
    let report = runner.run().await;
    assert_fails_with(
        "503",
        &report,
        &[&format!(
            "GET {url} answered 503 Service Unavailable, expected 200 OK"
        )],
    );
    status.store(200, Ordering::SeqCst);

    server.stop().await;
    // The first run may meet the kept-alive connection being reset; the next is refused.
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[&format!("GET {url}: ")]);
    let report = runner.run().await;
    assert_fails_with(
        "still stopped",
        &report,
        &[&format!("GET {url}: "), REFUSED],
    );

    server.start_again().await;
    assert_passes("back", &runner.until(Status::Pass).await);
}

// === gRPC health ===

async fn grpc_health() {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("inventory.v1.Inventory", ServingStatus::Serving)
        .await;
    let router = tonic::service::Routes::new(service).into_axum_router();
    let mut server = InProcess::start(router).await;
    let channel = tonic::transport::Channel::from_shared(server.url(""))
        .unwrap()
        .connect_lazy();
    let runner = Runner::new(checks::grpc::health(
        "inventory",
        channel.clone(),
        "inventory.v1.Inventory",
    ));
    assert_passes("serving", &runner.run().await);

    reporter
        .set_service_status("inventory.v1.Inventory", ServingStatus::NotServing)
        .await;
    let report = runner.run().await;
    assert_fails_with(
        "not serving",
        &report,
        &["health of \"inventory.v1.Inventory\" is NOT_SERVING"],
    );

    let unknown = Runner::new(checks::grpc::health("unknown", channel.clone(), "no.Such"));
    assert_fails_with(
        "unknown service",
        &unknown.run().await,
        &["health of \"no.Such\": ", "service not registered"],
    );

    reporter
        .set_service_status("inventory.v1.Inventory", ServingStatus::Serving)
        .await;
    server.stop().await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with(
        "stopped",
        &report,
        &["health of \"inventory.v1.Inventory\": "],
    );

    server.start_again().await;
    assert_passes("back", &runner.until(Status::Pass).await);
}

// === black holes ===

async fn black_holes() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    const RUNS: usize = 5;
    type Make = fn(SocketAddr) -> Check;
    let kinds: [(&str, Make); 7] = [
        ("hyper", |a| {
            http_check(Client::Hyper, &format!("http://{a}/"))
        }),
        ("reqwest", |a| {
            http_check(Client::Reqwest, &format!("http://{a}/"))
        }),
        ("grpc", |a| {
            let channel = tonic::transport::Channel::from_shared(format!("http://{a}"))
                .unwrap()
                .connect_lazy();
            checks::grpc::health("grpc", channel, "")
        }),
        ("deadpool-postgres", |a| {
            checks::postgres::deadpool("pg", deadpool_pg_pool(&pg_url(a), 4))
        }),
        ("sqlx-postgres", |a| {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect_lazy(&format!("postgres://postgres@{a}/postgres"))
                .unwrap();
            checks::postgres::sqlx("pg", pool)
        }),
        ("sqlx-mysql", |a| {
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .connect_lazy(&format!("mysql://root@{a}/mysql"))
                .unwrap();
            checks::mysql::sqlx("mysql", pool)
        }),
        ("deadpool-redis", |a| {
            checks::redis::deadpool("redis", deadpool_redis_pool(&format!("redis://{a}"), 4))
        }),
    ];
    for (kind, make) in kinds {
        let began = Instant::now();
        let hole = BlackHole::start().await;
        let runner = Runner::timed(make(hole.address), TIMEOUT);
        for run in 0..RUNS {
            let report = runner.run().await;
            assert_eq!(
                (report.status(), output(&report)),
                (Status::Fail, "timed out after 300 ms"),
                "{kind}, run {run}"
            );
        }
        let accepted = hole.accepted.load(Ordering::SeqCst);
        assert!(
            accepted >= 1,
            "{kind}: the client never reached the black hole"
        );
        let open = hole.settled_open(1).await;
        assert!(
            open <= 1,
            "{kind}: {open} connections still open after {RUNS} runs ({accepted} accepted)"
        );
        eprintln!(
            "black hole, {kind}: {RUNS} runs timed out, {accepted} connections accepted, \
             {open} left open ({:?})",
            began.elapsed()
        );
    }
}

// === PostgreSQL ===

fn pg_url(address: SocketAddr) -> String {
    format!(
        "host={} port={} user=postgres dbname=postgres",
        address.ip(),
        address.port()
    )
}

fn deadpool_pg_pool(url: &str, size: usize) -> deadpool_postgres::Pool {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .build()
        .unwrap()
}

async fn postgres_client(bin: servers::PostgresBinaries) {
    let postgres = blocking(move || servers::Postgres::start(&bin)).await;
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let runner = Runner::new(checks::postgres::client("postgres", client));
    assert_passes("up", &runner.run().await);

    let postgres = control(postgres, servers::Postgres::stop).await;
    let report = runner.run().await;
    assert_fails_with("stopped", &report, &["SELECT 1: "]);
    drop(postgres); // stops it
}

async fn deadpool_postgres(bin: servers::PostgresBinaries) {
    let postgres = blocking(move || servers::Postgres::start(&bin)).await;
    let pool = deadpool_pg_pool(&postgres.url(), 1);
    let runner = Runner::new(checks::postgres::deadpool("postgres", pool.clone()));
    assert_passes("up", &runner.run().await);

    let taken = pool.get().await.unwrap();
    assert_saturated("every connection taken", &runner.run().await);
    drop(taken);
    assert_passes("given back", &runner.run().await);

    let postgres = control(postgres, servers::Postgres::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[]);
    let report = runner.run().await;
    assert_fails_with(
        "still stopped",
        &report,
        &["taking a connection from the pool: ", REFUSED],
    );

    let postgres = control(postgres, servers::Postgres::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(postgres); // stops it
}

async fn sqlx_postgres(bin: servers::PostgresBinaries) {
    let postgres = blocking(move || servers::Postgres::start(&bin)).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        port_of(&postgres.url())
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&url)
        .unwrap();
    let runner = Runner::new(checks::postgres::sqlx("postgres", pool.clone()));
    assert_passes("up", &runner.run().await);

    let taken = pool.acquire().await.unwrap();
    assert_saturated("every connection taken", &runner.run().await);
    drop(taken);
    assert_passes("given back", &runner.until(Status::Pass).await);

    let postgres = control(postgres, servers::Postgres::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[]);
    let report = runner.run().await;
    assert_fails_with("still stopped", &report, &["connecting: ", REFUSED]);

    let postgres = control(postgres, servers::Postgres::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(postgres); // stops it
}

/// The port of a `key=value` connection string.
fn port_of(url: &str) -> u16 {
    url.split_whitespace()
        .find_map(|pair| pair.strip_prefix("port="))
        .and_then(|port| port.parse().ok())
        .expect("a port")
}

// === MariaDB ===

async fn sqlx_mysql(bin: servers::MariaDbBinaries) {
    let mariadb = blocking(move || servers::MariaDb::start(&bin)).await;
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&mariadb.url())
        .unwrap();
    let runner = Runner::new(checks::mysql::sqlx("mariadb", pool.clone()));
    assert_passes("up", &runner.run().await);

    let taken = pool.acquire().await.unwrap();
    assert_saturated("every connection taken", &runner.run().await);
    drop(taken);
    assert_passes("given back", &runner.until(Status::Pass).await);

    let mariadb = control(mariadb, servers::MariaDb::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[]);
    let report = runner.run().await;
    assert_fails_with("still stopped", &report, &["connecting: ", REFUSED]);

    let mariadb = control(mariadb, servers::MariaDb::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(mariadb); // stops it
}

// === Redis ===

fn deadpool_redis_pool(url: &str, size: usize) -> deadpool_redis::Pool {
    let mut config = deadpool_redis::Config::from_url(url);
    config.pool = Some(deadpool_redis::PoolConfig::new(size));
    config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

async fn redis_manager(bin: servers::RedisBinary) {
    let redis = blocking(move || servers::Redis::start(&bin)).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let manager = client.get_connection_manager().await.unwrap();
    let runner = Runner::new(checks::redis::connection("redis", manager));
    assert_passes("up", &runner.run().await);

    let redis = control(redis, servers::Redis::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &["PING: "]);

    let redis = control(redis, servers::Redis::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(redis); // stops it
}

async fn deadpool_redis(bin: servers::RedisBinary) {
    let redis = blocking(move || servers::Redis::start(&bin)).await;
    let pool = deadpool_redis_pool(&redis.url(), 1);
    let runner = Runner::new(checks::redis::deadpool("redis", pool.clone()));
    assert_passes("up", &runner.run().await);

    let taken = pool.get().await.unwrap();
    assert_saturated("every connection taken", &runner.run().await);
    drop(taken);
    assert_passes("given back", &runner.run().await);

    let redis = control(redis, servers::Redis::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[]);
    let report = runner.run().await;
    assert_fails_with(
        "still stopped",
        &report,
        &["taking a connection from the pool: ", REFUSED],
    );

    let redis = control(redis, servers::Redis::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(redis); // stops it
}

// === RabbitMQ ===

async fn lapin(bin: servers::RabbitMqBinary) {
    let rabbitmq = blocking(move || servers::RabbitMq::start(&bin)).await;
    let properties = lapin::ConnectionProperties::default().enable_auto_recover();
    let connection = lapin::Connection::connect(&rabbitmq.url(), properties)
        .await
        .unwrap();
    let runner = Runner::new(checks::rabbitmq::lapin("rabbitmq", connection));
    assert_passes("up", &runner.run().await);

    let rabbitmq = control(rabbitmq, servers::RabbitMq::stop).await;
    let report = runner.until(Status::Fail).await;
    assert_fails_with("stopped", &report, &[]);

    let rabbitmq = control(rabbitmq, servers::RabbitMq::start_again).await;
    assert_passes("back", &runner.until(Status::Pass).await);
    drop(rabbitmq); // stops it
}
