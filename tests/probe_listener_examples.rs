//! The examples that serve their probes on a listener of their own, each run as a real
//! process and sent real signals: `examples/worker.rs` (a queue consumer with no HTTP
//! server) and `examples/axum.rs` with `ADMIN_ADDR`.
//!
//! Each process is this test binary run again with `EXAMPLE_PROCESS` set to the
//! example's name: the `process_*` tests below do nothing unless they find it, and run
//! the example's own `main` when they do.
// Each example brings its own copy of `examples/support/mod.rs`, as it does when it is
// built alone.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../examples/axum.rs"]
mod axum_example;
#[path = "../examples/worker.rs"]
mod worker;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{bounded, empty, get, http1_client, request, send, HttpClient, LIMIT};
use http::header::AUTHORIZATION;
use http::{Method, StatusCode};

const ROLE: &str = "EXAMPLE_PROCESS";

#[test]
fn process_worker() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "worker") {
        worker::main().expect("the worker ran");
    }
}

#[test]
fn process_axum() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "axum") {
        axum_example::main().expect("the axum example ran");
    }
}

// === an example as a process ===

/// An example running as its own process, killed when dropped; its stdout and stderr
/// read line by line as they come.
struct Example {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    log: Vec<String>,
}

fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

impl Example {
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
            .env("RUST_LOG", "info")
            .env_remove("ADMIN_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Example {
            child,
            stdout,
            stderr,
            log: Vec::new(),
        }
    }

    /// The address on the stdout line that says `what http://ADDR`.
    fn address(&self, what: &str) -> SocketAddr {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            let Ok(line) = self.stdout.recv_timeout(LIMIT - start.elapsed()) else {
                break;
            };
            // The test harness may print its own words before ours on the line.
            if let Some((_, addr)) = line.split_once(&format!("{what} http://")) {
                return addr.trim().parse().expect("an address");
            }
        }
        panic!("the example never printed `{what} http://ADDR`");
    }

    /// Whether any stdout line read within `wait` holds `what`.
    fn prints_within(&self, what: &str, wait: Duration) -> bool {
        let start = Instant::now();
        while let Ok(line) = self
            .stdout
            .recv_timeout(wait.saturating_sub(start.elapsed()))
        {
            if line.contains(what) {
                return true;
            }
        }
        false
    }

    /// Waits (at most [`LIMIT`]) for a log line that holds every one of `parts`, and
    /// returns it.
    fn logged(&mut self, parts: &[&str]) -> String {
        let matches = |line: &String| parts.iter().all(|part| line.contains(part));
        if let Some(line) = self.log.iter().find(|line| matches(line)) {
            return line.clone();
        }
        let start = Instant::now();
        while let Ok(line) = self
            .stderr
            .recv_timeout(LIMIT.saturating_sub(start.elapsed()))
        {
            eprintln!("example: {line}");
            self.log.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
        panic!("no log line with {parts:?} within {LIMIT:?}");
    }

    /// Reads what the example has logged so far, without waiting.
    fn read_log(&mut self) -> &[String] {
        while let Ok(line) = self.stderr.try_recv() {
            eprintln!("example: {line}");
            self.log.push(line);
        }
        &self.log
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most [`LIMIT`]) for the process to exit.
    fn exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it logged on the way out, for the asserts that follow.
                std::thread::sleep(Duration::from_millis(50));
                self.read_log();
                return status;
            }
            assert!(start.elapsed() < LIMIT, "the example did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `path` until it answers `want`, at most `limit`; returns how long that took.
async fn until(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    want: StatusCode,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let status = get(client, addr, path).await.status;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path} still {status}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether a new connection to `addr` is refused, after at most [`LIMIT`] of trying.
async fn refused(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

// === the worker ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_starts_stays_live_while_it_beats_and_on_sigterm_finishes_its_batch() {
    const MAX_AGE: Duration = Duration::from_millis(1_000);
    let mut example = Example::start(
        "worker",
        &[
            ("CONNECT_MS", "1500"),
            ("BATCH_MS", "2500"),
            ("HEARTBEAT_MAX_AGE_MS", "1000"),
            ("DRAIN_DELAY_MS", "500"),
        ],
    );
    let addr = example.address("listening on");
    let client = http1_client();

    // Start-up: probes are answered while it connects to its queue, and it is ready once
    // it has.
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);
    assert_eq!(
        get(&client, addr, "/startupz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    until(&client, addr, "/startupz", StatusCode::OK, LIMIT).await;
    assert_eq!(get(&client, addr, "/readyz").await.status, StatusCode::OK);

    // Live for longer than the heartbeat's age: the loop beats after every batch.
    example.logged(&["batch finished", "batch=1"]);
    let beating = Instant::now();
    while beating.elapsed() < MAX_AGE * 3 {
        let live = get(&client, addr, "/livez?verbose").await;
        assert_eq!(live.status, StatusCode::OK, "{}", live.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM in the middle of a batch.
    let started = example.logged(&["batch started", "batch=3"]);
    example.sigterm();
    let ready = until(
        &client,
        addr,
        "/readyz",
        StatusCode::SERVICE_UNAVAILABLE,
        LIMIT,
    );
    ready.await;
    assert!(
        !example
            .read_log()
            .iter()
            .any(|line| line.contains("batch finished") && line.contains("batch=3")),
        "readiness failed at once, not once the batch was over"
    );
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);
    example.logged(&["batch finished", "batch=3"]);
    let exit = tokio::task::spawn_blocking(move || {
        let exit = example.exit();
        (exit, example)
    });
    let (exit, example) = bounded("the worker exiting", exit).await.unwrap();
    assert!(exit.success(), "the worker exited with {exit}");
    assert!(
        !example.log.iter().any(|line| line.contains("batch=4")),
        "no batch is taken after SIGTERM: {started}, then {:?}",
        example.log
    );
    assert!(refused(addr).await, "the probe listener is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_fails_liveness_within_the_heartbeat_age_and_still_exits() {
    const MAX_AGE: Duration = Duration::from_millis(1_000);
    /// The check that reads the heartbeat is refreshed every second.
    const REFRESH: Duration = Duration::from_secs(1);
    let mut example = Example::start(
        "worker",
        &[
            ("CONNECT_MS", "0"),
            ("BATCH_MS", "200"),
            ("HEARTBEAT_MAX_AGE_MS", "1000"),
            ("STALL_AFTER_MS", "1500"),
            ("DRAIN_DELAY_MS", "0"),
            ("SHUTDOWN_TIMEOUT_MS", "500"),
        ],
    );
    let addr = example.address("listening on");
    let client = http1_client();
    until(&client, addr, "/readyz", StatusCode::OK, LIMIT).await;
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);

    example.logged(&["stalled"]);
    // The last beat came before the stall line: within its age (and the check's refresh,
    // and slack for a loaded machine) from here, liveness fails, naming the heartbeat.
    until(
        &client,
        addr,
        "/livez",
        StatusCode::SERVICE_UNAVAILABLE,
        MAX_AGE + REFRESH + Duration::from_secs(2),
    )
    .await;
    let live = get(&client, addr, "/livez?verbose").await;
    assert_eq!(
        live.json()["checks"]["consumer"][0]["status"],
        "fail",
        "{}",
        live.text()
    );

    // SIGTERM: the wedged batch never finishes; the shutdown timeout lets it go.
    example.sigterm();
    let exit = tokio::task::spawn_blocking(move || {
        let exit = example.exit();
        (exit, example)
    });
    let (exit, example) = bounded("the worker exiting", exit).await.unwrap();
    assert!(exit.success(), "the worker exited with {exit}");
    assert!(
        example
            .log
            .iter()
            .any(|line| line.contains("still runs after the shutdown timeout")),
        "{:?}",
        example.log
    );
}

// === axum with ADMIN_ADDR ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_with_admin_addr_serves_the_probes_there_and_livez_on_addr_reaches_the_router() {
    let mut example = Example::start(
        "axum",
        &[("ADMIN_ADDR", "127.0.0.1:0"), ("DRAIN_DELAY_MS", "300")],
    );
    let addr = example.address("listening on");
    let admin = example.address("probes on");
    assert_ne!(addr, admin);
    let client = http1_client();

    // The admin address: the probes, and 404 for anything else.
    until(&client, admin, "/readyz", StatusCode::OK, LIMIT).await;
    for path in ["/livez", "/startupz", "/readyz?verbose"] {
        let reply = get(&client, admin, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json()["status"], "pass", "{path}");
    }
    let other = get(&client, admin, "/items/7").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert!(other.body.is_empty());

    // The main address: the router sees every path, probe paths included.
    let livez = get(&client, addr, "/livez").await;
    assert_eq!(livez.status, StatusCode::UNAUTHORIZED);
    assert_eq!(livez.text(), "missing or wrong token\n");
    let with_token = |path: &str| {
        empty(request(Method::GET, addr, path).header(AUTHORIZATION, "Bearer demo-token"))
    };
    let livez = send(&client, with_token("/livez")).await;
    assert_eq!(livez.status, StatusCode::NOT_FOUND);
    assert_eq!(livez.text(), "no such page\n");
    let item = send(&client, with_token("/items/7")).await;
    assert_eq!(item.status, StatusCode::OK);
    assert_eq!(item.json()["id"], 7);

    // SIGTERM drains both: readiness fails on the admin address, then both close.
    example.sigterm();
    until(
        &client,
        admin,
        "/readyz",
        StatusCode::SERVICE_UNAVAILABLE,
        LIMIT,
    )
    .await;
    let exit = tokio::task::spawn_blocking(move || example.exit());
    let exit = bounded("the example exiting", exit).await.unwrap();
    assert!(exit.success(), "the example exited with {exit}");
    assert!(refused(admin).await, "the admin address is closed");
    assert!(refused(addr).await, "the main address is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_without_admin_addr_answers_the_probes_on_addr_as_before() {
    let example = Example::start("axum", &[("DRAIN_DELAY_MS", "0")]);
    let addr = example.address("listening on");
    let client = http1_client();
    until(&client, addr, "/readyz", StatusCode::OK, LIMIT).await;
    let livez = get(&client, addr, "/livez").await;
    assert_eq!(livez.status, StatusCode::OK);
    assert_eq!(livez.json()["status"], "pass");
    assert!(
        !example.prints_within("probes on", Duration::from_millis(200)),
        "no probe listener of its own"
    );
}
