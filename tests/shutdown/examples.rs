//! A shutdown that always ends, tried on real processes with real signals, as Kubernetes
//! would on a bad day: every server example SIGTERMed the moment it says it listens (and
//! twenty times during a slow first refresh) drains and exits 0; every one exits by itself
//! with a frozen HTTP/2 client connected (one that never answers the GOAWAY PING), within
//! the drain delay when it counts requests, else by its deadline, with 200 gRPC Watch
//! streams open too; and background work holds the
//! shutdown open with a guard, bounded by the deadline.
//!
//! The examples are built by `kit::example`; the background worker is this test
//! binary run again with `SHUTDOWN_ROLE` set (the `role_*` test below does nothing
//! without it).

use kit::example;
use kit::manifests;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use example::Example;

const DRAIN_DELAY_MS: &str = "200";
const SHUTDOWN_TIMEOUT_MS: &str = "1500";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(1_500);
/// What the process may take past its deadline to exit: the 1.5 s.
const MARGIN: Duration = Duration::from_millis(1_500);
/// A drain with nothing holding it ends after the 200 ms delay; this is only the bound
/// that keeps a broken one from hanging the test.
const EXIT_LIMIT: Duration = Duration::from_secs(20);
/// Processes run at once: enough to keep the test short, few enough for two cores.
const PARALLEL: usize = 4;

/// Every example that serves.
const SERVERS: &[&str] = &[
    "quickstart",
    "axum",
    "hyper",
    "tonic",
    "failure_drill",
    "observability",
    "ai_service",
    "postgres_redis",
    "worker",
];

const DEADLINE_WARNING: &str = "shutdown deadline reached";

/// The examples that count requests in flight: their shutdown ends as soon as the drain
/// delay is over with nothing in flight, frozen client or not, with this line.
const COUNTING: &[&str] = &["quickstart"];
const WORK_ENDED: &str = "no request in flight and no guard held; stopping the server now";
const DRAIN_DELAY: Duration = Duration::from_millis(200);

fn env(name: &str) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![
        ("DRAIN_DELAY_MS", DRAIN_DELAY_MS),
        ("SHUTDOWN_TIMEOUT_MS", SHUTDOWN_TIMEOUT_MS),
    ];
    match name {
        // No server behind either: start-up waits for PostgreSQL when the signal comes.
        "postgres_redis" => env.extend([
            ("DATABASE_URL", "host=127.0.0.1 port=1 user=nobody"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ]),
        "tonic" => env.push(("FAIL_FILE", "/nonexistent/tower-health-shutdown-test")),
        _ => {}
    }
    env
}

/// `run` over `items`, `PARALLEL` at a time; the failures it reported.
fn in_parallel<T: Sync>(items: &[T], run: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let mut failures = Vec::new();
    for batch in items.chunks(PARALLEL) {
        std::thread::scope(|scope| {
            let running: Vec<_> = batch.iter().map(|item| scope.spawn(|| run(item))).collect();
            for run in running {
                match run.join() {
                    Ok(failure) => failures.extend(failure),
                    Err(_) => failures.push("a run panicked".to_owned()),
                }
            }
        });
    }
    failures
}

fn build_all() {
    for name in SERVERS {
        example::binary(name);
    }
}

/// Why `status` and `log` are not a drain that ended well, if they are not.
fn not_drained(status: Option<ExitStatus>, log: &str) -> Option<String> {
    match status {
        None => Some(format!("still running\n{log}")),
        Some(status) if !status.success() => Some(format!("{status}\n{log}")),
        Some(_) if !log.contains("health: draining") => Some(format!("no drain\n{log}")),
        Some(_) => None,
    }
}

// === signals caught from the start ===

