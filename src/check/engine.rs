//! The refresh engine: per-check cached results, single-flight runs under a timeout and a
//! budget, damping, and the wait of a probe that finds no result at all.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Check, Outcome};
use crate::probe::Probe;
use crate::report::{CheckReport, Status};

/// Every check with its cached result.
pub(crate) struct Engine {
    entries: Box<[Entry]>,
    budget: Duration,
    /// Instants are kept as nanoseconds since this one, so that they fit an atomic.
    origin: Instant,
    /// Bumped after every finished run; rendered answers are keyed by it.
    generation: AtomicU64,
    finished: Notify,
}

struct Entry {
    check: Check,
    ttl: Duration,
    running: AtomicBool,
    /// When the result goes stale, as nanoseconds since the origin; 0 before any result.
    fresh_until: AtomicU64,
    state: Mutex<EntryState>,
}

struct EntryState {
    report: CheckReport,
    /// Consecutive runs that disagree with the reported status, for damping.
    streak: u32,
}

impl Engine {
    pub(crate) fn new(checks: Vec<Check>, budget: Duration, default_ttl: Duration) -> Engine {
        let entries = checks
            .into_iter()
            .map(|check| Entry {
                ttl: check.ttl.unwrap_or(default_ttl),
                running: AtomicBool::new(false),
                fresh_until: AtomicU64::new(0),
                state: Mutex::new(EntryState {
                    report: CheckReport {
                        name: check.name.clone(),
                        status: Status::Unknown,
                        critical: check.critical,
                        gates: check.gates,
                        time: None,
                        duration: None,
                        observed: None,
                        output: None,
                    },
                    streak: 0,
                }),
                check,
            })
            .collect();
        Engine {
            entries,
            budget,
            origin: Instant::now(),
            generation: AtomicU64::new(0),
            finished: Notify::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The index of the check called `name` if it gates `probe`.
    pub(crate) fn find(&self, probe: Probe, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| &*e.check.name == name && e.check.gates.contains(probe))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &*e.check.name)
    }

    /// Every check's last result, in registration order.
    pub(crate) fn snapshot(&self) -> Vec<CheckReport> {
        self.entries
            .iter()
            .map(|e| lock(&e.state).report.clone())
            .collect()
    }

    fn now(&self) -> u64 {
        // At least 1, so that 0 keeps meaning "no result yet".
        (Instant::now()
            .saturating_duration_since(self.origin)
            .as_nanos() as u64)
            .max(1)
    }

    /// The checks a probe needs: every check gating `probe`, or `only` that one.
    fn needed(&self, probe: Probe, only: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let all = only.is_none();
        self.entries
            .iter()
            .enumerate()
            .filter(move |(i, e)| e.check.gates.contains(probe) && (all || only == Some(*i)))
            .map(|(i, _)| i)
    }

    /// Whether every check in `needed` has a result.
    fn all_have_results(&self, probe: Probe, only: Option<usize>) -> bool {
        self.needed(probe, only)
            .all(|i| self.entries[i].fresh_until.load(Ordering::Acquire) != 0)
    }

    /// Calls `start` for each needed check (every check when `probe` is `None`) that is
    /// not running and is stale (or whatever its age, with `force`), after claiming its
    /// run; returns whether every needed check already has a result.
    pub(crate) fn claim(
        &self,
        probe: Option<Probe>,
        only: Option<usize>,
        force: bool,
        mut start: impl FnMut(usize) -> bool,
    ) -> bool {
        let now = self.now();
        let mut complete = true;
        for (i, entry) in self.entries.iter().enumerate() {
            let needed = match probe {
                Some(probe) => entry.check.gates.contains(probe) && only.is_none_or(|o| o == i),
                None => true,
            };
            if !needed {
                continue;
            }
            let fresh_until = entry.fresh_until.load(Ordering::Acquire);
            complete &= fresh_until != 0;
            let stale_at = if force { 0 } else { fresh_until };
            if self.try_claim(entry, now, stale_at) {
                start(i);
            }
            // (A start that fails has released its claim; the caller answers at once.)
        }
        complete
    }

    /// Gives back a claim whose run could not be started.
    pub(crate) fn release(&self, i: usize) {
        self.entries[i].running.store(false, Ordering::Release);
    }

    fn try_claim(&self, entry: &Entry, now: u64, stale_at: u64) -> bool {
        if now < stale_at || entry.running.load(Ordering::Acquire) {
            return false;
        }
        if entry.running.swap(true, Ordering::AcqRel) {
            return false;
        }
        // A run may have finished between the first look and the claim.
        if stale_at != 0 && now < entry.fresh_until.load(Ordering::Acquire) {
            entry.running.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Runs check `i` once (its run was claimed) and records the result.
    pub(crate) async fn run(&self, i: usize) {
        let entry = &self.entries[i];
        let timeout = entry.check.timeout.unwrap_or(self.budget).min(self.budget);
        let started = Instant::now();
        let run = AssertUnwindSafe(|| (entry.check.run)());
        let outcome = match std::panic::catch_unwind(run) {
            Err(_) => Outcome::fail("panicked"),
            Ok(future) => {
                match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => Outcome::fail("panicked"),
                    Err(_) => Outcome::fail(format!("timed out after {} ms", timeout.as_millis())),
                }
            }
        };
        let elapsed = started.elapsed();
        self.record(entry, outcome, elapsed);
        let fresh_until = self.now().saturating_add(entry.ttl.as_nanos() as u64);
        entry.fresh_until.store(fresh_until, Ordering::Release);
        entry.running.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.finished.notify_waiters();
    }

    fn record(&self, entry: &Entry, outcome: Outcome, elapsed: Duration) {
        let name = &*entry.check.name;
        let reason = outcome.output.as_deref().unwrap_or("");
        let ran_ok = outcome.status != Status::Fail;
        if !ran_ok {
            tracing::debug!(check = name, reason, "health: check failed");
        }
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
        report.time = Some(SystemTime::now());
        report.duration = Some(elapsed);
        report.observed = outcome.observed.clone();
        report.output = outcome.output.clone();
        drop(state);
        if status != before {
            if status == Status::Fail {
                tracing::warn!(check = name, reason, "health: check now failing");
            } else {
                let status = status.as_str();
                tracing::info!(check = name, status, "health: check status changed");
            }
        }
    }

    /// Waits until no check is running, or `deadline`.
    pub(crate) async fn wait_idle(&self, deadline: Instant) {
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if !self
                .entries
                .iter()
                .any(|e| e.running.load(Ordering::Acquire))
            {
                return;
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                return;
            }
        }
    }

    /// Waits until every check `probe` needs has a result, or `deadline`.
    pub(crate) async fn wait_for_results(
        &self,
        probe: Probe,
        only: Option<usize>,
        deadline: Instant,
    ) {
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.all_have_results(probe, only) {
                return;
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                return;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic never happens while one of these is held, but a poisoned lock must not
    // take the probes down with it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("checks", &self.entries.len())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
