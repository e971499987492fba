//! A background worker with no HTTP server of its own: a simulated queue consumer that
//! takes a batch every few hundred milliseconds. Its probes (and gRPC health) are served
//! by a probe listener of their own on `ADDR` (feature `probe-server`).
//!
//! - **Start-up**: it first connects to its queue (simulated: `CONNECT_MS`) behind a
//!   start-up gate, `queue`: startup and readiness fail until it is open.
//! - **Liveness** follows the consumer loop: the loop beats a heartbeat, `consumer`, after
//!   each message, and liveness fails once no beat came for `HEARTBEAT_MAX_AGE_MS`.
//!   `STALL_AFTER_MS` makes the loop wedge after that long, in the middle of a batch, to
//!   see it happen.
//! - **SIGTERM**: readiness fails at once; the consumer holds the shutdown open with a
//!   drain guard while it finishes the batch under way (no other is taken); the probes
//!   are answered through the drain delay; and the process exits 0 once the batch is
//!   done, or at the shutdown deadline if it never is (the log names the guard it cut).
//!
//! ```text
//! cargo run -p examples --example worker
//! curl -i localhost:3000/livez
//! curl -i 'localhost:3000/readyz?verbose'
//! STALL_AFTER_MS=3000 HEARTBEAT_MAX_AGE_MS=2000 cargo run -p examples --example worker
//! ```
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! answering probes after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the deadline of
//! the whole shutdown, counted from SIGTERM, default 20000), `HEARTBEAT_MAX_AGE_MS`
//! (default 5000), `STALL_AFTER_MS` (unset: never), `CONNECT_MS` (how long connecting to
//! the queue takes, default 1000), `BATCH_MS` (how long a batch takes, default 300),
//! `RUST_LOG` (default `info`). The log says when each batch starts and finishes.

use std::error::Error;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower_health::{DrainGuard, Gate, Health, Heartbeat, Lifecycle};

#[path = "support/mod.rs"]
mod support;

/// How long the queue takes to hand over the next batch.
const NEXT_BATCH: Duration = Duration::from_millis(200);
/// How long one message of a batch takes.
const MESSAGE: Duration = Duration::from_millis(100);

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();
    let millis = |name, default| -> Result<Duration, Box<dyn Error>> {
        Ok(support::millis_from_env(name)?.unwrap_or(Duration::from_millis(default)))
    };
    let max_age = millis("HEARTBEAT_MAX_AGE_MS", 5_000)?;
    let connect = millis("CONNECT_MS", 1_000)?;
    let batch = millis("BATCH_MS", 300)?;
    let stall_after = support::millis_from_env("STALL_AFTER_MS")?;

    let queue = Gate::new("queue");
    // Kept here until the end, so that the heartbeat does not fail (as a dropped one does)
    // while the probes are still answered after the consumer has finished.
    let heartbeat = Arc::new(Heartbeat::new("consumer", max_age));
    let health = support::shutdown_from_env(Health::builder())?
        .gate(&queue)
        .heartbeat(&heartbeat)
        .build();

    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let probes = health.serve_probes(support::addr()).await?;
    println!("listening on http://{}", probes.local_addr());
    let probes = tokio::spawn(probes.into_future());
    // The whole application is up but for its queue, which the gate waits for.
    health.ready();

    tracing::info!(?connect, "connecting to the queue");
    tokio::select! {
        () = tokio::time::sleep(connect) => {
            queue.open();
            tracing::info!("connected; consuming");
            tokio::spawn(consume(
                health.drain_guard("consumer"),
                health.wait_for(Lifecycle::Draining),
                heartbeat.clone(),
                batch,
                stall_after.map(|after| Instant::now() + after),
            ));
        }
        _ = health.wait_for(Lifecycle::Draining) => tracing::info!("draining before the queue was reached"),
    }

    // The drain delay, then the listener closes; then the consumer's guard, or the deadline.
    probes.await??;
    tracing::info!("stopped");
    drop(heartbeat);
    Ok(())
}

/// The consumer loop: the next batch, or the drain, whichever comes first; a batch once
/// taken is finished before the guard that holds the shutdown open is dropped.
async fn consume(
    guard: DrainGuard,
    drain_started: impl std::future::Future<Output = Lifecycle>,
    heartbeat: Arc<Heartbeat>,
    batch: Duration,
    stall_at: Option<Instant>,
) {
    tokio::pin!(drain_started);
    heartbeat.beat();
    for number in 1.. {
        tokio::select! {
            biased;
            _ = &mut drain_started => {
                tracing::info!("draining; no batch taken after batch {}", number - 1);
                break;
            }
            () = tokio::time::sleep(NEXT_BATCH) => {}
        }
        tracing::info!(batch = number, "batch started");
        // One message at a time, beating after each.
        let mut left = batch;
        while !left.is_zero() {
            if stall_at.is_some_and(|at| Instant::now() >= at) {
                tracing::warn!(batch = number, "stalled (STALL_AFTER_MS)");
                std::future::pending::<()>().await;
            }
            let message = left.min(MESSAGE);
            tokio::time::sleep(message).await;
            left -= message;
            heartbeat.beat();
        }
        tracing::info!(batch = number, "batch finished");
    }
    drop(guard);
}
