//! The checks engine under faults and at scale: a hung blocking check, a thousand checks, a
//! runtime that goes away mid-run or has no timer, handles dropped while runs overlap, a
//! huge failure message, IPv4-mapped loopback peers, panic messages, and the default
//! background refresh. Time is Tokio's paused clock wherever it matters.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use http::{Request, StatusCode};
use tower_health::{Check, Health, Reasons, Status};

use kit::in_process;

use in_process::{counted, get_with as get, service};

// A real clock: Tokio's paused clock does not advance while a blocking task runs, and this
// test is about a blocking task that outlives its timeout. Nothing here depends on speed:
// the waits only bound how long the test may take.
#[tokio::test]
async fn a_hung_blocking_check_holds_one_thread_and_no_new_run_starts_until_it_returns() {
    let invocations = Arc::new(AtomicUsize::new(0));
    let in_progress = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let (returned_tx, returned) = mpsc::channel::<()>();
    let returned_tx = Mutex::new(returned_tx);
    let check = {
        let (invocations, in_progress, most_at_once) = (
            invocations.clone(),
            in_progress.clone(),
            most_at_once.clone(),
        );
        Check::blocking("sync-client", move || {
            let n = invocations.fetch_add(1, Ordering::SeqCst);
            let now = in_progress.fetch_add(1, Ordering::SeqCst) + 1;
            most_at_once.fetch_max(now, Ordering::SeqCst);
            if n == 0 {
                // The first run hangs until the test releases it.
                let _ = released
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30));
            }
            in_progress.fetch_sub(1, Ordering::SeqCst);
            let _ = returned_tx.lock().unwrap().send(());
            Ok::<(), String>(())
        })
        .timeout(Duration::from_millis(30))
    };
    let health = Health::builder()
        .check(check)
        .reasons(Reasons::always())
        .refresh_every(Duration::from_millis(20))
        .build();
    for _ in 0..100 {
        let report = health.refresh().await;
        let check = report.check("sync-client").unwrap();
        assert_eq!(check.status(), Status::Fail);
        assert_eq!(check.output(), Some("timed out after 30 ms"));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        invocations.load(Ordering::SeqCst),
        1,
        "one run while blocked"
    );
    assert_eq!(most_at_once.load(Ordering::SeqCst), 1);

    release.send(()).unwrap();
    returned
        .recv_timeout(Duration::from_secs(30))
        .expect("the blocked run returns once released");
    // The thread has returned; the next refresh runs the check again.
    let mut passed = false;
    for _ in 0..500 {
        let report = health.refresh().await;
        if report.check("sync-client").unwrap().status() == Status::Pass {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(passed, "the check ran again after its thread returned");
    assert!(invocations.load(Ordering::SeqCst) >= 2);
    assert_eq!(most_at_once.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_checks_all_have_results_after_one_refresh() {
    let mut builder = Health::builder();
    for i in 0..1_000 {
        builder = builder.check(Check::new(format!("check-{i}"), || async {
            Ok::<(), String>(())
        }));
    }
    let health = builder.build();
    health.ready();
    let report = health.refresh().await;
    let without: Vec<&str> = report
        .checks()
        .iter()
        .filter(|c| c.status() != Status::Pass)
        .map(|c| c.name())
        .collect();
    assert!(
        without.is_empty(),
        "{} checks without a result",
        without.len()
    );
    let svc = service(&health);
    assert_eq!(get(&svc, Request::get("/readyz")).await.0, StatusCode::OK);
    assert_eq!(
        get(&svc, Request::get("/readyz/check-999")).await.0,
        StatusCode::OK
    );
}

#[test]
fn a_runtime_dropped_during_a_run_does_not_freeze_the_check() {
    let runs = Arc::new(AtomicUsize::new(0));
    let check = {
        let runs = runs.clone();
        Check::new("db", move || {
            let first = runs.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Ok::<(), String>(())
            }
        })
        .timeout(Duration::from_secs(3_600))
    };
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let health = first.block_on(async {
        let health = Health::builder()
            .budget(Duration::from_secs(3_600))
            .check(check)
            .build();
        // Let the first run start and hang.
        tokio::time::sleep(Duration::from_millis(50)).await;
        health
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        health.ready();
        let report = tokio::time::timeout(Duration::from_secs(10), health.refresh())
            .await
            .expect("refresh answers");
        assert_eq!(report.check("db").unwrap().status(), Status::Pass);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "ran again on the new runtime"
        );
        let svc = service(&health);
        assert_eq!(get(&svc, Request::get("/readyz")).await.0, StatusCode::OK);
    });
}

#[test]
fn probes_on_a_runtime_without_timers_answer_and_nothing_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let health = Health::builder()
            .check(Check::new("db", || async { Ok::<(), String>(()) }))
            .reasons(Reasons::always())
            .build();
        health.ready();
        let svc = service(&health);
        for _ in 0..3 {
            let (status, body) = get(&svc, Request::get("/readyz?verbose")).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert!(body.contains("timer"), "the reason says why: {body}");
        }
        assert_eq!(get(&svc, Request::get("/livez")).await.0, StatusCode::OK);
        let report = health.refresh().await;
        assert_eq!(report.check("db").unwrap().status(), Status::Fail);
    });
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_while_runs_overlap_cancels_them_and_frees_the_check() {
    let (runs, ok) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(true)),
    );
    // Each run takes longer than the interval, so runs are always in flight.
    let health = Health::builder()
        .check(counted("slow", &runs, &ok, Duration::from_millis(1_500)))
        .budget(Duration::from_secs(5))
        .refresh_every(Duration::from_millis(200))
        .build();
    let svc = service(&health);
    let layer = health.layer();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(runs.load(Ordering::SeqCst) >= 3);
    drop((svc, layer, health));
    // Within one interval the background task and the run in flight are gone.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        Arc::strong_count(&runs),
        1,
        "the check closure and its runs were dropped"
    );
    let before = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        before,
        "no run after the last handle"
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_failure_message_is_capped_in_every_answer() {
    let huge = "x".repeat(1 << 20);
    let health = Health::builder()
        .check(Check::new("noisy", move || {
            let huge = huge.clone();
            async move { Err::<(), _>(huge) }
        }))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let report = health.refresh().await;
    let output = report.check("noisy").unwrap().output().unwrap().to_owned();
    assert!(output.len() <= 1024, "kept {} bytes", output.len());
    assert!(
        output.ends_with("[cut]"),
        "marked as cut: ...{}",
        &output[1000..]
    );
    let svc = service(&health);
    for req in [
        Request::get("/readyz?verbose"),
        Request::get("/readyz?verbose").header("accept", "text/plain"),
        Request::get("/readyz/noisy?verbose"),
        Request::get("/readyz?verbose&exclude=other"),
    ] {
        let (status, body) = get(&svc, req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.len() < 2 * 1024, "answer of {} bytes", body.len());
        assert!(body.contains("[cut]"), "{body}");
    }
}

