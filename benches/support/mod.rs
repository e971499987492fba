//! What every bench shares: criterion's settings, draining a response, and the table of
//! medians and ratios printed at the end of a `cargo bench` run.

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
