//! What the application tells its health itself: start-up gates, switches and heartbeats,
//! seen by the very next probe and pushed to an open gRPC Watch and the change stream with
//! the clock paused; and the wedge detector, which fails liveness when requests wait for a
//! response head that never comes, and only then.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower::ServiceExt;
use tower_health::{
    BuildProblem, Change, Check, CheckKind, Gate, Health, HealthService, Heartbeat, Probe, Reasons,
    Status, Switch,
};

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;
type Inner = tower::util::BoxCloneService<Request<Full<Bytes>>, Response<Body>, Infallible>;
type App = HealthService<Inner>;

/// The application behind the layer: `/` waits on `lock` (forever, while the test holds
/// it), `/slow` answers after a second, `/stream` answers a head at once and a body that
/// never ends.
fn app(health: &Health, lock: Arc<tokio::sync::Mutex<()>>) -> App {
    let inner = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let lock = lock.clone();
        async move {
            let body = match req.uri().path() {
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Full::from("slow").map_err(|e| match e {}).boxed_unsync()
                }
                "/stream" => {
                    let never = futures_util::stream::pending::<
                        Result<http_body::Frame<Bytes>, Infallible>,
                    >();
                    http_body_util::StreamBody::new(never).boxed_unsync()
                }
                _ => {
                    let _held = lock.lock().await;
                    Full::from("hello").map_err(|e| match e {}).boxed_unsync()
                }
            };
            Ok::<_, Infallible>(Response::new(body))
        }
    });
    tower::Layer::layer(&health.layer(), Inner::new(inner))
}

fn plain_app(health: &Health) -> App {
    app(health, Arc::default())
}

