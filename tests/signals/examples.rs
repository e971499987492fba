//! The examples that tell their health what they know, each run as a real process:
//! `examples/failure_drill.rs`, whose dependencies are switches (the first probe after
//! each `POST` is right) and whose deadlock fails liveness through the wedge detector, and
//! `examples/ai_service.rs`, whose model loads behind a start-up gate.
//!
//! The processes are the example binaries themselves, built and run by
//! `kit::example`.

use kit::common;
use kit::example;

use std::time::{Duration, Instant};

use common::{empty, get, http1_client, request, send, LIMIT};
use example::Example;
use http::{Method, StatusCode};

#[tokio::test]
async fn failure_drill_first_probe_after_each_post_is_right_16_of_16() {
    let example = Example::start("failure_drill", &[]);
    let client = http1_client();
    let addr = example.addr();
    assert_eq!(get(&client, addr, "/ready").await.status, StatusCode::OK);
    let drills = [
        ("/simulate_db_failure", "/simulate_db_recovery"),
        (
            "/simulate_external_service_failure",
            "/simulate_external_service_recovery",
        ),
    ];
    for (fail, recover) in drills {
        let (mut failed, mut recovered) = (0, 0);
        for _ in 0..16 {
            let posted = send(&client, empty(request(Method::POST, addr, fail))).await;
            assert_eq!(posted.status, StatusCode::OK, "{fail}");
            if get(&client, addr, "/ready").await.status == StatusCode::SERVICE_UNAVAILABLE {
                failed += 1;
            }
            let posted = send(&client, empty(request(Method::POST, addr, recover))).await;
            assert_eq!(posted.status, StatusCode::OK, "{recover}");
            if get(&client, addr, "/ready").await.status == StatusCode::OK {
                recovered += 1;
            }
        }
        assert_eq!(failed, 16, "the first probe after {fail}");
        assert_eq!(recovered, 16, "the first probe after {recover}");
    }
    // Liveness never moved: a dependency down is no reason to restart.
    assert_eq!(get(&client, addr, "/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn failure_drill_deadlock_fails_liveness_within_stuck_after_plus_a_second() {
    const STUCK_AFTER: Duration = Duration::from_millis(1_000);
    let example = Example::start("failure_drill", &[("STUCK_AFTER_MS", "1000")]);
    let addr = example.addr();
    let probes = http1_client();
    assert_eq!(get(&probes, addr, "/").await.status, StatusCode::OK);
    let posted = send(
        &probes,
        empty(request(Method::POST, addr, "/simulate_deadlock")),
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK);
    assert_eq!(get(&probes, addr, "/health").await.status, StatusCode::OK);

    // Requests that wait forever on the lock, each on a connection of its own.
    let sent = Instant::now();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let client = http1_client();
            tokio::spawn(async move { get(&client, addr, "/").await })
        })
        .collect();
    let mut failed_after = None;
    while sent.elapsed() < STUCK_AFTER + Duration::from_secs(5) {
        if get(&probes, addr, "/health").await.status == StatusCode::SERVICE_UNAVAILABLE {
            failed_after = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed_after = failed_after.expect("liveness failed");
    assert!(
        failed_after <= STUCK_AFTER + Duration::from_secs(1),
        "{failed_after:?}"
    );
    assert!(failed_after >= STUCK_AFTER, "{failed_after:?}");
    for task in &waiting {
        assert!(!task.is_finished(), "GET / waits forever");
    }
    for task in waiting {
        task.abort();
    }
}

#[tokio::test]
async fn ai_service_starts_once_its_model_gate_opens() {
    let example = Example::start("ai_service", &[("MODEL_LOAD_MS", "1500")]);
    let client = http1_client();
    let addr = example.addr();
    // Loading: startup and readiness wait on the gate, liveness passes.
    let started = get(&client, addr, "/health/started?verbose").await;
    assert_eq!(started.status, StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8_lossy(&started.body);
    assert!(text.contains("embedding-model"), "{text}");
    assert_eq!(get(&client, addr, "/health").await.status, StatusCode::OK);
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if get(&client, addr, "/health/started").await.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get(&client, addr, "/health/started").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&client, addr, "/health/ready").await.status,
        StatusCode::OK
    );
}
