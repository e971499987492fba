//! The checks engine through the service: timeouts and the budget, panics, the cache,
//! single flight, damping, aggregation, per-check paths, exclusions and the detail policy.
//! Time is Tokio's paused clock wherever it matters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_health::{Check, Health, HealthCheck, Outcome, Probe, Reasons, Status};

use kit::in_process;

use in_process::{counted, flags, get, get_with, service};

#[tokio::test(start_paused = true)]
async fn a_hanging_check_fails_after_its_timeout_within_the_budget() {
    let health = Health::builder()
        .check(
            Check::new("stuck", std::future::pending::<Result<(), String>>)
                .timeout(Duration::from_millis(200)),
        )
        .reasons(Reasons::always())
        .build();
    health.ready();
    let svc = service(&health);
    let start = Instant::now();
    let (status, body) = get(&svc, "/readyz?verbose").await;
    let waited = start.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(waited <= Duration::from_millis(900), "waited {waited:?}");
    assert!(
        body.contains(r#""output":"timed out after 200 ms""#),
        "{body}"
    );
    assert!(
        body.starts_with(r#"{"status":"fail","output":"failed: stuck""#),
        "{body}"
    );
}

#[test]
fn a_check_timeout_over_the_budget_is_a_build_problem_naming_both_never_a_silent_cut() {
    let builder = Health::builder().budget(Duration::from_millis(900)).check(
        Check::new("slow", std::future::pending::<Result<(), String>>)
            .timeout(Duration::from_millis(1500)),
    );
    let error = builder.clone().try_build().unwrap_err();
    assert_eq!(
        error.problems(),
        [tower_health::BuildProblem::TimeoutOverBudget {
            name: "slow".into(),
            timeout: Duration::from_millis(1500),
            budget: Duration::from_millis(900),
        }]
    );
    let text = error.to_string();
    assert!(
        text.contains("1500 ms") && text.contains("900 ms"),
        "{text}"
    );
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.build())).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("\"slow\" has a timeout of 1500 ms"),
        "{message}"
    );
    // Equal to the budget is fine, and so is a budget raised to fit.
    Health::builder()
        .budget(Duration::from_millis(1500))
        .check(
            Check::new("slow", || async { Ok::<(), String>(()) })
                .timeout(Duration::from_millis(1500)),
        )
        .build();
}

