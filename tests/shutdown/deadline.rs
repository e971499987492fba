//! The hard deadline of the shutdown (`Health::with_deadline`), the background work that
//! holds it open (`DrainGuard`), the futures that tell a task the drain started or the
//! delay is over, and an SSE response that ends at the drain: on Tokio's paused clock,
//! with the log captured.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt as _;
use http::Request;
use http_body_util::BodyExt as _;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tower_health::{Health, Lifecycle};

const DELAY: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_secs(4);

fn health() -> Health {
    Health::builder()
        .drain_delay(DELAY)
        .shutdown_timeout(DEADLINE)
        .build()
}

/// The log lines written while `test` runs, on a current-thread runtime whose clock starts
/// paused, with what `test` returned.
fn logged<F: Future<Output = R>, R>(test: impl FnOnce() -> F) -> (R, String) {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let result = tracing::subscriber::with_default(subscriber, || runtime.block_on(test()));
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

/// A shutdown future that starts when the returned sender fires, as a signal would.
fn shutdown(health: &Health) -> (oneshot::Sender<()>, impl Future<Output = ()> + Send) {
    let (trigger, fired) = oneshot::channel::<()>();
    let shutdown = health.shutdown_on(async move {
        let _ = fired.await;
    });
    (trigger, shutdown)
}

#[tokio::test(start_paused = true)]
async fn with_deadline_returns_what_the_server_returns_when_it_finishes_in_time() {
    let health = health();
    let (trigger, shutdown) = shutdown(&health);
    trigger.send(()).unwrap();
    let start = Instant::now();
    let served = health
        .with_deadline(async move {
            shutdown.await;
            Ok::<_, std::io::Error>("served")
        })
        .await;
    assert_eq!(served.unwrap().unwrap(), "served");
    assert_eq!(start.elapsed(), DELAY, "at the end of the drain delay");
}

#[tokio::test(start_paused = true)]
async fn with_deadline_waits_for_no_deadline_before_the_drain() {
    let health = health();
    let start = Instant::now();
    let server = tokio::time::sleep(Duration::from_secs(3600));
    assert_eq!(health.with_deadline(server).await, Some(()));
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[test]
fn a_server_that_never_finishes_is_cut_at_the_deadline_counted_from_the_signal() {
    let (elapsed, log) = logged(|| async {
        let health = health();
        let (trigger, shutdown) = shutdown(&health);
        // Its graceful shutdown never ends: a client that never acknowledges GOAWAY.
        let server = async move {
            shutdown.await;
            std::future::pending::<()>().await
        };
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            trigger.send(()).unwrap();
        });
        assert_eq!(health.with_deadline(server).await, None, "cut");
        start.elapsed()
    });
    assert_eq!(elapsed, Duration::from_secs(10) + DEADLINE);
    let warning = log
        .lines()
        .find(|line| line.contains("shutdown deadline reached"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("timeout_ms=4000"), "{warning}");
    assert!(warning.contains("holders=none"), "{warning}");
}

#[test]
fn the_deadline_warning_says_requests_are_not_counted_when_they_are_not() {
    let ((), log) = logged(|| async {
        // The wedge detector alone: requests pass its counter, and are not counted.
        let health = Health::builder()
            .drain_delay(DELAY)
            .shutdown_timeout(DEADLINE)
            .liveness_fails_when_stuck(Duration::from_secs(60))
            .build();
        health.ready();
        let answered = tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let svc = tower::Layer::layer(&health.layer(), answered);
        for _ in 0..10 {
            let req = Request::get("/work").body(String::new()).unwrap();
            let response = svc.clone().oneshot(req).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
        // One request that is still in flight when the deadline comes.
        let slow = tower::service_fn(|_req: Request<String>| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let slow = tower::Layer::layer(&health.layer(), slow);
        let req = Request::get("/slow").body(String::new()).unwrap();
        let in_flight = tokio::spawn(slow.oneshot(req));
        let (trigger, shutdown) = shutdown(&health);
        let server = async move {
            shutdown.await;
            std::future::pending::<()>().await
        };
        trigger.send(()).unwrap();
        assert_eq!(health.with_deadline(server).await, None, "cut");
        in_flight.abort();
    });
    let warning = log
        .lines()
        .find(|line| line.contains("shutdown deadline reached"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    assert!(warning.contains("in_flight=not counted"), "{warning}");
}

#[test]
fn with_requests_counted_the_shutdown_ends_when_the_delay_is_over_and_the_work_is_done() {
    let (ends, log) = logged(|| async {
        let health = Health::builder()
            .drain_delay(DELAY)
            .shutdown_timeout(Duration::from_secs(3600))
            .track_in_flight(true)
            .build();
        health.ready();
        let inner = tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("body")))
        });
        let svc = tower::Layer::layer(&health.layer(), inner);
        // A response whose body the client has not read yet: in flight.
        let req = Request::get("/download").body(String::new()).unwrap();
        let response = svc.oneshot(req).await.unwrap();
        let guard = health.drain_guard("batch");
        let (trigger, shutdown) = shutdown(&health);
        // A graceful shutdown that never ends by itself: an HTTP/2 client that never
        // acknowledges GOAWAY, idle.
        let server = async move {
            shutdown.await;
            std::future::pending::<()>().await
        };
        let start = Instant::now();
        trigger.send(()).unwrap();
        let stopped = tokio::spawn({
            let health = health.clone();
            async move {
                assert_eq!(health.with_deadline(server).await, None);
                start.elapsed()
            }
        });
        tokio::time::sleep(DELAY * 3).await;
        assert!(!stopped.is_finished(), "a body in flight holds it");
        drop(response);
        tokio::time::sleep(DELAY).await;
        assert!(!stopped.is_finished(), "a guard holds it");
        drop(guard);
        (stopped.await.unwrap(), DELAY * 4)
    });
    assert_eq!(ends.0, ends.1, "at once when the last of the work ended");
    assert!(
        log.contains("no request in flight and no guard held"),
        "{log}"
    );
    assert!(!log.contains("deadline reached"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn without_counting_the_shutdown_still_waits_for_the_server_or_the_deadline() {
    let health = health();
    let (trigger, shutdown) = shutdown(&health);
    let server = async move {
        shutdown.await;
        std::future::pending::<()>().await
    };
    let start = Instant::now();
    trigger.send(()).unwrap();
    assert_eq!(health.with_deadline(server).await, None);
    assert_eq!(
        start.elapsed(),
        DEADLINE,
        "nothing says no request is in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_guard_delays_the_end_until_it_is_dropped() {
    let health = health();
    let worker = {
        let guard = health.drain_guard("queue-consumer");
        let drain_started = health.wait_for(Lifecycle::Draining);
        tokio::spawn(async move {
            drain_started.await;
            // The batch under way takes two more seconds.
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(guard);
        })
    };
    let (trigger, shutdown) = shutdown(&health);
    trigger.send(()).unwrap();
    let start = Instant::now();
    let served = health.with_deadline(shutdown).await;
    assert_eq!(served, Some(()), "the server finished");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "after the drain delay (1 s), until the guard was dropped"
    );
    worker.await.unwrap();
}

#[test]
fn a_guard_never_dropped_is_cut_at_the_deadline_and_named_in_the_log() {
    let (elapsed, log) = logged(|| async {
        let health = health();
        let _stuck = health.drain_guard("cache-refresher");
        let _also = health.drain_guard("cache-refresher");
        let released = health.drain_guard("queue-consumer");
        drop(released);
        let (trigger, shutdown) = shutdown(&health);
        trigger.send(()).unwrap();
        let start = Instant::now();
        assert_eq!(
            health.with_deadline(shutdown).await,
            Some(()),
            "the server itself finished"
        );
        start.elapsed()
    });
    assert_eq!(elapsed, DEADLINE);
    let warning = log
        .lines()
        .find(|line| line.contains("shutdown deadline reached"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    assert!(
        warning.contains(r#"holders="cache-refresher" x2"#),
        "{warning}"
    );
    assert!(!warning.contains("queue-consumer"), "{warning}");
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_for_the_drain_is_woken_when_it_starts() {
    let health = health();
    health.ready();
    let waiting = tokio::spawn(health.wait_for(Lifecycle::Draining));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!waiting.is_finished(), "no drain yet");
    let (trigger, shutdown) = shutdown(&health);
    let shutdown = tokio::spawn(shutdown);
    trigger.send(()).unwrap();
    tokio::time::timeout(Duration::from_millis(1), waiting)
        .await
        .expect("woken at once")
        .unwrap();
    assert_eq!(health.state(), Lifecycle::Draining);
    shutdown.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn drain_delay_over_follows_a_drain_started_without_the_shutdown_future() {
    let health = health();
    let over = tokio::spawn(health.drain_delay_over());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!over.is_finished(), "never before the drain");
    health.start_draining();
    let start = Instant::now();
    over.await.unwrap();
    assert_eq!(start.elapsed(), DELAY);
}

#[tokio::test(start_paused = true)]
async fn an_sse_response_through_the_layer_ends_when_the_drain_delay_is_over() {
    let health = Health::builder()
        .drain_delay(Duration::from_millis(3_500))
        .build();
    health.ready();
    let app = Router::new()
        .route(
            "/events",
            get({
                let health = health.clone();
                move || async move {
                    let ticks = futures_util::stream::unfold(0u64, |n| async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Some((
                            Ok::<_, Infallible>(Event::default().data(n.to_string())),
                            n + 1,
                        ))
                    });
                    Sse::new(ticks.take_until(health.drain_delay_over()))
                }
            }),
        )
        .layer(health.layer());
    let request = Request::get("/events")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();

    let (trigger, shutdown) = shutdown(&health);
    let shutdown = tokio::spawn(shutdown);
    let start = Instant::now();
    trigger.send(()).unwrap();
    let mut events = Vec::new();
    let mut ended = false;
    for _ in 0..100 {
        match body.frame().await {
            Some(frame) => {
                let data = frame.unwrap().into_data().unwrap();
                events.push(String::from_utf8(data.to_vec()).unwrap());
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the body ended");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(3_500),
        "ended at the drain"
    );
    assert_eq!(events, ["data: 0\n\n", "data: 1\n\n", "data: 2\n\n"]);
    shutdown.await.unwrap();
}

#[tokio::test]
async fn while_draining_verbose_answers_and_the_page_name_who_holds_the_shutdown() {
    use http_body_util::Full;
    use tower::Layer as _;

    let health = health();
    health.ready();
    let first = health.drain_guard("queue-consumer");
    let second = health.drain_guard("queue-consumer");
    let svc = health
        .layer()
        .layer(tower::service_fn(|_: Request<Full<bytes::Bytes>>| async {
            Ok::<_, Infallible>(http::Response::new(Full::<bytes::Bytes>::default()))
        }));
    let ask = |accept: &'static str| {
        let svc = svc.clone();
        async move {
            let request = Request::get("/readyz?verbose")
                .header("accept", accept)
                .body(Full::default())
                .unwrap();
            let response = svc.oneshot(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(body.to_vec()).unwrap()
        }
    };
    let json = ask("application/json").await;
    assert!(
        !json.contains("drain:"),
        "nothing said before the drain: {json}"
    );

    health.start_draining();
    let json = ask("application/json").await;
    assert!(
        json.contains(
            r#""drain:queue-consumer":[{"status":"pass","componentType":"system","observedValue":"holds the shutdown open (2 guards)"}]"#
        ),
        "{json}"
    );
    let text = ask("text/plain").await;
    assert!(text.contains("[+]drain:queue-consumer ok\n"), "{text}");
    let page = ask("text/html").await;
    assert!(
        page.contains(r#"<tr data-name="drain:queue-consumer""#),
        "{page}"
    );
    assert!(
        page.contains("holds the shutdown open (2 guards)"),
        "{page}"
    );
    assert_eq!(
        health.report().drain_holders().collect::<Vec<_>>(),
        [("queue-consumer", 2)]
    );

    drop(first);
    let json = ask("application/json").await;
    assert!(json.contains("holds the shutdown open (1 guard)"), "{json}");
    drop(second);
    let json = ask("application/json").await;
    assert!(!json.contains("drain:"), "released: {json}");
    assert_eq!(health.report().drain_holders().count(), 0);
}
