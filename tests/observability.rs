//! `examples/observability.rs` run as a real server process: its `/metrics` scraped over
//! HTTP and parsed as Prometheus parses it, finding every series the `metrics` module
//! documents; and its page opened in a real headless browser (Debian's `chromium`).
//!
//! The server is the example's own binary, run by the kit's example runner
//! (`kit::example`).
//!
//! Without `chromium` the browser test is reported as ignored with the reason in the
//! summary, or fails when `CI` is set (a `harness = false` target: see
//! `kit::needs`). With `HEALTH_PAGE_SCREENSHOT=PATH` (an absolute path: the test
//! runs in its package's folder) it also writes its screenshot there, which is how
//! `docs/health-page.png` is made.

use kit::example::Example;
use kit::needs;
use kit::prometheus::{self, Value};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const LIMIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = vec![
        needs::always(
            "the_metrics_endpoint_serves_every_documented_series",
            || needs::runtime().block_on(the_metrics_endpoint_serves_every_documented_series()),
        ),
        needs::needs(
            "a_browser_shows_every_check_of_the_running_example",
            "Chromium",
            chromium,
            |chromium| {
                needs::runtime()
                    .block_on(a_browser_shows_every_check_of_the_running_example(chromium))
            },
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

/// The example running as its own process, stopped when dropped.
fn start_example() -> Example {
    Example::start(
        "observability",
        &[("DRAIN_DELAY_MS", "0"), ("RUST_LOG", "error")],
    )
}

/// `http://ADDR/path` on the example.
fn url(example: &Example, path: &str) -> String {
    format!("http://{}{path}", example.addr())
}

/// SIGTERM, and the exit that follows (the drain delay is 0).
fn stop(mut example: Example) {
    example.sigterm();
    let exit = example.wait(LIMIT);
    assert!(
        exit.is_some(),
        "the example did not stop:\n{}",
        example.log()
    );
}

// === a client ===

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response's status and body.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON")
    }
}

async fn send(client: &HttpClient, method: Method, addr: SocketAddr, path: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::default())
        .unwrap();
    let exchange = async {
        let response = client.request(request).await.expect("a response");
        let status = response.status();
        let body = response.into_body().collect().await.expect("a body");
        Reply {
            status,
            body: body.to_bytes(),
        }
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {LIMIT:?}"))
}

async fn get(client: &HttpClient, addr: SocketAddr, path: &str) -> Reply {
    send(client, Method::GET, addr, path).await
}

