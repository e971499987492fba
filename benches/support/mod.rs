//! What every bench shares: criterion's settings, draining a response, the table of
//! medians and ratios printed at the end of a `cargo bench` run, and instruction counts
//! under callgrind (`cargo bench --bench NAME -- --instructions`), which a busy machine
//! does not disturb.

use std::path::PathBuf;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use criterion::{black_box, Criterion};
use std::convert::Infallible;
use std::sync::LazyLock;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::Full;
use tower::{Service, ServiceExt};

/// Short runs: a full `cargo bench` stays within a few minutes on a small machine.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

/// Reads the response body to its end, frame by frame, so that a bench counts the whole
/// cost of a request without adding allocations of its own (as `collect` would).
pub async fn drain<B>(response: Response<B>)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(response.into_body());
    while let Some(frame) = body.as_mut().frame().await {
        black_box(frame.expect("body frame"));
    }
}

/// Prints the median of each bench of `group` measured by this run, and its ratio to
/// `baseline`, from criterion's `estimates.json`; returns the medians in nanoseconds.
/// Prints nothing outside `cargo bench` (a test run measures nothing).
pub fn report(group: &str, baseline: &str, benches: &[&str]) -> Vec<Option<f64>> {
    let started = started();
    let medians: Vec<Option<f64>> = benches
        .iter()
        .map(|bench| median_ns(group, bench, started))
        .collect();
    if !std::env::args().any(|a| a == "--bench") {
        return medians;
    }
    let base = benches
        .iter()
        .position(|b| *b == baseline)
        .and_then(|i| medians[i]);
    println!();
    println!("{group}: medians of this run, and the ratio to {baseline}");
    println!("{:<28} {:>14} {:>10}", "bench", "median", "ratio");
    for (bench, median) in benches.iter().zip(&medians) {
        match (median, base) {
            (Some(m), Some(b)) => {
                println!("{bench:<28} {:>14} {:>9.2}x", format_ns(*m), m / b)
            }
            (Some(m), None) => println!("{bench:<28} {:>14} {:>10}", format_ns(*m), "-"),
            (None, _) => println!("{bench:<28} {:>14} {:>10}", "not run", "-"),
        }
    }
    medians
}

/// Prints what each of `rows` adds to `bare` (medians in ns), and its ratio to what
/// the floor adds (`floor_added`): the figure the budget is set on.
#[allow(dead_code)] // only the pass-through bench has a floor layer
pub fn print_added(floor: &str, floor_added: f64, rows: &[(&str, Option<f64>)], bare: f64) {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Nanoseconds from timings, instructions from counts.
    let unit = |x: f64| {
        if instructions_requested() {
            format!("{x:.0}")
        } else {
            format_ns(x)
        }
    };
    println!();
    println!("added to the bare service, and the ratio to what {floor} adds");
    println!("{:<28} {:>14} {:>10}", "bench", "added", "ratio");
    println!("{floor:<28} {:>14} {:>9.2}x", unit(floor_added), 1.0);
    for (name, median) in rows {
        if let Some(m) = median {
            let added = m - bare;
            println!(
                "{name:<28} {:>14} {:>9.2}x",
                unit(added),
                added / floor_added
            );
        }
    }
}

pub fn format_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// The median criterion estimated for `group/bench`, if that estimate was written by
/// this process (an older file belongs to an earlier run).
fn median_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Where criterion writes its results, found as criterion finds it.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    // A bench runs in its package's directory, not the workspace's: ask cargo where the
    // target directory is, as criterion does.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let cargo = std::env::var_os("CARGO")?;
            let output = std::process::Command::new(cargo)
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .output()
                .ok()?;
            let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
            Some(PathBuf::from(metadata["target_directory"].as_str()?))
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion")
}

fn started() -> SystemTime {
    static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *STARTED.get_or_init(SystemTime::now)
}

/// Marks the start of this process's measurements; call it before the first bench.
pub fn start() {
    started();
}

/// `GET /readyz`, its URI parsed once rather than on every request.
#[allow(dead_code)] // not every bench probes
pub fn readyz() -> Request<Full<Bytes>> {
    static READYZ: LazyLock<Uri> = LazyLock::new(|| Uri::from_static("/readyz"));
    let mut request = Request::new(Full::default());
    *request.uri_mut() = READYZ.clone();
    request
}

