//! The change stream: one typed event per lifecycle transition, liveness change and check
//! status change, in order, with the reason; bounded for a slow subscriber.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower_health::{Change, Check, Health, Reasons, State, Status};

fn flaky(ok: &Arc<AtomicBool>) -> Check {
    let ok = ok.clone();
    Check::new("db", move || {
        let ok = ok.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err("connection refused")
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn every_change_arrives_once_in_order_with_the_reason() {
    let ok = Arc::new(AtomicBool::new(true));
    // Reasons withheld from probes: the application still reads them.
    let health = Health::builder()
        .check(flaky(&ok))
        .reasons(Reasons::withheld())
        .build();
    let mut changes = health.changes();
    health.refresh().await;
    health.ready();
    ok.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    health.fail_liveness();
    health.recover_liveness();
    health.drain();
    health.ready(); // no change: draining is one-way

    let mut seen = Vec::new();
    while let Some(change) = changes.try_next() {
        seen.push(change);
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|c| match c {
            Change::State { from, to, .. } => format!("state {from} -> {to}"),
            Change::Liveness { live, .. } => format!("live {live}"),
            Change::Check(c) => format!(
                "{} {} -> {} {:?}",
                c.name,
                c.from.as_str(),
                c.to.as_str(),
                c.reason.as_deref()
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
        assert_eq!(c.from, Status::Unknown);
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
    assert_eq!(health.state(), State::Starting);
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_when_the_health_is_gone() {
    let health = Health::new();
    let mut changes = health.changes();
    health.ready();
    drop(health);
    assert!(matches!(changes.next().await, Some(Change::State { .. })));
    assert!(changes.next().await.is_none());
}