/// Polls `GET /readyz?verbose` (JSON) until `wanted` holds, at most [`LIMIT`].
async fn wait_until(
    client: &HttpClient,
    addr: SocketAddr,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) {
    let start = Instant::now();
    loop {
        let reply = get(client, addr, "/readyz?verbose").await;
        if wanted(&reply.json()) {
            return;
        }
        assert!(start.elapsed() < LIMIT, "{what}: {:?}", reply.json());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set(client: &HttpClient, addr: SocketAddr, dependency: &str, state: &str) {
    let path = format!("/dependencies/{dependency}/{state}");
    let reply = send(client, Method::POST, addr, &path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}");
}

/// The metric names in the table of `src/observe/metrics.rs`'s module docs.
fn documented_names() -> Vec<String> {
    let source = include_str!("../src/observe/metrics.rs");
    let names: Vec<String> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(names.len() >= 6, "the table was not found: {names:?}");
    names
}

async fn the_metrics_endpoint_serves_every_documented_series() {
    let example = start_example();
    let client = http1_client();
    // Give each probe something to count, and the cache a failure to show.
    assert_eq!(
        get(&client, example.addr(), "/livez").await.status,
        StatusCode::OK
    );
    set(&client, example.addr(), "cache", "down").await;
    wait_until(&client, example.addr(), "cache down", |json| {
        json["status"] == "warn"
    })
    .await;

    let reply = get(&client, example.addr(), "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let scrape = prometheus::parse(reply.text());
    let series = |name: &str| -> Vec<&prometheus_parse::Sample> {
        scrape.samples.iter().filter(|s| s.metric == name).collect()
    };
    for name in documented_names() {
        assert!(!series(&name).is_empty(), "no {name} in {}", reply.text());
        assert!(scrape.docs.contains_key(&name), "no HELP for {name}");
    }

    let value = |name: &str, labels: &[(&str, &str)]| -> Value {
        prometheus::sample(&scrape, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {}", reply.text()))
            .clone()
    };
    for check in ["database", "cache", "search"] {
        let status = value("health_check_status", &[("check", check)]);
        let want = if check == "cache" { 0.0 } else { 1.0 };
        assert_eq!(status, Value::Gauge(want), "{check}");
        let Value::Histogram(buckets) = value("health_check_duration_seconds", &[("check", check)])
        else {
            panic!("health_check_duration_seconds is not a histogram")
        };
        assert!(
            buckets.iter().any(|b| b.count > 0.0),
            "{check}: {buckets:?}"
        );
        let Value::Counter(runs) = value(
            "health_check_runs_total",
            &[("check", check), ("outcome", "pass")],
        ) else {
            panic!("health_check_runs_total is not a counter")
        };
        assert!(runs >= 1.0, "{check}");
    }
    assert!(matches!(
        value(
            "health_check_runs_total",
            &[("check", "cache"), ("outcome", "fail")]
        ),
        Value::Counter(n) if n >= 1.0
    ));
    assert_eq!(
        value("health_lifecycle_state", &[("state", "ready")]),
        Value::Gauge(1.0)
    );
    assert_eq!(
        value("health_lifecycle_state", &[("state", "starting")]),
        Value::Gauge(0.0)
    );
    assert_eq!(value("health_live", &[]), Value::Gauge(1.0));
    assert!(matches!(
        value(
            "health_probe_responses_total",
            &[("probe", "liveness"), ("code", "200")]
        ),
        Value::Counter(n) if n >= 1.0
    ));
    assert!(
        !reply.text().contains("/metrics") && !reply.text().contains("/dependencies"),
        "requests that are not probes are not counted"
    );
    stop(example);
}

// === the browser ===

/// Chromium's binary, or why there is none.
fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("no chromium, chromium-browser or google-chrome in PATH (apt-get install chromium)".into())
}

/// Runs headless Chromium on `url` with `args`, at most [`LIMIT`]; its stdout and stderr.
fn headless(chromium: &Path, args: &[&str], url: &str) -> (String, String) {
    let profile = std::env::temp_dir().join(format!(
        "tower-health-chromium-{}-{}",
        std::process::id(),
        args.len()
    ));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("chromium did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(output.status.success(), "chromium failed: {output:?}");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `<tr>` of the entry called `name` in the DOM.
fn row<'d>(dom: &'d str, name: &str) -> &'d str {
    let start = dom
        .find(&format!("<tr data-name=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name} in {dom}"));
    let end = start + dom[start..].find("</tr>").unwrap();
    &dom[start..end]
}

async fn a_browser_shows_every_check_of_the_running_example(chromium: PathBuf) {
    let example = start_example();
    let client = http1_client();
    set(&client, example.addr(), "database", "down").await;
    set(&client, example.addr(), "cache", "down").await;
    wait_until(&client, example.addr(), "database and cache down", |json| {
        json["checks"]["database"][0]["status"] == "fail"
            && json["checks"]["cache"][0]["status"] == "fail"
    })
    .await;
    let url = url(&example, "/readyz?verbose");

    let chromium_path = chromium.clone();
    let url_dom = url.clone();
    let (dom, log) =
        tokio::task::spawn_blocking(move || headless(&chromium_path, &["--dump-dom"], &url_dom))
            .await
            .unwrap();
    assert!(
        dom.contains("<h1 id=\"verdict\" data-status=\"fail\">"),
        "{dom}"
    );
    assert!(dom.contains("failed: database"), "{dom}");
    for (name, status) in [
        ("liveness", "pass"),
        ("lifecycle", "pass"),
        ("database", "fail"),
        ("cache", "fail"),
        ("search", "pass"),
    ] {
        let row = row(&dom, name);
        assert!(
            row.contains(&format!("data-status=\"{status}\"")),
            "{name}: {row}"
        );
    }
    // Chromium is on loopback, and the example shows reasons to loopback peers.
    assert!(row(&dom, "database").contains("database: connection refused (simulated)"));
    assert!(row(&dom, "cache").contains("non-critical"));
    assert!(
        row(&dom, "search").contains(" ms</td>"),
        "a duration: {}",
        row(&dom, "search")
    );
    assert!(
        !log.contains("Content Security Policy"),
        "the page's own policy blocked something:\n{log}"
    );

    let shot = std::env::temp_dir().join(format!("health-page-{}.png", std::process::id()));
    let shot_arg = format!("--screenshot={}", shot.display());
    let (_, log) = tokio::task::spawn_blocking(move || {
        headless(
            &chromium,
            &[&shot_arg, "--window-size=820,380", "--hide-scrollbars"],
            &url,
        )
    })
    .await
    .unwrap();
    assert!(!log.contains("Content Security Policy"), "{log}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (820, 380));
    if let Some(keep) = std::env::var_os("HEALTH_PAGE_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let _ = std::fs::remove_file(&shot);
    stop(example);
}
