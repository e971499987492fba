//! Claims and runs: a check run claimed once, spawned under its timeout, its outcome
//! weighed against the fleet when shared, and recorded.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{nanos, status_bits, Claim, Engine};
use crate::cache::lock;
use crate::check::{ClaimFlag, Outcome};
use crate::time::{deadline, timers};
use crate::vocabulary::{Probe, RunOutcome, Status};

/// A run under way: clears the check's `in_run` mark and gives back the claim however the
/// run ends.
struct RunGuard {
    engine: Arc<Engine>,
    index: usize,
    claim: Claim,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.engine.entries[self.index]
            .in_run
            .store(false, Ordering::Release);
        // A refresh that found this run under way after its result was recorded waits
        // for it to be over: tell it.
        self.engine.finished.notify_waiters();
    }
}

impl Engine {
    /// Whether a run of check `i` is under way: running, or claimed and about to be
    /// started (a run is claimed before it is marked as running, so a probe can see the
    /// one without the other). A claim held while a result is in is a timed-out blocking
    /// check's thread, which is no run.
    pub(super) fn under_way(&self, i: usize) -> bool {
        let entry = &self.entries[i];
        entry.in_run.load(Ordering::Acquire)
            || (entry.claim.load(Ordering::Acquire) && !self.has_result(i))
    }

    /// Claims check `i`'s run if no run holds it and its result goes stale before
    /// `stale_before` (any result, with `u64::MAX`).
    pub(super) fn try_claim(&self, i: usize, stale_before: u64) -> Option<Claim> {
        let entry = &self.entries[i];
        if entry.check.cell.is_some()
            || entry.fresh_until.load(Ordering::Acquire) >= stale_before
            || entry.claim.load(Ordering::Acquire)
            || entry.claim.swap(true, Ordering::AcqRel)
        {
            return None;
        }
        let claim = Claim(Arc::new(ClaimFlag::new(entry.claim.clone())));
        // A run may have finished between the first look and the claim.
        if entry.fresh_until.load(Ordering::Acquire) >= stale_before {
            return None;
        }
        Some(claim)
    }