/// A `GET` of `path` asking for text; what it answers. (The future owns its clone of the
/// service, so that it may be spawned.)
fn get(app: &App, path: &str) -> impl std::future::Future<Output = (StatusCode, String)> + Send {
    let app = app.clone();
    let req = Request::get(path)
        .header("accept", "text/plain")
        .body(Full::default())
        .unwrap();
    async move {
        let response = app.oneshot(req).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

fn status(app: &App, path: &str) -> impl std::future::Future<Output = StatusCode> + Send {
    let answer = get(app, path);
    async move { answer.await.0 }
}

// === gates and switches: seen at once ===

#[tokio::test(start_paused = true)]
async fn a_switch_set_is_seen_by_the_very_next_probe_with_the_clock_paused() {
    let database = Switch::new("database");
    let health = Health::builder()
        .switch(&database)
        .reasons(Reasons::always())
        .build();
    health.ready();
    let app = plain_app(&health);
    let start = Instant::now();
    for round in 0..16 {
        // A cached answer first, so that a stale cache would show.
        assert_eq!(status(&app, "/readyz").await, StatusCode::OK, "{round}");
        database.fail(format!("connection lost {round}"));
        let (code, body) = get(&app, "/readyz?verbose").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{round}");
        assert!(
            body.contains(&format!("[-]database failed: connection lost {round}")),
            "{body}"
        );
        assert_eq!(
            status(&app, "/readyz/database").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        database.pass();
        assert_eq!(status(&app, "/readyz").await, StatusCode::OK, "{round}");
        assert_eq!(status(&app, "/readyz/database").await, StatusCode::OK);
    }
    assert_eq!(Instant::now(), start, "no time passed");
}

#[tokio::test(start_paused = true)]
async fn gates_and_ready_compose_by_and_and_gates_are_one_way() {
    let migrations = Gate::new("migrations");
    let model = Gate::new("model");
    let health = Health::builder().gate(&migrations).gate(&model).build();
    let app = plain_app(&health);
    let probes = |app: App| async move {
        [
            status(&app, "/livez").await,
            status(&app, "/readyz").await,
            status(&app, "/startupz").await,
        ]
    };
    const OK: StatusCode = StatusCode::OK;
    const NO: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(
        probes(app.clone()).await,
        [OK, NO, NO],
        "starting, gates closed"
    );
    migrations.open();
    model.open();
    assert_eq!(
        probes(app.clone()).await,
        [OK, NO, NO],
        "gates open, not ready"
    );

    let health = {
        let migrations = Gate::new("migrations");
        let health = Health::builder().gate(&migrations).build();
        health.ready();
        let app = plain_app(&health);
        assert_eq!(
            probes(app.clone()).await,
            [OK, NO, NO],
            "ready, a gate closed"
        );
        let (_, body) = get(&app, "/startupz?verbose").await;
        assert!(
            body.contains("[-]migrations failed: reason withheld"),
            "{body}"
        );
        migrations.open();
        assert_eq!(
            probes(app.clone()).await,
            [OK, OK, OK],
            "ready, every gate open"
        );
        migrations.open();
        assert_eq!(
            probes(app).await,
            [OK, OK, OK],
            "opening twice changes nothing"
        );
        health
    };
    health.start_draining();
    let app = plain_app(&health);
    assert_eq!(probes(app).await, [OK, NO, OK], "draining wins");
}

#[tokio::test(start_paused = true)]
async fn a_gate_opened_is_seen_by_the_next_probe_without_a_refresh() {
    // With a check too, whose background refresh could otherwise be what shows it.
    let model = Gate::new("model");
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .gate(&model)
        .background_refresh(false)
        .build();
    health.ready();
    let app = plain_app(&health);
    assert_eq!(
        status(&app, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let start = Instant::now();
    model.open();
    assert_eq!(status(&app, "/readyz").await, StatusCode::OK);
    assert_eq!(status(&app, "/startupz").await, StatusCode::OK);
    assert_eq!(status(&app, "/startupz/model").await, StatusCode::OK);
    assert_eq!(Instant::now(), start);
}

#[tokio::test]
async fn a_switch_reason_is_withheld_like_any_reason_and_told_to_the_change_stream() {
    let maintenance = Switch::new("maintenance");
    let health = Health::builder().switch(&maintenance).build();
    health.ready();
    let mut changes = health.changes();
    let app = plain_app(&health);
    maintenance.fail("until 02:00");
    maintenance.fail("until 02:00"); // the same again: no change
    let (code, body) = get(&app, "/readyz?verbose").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("[-]maintenance failed: reason withheld"),
        "{body}"
    );
    assert!(!body.contains("02:00"), "{body}");
    match changes.try_next() {
        Some(Change::Check(change)) => {
            assert_eq!(change.name(), "maintenance");
            assert_eq!((change.from(), change.to()), (Status::Pass, Status::Fail));
            assert_eq!(change.reason(), Some("until 02:00"));
        }
        other => panic!("{other:?}"),
    }
    assert!(changes.try_next().is_none(), "one change, not two");
    let report = health.report();
    let line = report.check("maintenance").unwrap();
    assert_eq!(line.kind(), CheckKind::Switch);
    assert_eq!(line.output(), Some("until 02:00"));
}

#[tokio::test]
async fn a_non_critical_switch_warns_and_a_liveness_switch_fails_liveness() {
    let leader = Switch::new("leader").non_critical();
    let poisoned = Switch::new("poisoned").probes([Probe::Liveness]);
    let health = Health::builder().switch(&leader).switch(&poisoned).build();
    health.ready();
    let app = plain_app(&health);
    leader.warn("follower");
    leader.fail("no leader");
    let (code, body) = get(&app, "/readyz").await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(health.report().status(Probe::Readiness), Status::Warn);
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    poisoned.fail("state is corrupt");
    assert_eq!(
        status(&app, "/livez").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&app, "/livez/poisoned").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn verbose_json_names_each_entry_and_its_kind() {
    let gate = Gate::new("migrations");
    let switch = Switch::new("maintenance");
    let heartbeat = Heartbeat::new("consumer", Duration::from_secs(5))
        .probes([Probe::Readiness, Probe::Liveness]);
    let health = Health::builder()
        .gate(&gate)
        .switch(&switch)
        .heartbeat(&heartbeat)
        .build();
    health.ready();
    gate.open();
    let app = plain_app(&health);
    let req = Request::get("/readyz?verbose")
        .body(Full::default())
        .unwrap();
    let response = app.oneshot(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for (name, kind) in [
        ("migrations", "gate"),
        ("maintenance", "switch"),
        ("consumer", "heartbeat"),
    ] {
        let entry = &json["checks"][name][0];
        assert_eq!(entry["status"], "pass", "{name}: {json}");
        assert_eq!(entry["componentType"], kind, "{name}: {json}");
    }
}

#[test]
fn signals_share_one_namespace_with_checks_and_the_reserved_names() {
    let error = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .switch(&Switch::new("db"))
        .gate(&Gate::new("liveness"))
        .heartbeat(&Heartbeat::new("bad name", Duration::from_secs(1)))
        .liveness_fails_when_stuck(Duration::from_secs(1))
        .check(Check::new("requests", || async {
            Ok::<(), Infallible>(())
        }))
        .try_build()
        .unwrap_err();
    let problems = error.problems();
    for want in [
        BuildProblem::DuplicateCheckName { name: "db".into() },
        BuildProblem::ReservedCheckName {
            name: "liveness".into(),
        },
        BuildProblem::InvalidCheckName {
            name: "bad name".into(),
        },
        BuildProblem::DuplicateCheckName {
            name: "requests".into(),
        },
    ] {
        assert!(problems.contains(&want), "{want:?} in {problems:?}");
    }
}

#[tokio::test]
async fn a_signal_belongs_to_one_health() {
    let switch = Switch::new("maintenance");
    let _first = Health::builder().switch(&switch).build();
    let error = Health::builder().switch(&switch).try_build().unwrap_err();
    assert_eq!(
        error.problems(),
        [BuildProblem::SignalInUse {
            name: "maintenance".into()
        }]
    );
}

// === heartbeats ===

#[tokio::test(start_paused = true)]
async fn a_heartbeat_beaten_every_second_keeps_passing() {
    let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
    let health = Health::builder().heartbeat(&consumer).build();
    let app = plain_app(&health);
    for second in 0..60 {
        consumer.beat();
        assert_eq!(status(&app, "/livez").await, StatusCode::OK, "{second} s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        health.report().check("consumer").unwrap().status(),
        Status::Pass
    );
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_fails_five_seconds_after_its_last_beat_and_recovers_with_a_beat() {
    let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
    let health = Health::builder().heartbeat(&consumer).build();
    let mut changes = health.changes();
    let app = plain_app(&health);
    consumer.beat();
    let last = Instant::now();
    tokio::time::sleep(Duration::from_millis(4_999)).await;
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    assert!(changes.try_next().is_none());

    // No probe: the change is pushed when the age runs out.
    let change = tokio::time::timeout(Duration::from_secs(3600), changes.next())
        .await
        .expect("a change")
        .unwrap();
    assert_eq!(Instant::now() - last, Duration::from_secs(5));
    match change {
        Change::Check(change) => {
            assert_eq!((change.from(), change.to()), (Status::Pass, Status::Fail));
            assert_eq!(change.reason(), Some("no beat within 5000 ms"));
        }
        other => panic!("{other:?}"),
    }
    let (code, body) = get(&app, "/livez?verbose").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("[-]consumer failed"), "{body}");

    // A beat: the next probe passes at once.
    consumer.beat();
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_is_seen_expired_by_a_probe_before_its_task_runs() {
    // A runtime that has not polled the watch task yet: the probe itself looks.
    let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
    let health = Health::builder().heartbeat(&consumer).build();
    let app = plain_app(&health);
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        status(&app, "/livez").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_heartbeat_fails_and_stays_failed() {
    let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
    let health = Health::builder().heartbeat(&consumer).build();
    let app = plain_app(&health);
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    let start = Instant::now();
    drop(consumer);
    let (code, body) = get(&app, "/livez?verbose").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("[-]consumer failed"), "{body}");
    assert_eq!(Instant::now(), start, "at once");
    assert_eq!(
        health.report().check("consumer").unwrap().output(),
        Some("heartbeat handle dropped")
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        status(&app, "/livez").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_dropped_during_the_drain_is_no_failure() {
    let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
    let health = Health::builder().heartbeat(&consumer).build();
    health.ready();
    let app = plain_app(&health);
    let mut changes = health.changes();
    // The worker's loop ends at the drain and drops its handle, as a clean exit does.
    health.start_draining();
    drop(consumer);
    let (code, body) = get(&app, "/livez?verbose").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        health.report().check("consumer").unwrap().status(),
        Status::Pass
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    // The change stream saw the drain and nothing of the heartbeat.
    while let Some(change) = changes.next().now_or_never().flatten() {
        assert!(!matches!(change, Change::Check(_)), "{change:?}");
    }
}

#[test]
fn beat_from_many_threads_at_once() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consumer = Arc::new(Heartbeat::new("consumer", Duration::from_secs(3600)));
    let health = runtime.block_on(async { Health::builder().heartbeat(&consumer).build() });
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                for _ in 0..10_000 {
                    consumer.beat();
                }
            });
        }
    });
    let report = runtime.block_on(async { health.report() });
    assert_eq!(report.check("consumer").unwrap().status(), Status::Pass);
    assert_eq!(report.status(Probe::Liveness), Status::Pass);
}

// === the wedge detector ===

const STUCK: Duration = Duration::from_secs(5);

fn wedge_health() -> Health {
    let health = Health::builder().liveness_fails_when_stuck(STUCK).build();
    health.ready();
    health
}

/// Sends `n` requests for `path` that wait for their answer in tasks of their own.
fn send_waiting(app: &App, path: &'static str, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let req = Request::get(path).body(Full::default()).unwrap();
                let response = app.oneshot(req).await.unwrap();
                // Hold the body (a stream never ends).
                let _ = response.into_body().collect().await;
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn requests_held_on_a_lock_fail_liveness_after_the_configured_time() {
    let health = wedge_health();
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let app = app(&health, lock.clone());
    let held = lock.lock().await;
    // The lock is free for a while: answers are progress.
    drop(held);
    for _ in 0..3 {
        let (code, _) = get(&app, "/").await;
        assert_eq!(code, StatusCode::OK);
    }
    let held = lock.lock().await;
    let waiting = send_waiting(&app, "/", 3);
    let start = Instant::now();
    let mut failed_after = None;
    // Probes every 100 ms: they are no progress.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status(&app, "/livez").await == StatusCode::SERVICE_UNAVAILABLE {
            failed_after = Some(start.elapsed());
            break;
        }
    }
    let failed_after = failed_after.expect("liveness failed");
    assert!(failed_after >= STUCK, "{failed_after:?}");
    assert!(
        failed_after <= STUCK + Duration::from_secs(1),
        "{failed_after:?}"
    );
    let (_, body) = get(&app, "/livez?verbose").await;
    assert!(body.contains("[-]requests failed"), "{body}");
    // A pod about to be restarted leaves the Service first: readiness fails with it.
    let (code, body) = get(&app, "/readyz?verbose").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("[-]liveness failed"), "{body}");
    // Left out of this answer, the entry fails nothing in it.
    let (code, body) = get(&app, "/readyz?verbose&exclude=requests").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("[+]liveness ok"), "{body}");

    // The lock freed: the heads come, and liveness and readiness pass again.
    drop(held);
    for task in waiting {
        task.await.unwrap();
    }
    assert_eq!(status(&app, "/livez").await, StatusCode::OK);
    assert_eq!(status(&app, "/readyz").await, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_left_out_route_holds_no_liveness_down() {
    let health = Health::builder()
        .liveness_fails_when_stuck(STUCK)
        .stuck_exempt_paths(["/poll"])
        .build();
    health.ready();
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let app = app(&health, lock.clone());
    let held = lock.lock().await;
    // Long-polls that wait far longer than `STUCK` for their head.
    let polls = [
        send_waiting(&app, "/poll", 2),
        send_waiting(&app, "/poll/7", 2),
    ];
    let start = Instant::now();
    while start.elapsed() < STUCK * 6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            status(&app, "/livez").await,
            StatusCode::OK,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            status(&app, "/readyz").await,
            StatusCode::OK,
            "{:?}",
            start.elapsed()
        );
    }
    // A prefix is a path and what is under it, not any path that starts alike.
    let waiting = send_waiting(&app, "/polls", 1);
    let start = Instant::now();
    let mut failed = false;
    while !failed && start.elapsed() <= STUCK + Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        failed = status(&app, "/livez").await == StatusCode::SERVICE_UNAVAILABLE;
    }
    assert!(failed, "a route that is not left out still trips it");
    drop(held);
    for task in waiting.into_iter().chain(polls.into_iter().flatten()) {
        task.await.unwrap();
    }
}

