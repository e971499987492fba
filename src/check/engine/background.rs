//! The tasks an engine keeps on the runtime: the background refresh, and the watch on
//! the timed entries (heartbeats, the wedge detector) that pushes their changes on time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::{nanos, Engine};
use crate::time::{deadline, deadline_from, timers};

impl Engine {
    /// Starts the background refresh, if it is on, not running, and a runtime with a
    /// timer is at hand. A task that ended with its runtime is started again here.
    pub(crate) fn ensure_background(self: &Arc<Self>) {
        if !self.timed.is_empty() {
            self.ensure_watch();
        }
        let Some(every) = self.background else {
            return;
        };
        if self.runnable == 0 {
            return;
        }
        self.spawn_once(
            &self.background_running,
            || background(Arc::downgrade(self), every),
            || tracing::debug!("health: background refresh stopped"),
        );
    }
    /// Starts the task that looks at the timed entries when each one may change (a
    /// heartbeat's age running out, the wedge detector's next sample), so that a change
    /// is pushed to gRPC Watch and the change stream on time, probes or not.
    fn ensure_watch(self: &Arc<Self>) {
        if self.timed.is_empty() {
            return;
        }
        self.spawn_once(
            &self.watch_running,
            || watch_timed(Arc::downgrade(self)),
            || {},
        );
    }

    /// Spawns the task `make` gives on the current runtime, unless `running` says it runs
    /// already or no runtime with a timer is at hand. The task ends when this engine is
    /// dropped (then `stopped` is called) and clears `running` however it ends, so that
    /// the next call starts it again. Costs one atomic load while it runs.
    fn spawn_once<F>(
        &self,
        running: &Arc<AtomicBool>,
        make: impl FnOnce() -> F,
        stopped: impl FnOnce() + Send + 'static,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if running.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !timers::enabled() || running.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = make();
        let mut alive = self.alive.clone();
        let running = Running(running.clone());
        runtime.spawn(async move {
            let _running = running;
            tokio::select! {
                biased;
                _ = alive.changed() => {}
                () = task => {}
            }
            stopped();
        });
    }
}

async fn watch_timed(engine: Weak<Engine>) {
    loop {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let next = engine.look_at_timed();
        drop(engine);
        // A time too far to be an instant, or nothing to look at again: sleep an hour and
        // look anyway (a dropped heartbeat says so itself).
        let next = next
            .and_then(|at| at.checked_add(Duration::from_secs(1)).map(|_| at))
            .or_else(|| deadline(Duration::from_secs(3600)));
        match next {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// The shortest time between two runs of a check that [`Engine::recheck`] starts with its
/// Clears the background flag however the task ends (finished, aborted, or dropped with
/// its runtime), so that the next probe starts it again.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn background(engine: Weak<Engine>, every: Duration) {
    let mut first = true;
    loop {
        // Each tick is due `every` after the last one began, or, when that has passed,
        // at once: like an interval that delays missed ticks. (Tokio's interval adds its
        // period to an instant without checking, so a huge one would panic.)
        let tick = Instant::now();
        // Hold the engine only while starting runs.
        let Some(engine) = engine.upgrade() else {
            return;
        };
        // Run every check on each tick, but for one with a cache time of its own: that
        // one when its result would go stale before the next tick. The first tick comes
        // at once, when the task is first polled; by then a probe may have started a
        // check's first run, or even finished it, so that tick only fills in the checks
        // that have no result yet: a check never runs twice in a row for want of a look.
        let due = engine.now().saturating_add(nanos(every));
        for (i, entry) in engine.entries.iter().enumerate() {
            let stale_before = match entry.check.ttl {
                _ if first => 1,
                Some(_) => due,
                None => u64::MAX,
            };
            if let Some(claim) = engine.try_claim(i, stale_before) {
                engine.spawn(i, claim);
            }
        }
        first = false;
        drop(engine);
        match deadline_from(tick, every) {
            Some(next) => tokio::time::sleep_until(next).await,
            // An interval too long to be an instant: this was the only tick. (The task
            // stays, so that no probe starts another.)
            None => std::future::pending().await,
        }
    }
}