/// The inner service behind the layer when only probes are sent: a 404 for anything else.
#[allow(dead_code)]
pub async fn not_found(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::NOT_FOUND;
    Ok(response)
}

/// One request as servers make it: clone the service, call it with `request`, read the
/// response's body to its end.
#[allow(dead_code)] // the storm and the stalled dependency drive their own requests
pub async fn once<S, B>(service: &S, request: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(request).await.expect("response");
    drain(response).await;
}

// === instruction counts ===

/// The argument that asks a bench for instruction counts instead of timings.
const INSTRUCTIONS: &str = "--instructions";
/// Set in a child process run under callgrind: the one bench it is to count.
const COUNT_ENV: &str = "TOWER_HEALTH_BENCH_COUNT";
/// Requests counted per bench; the first [`WARM_UP`] are not counted.
const COUNTED: u64 = 20_000;
const WARM_UP: u64 = 2_000;

/// Whether this run is to count instructions (`-- --instructions`) rather than time.
#[allow(dead_code)]
pub fn instructions_requested() -> bool {
    std::env::args().any(|a| a == INSTRUCTIONS)
}

/// In the child process counting `bench`: sends [`COUNTED`] requests made by `request`
/// through `service` (after a warm-up), inside the function callgrind collects in, and
/// exits. Anywhere else, does nothing.
#[allow(dead_code)]
pub fn count<S, B>(
    rt: &tokio::runtime::Runtime,
    bench: &str,
    service: &S,
    request: fn() -> Request<Full<Bytes>>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    if std::env::var(COUNT_ENV).ok().as_deref() != Some(bench) {
        return;
    }
    rt.block_on(async {
        for _ in 0..WARM_UP {
            once(service, request()).await;
        }
    });
    counted_requests(rt, service, request);
    std::process::exit(0);
}

/// The requests callgrind counts: it collects from this function's entry to its return.
#[inline(never)]
fn counted_requests<S, B>(
    rt: &tokio::runtime::Runtime,
    service: &S,
    request: fn() -> Request<Full<Bytes>>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..COUNTED {
            once(service, request()).await;
        }
    });
}

/// Runs this bench binary once per bench under `valgrind --tool=callgrind`, each counting
/// one bench's requests, and prints the instructions per request and the ratio to
/// `baseline`; returns them. Needs valgrind on `PATH`.
#[allow(dead_code)]
pub fn instructions(group: &str, baseline: &str, benches: &[&str]) -> Vec<Option<f64>> {
    let exe = std::env::current_exe().expect("this bench's path");
    let counts: Vec<Option<f64>> = benches
        .iter()
        .map(|bench| {
            let out = std::env::temp_dir()
                .join(format!("callgrind.{group}.{bench}.{}", std::process::id()));
            let status = std::process::Command::new("valgrind")
                .arg("--tool=callgrind")
                .arg("--toggle-collect=*counted_requests*")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&exe)
                .arg("--bench")
                .env(COUNT_ENV, bench)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let total = match status {
                Ok(status) if status.success() => std::fs::read_to_string(&out)
                    .ok()
                    .and_then(|text| callgrind_total(&text)),
                Ok(status) => {
                    eprintln!("{group}/{bench}: valgrind exited with {status}");
                    None
                }
                Err(e) => {
                    eprintln!("{group}/{bench}: cannot run valgrind: {e}");
                    None
                }
            };
            let _ = std::fs::remove_file(&out);
            total.map(|t| t as f64 / COUNTED as f64)
        })
        .collect();
    let base = benches
        .iter()
        .position(|b| *b == baseline)
        .and_then(|i| counts[i]);
    println!();
    println!("{group}: instructions per request (callgrind), and the ratio to {baseline}");
    println!("{:<28} {:>14} {:>10}", "bench", "instructions", "ratio");
    for (bench, count) in benches.iter().zip(&counts) {
        match (count, base) {
            (Some(c), Some(b)) => println!("{bench:<28} {c:>14.0} {:>9.2}x", c / b),
            (Some(c), None) => println!("{bench:<28} {c:>14.0} {:>10}", "-"),
            (None, _) => println!("{bench:<28} {:>14} {:>10}", "failed", "-"),
        }
    }
    counts
}

/// The instructions callgrind counted in all, from its output file's `totals:` or
/// `summary:` line.
fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