#[test]
fn a_left_out_path_must_start_with_a_slash() {
    let error = Health::builder()
        .stuck_exempt_paths(["/ok", "poll", "/sp ace"])
        .try_build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            BuildProblem::InvalidStuckExemptPath {
                path: "poll".into()
            },
            BuildProblem::InvalidStuckExemptPath {
                path: "/sp ace".into()
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_answering_one_slow_request_a_second_while_others_wait_never_trips_it() {
    let health = wedge_health();
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let app = app(&health, lock.clone());
    let _held = lock.lock().await;
    let _waiting = send_waiting(&app, "/", 3);
    let slow = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                assert_eq!(status(&app, "/slow").await, StatusCode::OK);
            }
        })
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(55) {
        assert_eq!(
            status(&app, "/livez").await,
            StatusCode::OK,
            "after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    slow.abort();
}

#[tokio::test(start_paused = true)]
async fn a_streaming_response_open_for_an_hour_never_trips_it() {
    let health = wedge_health();
    let app = plain_app(&health);
    let _streams = send_waiting(&app, "/stream", 2);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        assert_eq!(status(&app, "/livez").await, StatusCode::OK);
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_service_and_a_cancelled_request_are_never_stuck() {
    let health = wedge_health();
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let app = app(&health, lock.clone());
    let _held = lock.lock().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(status(&app, "/livez").await, StatusCode::OK, "idle");
    // A request whose client went away waits no more.
    let waiting = send_waiting(&app, "/", 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for task in waiting {
        task.abort();
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(status(&app, "/livez").await, StatusCode::OK, "cancelled");
}

#[tokio::test]
async fn the_page_lists_gates_switches_and_heartbeats() {
    let gate = Gate::new("migrations");
    let switch = Switch::new("maintenance");
    let heartbeat = Heartbeat::new("consumer", Duration::from_secs(5)).probes([Probe::Readiness]);
    let health = Health::builder()
        .gate(&gate)
        .switch(&switch)
        .heartbeat(&heartbeat)
        .build();
    health.ready();
    switch.fail("until 02:00");
    let app = plain_app(&health);
    let req = Request::get("/readyz?verbose")
        .header("accept", "text/html")
        .body(Full::default())
        .unwrap();
    let response = app.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(body.to_vec()).unwrap();
    for name in ["migrations", "maintenance", "consumer"] {
        assert!(page.contains(name), "{name} in {page}");
    }
    assert!(!page.contains("02:00"), "the reason is withheld");
}

#[tokio::test]
async fn a_closed_gate_reads_as_waiting_not_as_a_failure() {
    let model = Gate::new("model");
    let db = Switch::new("db");
    let health = Health::builder().gate(&model).switch(&db).build();
    health.ready();
    let app = plain_app(&health);
    let json = |app: &App| {
        let app = app.clone();
        async move {
            let req = Request::get("/readyz").body(Full::default()).unwrap();
            let body = app.oneshot(req).await.unwrap().into_body();
            let body = body.collect().await.unwrap().to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        }
    };
    assert_eq!(json(&app).await["output"], "waiting for: model");
    db.fail("down");
    assert_eq!(json(&app).await["output"], "failed: db; waiting for: model");
    model.open();
    assert_eq!(json(&app).await["output"], "failed: db");
}
