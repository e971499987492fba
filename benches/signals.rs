//! What the application pays to tell its health something: `Heartbeat::beat()`, a
//! switch's set and a gate's open, each beside an `AtomicU64::store` (the floor: the least
//! any signal can cost) in the same run.
//!
//! - `atomic_store`: one relaxed store to an `AtomicU64`, the floor.
//! - `beat`: a heartbeat's beat (one atomic store and a clock read).
//! - `switch_set_unchanged`: `pass()` on a passing switch, what a loop that sets its
//!   switch every turn pays (the cell's lock, no change).
//! - `switch_fail_and_pass`: two real changes per iteration, each moving the generations
//!   and publishing a change event (tracing, the change stream).
//! - `gate_open_again`: `open()` on an open gate (one atomic load).
//! - `gate_open_first`: the one real open of a fresh gate (a batch of gates is made
//!   outside the measurement).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use tower_health::{Gate, Health, Heartbeat, Switch};

mod support;

const GROUP: &str = "signals";
const BENCHES: [&str; 6] = [
    "atomic_store",
    "beat",
    "switch_set_unchanged",
    "switch_fail_and_pass",
    "gate_open_again",
    "gate_open_first",
];

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = rt.enter();
    let heartbeat = Heartbeat::new("consumer", Duration::from_secs(3600));
    let switch = Switch::new("maintenance");
    let gate = Gate::new("migrations");
    let health = Health::builder()
        .heartbeat(&heartbeat)
        .switch(&switch)
        .gate(&gate)
        .build();
    gate.open();
    let word = AtomicU64::new(0);

    let mut group = c.benchmark_group(GROUP);
    let mut n = 0u64;
    group.bench_function(BENCHES[0], |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            word.store(black_box(n), Ordering::Relaxed);
        })
    });
    group.bench_function(BENCHES[1], |b| b.iter(|| black_box(&heartbeat).beat()));
    group.bench_function(BENCHES[2], |b| b.iter(|| black_box(&switch).pass()));
    group.bench_function(BENCHES[3], |b| {
        b.iter(|| {
            switch.fail("in maintenance");
            switch.pass();
        })
    });
    group.bench_function(BENCHES[4], |b| b.iter(|| black_box(&gate).open()));
    group.bench_function(BENCHES[5], |b| {
        b.iter_batched(
            || {
                let gate = Gate::new("model");
                let health = Health::builder().gate(&gate).build();
                (gate, health)
            },
            |(gate, health)| {
                gate.open();
                (gate, health)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert_eq!(
        health.report().check("consumer").map(|c| c.status()),
        Some(tower_health::Status::Pass)
    );
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, "atomic_store", &BENCHES);
}
