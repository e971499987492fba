//! `examples/postgres_redis.rs` run as a real process against real servers that each test
//! starts, stops and starts again: PostgreSQL down fails readiness naming the check, Redis
//! down only degrades it, both recover once their server is back, and without PostgreSQL
//! start-up gives up naming the address and the variables to set.
//!
//! The servers' binaries are found in `PATH` and `/usr/lib/postgresql/*/bin`; without
//! them a test is reported as ignored with the reason in the summary, or fails when `CI`
//! is set. (A `harness = false` target: see `kit::needs`.)

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use http::{header, Method, StatusCode};
use kit::common::{empty, http1_client, request, send, HttpClient, Reply};
use kit::example::Example;
use kit::needs;
use kit::servers::{Postgres, PostgresBinaries, Redis, RedisBinary};

/// How long a probe may take to show what the test did to a server: the example's checks
/// run again once their cached result is a second old, so this is only a bound.
const BOUND: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = vec![
        needs::always(
            "start_up_without_postgres_gives_up_naming_the_address_and_the_variables",
            start_up_without_postgres_gives_up,
        ),
        needs::needs(
            "postgres_down_fails_readiness_naming_the_check_and_recovers_when_it_is_back",
            "PostgreSQL and Redis",
            both,
            |bins| needs::runtime().block_on(postgres_down_fails_readiness(bins)),
        ),
        needs::needs(
            "redis_down_degrades_readiness_to_warn_and_recovers_when_it_is_back",
            "PostgreSQL and Redis",
            both,
            |bins| needs::runtime().block_on(redis_down_degrades_readiness(bins)),
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

fn both() -> Result<(PostgresBinaries, RedisBinary), String> {
    Ok((PostgresBinaries::find()?, RedisBinary::find()?))
}

/// A loopback port that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example on `database` and `redis`, with no drain delay.
fn start_example(database: &str, redis: &str) -> Example {
    Example::start(
        "postgres_redis",
        &[
            ("DATABASE_URL", database),
            ("REDIS_URL", redis),
            ("DRAIN_DELAY_MS", "0"),
        ],
    )
}

/// `GET path` on the example, as JSON or (`text`) as the Kubernetes text.
async fn probe(client: &HttpClient, addr: SocketAddr, path: &str, text: bool) -> Reply {
    let mut request = request(Method::GET, addr, path);
    if text {
        request = request.header(header::ACCEPT, "text/plain");
    }
    send(client, empty(request)).await
}

/// Probes `path` until `done` holds for its answer, at most [`BOUND`]; the last answer.
async fn probe_until(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    text: bool,
    what: &str,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let start = Instant::now();
    loop {
        let reply = probe(client, addr, path, text).await;
        if done(&reply) {
            return reply;
        }
        assert!(
            start.elapsed() < BOUND,
            "{what}: still {} {} after {BOUND:?}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Runs blocking server control without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The example's exit, waited for at most [`BOUND`] on a blocking thread, and its log.
async fn bounded_exit(mut example: Example) -> (std::process::ExitStatus, String) {
    let waited = tokio::task::spawn_blocking(move || {
        let status = example.wait(BOUND);
        (status, example.log_after_exit())
    });
    let (status, log) = waited.await.unwrap();
    (status.expect("the example exits"), log)
}

fn start_up_without_postgres_gives_up() {
    let port = closed_port();
    let database = format!("host=127.0.0.1 port={port} user=someone");
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let mut example = Example::start(
        "postgres_redis",
        &[
            ("DATABASE_URL", &database),
            ("REDIS_URL", &redis),
            ("STARTUP_TIMEOUT_MS", "1500"),
            ("DRAIN_DELAY_MS", "0"),
        ],
    );
    let status = example.wait(BOUND).expect("start-up gives up");
    let log = example.log_after_exit();
    assert!(!status.success(), "{status}\n{log}");
    let said = format!("PostgreSQL at 127.0.0.1:{port} as user someone did not answer within 1 s");
    for words in [
        said.as_str(),
        "Connection refused",
        "DATABASE_URL",
        "STARTUP_TIMEOUT_MS",
        "now 1500",
    ] {
        assert!(log.contains(words), "{words:?} not in {log:?}");
    }
}

/// Asserts that `reply` is `status` and that its body contains each of `words` and ends
/// with `end`.
fn assert_reply(reply: &Reply, status: StatusCode, words: &[&str], end: &str) {
    let body = reply.text();
    assert_eq!(reply.status, status, "{body}");
    for words in words {
        assert!(body.contains(words), "{words:?} not in {body}");
    }
    assert!(body.ends_with(end), "{body} does not end with {end:?}");
}

async fn postgres_down_fails_readiness((postgres, redis): (PostgresBinaries, RedisBinary)) {
    let mut database = blocking(|| Postgres::start(&postgres));
    let redis = blocking(|| Redis::start(&redis));
    let example = start_example(&database.url(), &redis.url());
    let (client, addr) = (http1_client(), example.addr());

    // Start-up waits for the database, refreshes, and only then turns ready.
    let ready = probe_until(&client, addr, "/readyz", false, "start-up", |r| {
        r.status == StatusCode::OK
    })
    .await;
    assert_eq!(ready.text(), r#"{"status":"pass"}"#);
    let verbose = probe(&client, addr, "/readyz?verbose", true).await;
    let passed = "readyz check passed\n";
    assert_reply(&verbose, StatusCode::OK, &["[+]postgres ok\n"], passed);

    blocking(|| database.stop());
    let failed = probe_until(&client, addr, "/readyz", false, "postgres down", |r| {
        r.status != StatusCode::OK
    })
    .await;
    assert_reply(&failed, StatusCode::SERVICE_UNAVAILABLE, &["postgres"], "");
    let verbose = probe(&client, addr, "/readyz?verbose", true).await;
    let (down, failed) = ("[-]postgres failed: ", "readyz check failed\n");
    assert_reply(&verbose, StatusCode::SERVICE_UNAVAILABLE, &[down], failed);
    // Liveness does not depend on the database.
    let live = probe(&client, addr, "/livez", false).await;
    assert_eq!(live.status, StatusCode::OK);

    // Back on the same port and data: the stale connection is replaced at a next run.
    blocking(|| database.start_again());
    let back = probe_until(
        &client,
        addr,
        "/readyz?verbose",
        true,
        "postgres back",
        |r| r.status == StatusCode::OK,
    )
    .await;
    assert_reply(&back, StatusCode::OK, &["[+]postgres ok\n"], "");

    example.sigterm();
    let (status, log) = bounded_exit(example).await;
    assert!(status.success(), "{status}\n{log}");
}

async fn redis_down_degrades_readiness((postgres, redis): (PostgresBinaries, RedisBinary)) {
    let database = blocking(|| Postgres::start(&postgres));
    let mut redis = blocking(|| Redis::start(&redis));
    let example = start_example(&database.url(), &redis.url());
    let (client, addr) = (http1_client(), example.addr());
    let pass = r#"{"status":"pass"}"#;

    let ready = probe_until(&client, addr, "/readyz", false, "start-up", |r| {
        r.status == StatusCode::OK && r.text() == pass
    })
    .await;
    assert_eq!(ready.text(), pass);

    blocking(|| redis.stop());
    // Non-critical: still 200, with status warn, and the verbose answer shows the failure.
    let degraded = probe_until(&client, addr, "/readyz", false, "redis down", |r| {
        r.text() != pass
    })
    .await;
    assert_reply(&degraded, StatusCode::OK, &[], "");
    let warn = r#"{"status":"warn""#;
    assert!(degraded.text().starts_with(warn), "{}", degraded.text());
    let verbose = probe(&client, addr, "/readyz?verbose", true).await;
    let (down, passed) = ("[-]redis failed: ", "readyz check passed\n");
    assert_reply(&verbose, StatusCode::OK, &[down, "(non-critical)"], passed);
    let verbose = probe(&client, addr, "/readyz?verbose", false).await;
    let failed = r#""redis":[{"status":"fail""#;
    assert_reply(&verbose, StatusCode::OK, &[failed], "");

    blocking(|| redis.start_again());
    let back = probe_until(&client, addr, "/readyz", false, "redis back", |r| {
        r.text() == pass
    })
    .await;
    assert_eq!(back.status, StatusCode::OK);

    example.sigterm();
    let (status, log) = bounded_exit(example).await;
    assert!(status.success(), "{status}\n{log}");
}