    /// Starts the claimed run of check `i` on the current runtime. Without a runtime the
    /// claim is given back and nothing runs.
    pub(super) fn spawn(self: &Arc<Self>, i: usize, claim: Claim) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        self.entries[i].in_run.store(true, Ordering::Release);
        self.entries[i]
            .last_start
            .store(self.now(), Ordering::Release);
        let guard = RunGuard {
            engine: self.clone(),
            index: i,
            claim,
        };
        let mut alive = self.alive.clone();
        runtime.spawn(async move {
            // Cancelled with the last handle; dropped with its runtime. Either way the
            // guard goes, and with it the run's marks.
            tokio::select! {
                biased;
                _ = alive.changed() => {}
                () = guard.engine.run(guard.index, &guard.claim) => {}
            }
            let engine = guard.engine.clone();
            drop(guard);
            // A run asked for while this one was under way follows it, once.
            if engine.entries[i].rerun.swap(false, Ordering::AcqRel) {
                if let Some(claim) = engine.try_claim(i, u64::MAX) {
                    engine.spawn(i, claim);
                }
            }
        });
        true
    }

    /// Runs check `i` once under its timeout and records the result.
    async fn run(&self, i: usize, claim: &Claim) {
        let entry = &self.entries[i];
        let timeout = self.timeout_of(i);
        // One span per run, so that a tracing pipeline sees each check's latency; the
        // check's own events nest inside it.
        let span = tracing::info_span!(
            target: "tower_health::check",
            "health_check",
            check = &*entry.check.name,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let (outcome, ended) = if !timers::enabled() {
            (Outcome::fail(timers::NO_TIMER), RunOutcome::Fail)
        } else {
            let hold = claim.hold();
            let start = AssertUnwindSafe(|| span.in_scope(|| (entry.check.run)(hold)));
            match std::panic::catch_unwind(start) {
                Err(payload) => (Outcome::fail(panic_reason(&*payload)), RunOutcome::Panic),
                Ok(future) => {
                    let run = AssertUnwindSafe(future)
                        .catch_unwind()
                        .instrument(span.clone());
                    // A timeout too long to be an instant is no limit.
                    let ran = match deadline(timeout) {
                        Some(at) => tokio::time::timeout_at(at, run).await.ok(),
                        None => Some(run.await),
                    };
                    match ran {
                        Some(Ok(outcome)) => {
                            let ended = match outcome.status {
                                Status::Pass => RunOutcome::Pass,
                                Status::Warn => RunOutcome::Warn,
                                Status::Fail | Status::Unknown => RunOutcome::Fail,
                            };
                            (outcome, ended)
                        }
                        Some(Err(payload)) => {
                            (Outcome::fail(panic_reason(&*payload)), RunOutcome::Panic)
                        }
                        None => (
                            Outcome::fail(format!("timed out after {} ms", timeout.as_millis())),
                            RunOutcome::Timeout,
                        ),
                    }
                }
            }
        };
        // The one place a run ends with its outcome and duration.
        let elapsed = started.elapsed();
        span.record("outcome", ended.as_str());
        span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
        self.bell
            .observer
            .run_ended(&entry.check.name, ended, elapsed);
        let (outcome, held) = self.against_fleet(i, outcome, started, timeout).await;
        self.record(i, outcome, elapsed, held);
    }

    /// Keeps the run's own outcome for the peers, then, for a shared check that is about
    /// to fail, weighs the failure against the fleet's: a shared failure becomes a `warn`
    /// that holds readiness (`true`), a local one stays a failure. The status shown does
    /// not move until the fleet has answered, so that readiness never flaps on the way.
    async fn against_fleet(
        &self,
        i: usize,
        outcome: Outcome,
        started: Instant,
        timeout: Duration,
    ) -> (Outcome, bool) {
        let entry = &self.entries[i];
        self.keep_local(i, outcome.status);
        let Some(fleet) = self.fleet.as_ref().filter(|_| entry.check.shared) else {
            return (outcome, false);
        };
        if outcome.status != Status::Fail {
            // An outage that ended: the next one is weighed afresh.
            lock(&entry.state).consulted = None;
            return (outcome, false);
        }
        if !self.would_fail(i) {
            return (outcome, false);
        }
        let now = self.now();
        let recent = lock(&entry.state)
            .consulted
            .filter(|(at, _)| now.saturating_sub(*at) < nanos(entry.ttl))
            .map(|(_, verdict)| verdict);
        let verdict = match recent {
            Some(verdict) => verdict,
            None => {
                let tally = fleet
                    .ask(&entry.check.name, started.elapsed(), timeout)
                    .await;
                if let Some(why) = &tally.unlisted {
                    self.bell.observer.fleet_unlisted(&entry.check.name, why);
                }
                let verdict = tally.verdict();
                lock(&entry.state).consulted = Some((self.now(), verdict));
                verdict
            }
        };
        let reason = verdict.reason(outcome.output.as_deref());
        let weighed = if verdict.shared {
            Outcome::warn(reason)
        } else {
            Outcome::fail(reason)
        };
        let weighed = Outcome {
            observed: outcome.observed,
            ..weighed
        };
        (weighed, verdict.shared)
    }

    /// Keeps `status`, a run's own, as what peers asking about check `i` are told.
    pub(super) fn keep_local(&self, i: usize, status: Status) {
        let entry = &self.entries[i];
        entry
            .local_status
            .store(status_bits(status), Ordering::Release);
        entry.local_at.store(self.now(), Ordering::Release);
        self.local_seen.notify_waiters();
    }

    /// Whether a failed run of check `i` would show as a failure (damping allowing), or
    /// the check already fails or is held: then the fleet is worth asking.
    fn would_fail(&self, i: usize) -> bool {
        let entry = &self.entries[i];
        let state = lock(&entry.state);
        match state.report.status {
            Status::Unknown | Status::Fail => true,
            _ if state.held => true,
            _ => state.streak + 1 >= entry.check.fail_after,
        }
    }

    pub(super) fn record(&self, i: usize, outcome: Outcome, elapsed: Duration, held: bool) {
        let entry = &self.entries[i];
        let name = &*entry.check.name;
        // Capped when the outcome was made.
        let output = outcome.output;
        let reason = output.as_deref().unwrap_or("");
        let ran_ok = outcome.status != Status::Fail;
        if !ran_ok {
            self.bell.observer.run_failed(name, reason);
        }
        let now = SystemTime::now();
        let mut state = lock(&entry.state);
        let before = state.report.status;
        // Damping: a run that disagrees with the reported status only changes it after
        // enough of them in a row; the first result a check has is taken as it is.
        let disagrees = match before {
            Status::Unknown => false,
            Status::Fail => ran_ok,
            Status::Pass | Status::Warn => !ran_ok,
        };
        let needed = if ran_ok {
            entry.check.pass_after
        } else {
            entry.check.fail_after
        };
        state.streak = if disagrees { state.streak + 1 } else { 0 };
        let status = if disagrees && state.streak < needed {
            before
        } else {
            state.streak = 0;
            outcome.status
        };
        let report = &mut state.report;
        report.status = status;
        report.time = Some(now);
        report.duration = Some(elapsed);
        report.observed = outcome.observed;
        report.output = output.clone();
        let held = held && status == Status::Warn;
        let was_held = std::mem::replace(&mut state.held, held);
        drop(state);
        if held != was_held {
            self.bell.observer.shared_failure(name, held, reason);
        }

        // Below `u64::MAX`, which `try_claim` reads as "stale before anything": a cache
        // time too long to count is fresh until a refresh runs the check again.
        let fresh_until = self
            .now()
            .saturating_add(nanos(entry.ttl))
            .min(u64::MAX - 1);
        let first = entry.fresh_until.swap(fresh_until, Ordering::AcqRel) == 0;
        for probe in Probe::ALL {
            if first
                && entry.check.gates.contains(probe)
                && self.missing[probe.index()].fetch_sub(1, Ordering::AcqRel) == 1
            {
                self.complete[probe.index()].notify_waiters();
            }
        }
        entry.runs.fetch_add(1, Ordering::AcqRel);
        self.bell
            .ring(&entry.check.name, before, status, now, output);
        if first {
            self.first_result.notify_waiters();
        }
        self.finished.notify_waiters();
    }
}

/// `panicked: <message>` when the panic carried a string, else `panicked`: formatted
/// by [`Outcome::fail`], so that a message of any size costs only what it keeps.
pub(crate) fn panic_reason(payload: &(dyn Any + Send)) -> impl std::fmt::Display + '_ {
    struct Reason<'a>(Option<&'a str>);
    impl std::fmt::Display for Reason<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                Some(message) => write!(f, "panicked: {message}"),
                None => f.write_str("panicked"),
            }
        }
    }
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    Reason(message)
}