#[tokio::test(start_paused = true)]
async fn the_budget_bounds_a_probe_on_a_cold_cache() {
    let health = Health::builder()
        .budget(Duration::from_millis(300))
        .check(Check::new(
            "slow",
            std::future::pending::<Result<(), String>>,
        ))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let svc = service(&health);
    let start = Instant::now();
    let (status, body) = get(&svc, "/readyz?verbose").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        start.elapsed() <= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    // The check's timeout defaults to the budget.
    let report = health.refresh().await;
    assert_eq!(
        report.check("slow").unwrap().output(),
        Some("timed out after 300 ms"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_reported_and_nothing_else_is_disturbed() {
    let (runs, ok) = flags(true);
    let health = Health::builder()
        .check(Check::new("boom", || async {
            if true {
                panic!("check exploded");
            }
            Ok::<(), String>(())
        }))
        .check(Check::new(
            "sync-boom",
            || -> std::future::Ready<Result<(), String>> { panic!("before the future") },
        ))
        .check(counted("db", &runs, &ok, Duration::ZERO))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let svc = service(&health);
    let (status, body) = get(&svc, "/readyz?verbose").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains(r#""boom":[{"status":"fail""#), "{body}");
    assert!(
        body.contains(r#""output":"panicked: check exploded""#),
        "{body}"
    );
    assert!(body.contains(r#""db":[{"status":"pass""#), "{body}");
    assert_eq!(
        health.report().check("sync-boom").unwrap().output(),
        Some("panicked: before the future")
    );
    // The service and the other paths still work.
    assert_eq!(get(&svc, "/other").await, (StatusCode::OK, "inner".into()));
    assert_eq!(get(&svc, "/readyz/db").await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_check_is_unknown_until_its_first_run_finishes() {
    let (runs, ok) = flags(true);
    let health = Health::builder()
        .check(counted("db", &runs, &ok, Duration::from_millis(50)))
        .build();
    health.ready();
    let report = health.report();
    assert_eq!(report.check("db").unwrap().status(), Status::Unknown);
    assert_eq!(report.status(Probe::Readiness), Status::Fail);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "building runs nothing");
    let report = health.refresh().await;
    assert_eq!(report.check("db").unwrap().status(), Status::Pass);
    assert_eq!(report.status(Probe::Readiness), Status::Pass);
}

#[tokio::test(start_paused = true)]
async fn a_stale_result_is_answered_at_once_and_one_refresh_starts() {
    let (runs, ok) = flags(true);
    let health = Health::builder()
        .check(counted("db", &runs, &ok, Duration::from_millis(100)))
        .every(Duration::from_secs(1))
        .build();
    health.ready();
    let svc = service(&health);
    assert_eq!(get(&svc, "/readyz").await.0, StatusCode::OK);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Fresh: no new run.
    tokio::time::advance(Duration::from_millis(500)).await;
    get(&svc, "/readyz").await;
    tokio::task::yield_now().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Stale, and the dependency is now down: the cached pass is answered at once.
    ok.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(600)).await;
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(&svc, "/readyz").await.0, StatusCode::OK);
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "answered from cache");
    tokio::task::yield_now().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "exactly one refresh");

    // Once the refresh lands, the failure shows.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        get(&svc, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_probes_on_a_cold_cache_run_each_check_once() {
    let (db_runs, ok) = flags(true);
    let cache_runs = Arc::new(AtomicUsize::new(0));
    let health = Health::builder()
        .check(counted("db", &db_runs, &ok, Duration::from_millis(10)))
        .check(counted(
            "cache",
            &cache_runs,
            &ok,
            Duration::from_millis(10),
        ))
        .build();
    health.ready();
    let svc = service(&health);
    let probes = (0..1_000).map(|i| {
        let svc = svc.clone();
        let uri = if i % 2 == 0 {
            "/readyz"
        } else {
            "/readyz?verbose"
        };
        tokio::spawn(async move { get(&svc, uri).await.0 })
    });
    let start = Instant::now();
    for probe in futures_util::future::join_all(probes).await {
        assert_eq!(probe.unwrap(), StatusCode::OK);
    }
    assert_eq!(db_runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache_runs.load(Ordering::SeqCst), 1);
    assert!(start.elapsed() < Duration::from_millis(900));
}

#[tokio::test(start_paused = true)]
async fn damping_fails_after_n_and_recovers_after_m() {
    let (runs, ok) = flags(true);
    let health = Health::builder()
        .check(
            counted("db", &runs, &ok, Duration::ZERO)
                .fail_after(3)
                .pass_after(2),
        )
        .build();
    use Status::{Fail, Pass};
    // (the dependency is up, the status reported after that run)
    let steps = [
        (true, Pass),
        (false, Pass),
        (false, Pass),
        (false, Fail), // the third failure in a row
        (true, Fail),
        (false, Fail), // a failure in between starts the count again
        (true, Fail),
        (true, Pass),  // the second success in a row
        (false, Pass), // an isolated failure is absorbed
        (true, Pass),
        (false, Pass),
        (false, Pass),
    ];
    for (i, (up, want)) in steps.into_iter().enumerate() {
        ok.store(up, Ordering::SeqCst);
        let report = health.refresh().await;
        assert_eq!(report.check("db").unwrap().status(), want, "step {i}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 12);
}

#[tokio::test(start_paused = true)]
async fn a_non_critical_failure_degrades_readiness_to_warn() {
    let (runs, down) = flags(false);
    let up = Arc::new(AtomicBool::new(true));
    let health = Health::builder()
        .check(counted("db", &runs, &up, Duration::ZERO))
        .check(counted("cache", &runs, &down, Duration::ZERO).non_critical())
        .build();
    health.ready();
    let svc = service(&health);
    assert_eq!(
        get(&svc, "/readyz").await,
        (
            StatusCode::OK,
            r#"{"status":"warn","output":"degraded: cache"}"#.into()
        )
    );
    let (status, text) = get_with(
        &svc,
        Request::get("/readyz?verbose").header("accept", "text/plain"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        text,
        "[+]liveness ok\n[+]lifecycle ok\n[+]db ok\n\
         [-]cache failed: reason withheld (non-critical)\nreadyz check passed\n"
    );
    // Readiness checks never reach liveness or startup.
    assert_eq!(get(&svc, "/livez").await.0, StatusCode::OK);
    assert_eq!(get(&svc, "/startupz").await.0, StatusCode::OK);
}

/// Lines as Python's `str.splitlines` reads them: split on every one of these.
fn splitlines(text: &str) -> Vec<&str> {
    const SPLITS: [char; 10] = [
        '\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}',
        '\u{2029}',
    ];
    let mut lines: Vec<&str> = text.split(SPLITS).collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

#[tokio::test(start_paused = true)]
async fn a_reason_with_line_separators_keeps_one_line_per_check_in_the_text_answer() {
    let evil =
        "a\u{2028}[+]fake ok\u{2029}readyz check passed\u{85}[+]more ok\u{b}v\u{c}f\rr\u{1c}s";
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), String>(()) }))
        .check(Check::new("evil", move || async move { Err(evil) }))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let svc = service(&health);
    let (status, text) = get_with(
        &svc,
        Request::get("/readyz?verbose").header("accept", "text/plain"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        splitlines(&text),
        [
            "[+]liveness ok",
            "[+]lifecycle ok",
            "[+]db ok",
            "[-]evil failed: a [+]fake ok readyz check passed [+]more ok v f r s",
            "readyz check failed",
        ],
        "{text:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn per_check_paths_and_exclusions() {
    let (runs, up) = flags(true);
    let down = Arc::new(AtomicBool::new(false));
    let health = Health::builder()
        .check(counted("db", &runs, &down, Duration::ZERO))
        .check(counted("cache", &runs, &up, Duration::ZERO))
        .build();
    health.ready();
    let svc = service(&health);
    assert_eq!(
        get(&svc, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&svc, "/readyz/db").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&svc, "/readyz/cache").await,
        (StatusCode::OK, r#"{"status":"pass"}"#.into())
    );
    let (status, body) = get(&svc, "/readyz?exclude=db").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"pass"}"#)
    );
    let (_, text) = get_with(
        &svc,
        Request::get("/readyz?exclude=db&verbose").header("accept", "text/plain"),
    )
    .await;
    assert!(text.contains("[+]db excluded: failed\n"), "{text}");
    assert_eq!(
        get(&svc, "/readyz?exclude=cache").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&svc, "/readyz?exclude=nope&exclude=%zz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Names that are not checks of that probe belong to the application.
    assert_eq!(
        get(&svc, "/readyz/nope").await,
        (StatusCode::OK, "inner".into())
    );
    assert_eq!(
        get(&svc, "/livez/db").await,
        (StatusCode::OK, "inner".into())
    );
    assert_eq!(
        get(&svc, "/readyz/db/x").await,
        (StatusCode::OK, "inner".into())
    );
    // A per-check path takes the same methods as the probe.
    let post = Request::post("/readyz/db").body(Full::default()).unwrap();
    let response = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The lifecycle still governs the whole probe, but not one check's answer.
    health.start_draining();
    assert_eq!(
        get(&svc, "/readyz?exclude=db").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&svc, "/readyz/cache").await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn reasons_are_withheld_unless_the_policy_allows_them() {
    let (runs, down) = flags(false);
    let build = |reasons: Option<Reasons>| {
        let mut builder = Health::builder().check(counted("db", &runs, &down, Duration::ZERO));
        if let Some(reasons) = reasons {
            builder = builder.reasons(reasons);
        }
        let health = builder.build();
        health.ready();
        health
    };
    let text = |req: http::request::Builder| req.header("accept", "text/plain");

    let health = build(None);
    let svc = service(&health);
    let (_, body) = get(&svc, "/readyz?verbose").await;
    assert!(!body.contains("refused"), "{body}");
    let (_, body) = get_with(&svc, text(Request::get("/readyz"))).await;
    assert!(body.contains("[-]db failed: reason withheld\n"), "{body}");
    assert!(health.report().check("db").unwrap().output() == Some("connection refused"));

    let health = build(Some(Reasons::always()));
    let svc = service(&health);
    let (_, body) = get_with(&svc, text(Request::get("/readyz"))).await;
    assert!(
        body.contains("[-]db failed: connection refused\n"),
        "{body}"
    );

    let health = build(Some(Reasons::when(|req| {
        req.headers().contains_key("x-debug")
    })));
    let svc = service(&health);
    let (_, body) = get_with(&svc, text(Request::get("/readyz"))).await;
    assert!(body.contains("reason withheld"), "{body}");
    let (_, body) = get_with(&svc, text(Request::get("/readyz").header("x-debug", "1"))).await;
    assert!(body.contains("connection refused"), "{body}");

    let health = build(Some(Reasons::loopback_peer(|ext| {
        ext.get::<SocketAddr>().map(|a| a.ip())
    })));
    let svc = service(&health);
    let peer = |ip: IpAddr| text(Request::get("/readyz")).extension(SocketAddr::new(ip, 4000));
    let (_, body) = get_with(&svc, peer(IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    assert!(body.contains("connection refused"), "{body}");
    let (_, body) = get_with(&svc, peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)))).await;
    assert!(body.contains("reason withheld"), "{body}");
    let (_, body) = get_with(&svc, text(Request::get("/readyz"))).await;
    assert!(body.contains("reason withheld"), "unknown peer: {body}");
}

#[tokio::test(start_paused = true)]
async fn nothing_from_the_request_is_echoed() {
    let (runs, down) = flags(false);
    let health = Health::builder()
        .check(counted("db", &runs, &down, Duration::ZERO))
        .build();
    health.ready();
    let svc = service(&health);
    let (_, body) = get(&svc, "/readyz?verbose&exclude=%3Cscript%3E&exclude=db%22").await;
    assert!(
        !body.contains("script") && !body.contains("db\\\""),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn background_refresh_keeps_results_warm_and_stops_when_dropped() {
    let (runs, ok) = flags(true);
    let health = Health::builder()
        .check(counted("db", &runs, &ok, Duration::ZERO))
        .every(Duration::from_secs(60))
        .refresh_every(Duration::from_secs(1))
        .build();
    health.ready();
    let svc = service(&health);
    // The first tick runs at once: warm before any probe.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let report = health.report();
    assert_eq!(report.check("db").unwrap().status(), Status::Pass);
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    // The refresh shows the change without any probe asking.
    ok.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        get(&svc, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    drop(svc);
    drop(health);
    let before = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        before,
        "no run after the last handle is gone"
    );
    assert_eq!(Arc::strong_count(&runs), 1, "the check itself was dropped");
}

#[tokio::test(start_paused = true)]
async fn checks_can_gate_liveness_and_startup_when_asked() {
    let (runs, down) = flags(false);
    let up = Arc::new(AtomicBool::new(true));
    let health = Health::builder()
        .check(counted("worker", &runs, &down, Duration::ZERO).probes([Probe::Liveness]))
        .check(
            counted("model", &runs, &up, Duration::ZERO).probes([Probe::Startup, Probe::Readiness]),
        )
        .build();
    let svc = service(&health);
    assert_eq!(get(&svc, "/livez").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        get(&svc, "/livez/worker").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&svc, "/startupz").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "still starting"
    );
    health.ready();
    assert_eq!(get(&svc, "/startupz").await.0, StatusCode::OK);
    assert_eq!(get(&svc, "/startupz/model").await.0, StatusCode::OK);
    let (code, body) = get(&svc, "/readyz?verbose").await;
    assert_eq!(
        code,
        StatusCode::SERVICE_UNAVAILABLE,
        "worker gates liveness, whose failure fails readiness too: {body}"
    );
    assert_eq!(
        get(&svc, "/readyz/worker").await,
        (StatusCode::OK, "inner".into())
    );
}

struct Queue(usize);

impl HealthCheck for Queue {
    async fn check(&self) -> Outcome {
        let outcome = if self.0 > 100 {
            Outcome::warn("backing up")
        } else {
            Outcome::pass()
        };
        outcome.observed(self.0, Some("messages"))
    }
}

#[tokio::test(start_paused = true)]
async fn health_check_types_report_warn_and_observed_values() {
    let health = Health::builder()
        .check(Check::from_health_check("queue", Queue(250)))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let svc = service(&health);
    let (status, body) = get(&svc, "/readyz?verbose").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with(r#"{"status":"warn","output":"degraded: queue""#),
        "{body}"
    );
    assert!(
        body.contains(r#""observedValue":250,"observedUnit":"messages","output":"backing up""#),
        "{body}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = &json["checks"]["queue"][0];
    assert_eq!(entry["status"], "warn");
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn blocking_checks_run_off_the_runtime() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ran_on = threads.clone();
    let health = Health::builder()
        .budget(Duration::from_secs(60))
        .check(Check::blocking("sync-client", move || {
            seen.fetch_add(1, Ordering::SeqCst);
            ran_on.lock().unwrap().push(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(5));
            Err::<(), _>("no route to host")
        }))
        .build();
    let report = health.refresh().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // This test's runtime has one thread, this one: the check ran on another.
    let runtime_thread = std::thread::current().id();
    assert!(!threads.lock().unwrap().is_empty());
    assert!(
        threads.lock().unwrap().iter().all(|t| *t != runtime_thread),
        "a blocking check ran on the runtime's thread"
    );
    let check = report.check("sync-client").unwrap();
    assert_eq!(check.status(), Status::Fail);
    assert_eq!(check.output(), Some("no route to host"));
}

#[test]
fn probes_without_a_runtime_answer_from_what_is_cached() {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), String>(()) }))
        .build();
    health.ready();
    let mut svc = service(&health);
    let req = Request::get("/readyz").body(Full::default()).unwrap();
    let response = futures_util::FutureExt::now_or_never(svc.call(req))
        .unwrap()
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "unknown gates like fail"
    );
}

/// The background refresh claims a check's first run a moment before it marks it as
/// running; a probe arriving in between must wait for that run, not answer "no result
/// yet". The window is narrow, so it takes many storms on a multi-thread runtime to hit
/// (the probe storm bench hit it within a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_racing_the_background_refresh_for_the_first_result_waits_for_it() {
    for storm in 0..200 {
        let (runs, ok) = flags(true);
        let health = Health::builder()
            .check(counted("db", &runs, &ok, Duration::from_millis(10)))
            .reasons(Reasons::always())
            .build();
        health.ready();
        let svc = service(&health);
        let probes = (0..1_000).map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { get(&svc, "/readyz?verbose").await })
        });
        for probe in futures_util::future::join_all(probes).await {
            let (status, body) = probe.unwrap();
            assert_eq!(status, StatusCode::OK, "storm {storm}: {body}");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "storm {storm}");
    }
}

