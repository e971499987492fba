//! The change stream: one typed event per lifecycle transition, liveness change and check
//! status change, in order, with the reason; bounded for a slow subscriber; none for a run
//! that changes no status; ended with the `Health`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kit::in_process::counted;
use tower_health::{Change, Changes, Check, CheckChange, Health, Lifecycle, Reasons, Status};

/// A check named `db` that passes while `ok` is set and fails with "connection refused"
/// while it is not.
fn db(ok: &Arc<AtomicBool>) -> Check {
    counted("db", &Arc::new(AtomicUsize::new(0)), ok, Duration::ZERO)
}

#[tokio::test(start_paused = true)]
async fn every_change_arrives_once_in_order_with_the_reason() {
    let ok = Arc::new(AtomicBool::new(true));
    // Reasons withheld from probes: the application still reads them.
    let health = Health::builder()
        .check(db(&ok))
        .reasons(Reasons::withheld())
        .build();
    let mut changes = health.changes();
    health.refresh().await;
    health.ready();
    ok.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    health.fail_liveness();
    health.recover_liveness();
    health.start_draining();
    health.ready(); // no change: draining is one-way

    let mut seen = Vec::new();
    while let Some(change) = changes.try_next() {
        seen.push(change);
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|c| match c {
            Change::Lifecycle { from, to, .. } => format!("state {from} -> {to}"),
            Change::Liveness { live, .. } => format!("live {live}"),
            Change::Check(c) => format!(
                "{} {} -> {} {:?}",
                c.name(),
                c.from().as_str(),
                c.to().as_str(),
                c.reason()
            ),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "db fail -> pass None",
            "state starting -> ready",
            "db pass -> fail Some(\"connection refused\")",
            "live false",
            "live true",
            "state ready -> draining",
        ],
        "{seen:#?}"
    );
    if let Change::Check(c) = &seen[0] {
        assert_eq!(c.from(), Status::Unknown);
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let health = Health::new();
    let mut changes = health.changes();
    for _ in 0..1_000 {
        health.fail_liveness();
        health.recover_liveness();
    }
    let first = changes.next().await.unwrap();
    match first {
        Change::Missed { count } => assert_eq!(count, 2_000 - 256),
        other => panic!("expected Missed, got {other:?}"),
    }
    let mut rest = 0;
    while changes.try_next().is_some() {
        rest += 1;
    }
    assert_eq!(rest, 256, "then the newest, up to the backlog");
    assert_eq!(health.state(), Lifecycle::Starting);
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_when_the_health_is_gone() {
    let health = Health::new();
    let mut changes = health.changes();
    health.ready();
    drop(health);
    assert!(matches!(
        changes.next().await,
        Some(Change::Lifecycle { .. })
    ));
    assert!(changes.next().await.is_none());
}

// === beyond the basics ===

/// The changes waiting now, without waiting.
fn waiting(changes: &mut Changes) -> Vec<Change> {
    std::iter::from_fn(|| changes.try_next()).collect()
}

fn check_change(change: &Change) -> &CheckChange {
    match change {
        Change::Check(c) => c,
        other => panic!("not a check change: {other:?}"),
    }
}

#[tokio::test]
async fn lifecycle_changes_carry_when_they_happened_and_no_ops_publish_nothing() {
    let health = Health::new();
    let mut changes = health.changes();
    let before = SystemTime::now();
    assert!(health.ready());
    assert!(!health.ready(), "no change");
    assert!(health.fail_liveness());
    assert!(!health.fail_liveness(), "no change");
    assert!(health.recover_liveness());
    assert!(health.start_draining());
    assert!(!health.ready(), "draining is one-way");
    let after = SystemTime::now();

    let got = waiting(&mut changes);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(matches!(
        got[0],
        Change::Lifecycle {
            from: Lifecycle::Starting,
            to: Lifecycle::Ready,
            ..
        }
    ));
    assert!(matches!(got[1], Change::Liveness { live: false, .. }));
    assert!(matches!(got[2], Change::Liveness { live: true, .. }));
    assert!(matches!(
        got[3],
        Change::Lifecycle {
            from: Lifecycle::Ready,
            to: Lifecycle::Draining,
            ..
        }
    ));
    for change in &got {
        let (Change::Lifecycle { at, .. } | Change::Liveness { at, .. }) = change else {
            unreachable!()
        };
        assert!(before <= *at && *at <= after, "{change:?}");
    }
}

#[tokio::test]
async fn check_changes_carry_the_reason_that_probes_withhold() {
    let ok = Arc::new(AtomicBool::new(true));
    let health = Health::builder()
        .check(db(&ok))
        .background_refresh(false)
        .build();
    let mut changes = health.changes();

    health.refresh().await;
    let got = waiting(&mut changes);
    assert_eq!(got.len(), 1, "{got:?}");
    let first = check_change(&got[0]);
    assert_eq!(
        (first.name(), first.from(), first.to(), first.reason()),
        ("db", Status::Unknown, Status::Pass, None)
    );

    ok.store(false, Ordering::SeqCst);
    let before = SystemTime::now();
    let report = health.refresh().await;
    let got = waiting(&mut changes);
    assert_eq!(got.len(), 1, "{got:?}");
    let failed = check_change(&got[0]);
    assert_eq!(
        (failed.name(), failed.from(), failed.to()),
        ("db", Status::Pass, Status::Fail)
    );
    assert_eq!(failed.reason(), Some("connection refused"));
    assert!(failed.at() >= before);
    assert_eq!(Some(failed.at()), report.check("db").unwrap().time());

    // The probe names the check and withholds the reason the application just read.
    let inner = tower::service_fn(|_: http::Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let request = http::Request::get("/readyz?verbose")
        .body(String::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(tower::Layer::layer(&health.layer(), inner), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = std::str::from_utf8(&body).unwrap();
    assert!(body.contains("\"db\""), "{body}");
    assert!(!body.contains("refused"), "{body}");
}

#[tokio::test]
async fn runs_that_change_no_status_publish_nothing() {
    let ok = Arc::new(AtomicBool::new(true));
    let health = Health::builder()
        .check(db(&ok).fail_after(2))
        .background_refresh(false)
        .build();
    let mut changes = health.changes();
    health.refresh().await;
    assert_eq!(waiting(&mut changes).len(), 1, "unknown to pass");
    health.refresh().await;
    health.refresh().await;
    assert!(waiting(&mut changes).is_empty(), "pass again is no change");

    // Damping: the first failed run is held back, the second is the change.
    ok.store(false, Ordering::SeqCst);
    health.refresh().await;
    assert!(waiting(&mut changes).is_empty(), "held back by damping");
    health.refresh().await;
    let got = waiting(&mut changes);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(check_change(&got[0]).to(), Status::Fail);
}

#[tokio::test]
async fn a_subscriber_sees_changes_from_when_it_subscribed() {
    let health = Health::new();
    health.ready();
    let mut late = health.changes();
    assert!(waiting(&mut late).is_empty());
    health.start_draining();
    assert_eq!(waiting(&mut late).len(), 1);
}

#[tokio::test]
async fn the_stream_ends_when_the_health_and_its_layers_are_gone() {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), &str>(()) }))
        .build();
    health.refresh().await;
    let layer = health.layer();
    let mut changes = health.changes();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(change) = changes.next().await {
            seen.push(change);
        }
        seen
    });
    health.ready();
    drop(health);
    drop(layer);
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the stream ended")
        .unwrap();
    assert!(
        matches!(
            seen[..],
            [Change::Lifecycle {
                to: Lifecycle::Ready,
                ..
            }]
        ),
        "{seen:?}"
    );
}
