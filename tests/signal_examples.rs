//! The examples that tell their health what they know, each run as a real process:
//! `examples/failure_drill.rs`, whose dependencies are switches (the first probe after
//! each `POST` is right) and whose deadlock fails liveness through the wedge detector, and
//! `examples/ai_service.rs`, whose model loads behind a start-up gate.
//!
//! Each process is this test binary run again with `EXAMPLE_PROCESS` set to the
//! example's name: the `process_*` tests below do nothing unless they find it, and run
//! the example's own `main` when they do.
// Each example brings its own copy of `examples/support/mod.rs`, as it does when it is
// built alone.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../examples/ai_service.rs"]
mod ai_service;
#[path = "../examples/failure_drill.rs"]
mod failure_drill;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{empty, get, http1_client, request, send, LIMIT};
use http::{Method, StatusCode};

const ROLE: &str = "EXAMPLE_PROCESS";

#[test]
fn process_failure_drill() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "failure_drill") {
        failure_drill::main().expect("the failure drill ran");
    }
}

#[test]
fn process_ai_service() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "ai_service") {
        ai_service::main().expect("the AI service ran");
    }
}

/// An example running as its own process, killed when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
}

impl Example {
    /// Starts the example and waits (at most [`LIMIT`]) for its `listening on` line.
    fn start(name: &str, env: &[(&str, &str)]) -> Example {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                &format!("process_{name}"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, name)
            .env("ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let start = Instant::now();
        let mut addr = None;
        while let Ok(line) = lines.recv_timeout(LIMIT.saturating_sub(start.elapsed())) {
            // The test harness may print its own words before ours on the line.
            if let Some((_, at)) = line.split_once("listening on http://") {
                addr = Some(at.trim().parse().expect("an address"));
                break;
            }
        }
        // Killed (and waited for) when dropped, started or not.
        let example = Example {
            child,
            addr: addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
        };
        assert!(
            addr.is_some(),
            "{name} never printed `listening on http://ADDR`"
        );
        example
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn failure_drill_first_probe_after_each_post_is_right_16_of_16() {
    let example = Example::start("failure_drill", &[]);
    let client = http1_client();
    let addr = example.addr;
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
    let addr = example.addr;
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
    let addr = example.addr;
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