#[test]
fn every_server_example_sigtermed_as_it_says_it_listens_drains_and_exits_0() {
    build_all();
    let failures = in_parallel(SERVERS, |name| {
        let mut server = Example::start(name, &env(name));
        server.sigterm();
        let status = server.wait(EXIT_LIMIT);
        not_drained(status, &server.log_after_exit()).map(|why| format!("{name}: {why}"))
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sigterm_during_a_slow_first_refresh_drains_and_exits_0_twenty_times_out_of_twenty() {
    let tonic = example::binary("tonic");
    let runs: Vec<usize> = (1..=20).collect();
    let failures = in_parallel(&runs, |run| {
        let mut env = env("tonic");
        // The example prints `listening on`, then refreshes its checks (500 ms here),
        // then serves: the signal comes in the middle of the refresh.
        env.push(("CHECK_DELAY_MS", "500"));
        let mut server = Example::start_binary(&tonic, &[], &env);
        server.sigterm();
        let status = server.wait(EXIT_LIMIT);
        not_drained(status, &server.log_after_exit()).map(|why| format!("run {run}: {why}"))
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// === the deadline ===

/// A raw HTTP/2 client: the preface and an empty SETTINGS, the server's SETTINGS read and
/// acknowledged, and then never a read again, so the server's GOAWAY PING is never
/// answered. Frames by hand: a 9-byte header (length, type, flags, stream) and a payload.
fn frozen_http2_client(addr: SocketAddr) -> TcpStream {
    const SETTINGS: u8 = 0x4;
    const ACK: u8 = 0x1;
    let mut stream = TcpStream::connect(addr).expect("the example accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    stream
        .write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .unwrap();
    for _ in 0..16 {
        let mut header = [0u8; 9];
        stream
            .read_exact(&mut header)
            .expect("the server speaks HTTP/2");
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; length.min(1 << 16)];
        stream.read_exact(&mut payload).unwrap();
        if header[3] == SETTINGS && header[4] & ACK == 0 {
            stream
                .write_all(&[0, 0, 0, SETTINGS, ACK, 0, 0, 0, 0])
                .unwrap();
            return stream;
        }
    }
    panic!("no SETTINGS frame from the server in its first 16 frames");
}

/// Why the process did not exit by itself by `by` after the signal, saying `line` in its
/// log, if it did not.
fn not_cut_in_time(
    server: &mut Example,
    signalled: Instant,
    by: Duration,
    line: &str,
) -> Option<String> {
    let status = server.wait(by.saturating_sub(signalled.elapsed()));
    let log = server.log_after_exit();
    match status {
        None => Some(format!(
            "still running {:?} after SIGTERM\n{log}",
            signalled.elapsed()
        )),
        Some(status) if !status.success() => Some(format!("{status}\n{log}")),
        Some(_) if !log.lines().any(|l| l.contains(line)) => {
            Some(format!("no {line:?} in the log\n{log}"))
        }
        Some(_) => None,
    }
}

/// Those that count requests exit within the drain delay plus the margin, the others by
/// their deadline, cut.
#[test]
fn every_server_example_exits_by_its_deadline_with_a_frozen_http2_client() {
    build_all();
    let failures = in_parallel(SERVERS, |name| {
        let mut server = Example::start(name, &env(name));
        let _frozen = frozen_http2_client(server.addr());
        server.sigterm();
        let signalled = Instant::now();
        let (by, line) = if COUNTING.contains(name) {
            (DRAIN_DELAY + MARGIN, WORK_ENDED)
        } else {
            (SHUTDOWN_TIMEOUT + MARGIN, DEADLINE_WARNING)
        };
        not_cut_in_time(&mut server, signalled, by, line).map(|why| format!("{name}: {why}"))
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn with_200_watch_streams_and_a_frozen_client_every_stream_ends_and_the_process_exits_by_its_deadline(
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    const STREAMS: usize = 200;
    const CHANNELS: usize = 4;
    let mut server = Example::start("tonic", &env("tonic"));
    let addr = server.addr();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let streams = runtime.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..CHANNELS {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .expect("connects");
            for _ in 0..STREAMS / CHANNELS {
                let mut client = HealthClient::new(channel.clone());
                let mut stream = client
                    .watch(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .expect("Watch answers")
                    .into_inner();
                let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
                    .await
                    .expect("a first status")
                    .expect("no error");
                assert!(first.is_some());
                streams.push(stream);
            }
        }
        streams
    });
    assert_eq!(streams.len(), STREAMS);
    let _frozen = frozen_http2_client(addr);
    server.sigterm();
    let signalled = Instant::now();
    let ended = runtime.block_on(async {
        let mut watching = tokio::task::JoinSet::new();
        for mut stream in streams {
            watching.spawn(async move {
                let mut last = None;
                let limit = tokio::time::Instant::now() + SHUTDOWN_TIMEOUT + MARGIN;
                loop {
                    match tokio::time::timeout_at(limit, stream.message()).await {
                        Ok(Ok(Some(message))) => last = Some(message.status()),
                        Ok(Ok(None)) => return last == Some(ServingStatus::NotServing),
                        // The server went away before the stream ended: not an end.
                        Ok(Err(_)) | Err(_) => return false,
                    }
                }
            });
        }
        let mut ended = 0;
        while let Some(result) = watching.join_next().await {
            ended += usize::from(result.unwrap());
        }
        ended
    });
    assert_eq!(
        ended, STREAMS,
        "every Watch stream says NOT_SERVING and ends at the drain"
    );
    if let Some(why) = not_cut_in_time(
        &mut server,
        signalled,
        SHUTDOWN_TIMEOUT + MARGIN,
        DEADLINE_WARNING,
    ) {
        panic!("{why}");
    }
}

// === background work ===

const ROLE: &str = "SHUTDOWN_ROLE";
const HOLDER: &str = "batch-worker";

/// A server whose background worker takes a guard, waits for the drain, and then either
/// finishes its batch 600 ms later (`releases`, three times the drain delay) or never
/// (`stuck`).
#[test]
fn role_background_worker() {
    let Some(role) = std::env::var(ROLE).ok() else {
        return;
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let health = tower_health::Health::builder()
            .drain_delay(Duration::from_millis(200))
            .shutdown_timeout(SHUTDOWN_TIMEOUT)
            .build();
        let shutdown = health.shutdown_signal();
        let guard = health.drain_guard(HOLDER);
        let drain_started = health.wait_for(tower_health::Lifecycle::Draining);
        tokio::spawn(async move {
            drain_started.await;
            tracing::info!("worker: woken by the drain");
            if role == "releases" {
                tokio::time::sleep(Duration::from_millis(600)).await;
                tracing::info!("worker: batch done");
                drop(guard);
            } else {
                let _held = guard;
                std::future::pending::<()>().await;
            }
        });
        let app = axum::Router::new().layer(health.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        health.ready();
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        health
            .with_deadline(server)
            .await
            .unwrap_or(Ok(()))
            .unwrap();
        tracing::info!("server stopped");
    });
}

fn worker(role: &str) -> Example {
    let exe = std::env::current_exe().unwrap();
    Example::start_binary(
        &exe,
        &[
            "--exact",
            "examples::role_background_worker",
            "--nocapture",
            "--test-threads=1",
        ],
        &[(ROLE, role)],
    )
}

/// The line numbers of `words` in `log`, in the order given, if each is there.
fn lines_of(log: &str, words: &[&str]) -> Vec<Option<usize>> {
    words
        .iter()
        .map(|w| log.lines().position(|line| line.contains(w)))
        .collect()
}

#[test]
fn a_background_task_is_woken_by_sigterm_and_its_guard_delays_the_exit_until_dropped() {
    let mut server = worker("releases");
    server.sigterm();
    let status = server.wait(EXIT_LIMIT);
    let log = server.log_after_exit();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    let found = lines_of(
        &log,
        &[
            "SIGTERM received",
            "worker: woken by the drain",
            "drain delay over",
            "worker: batch done",
            "server stopped",
        ],
    );
    assert!(found.iter().all(Option::is_some), "{found:?}\n{log}");
    assert!(
        found.windows(2).all(|w| w[0] < w[1]),
        "woken by the signal; the server stopped only after the batch: {found:?}\n{log}"
    );
    assert!(!log.contains(DEADLINE_WARNING), "{log}");
}

#[test]
fn a_guard_never_dropped_is_cut_at_the_deadline_and_named_in_the_log() {
    let mut server = worker("stuck");
    server.sigterm();
    let signalled = Instant::now();
    if let Some(why) = not_cut_in_time(
        &mut server,
        signalled,
        SHUTDOWN_TIMEOUT + MARGIN,
        DEADLINE_WARNING,
    ) {
        panic!("{why}");
    }
    let log = server.log_after_exit();
    let warning = log
        .lines()
        .find(|l| l.contains(DEADLINE_WARNING))
        .unwrap_or_default();
    assert!(
        warning.contains(&format!("holders=\"{HOLDER}\" x1")),
        "{warning}\n{log}"
    );
    assert!(log.contains("worker: woken by the drain"), "{log}");
}

// === the Kubernetes manifests ===

#[test]
fn the_kubernetes_manifests_end_the_shutdown_inside_the_grace_period() {
    for file in ["deployment.yaml", "grpc-deployment.yaml"] {
        let yaml = manifests::read(file);
        let grace = manifests::number(
            &yaml,
            "terminationGracePeriodSeconds",
            "terminationGracePeriodSeconds",
        );
        let pre_stop = manifests::number(&yaml, "preStop:", "seconds");
        let delay_ms = manifests::number(&yaml, "DRAIN_DELAY_MS", "value");
        let deadline_ms = manifests::number(&yaml, "SHUTDOWN_TIMEOUT_MS", "value");
        let readiness_period = manifests::number(&yaml, "readinessProbe:", "periodSeconds");
        assert!(
            pre_stop * 1000 + deadline_ms < grace * 1000,
            "{file}: preStop {pre_stop} s + deadline {deadline_ms} ms >= grace {grace} s"
        );
        assert!(
            delay_ms < deadline_ms,
            "{file}: the deadline includes the delay"
        );
        assert!(
            readiness_period * 1000 <= delay_ms,
            "{file}: the readiness probe sees the drain within the delay"
        );
        // The manifests say they match the library's defaults.
        assert_eq!((delay_ms, deadline_ms), (5_000, 20_000), "{file}");
    }
}