/// An error whose text is `text`, caused by `source`.
#[derive(Debug)]
struct Layered {
    text: &'static str,
    source: Option<Box<Layered>>,
}

impl std::fmt::Display for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

impl std::error::Error for Layered {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

fn layered(texts: &[&'static str]) -> Layered {
    let (first, rest) = texts.split_first().unwrap();
    Layered {
        text: first,
        source: (!rest.is_empty()).then(|| Box::new(layered(rest))),
    }
}

#[tokio::test(start_paused = true)]
async fn a_reason_carries_the_error_chain_of_causes_once_each() {
    let health = Health::builder()
        .check(Check::with_state(
            "upstream",
            [
                "error sending request",
                "client error (Connect)",
                "connection refused",
            ],
            |texts| async move { Err(layered(&texts).into()) },
        ))
        // An error that prints its source itself: the source is not said twice.
        .check(Check::new("db", || async {
            Err(layered(&["db error: timed out", "timed out"]))
        }))
        .build();
    let report = health.refresh().await;
    assert_eq!(
        report.check("upstream").unwrap().output(),
        Some("error sending request: client error (Connect): connection refused")
    );
    assert_eq!(
        report.check("db").unwrap().output(),
        Some("db error: timed out")
    );
}

#[tokio::test(start_paused = true)]
async fn with_state_hands_each_run_the_state_and_question_mark_needs_no_annotation() {
    let pool = Arc::new(AtomicUsize::new(0));
    let health = Health::builder()
        .check(Check::with_state("pool", pool.clone(), |pool| async move {
            let runs = pool.fetch_add(1, Ordering::SeqCst) + 1;
            if runs > 1 {
                "not a number".parse::<u32>()?;
            }
            Ok(())
        }))
        .background_refresh(false)
        .build();
    assert_eq!(
        health.refresh().await.check("pool").unwrap().status(),
        Status::Pass
    );
    let report = health.refresh().await;
    assert_eq!(report.check("pool").unwrap().status(), Status::Fail);
    assert_eq!(
        report.check("pool").unwrap().output(),
        Some("invalid digit found in string")
    );
    assert_eq!(
        pool.load(Ordering::SeqCst),
        2,
        "the application's own state, run twice"
    );
}

#[tokio::test(start_paused = true)]
async fn a_report_serializes_every_field_an_application_reads() {
    struct Depth;
    impl HealthCheck for Depth {
        async fn check(&self) -> Outcome {
            Outcome::warn("backing up").observed(1200, Some("messages"))
        }
    }
    let health = Health::builder()
        .check(Check::from_health_check("queue", Depth).non_critical())
        .check(Check::new(
            "never",
            std::future::pending::<Result<(), String>>,
        ))
        .budget(Duration::from_millis(10))
        .build();
    let _guard = health.drain_guard("batch");
    health.start_draining();
    let report = health.refresh().await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state"], "draining");
    assert_eq!(json["live"], true);
    assert_eq!(json["readiness"], "fail");
    let queue = &json["checks"][0];
    assert_eq!(queue["kind"], "check");
    assert_eq!(queue["status"], "warn");
    assert_eq!(queue["critical"], false);
    assert_eq!(queue["observedValue"], 1200);
    assert_eq!(queue["observedUnit"], "messages");
    assert_eq!(queue["output"], "backing up");
    assert!(queue["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        json["checks"][1]["status"], "unknown",
        "no result yet: {json}"
    );
    assert_eq!(
        json["drainHolders"],
        serde_json::json!([{ "name": "batch", "guards": 1 }])
    );
}
