//! One run of a ready-made check against the hand-written closure it replaces: a TCP
//! connect to a listener in the same process, through `Health::refresh`, which runs the
//! check and waits for its result as every refresh does.
//!
//! `hand_written` is `Check::new` with a closure that connects and drops the stream, as
//! the README's quickstart writes it; `ready_made` is `checks::tcp::connect` on the same
//! address, which also reads the clock twice to observe its latency and keeps the
//! address to name it in a failure. Both run on a current-thread Tokio runtime, so the
//! listener's accept loop runs between runs on the same thread. `Health::refresh` runs
//! the check every time, fresh result or not.

use std::sync::Arc;

use criterion::Criterion;
use tokio::net::{TcpListener, TcpStream};
use tower_health::{checks, Check, Health};

mod support;

const GROUP: &str = "ready_made_check";
const BENCHES: [&str; 2] = ["hand_written", "ready_made"];

/// A `Health` with `check` alone, refreshed only when asked.
fn health(check: Check) -> Health {
    Health::builder()
        .check(check)
        .background_refresh(false)
        .build()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let address = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        address
    });

    let target: Arc<str> = Arc::from(address.to_string());
    let hand_written = health(Check::new("tcp", move || {
        let target = target.clone();
        async move { TcpStream::connect(&*target).await.map(drop) }
    }));
    let ready_made = health(checks::tcp::connect("tcp", address.to_string()));

    // Both pass before anything is measured.
    for health in [&hand_written, &ready_made] {
        let report = rt.block_on(health.refresh());
        let status = report.check("tcp").expect("the check").status();
        assert_eq!(status, tower_health::Status::Pass);
    }

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt).iter(|| hand_written.refresh())
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt).iter(|| ready_made.refresh())
    });
    group.finish();
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, "hand_written", &BENCHES);
}
