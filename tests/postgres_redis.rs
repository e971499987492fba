//! The checks of `examples/postgres_redis.rs` against real servers that each test starts,
//! stops and starts again: PostgreSQL down fails readiness naming the check, Redis down
//! only degrades it, and both recover on the first refresh after their server is back.
//!
//! The servers' binaries are found in `PATH` and `/usr/lib/postgresql/*/bin`; without
//! them a test is reported as ignored with the reason in the summary, or fails when `CI`
//! is set. (A `harness = false` target: see `support/needs.rs`.)

#[path = "../examples/postgres_redis.rs"]
#[allow(dead_code)]
mod example;
#[path = "support/needs.rs"]
mod needs;
#[path = "support/servers.rs"]
mod servers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_health::{Health, Lifecycle, Reasons, Status};

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = vec![
        needs::always(
            "start_up_without_postgres_gives_up_naming_the_address_and_the_variables",
            || needs::runtime().block_on(start_up_without_postgres_gives_up()),
        ),
        needs::needs(
            "postgres_down_fails_readiness_naming_the_check_and_recovers_when_it_is_back",
            "PostgreSQL",
            servers::PostgresBinaries::find,
            |bin| needs::runtime().block_on(postgres_down_fails_readiness(bin)),
        ),
        needs::needs(
            "redis_down_degrades_readiness_to_warn_and_recovers_when_it_is_back",
            "Redis",
            servers::RedisBinary::find,
            |bin| needs::runtime().block_on(redis_down_degrades_readiness(bin)),
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

/// The layer around a small axum app, as the example serves it.
fn app(health: &Health) -> Router {
    Router::new()
        .route("/", get(|| async { "app" }))
        .layer(health.layer())
}

/// `GET uri` through the layer, as JSON or (`text`) as the Kubernetes text.
async fn probe(app: &Router, uri: &str, text: bool) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if text {
        request = request.header(header::ACCEPT, "text/plain");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Runs blocking server control without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn start_up_without_postgres_gives_up() {
    // A loopback port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("host=127.0.0.1 port={port} user=someone");
    let postgres = Arc::new(example::Postgres::new(&url).unwrap());
    assert_eq!(
        postgres.address(),
        format!("127.0.0.1:{port} as user someone")
    );
    let health = Health::builder()
        .check(example::postgres_check(&postgres))
        .build();

    let error = example::start_up(&health, &postgres, Duration::from_millis(1_500))
        .await
        .unwrap_err();
    assert_eq!(health.state(), Lifecycle::Starting);
    let said = format!("PostgreSQL at 127.0.0.1:{port} as user someone did not answer within 1 s");
    for words in [
        said.as_str(),
        "Connection refused",
        "DATABASE_URL",
        "STARTUP_TIMEOUT_MS",
        "now 1500",
    ] {
        assert!(error.contains(words), "{words:?} not in {error:?}");
    }
}

async fn postgres_down_fails_readiness(bin: servers::PostgresBinaries) {
    let mut server = blocking(|| servers::Postgres::start(&bin));
    let postgres = Arc::new(example::Postgres::new(&server.url()).unwrap());
    let health = Health::builder()
        .check(example::postgres_check(&postgres))
        .reasons(Reasons::always())
        .build();
    let app = app(&health);

    // Start-up waits for the database, refreshes, and only then turns ready.
    assert_eq!(health.state(), Lifecycle::Starting);
    example::start_up(&health, &postgres, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(health.state(), Lifecycle::Ready);
    assert_eq!(
        probe(&app, "/readyz", false).await,
        (StatusCode::OK, r#"{"status":"pass"}"#.to_owned())
    );
    let (status, body) = probe(&app, "/readyz?verbose", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("[+]postgres ok\n"), "{body}");
    assert!(body.ends_with("readyz check passed\n"), "{body}");

    blocking(|| server.stop());
    let report = health.refresh().await;
    let check = report.check("postgres").unwrap();
    assert_eq!(check.status(), Status::Fail, "{:?}", check.output());
    let (status, body) = probe(&app, "/readyz", false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("postgres"), "{body}");
    let (status, body) = probe(&app, "/readyz?verbose", true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("[-]postgres failed: "), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    // Liveness does not depend on the database.
    assert_eq!(probe(&app, "/livez", false).await.0, StatusCode::OK);

    // Back on the same port and data: the stale connection is replaced at the next run.
    blocking(|| server.start_again());
    let report = health.refresh().await;
    let check = report.check("postgres").unwrap();
    assert_eq!(check.status(), Status::Pass, "{:?}", check.output());
    let (status, body) = probe(&app, "/readyz?verbose", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("[+]postgres ok\n"), "{body}");
}

async fn redis_down_degrades_readiness(bin: servers::RedisBinary) {
    let mut server = blocking(|| servers::Redis::start(&bin));
    let redis = example::redis_pool(&server.url()).unwrap();
    let health = Health::builder()
        .check(example::redis_check(&redis))
        .reasons(Reasons::always())
        .build();
    let app = app(&health);
    health.refresh().await;
    health.ready();

    assert_eq!(
        probe(&app, "/readyz", false).await,
        (StatusCode::OK, r#"{"status":"pass"}"#.to_owned())
    );

    blocking(|| server.stop());
    let report = health.refresh().await;
    let check = report.check("redis").unwrap();
    assert_eq!(check.status(), Status::Fail, "{:?}", check.output());
    // Non-critical: still 200, with status warn, and the verbose answer shows the failure.
    let (status, body) = probe(&app, "/readyz", false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with(r#"{"status":"warn""#), "{body}");
    let (status, body) = probe(&app, "/readyz?verbose", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("[-]redis failed: "), "{body}");
    assert!(body.contains("(non-critical)"), "{body}");
    assert!(body.ends_with("readyz check passed\n"), "{body}");
    let (status, body) = probe(&app, "/readyz?verbose", false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""redis":[{"status":"fail""#), "{body}");

    blocking(|| server.start_again());
    let report = health.refresh().await;
    let check = report.check("redis").unwrap();
    assert_eq!(check.status(), Status::Pass, "{:?}", check.output());
    assert_eq!(
        probe(&app, "/readyz", false).await,
        (StatusCode::OK, r#"{"status":"pass"}"#.to_owned())
    );
}
