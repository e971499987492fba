//! How the layer scales with the number of checks: 1, 10, 100, 1,000 and 10,000 instant
//! checks, and for each the time of `refresh()`, of a cached `/readyz`, of a cached
//! `/readyz?verbose` (rendered once, then shared), and the memory each check keeps.
//!
//! Goals (the budgets in `benches/README.md`): the cached probe flat across counts (within
//! 10 % of its 1-check time at 10,000), `refresh()` of 1,000 instant checks well inside the
//! 900 ms budget, verbose answers and memory linear.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion};
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_health::{Check, Health};

mod support;

const GROUP: &str = "scale";
const COUNTS: [usize; 5] = [1, 10, 100, 1_000, 10_000];

fn health(checks: usize) -> Health {
    let mut builder = Health::builder()
        .every(Duration::from_secs(3_600))
        .background_refresh(false)
        .budget(Duration::from_secs(60));
    for i in 0..checks {
        builder = builder.check(Check::new(format!("check-{i}"), || async {
            Ok::<(), Infallible>(())
        }));
    }
    builder.build()
}

fn request(uri: &'static str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.uri_mut() = Uri::from_static(uri);
    request
}

/// The bytes a `Health` with `checks` checks keeps once every check has a result and
/// the plain and verbose readiness answers are rendered, per check, counted by the
/// allocation counter this bench links (as the allocation test does).
fn bytes_per_check(rt: &tokio::runtime::Runtime, checks: usize) -> f64 {
    let mut kept = None;
    let info = allocation_counter::measure(|| {
        let health = health(checks);
        health.ready();
        rt.block_on(async {
            health.refresh().await;
            let service = health.layer().layer(tower::service_fn(support::not_found));
            for uri in ["/readyz", "/readyz?verbose"] {
                let response = service.clone().oneshot(request(uri)).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                support::drain(response).await;
            }
        });
        kept = Some(health);
    });
    drop(kept);
    info.bytes_current as f64 / checks as f64
}

fn bench(c: &mut Criterion) -> Vec<(usize, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut memory = Vec::new();
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(20);
    for checks in COUNTS {
        let health = health(checks);
        health.ready();
        rt.block_on(health.refresh());
        let service = health.layer().layer(tower::service_fn(support::not_found));
        group.bench_with_input(BenchmarkId::new("refresh", checks), &checks, |b, _| {
            b.to_async(&rt).iter(|| health.refresh())
        });
        group.bench_with_input(BenchmarkId::new("readyz", checks), &checks, |b, _| {
            b.to_async(&rt)
                .iter(|| support::once(&service, request("/readyz")))
        });
        group.bench_with_input(
            BenchmarkId::new("readyz_verbose", checks),
            &checks,
            |b, _| {
                b.to_async(&rt)
                    .iter(|| support::once(&service, request("/readyz?verbose")))
            },
        );
        memory.push((checks, bytes_per_check(&rt, checks)));
    }
    group.finish();
    memory
}

fn main() {
    support::start();
    let mut c = support::criterion();
    let memory = bench(&mut c);
    c.final_summary();
    let names: Vec<String> = ["refresh", "readyz", "readyz_verbose"]
        .iter()
        .flat_map(|kind| COUNTS.map(|n| format!("{kind}/{n}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let medians = support::report(GROUP, "readyz/1", &names);
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!();
    println!("checks     refresh()    /readyz  /readyz?verbose  bytes/check");
    let n = COUNTS.len();
    for (row, (checks, bytes)) in memory.iter().enumerate() {
        let cell = |i: usize| medians[i].map_or("-".into(), support::format_ns);
        println!(
            "{checks:>6} {:>11} {:>10} {:>16} {:>12.0}",
            cell(row),
            cell(n + row),
            cell(2 * n + row),
            bytes
        );
    }
}
