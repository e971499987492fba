//! A background worker with no HTTP server of its own: a simulated queue consumer that
//! takes a batch every few hundred milliseconds. Its probes (and gRPC health) are served
//! by a probe listener of their own on `ADDR` (feature `server`).
//!
//! - **Start-up**: it first connects to its queue (simulated: `CONNECT_MS`); startup and
//!   readiness fail until it has.
//! - **Liveness** follows the consumer loop: the loop beats a heartbeat after each
//!   message, and liveness fails once no beat came for `HEARTBEAT_MAX_AGE_MS`. `STALL_AFTER_MS`
//!   makes the loop wedge after that long, in the middle of a batch, to see it happen.
//! - **SIGTERM**: readiness fails at once, the batch under way is finished (no other is
//!   taken), the probes are answered through the drain delay, and the process exits 0.
//!
//! ```text
//! cargo run -p examples --example worker
//! curl -i localhost:3000/livez
//! curl -i 'localhost:3000/readyz?verbose'
//! STALL_AFTER_MS=3000 HEARTBEAT_MAX_AGE_MS=2000 cargo run -p examples --example worker
//! ```
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! answering probes after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (how long after
//! SIGTERM a batch may still run before the process exits without it, default 20000),
//! `HEARTBEAT_MAX_AGE_MS` (default 5000), `STALL_AFTER_MS` (unset: never), `CONNECT_MS`
//! (how long connecting to the queue takes, default 1000), `BATCH_MS` (how long a batch
//! takes, default 300), `RUST_LOG` (default `info`). The log says when each batch starts
//! and finishes.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower_health::{Check, Health, Probe, State};

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
    let shutdown_timeout = millis("SHUTDOWN_TIMEOUT_MS", 20_000)?;
    let connect = millis("CONNECT_MS", 1_000)?;
    let batch = millis("BATCH_MS", 300)?;
    let stall_after = support::millis_from_env("STALL_AFTER_MS")?;

    let heartbeat = Heartbeat::new();
    let health = support::shutdown_from_env(Health::builder())?
        .check(heartbeat.check("consumer", max_age))
        .build();

    let probes = health.serve_probes(support::addr()).await?;
    println!("listening on http://{}", probes.local_addr());
    let probes = tokio::spawn(probes.into_future());

    // The start-up: connect to the queue. Probes are answered meanwhile (startup 503).
    tracing::info!(?connect, "connecting to the queue");
    tokio::time::sleep(connect).await;
    health.ready();
    tracing::info!("connected; consuming");

    let consumer = tokio::spawn(consume(
        health.clone(),
        heartbeat,
        batch,
        stall_after.map(|after| Instant::now() + after),
    ));

    health.wait_for(State::Draining).await;
    match tokio::time::timeout(shutdown_timeout, consumer).await {
        Ok(finished) => finished?,
        Err(_) => tracing::warn!(
            ?shutdown_timeout,
            "a batch still runs after the shutdown timeout; exiting without it"
        ),
    }
    // The probe listener ends its connections gracefully, no later than the shutdown
    // deadline: a client that never acknowledges HTTP/2's GOAWAY would hold it for ever.
    if let Some(served) = health.with_deadline(probes).await {
        served??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The consumer loop: the next batch, or the drain, whichever comes first; a batch once
/// taken is always finished.
async fn consume(health: Health, heartbeat: Heartbeat, batch: Duration, stall_at: Option<Instant>) {
    let draining = health.wait_for(State::Draining);
    tokio::pin!(draining);
    heartbeat.beat();
    for number in 1.. {
        tokio::select! {
            biased;
            _ = &mut draining => {
                tracing::info!("draining; no batch taken after batch {}", number - 1);
                return;
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
}

/// When the consumer loop last got through a message, as a liveness check.
#[derive(Clone)]
struct Heartbeat {
    start: Instant,
    /// Milliseconds from `start` to the last beat, or [`Heartbeat::NOT_YET`].
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// No beat yet: the loop has not started (start-up holds startup and readiness back
    /// meanwhile), so liveness does not count the wait against it.
    const NOT_YET: u64 = u64::MAX;

    fn new() -> Heartbeat {
        Heartbeat {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(Heartbeat::NOT_YET)),
        }
    }

    fn beat(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// A check on liveness that fails once no beat came for `max_age`.
    fn check(&self, name: &'static str, max_age: Duration) -> Check {
        let heartbeat = self.clone();
        Check::new(name, move || {
            let age = match heartbeat.last.load(Ordering::Relaxed) {
                Heartbeat::NOT_YET => Duration::ZERO,
                last => heartbeat
                    .start
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last)),
            };
            async move {
                if age > max_age {
                    Err(format!("no beat for {} ms", age.as_millis()))
                } else {
                    Ok(())
                }
            }
        })
        .probes([Probe::Liveness])
    }
}
