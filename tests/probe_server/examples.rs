//! The examples that serve their probes on a listener of their own, each built and run
//! as a real process (`kit::example`) and sent real signals: `examples/worker.rs`
//! (a queue consumer with no HTTP server) and `examples/axum.rs` with `ADMIN_ADDR`.

use kit::common;
use kit::example;
use kit::manifests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{empty, get, http1_client, request, send, HttpClient, LIMIT};
use example::Example;
use http::header::AUTHORIZATION;
use http::{Method, StatusCode};

// === helpers ===

/// Asks `path` until it answers `want`, at most `limit`.
async fn until(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    want: StatusCode,
    limit: Duration,
) {
    let start = Instant::now();
    loop {
        let status = get(client, addr, path).await.status;
        if status == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{path} still {status}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (at most [`LIMIT`]) for `example`'s log to hold a line with every one of `parts`.
async fn logged(example: &Example, parts: &[&str]) {
    let start = Instant::now();
    let has = |log: &str| {
        log.lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    };
    while !has(&example.log()) {
        assert!(
            start.elapsed() < LIMIT,
            "no log line with {parts:?}:\n{}",
            example.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address on the stdout line that says `what http://ADDR`, waited for at most
/// [`LIMIT`].
async fn printed_address(example: &Example, what: &str) -> SocketAddr {
    let start = Instant::now();
    loop {
        let printed = example.printed();
        let prefix = format!("{what} http://");
        if let Some(line) = printed.lines().find_map(|line| line.strip_prefix(&prefix)) {
            return line.trim().parse().expect("an address");
        }
        assert!(start.elapsed() < LIMIT, "never printed `{what}`: {printed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the example to exit, at most [`LIMIT`], off the runtime's threads.
async fn exit(mut example: Example) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let status = example.wait(LIMIT).expect("the example exits by itself");
        (status, example.log_after_exit())
    })
    .await
    .unwrap()
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
    let example = Example::start(
        "worker",
        &[
            ("CONNECT_MS", "1500"),
            ("BATCH_MS", "2500"),
            ("HEARTBEAT_MAX_AGE_MS", "1000"),
            ("DRAIN_DELAY_MS", "500"),
        ],
    );
    let addr = example.addr();
    let client = http1_client();

    // Start-up: probes are answered while it connects to its queue, behind the gate, and
    // it is ready once it has.
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);
    let starting = get(&client, addr, "/startupz?verbose").await;
    assert_eq!(starting.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(starting.json()["checks"]["queue"][0]["status"], "fail");
    until(&client, addr, "/startupz", StatusCode::OK, LIMIT).await;
    assert_eq!(get(&client, addr, "/readyz").await.status, StatusCode::OK);

    // Live for longer than the heartbeat's age: the loop beats after every message.
    logged(&example, &["batch started", "batch=1"]).await;
    let beating = Instant::now();
    while beating.elapsed() < MAX_AGE * 3 {
        let live = get(&client, addr, "/livez?verbose").await;
        assert_eq!(live.status, StatusCode::OK, "{}", live.text());
        assert_eq!(live.json()["checks"]["consumer"][0]["status"], "pass");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM in the middle of a batch.
    logged(&example, &["batch started", "batch=2"]).await;
    example.sigterm();
    until(
        &client,
        addr,
        "/readyz",
        StatusCode::SERVICE_UNAVAILABLE,
        LIMIT,
    )
    .await;
    assert!(
        !example.log().contains("batch finished batch=2"),
        "readiness failed at once, not once the batch was over"
    );
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);
    // The drain delay ends before the batch does: the listener closes, and the
    // consumer's guard holds the shutdown open until the batch is over.
    logged(&example, &["holds the shutdown", "consumer"]).await;
    let (status, log) = exit(example).await;
    assert!(status.success(), "the worker exited with {status}:\n{log}");
    assert!(log.contains("batch finished batch=2"), "{log}");
    assert!(
        !log.contains("batch=3"),
        "a batch taken after SIGTERM:\n{log}"
    );
    assert!(!log.contains("shutdown deadline reached"), "{log}");
    assert!(refused(addr).await, "the probe listener is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_fails_liveness_within_the_heartbeat_age_and_is_cut_at_the_deadline() {
    const MAX_AGE: Duration = Duration::from_millis(1_000);
    let example = Example::start(
        "worker",
        &[
            ("CONNECT_MS", "0"),
            ("BATCH_MS", "200"),
            ("HEARTBEAT_MAX_AGE_MS", "1000"),
            ("STALL_AFTER_MS", "1500"),
            ("DRAIN_DELAY_MS", "0"),
            ("SHUTDOWN_TIMEOUT_MS", "800"),
        ],
    );
    let addr = example.addr();
    let client = http1_client();
    until(&client, addr, "/readyz", StatusCode::OK, LIMIT).await;
    assert_eq!(get(&client, addr, "/livez").await.status, StatusCode::OK);

    // The last beat came before the stall line: within the heartbeat's age from here
    // (and slack for a loaded machine), liveness fails, naming the heartbeat.
    logged(&example, &["stalled"]).await;
    until(
        &client,
        addr,
        "/livez",
        StatusCode::SERVICE_UNAVAILABLE,
        MAX_AGE + Duration::from_secs(1),
    )
    .await;
    let live = get(&client, addr, "/livez?verbose").await;
    assert_eq!(
        live.json()["checks"]["consumer"][0]["status"],
        "fail",
        "{}",
        live.text()
    );

    // SIGTERM: the wedged batch never finishes; the deadline cuts its guard, by name.
    example.sigterm();
    let (status, log) = exit(example).await;
    assert!(status.success(), "the worker exited with {status}:\n{log}");
    assert!(
        log.lines()
            .any(|line| line.contains("shutdown deadline reached") && line.contains("consumer")),
        "{log}"
    );
}

// === axum with ADMIN_ADDR ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_with_admin_addr_serves_the_probes_there_and_livez_on_addr_reaches_the_router() {
    let example = Example::start(
        "axum",
        &[("ADMIN_ADDR", "127.0.0.1:0"), ("DRAIN_DELAY_MS", "300")],
    );
    let addr = example.addr();
    let admin = printed_address(&example, "probes on").await;
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
    let (status, log) = exit(example).await;
    assert!(status.success(), "the example exited with {status}:\n{log}");
    assert!(refused(admin).await, "the admin address is closed");
    assert!(refused(addr).await, "the main address is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_without_admin_addr_answers_the_probes_on_addr_as_before() {
    let example = Example::start("axum", &[("DRAIN_DELAY_MS", "0")]);
    let addr = example.addr();
    let client = http1_client();
    until(&client, addr, "/readyz", StatusCode::OK, LIMIT).await;
    let livez = get(&client, addr, "/livez").await;
    assert_eq!(livez.status, StatusCode::OK);
    assert_eq!(livez.json()["status"], "pass");
    assert!(
        !example.printed().contains("probes on"),
        "no probe listener of its own: {}",
        example.printed()
    );
}

// === the worker's manifest ===

#[test]
fn the_worker_manifest_probes_its_own_port_has_no_service_and_ends_inside_the_grace_period() {
    let yaml = manifests::read("worker-deployment.yaml");
    let number = |from: &str, key: &str| manifests::number(&yaml, from, key);
    let grace = number(
        "terminationGracePeriodSeconds",
        "terminationGracePeriodSeconds",
    );
    let delay_ms = number("DRAIN_DELAY_MS", "value");
    let deadline_ms = number("SHUTDOWN_TIMEOUT_MS", "value");
    assert!(delay_ms < deadline_ms, "the deadline includes the delay");
    assert!(
        deadline_ms < grace * 1000,
        "the deadline comes before SIGKILL"
    );

    let port = number("containerPort", "containerPort");
    let addr = manifests::value(&yaml, "name: ADDR", "value");
    assert_eq!(
        addr,
        format!("0.0.0.0:{port}"),
        "the listener is on the probes' port"
    );
    for probe in ["startupProbe:", "livenessProbe:", "readinessProbe:"] {
        assert_eq!(manifests::value(&yaml, probe, "port"), "probes", "{probe}");
    }
    let paths: Vec<&str> = ["startupProbe:", "livenessProbe:", "readinessProbe:"]
        .into_iter()
        .map(|probe| manifests::value(&yaml, probe, "path"))
        .collect();
    assert_eq!(paths, ["/startupz", "/livez", "/readyz"]);
    assert!(
        !yaml.contains("kind: Service"),
        "nothing sends a worker traffic"
    );
}