/// An error whose text is 100 MiB, written a KiB at a time; it counts the writes made.
#[derive(Debug)]
struct Huge(Arc<AtomicUsize>);

impl std::error::Error for Huge {}

impl std::fmt::Display for Huge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let piece = "x".repeat(1024);
        for _ in 0..100 * 1024 {
            self.0.fetch_add(1, Ordering::SeqCst);
            f.write_str(&piece)?;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_error_text_is_formatted_only_up_to_the_cap_inside_its_timeout() {
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let health = Health::builder()
        .check(
            Check::new("huge", move || {
                let error = Huge(counter.clone());
                async move { Err::<(), _>(error) }
            })
            .timeout(Duration::from_millis(50)),
        )
        .background_refresh(false)
        .build();
    let report = health.refresh().await;
    let output = report.check("huge").unwrap().output().unwrap();
    // The error, cut, not "timed out": formatting stopped at the cap, two pieces in,
    // rather than running through 100 MiB inside the timed run.
    assert_eq!(output, format!("{} [cut]", "x".repeat(1018)));
    assert_eq!(writes.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cut_output_ends_on_a_character_boundary() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Four-byte characters, so that a cut at a byte count would split one.
    let long: String = "é𝄞".repeat(400);
    let health = Health::builder()
        .check(Check::new("wide", move || {
            let long = long.clone();
            async move { Err::<(), _>(long) }
        }))
        .build();
    let report = runtime.block_on(health.refresh());
    let output = report.check("wide").unwrap().output().unwrap();
    assert!(output.len() <= 1024);
    assert!(output.starts_with("é𝄞é𝄞"));
    assert!(output.ends_with("[cut]"));
}

#[tokio::test(start_paused = true)]
async fn many_excludes_and_many_checks_still_answer_right() {
    let mut builder = Health::builder();
    for i in 0..1_000 {
        let fail = i == 500;
        builder = builder.check(Check::new(format!("c{i}"), move || async move {
            if fail {
                Err("down")
            } else {
                Ok(())
            }
        }));
    }
    let health = builder.build();
    health.ready();
    health.refresh().await;
    let svc = service(&health);
    assert_eq!(
        get(&svc, Request::get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let mut query = String::from("/readyz?");
    // Close to the longest URI the http crate accepts (64 KiB).
    while query.len() < 60 * 1024 {
        query.push_str("exclude=nothing-like-it&");
    }
    query.push_str("exclude=c500");
    let (status, body) = get(&svc, Request::get(query.as_str())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(start_paused = true)]
async fn ipv4_mapped_loopback_peers_are_loopback_for_reasons() {
    let health = Health::builder()
        .check(Check::new("db", || async {
            Err::<(), _>("refused by 10.0.0.7")
        }))
        .reasons(Reasons::loopback_peer(|ext| ext.get::<IpAddr>().copied()))
        .build();
    health.ready();
    health.refresh().await;
    let svc = service(&health);
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let remote: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    let (_, body) = get(&svc, Request::get("/readyz?verbose").extension(mapped)).await;
    assert!(body.contains("refused by 10.0.0.7"), "{body}");
    let (_, body) = get(&svc, Request::get("/readyz?verbose").extension(remote)).await;
    assert!(!body.contains("refused"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_checks_reason_carries_its_message_where_reasons_are_shown() {
    let build = |reasons| {
        Health::builder()
            .check(Check::new("pool", || async {
                if true {
                    panic!("pool poisoned by {}", "worker 3");
                }
                Ok::<(), String>(())
            }))
            .check(Check::blocking("sync", || -> Result<(), String> {
                panic!("driver lost its socket")
            }))
            .reasons(reasons)
            .build()
    };
    let health = build(Reasons::always());
    let report = health.refresh().await;
    assert_eq!(
        report.check("pool").unwrap().output(),
        Some("panicked: pool poisoned by worker 3")
    );
    assert_eq!(
        report.check("sync").unwrap().output(),
        Some("panicked: driver lost its socket")
    );
    health.ready();
    let (_, body) = get(&service(&health), Request::get("/readyz?verbose")).await;
    assert!(
        body.contains("panicked: pool poisoned by worker 3"),
        "{body}"
    );

    let health = build(Reasons::withheld());
    health.refresh().await;
    health.ready();
    let (status, body) = get(&service(&health), Request::get("/readyz?verbose")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !body.contains("poisoned") && !body.contains("socket"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn by_default_checks_run_once_a_second_without_any_probe() {
    let (runs, ok) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(true)),
    );
    let health = Health::builder()
        .check(counted("db", &runs, &ok, Duration::ZERO))
        .build();
    health.ready();
    tokio::time::sleep(Duration::from_millis(10_010)).await;
    let n = runs.load(Ordering::SeqCst);
    assert!((10..=11).contains(&n), "{n} runs in 10 s");

    // A failure is answered within one interval, with no probe in between.
    ok.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let svc = service(&health);
    assert_eq!(
        get(&svc, Request::get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A storm of probes does not raise the rate.
    let before = runs.load(Ordering::SeqCst);
    for _ in 0..1_000 {
        let _ = get(&svc, Request::get("/readyz")).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after = runs.load(Ordering::SeqCst);
    assert!(
        after - before <= 1,
        "{} runs in one interval",
        after - before
    );
}

#[tokio::test(start_paused = true)]
async fn background_refresh_can_be_turned_off() {
    let (runs, ok) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(true)),
    );
    let health = Health::builder()
        .check(counted("db", &runs, &ok, Duration::ZERO))
        .background_refresh(false)
        .build();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "no run without a probe");
    health.ready();
    let svc = service(&health);
    assert_eq!(get(&svc, Request::get("/readyz")).await.0, StatusCode::OK);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn back_to_back_refreshes_on_a_multi_thread_runtime_never_wait_out_the_budget() {
    // A refresh that finds the previous run recorded but not yet over used to wait for a
    // run that would never come, until the budget (here an hour) ran out.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let health = Health::builder()
            .check(Check::new("quick", || async {
                Ok::<(), std::io::Error>(())
            }))
            .budget(Duration::from_secs(3600))
            .background_refresh(false)
            .build();
        let all = async {
            for _ in 0..500 {
                health.refresh().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("500 refreshes of a check that answers at once, each well within a minute");
    });
}
