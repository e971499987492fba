//! The refresh engine: per-check cached results, single-flight runs under a timeout and a
//! budget, damping, the background refresh, and the wait of a probe that finds no result.
//!
//! Costs: a finished run touches its own check only; a probe answered from the cache reads
//! a few atomics whatever the number of checks; scans over every check happen once per
//! refresh tick, once per `refresh()`, or (with the background refresh off) once per
//! staleness.

use std::any::Any;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::fleet::{Consult, Verdict};
use super::report::CheckReport;
use super::{Bell, Cell, Check, ClaimFlag, Hold, Outcome};
use crate::cache::lock;
use crate::observe::Observer;
use crate::time::{deadline, deadline_from, timers};
use crate::vocabulary::{CheckKind, Probe, RunOutcome, Status};

/// Every check with its cached result, and every entry the application sets itself.
pub(crate) struct Engine {
    entries: Box<[Entry]>,
    /// How many entries are checks that run (the others are set by the application).
    runnable: usize,
    /// The entries whose status depends on time (heartbeats, the wedge detector): looked
    /// at by every probe and by the watch task.
    timed: Box<[Arc<Cell>]>,
    /// Whether the watch task of the timed entries is alive.
    watch_running: Arc<AtomicBool>,
    by_name: HashMap<Arc<str>, usize>,
    budget: Duration,
    /// `Some` when checks run on an interval in the background.
    background: Option<Duration>,
    /// Whether a background task is alive (it clears this when it ends, however).
    background_running: Arc<AtomicBool>,
    /// Instants are kept as nanoseconds since this one, so that they fit an atomic.
    origin: Instant,
    /// The generations: `results` is bumped after every finished run or set, and answers
    /// that show results are keyed by it; `statuses` when an entry's status changes, and
    /// answers that show statuses only are keyed by it. Shared with every cell, with the
    /// observer.
    bell: Arc<Bell>,
    /// Per probe, how many checks gating it have no result yet.
    missing: [AtomicUsize; 3],
    /// Per probe, notified when `missing` reaches zero.
    complete: [Notify; 3],
    /// Notified when any check gets its first result.
    first_result: Notify,
    /// Notified when any run finishes.
    finished: Notify,
    /// Per probe, no check gating it goes stale before this (nanoseconds since the
    /// origin; never later than the truth); lets a probe skip the scan for stale checks.
    next_stale: [AtomicU64; 3],
    /// Closes when the last handle, layer and service are gone: runs and the background
    /// task end with it.
    alive: watch::Receiver<()>,
    /// The other replicas, asked while a shared check fails here.
    fleet: Option<Arc<dyn Consult>>,
    /// Notified when any check's run has its own outcome (before the fleet is asked).
    local_seen: Notify,
}

struct Entry {
    check: Check,
    ttl: Duration,
    /// The run claim: set while a run (or a blocking check's thread) is under way.
    claim: Arc<AtomicBool>,
    /// Set while the engine itself waits for a run of this check.
    in_run: AtomicBool,
    /// How many runs have been recorded.
    runs: AtomicU64,
    /// When the result goes stale, as nanoseconds since the origin; 0 before any result.
    fresh_until: AtomicU64,
    /// When the last run started, as nanoseconds since the origin.
    last_start: AtomicU64,
    /// Set when a run was asked for while one was under way: one more follows it.
    rerun: AtomicBool,
    /// The last run's own status, before damping and the fleet: what peers are told.
    local_status: AtomicU8,
    /// When that status was taken, as nanoseconds since the origin; 0 before any run.
    local_at: AtomicU64,
    state: Mutex<EntryState>,
}

struct EntryState {
    report: CheckReport,
    /// Consecutive runs that disagree with the reported status, for damping.
    streak: u32,
    /// Whether the status is a failure the fleet shares, shown as `warn`.
    held: bool,
    /// The fleet's last verdict on this check and when it came (nanoseconds since the
    /// origin): reused for a cache time, so that the fleet is asked at most that often.
    consulted: Option<(u64, Verdict)>,
}

/// A claim on a check's run. The claim ends when the last of the engine's copy and any
/// [`Hold`] a blocking check took from it is dropped, however the run ends.
pub(crate) struct Claim(Arc<ClaimFlag>);

impl Claim {
    fn hold(&self) -> Hold {
        Hold(self.0.clone())
    }
}

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

/// What a probe needs before it can be answered.
pub(crate) enum Need {
    /// Every result it needs is there: answer now.
    Nothing,
    /// Some result is missing and a run is under way: wait, at most the budget.
    Wait,
}

impl Engine {
    pub(crate) fn new(
        checks: Vec<Check>,
        budget: Duration,
        default_ttl: Duration,
        background: Option<Duration>,
        alive: watch::Receiver<()>,
        observer: Observer,
        fleet: Option<Arc<dyn Consult>>,
    ) -> Arc<Engine> {
        let bell = Arc::new(Bell::new(observer));
        let mut missing = [0; 3];
        let mut timed = Vec::new();
        let entries: Box<[Entry]> = checks
            .into_iter()
            .map(|check| {
                // An entry the application sets always has a result, and never goes stale.
                let fresh_until = match &check.cell {
                    Some(cell) => {
                        cell.join(bell.clone());
                        bell.observer.entry_joined(&cell.name, cell.said().status);
                        if cell.is_timed() {
                            timed.push(cell.clone());
                        }
                        u64::MAX - 1
                    }
                    None => {
                        for probe in Probe::ALL {
                            missing[probe.index()] += usize::from(check.gates.contains(probe));
                        }
                        0
                    }
                };
                Entry {
                    ttl: check.ttl.unwrap_or(default_ttl),
                    claim: Arc::new(AtomicBool::new(false)),
                    in_run: AtomicBool::new(false),
                    runs: AtomicU64::new(0),
                    fresh_until: AtomicU64::new(fresh_until),
                    last_start: AtomicU64::new(0),
                    rerun: AtomicBool::new(false),
                    local_status: AtomicU8::new(status_bits(Status::Unknown)),
                    local_at: AtomicU64::new(0),
                    state: Mutex::new(EntryState {
                        report: CheckReport {
                            kind: check.switch.as_ref().map_or(CheckKind::Check, |s| s.kind()),
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
                        held: false,
                        consulted: None,
                    }),
                    check,
                }
            })
            .collect();
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.check.name.clone(), i))
            .collect();
        let engine = Arc::new_cyclic(|engine: &Weak<Engine>| {
            // A switch shared by the fleet: a change of it asks for a run of its entry.
            for (i, entry) in entries.iter().enumerate() {
                if let Some(switch) = &entry.check.switch {
                    let engine = engine.clone();
                    switch.nudge_with(Box::new(move || {
                        if let Some(engine) = engine.upgrade() {
                            engine.recheck(i, false);
                        }
                    }));
                    switch.join(bell.clone());
                }
            }
            Engine {
                runnable: entries.iter().filter(|e| e.check.cell.is_none()).count(),
                timed: timed.into(),
                watch_running: Arc::new(AtomicBool::new(false)),
                entries,
                by_name,
                budget,
                background,
                background_running: Arc::new(AtomicBool::new(false)),
                origin: Instant::now(),
                bell,
                missing: missing.map(AtomicUsize::new),
                complete: Default::default(),
                first_result: Notify::new(),
                finished: Notify::new(),
                next_stale: Default::default(),
                alive,
                fleet,
                local_seen: Notify::new(),
            }
        });
        // A switch shared by the fleet starts with what it says, unless that is a failure,
        // which its first run weighs against the fleet's.
        for (i, entry) in engine.entries.iter().enumerate() {
            let Some(switch) = &entry.check.switch else {
                continue;
            };
            let said = switch.said();
            if said.status != Status::Fail {
                let outcome = Outcome {
                    status: said.status,
                    output: said.reason,
                    observed: None,
                };
                engine.keep_local(i, outcome.status);
                engine.record(i, outcome, Duration::ZERO, false);
            }
        }
        engine
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Changes whenever any result does.
    pub(crate) fn results_generation(&self) -> u64 {
        self.bell.results.load(Ordering::Acquire)
    }

    /// Changes whenever any check's status does.
    pub(crate) fn status_generation(&self) -> u64 {
        self.bell.statuses.load(Ordering::Acquire)
    }

    /// How many runs of check `i` have been recorded: its answers are keyed by it.
    pub(crate) fn runs_of(&self, i: usize) -> u64 {
        let entry = &self.entries[i];
        match &entry.check.cell {
            Some(cell) => cell.changes(),
            None => entry.runs.load(Ordering::Acquire),
        }
    }

    /// The index of the check called `name` if it gates `probe`.
    pub(crate) fn find(&self, probe: Probe, name: &str) -> Option<usize> {
        let &i = self.by_name.get(name)?;
        self.entries[i].check.gates.contains(probe).then_some(i)
    }

    /// Every check's name, in registration order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &*e.check.name)
    }

    /// Every check's last result, in registration order.
    pub(crate) fn snapshot(&self) -> Vec<CheckReport> {
        self.look_at_timed();
        self.entries.iter().map(|e| self.report_of(e)).collect()
    }

    /// Check `i`'s last result.
    pub(crate) fn report(&self, i: usize) -> CheckReport {
        self.report_of(&self.entries[i])
    }

    fn report_of(&self, entry: &Entry) -> CheckReport {
        let Some(cell) = &entry.check.cell else {
            return lock(&entry.state).report.clone();
        };
        let said = cell.said();
        CheckReport {
            name: entry.check.name.clone(),
            kind: cell.kind(),
            status: said.status,
            critical: entry.check.critical,
            gates: entry.check.gates,
            time: Some(said.at),
            duration: None,
            observed: None,
            output: said.reason,
        }
    }

    /// Looks at every entry whose status depends on time, so that what it says is true
    /// now (a change rings the bell before the answer is read); when to look again.
    fn look_at_timed(&self) -> Option<Instant> {
        if self.timed.is_empty() {
            return None;
        }
        let now = Instant::now();
        self.timed.iter().filter_map(|cell| cell.look(now)).min()
    }

    fn now(&self) -> u64 {
        // At least 1, so that 0 keeps meaning "no result yet".
        nanos(Instant::now().saturating_duration_since(self.origin)).max(1)
    }

    fn has_result(&self, i: usize) -> bool {
        self.entries[i].fresh_until.load(Ordering::Acquire) != 0
    }

    // === claims and runs ===

    /// Whether a run of check `i` is under way: running, or claimed and about to be
    /// started (a run is claimed before it is marked as running, so a probe can see the
    /// one without the other). A claim held while a result is in is a timed-out blocking
    /// check's thread, which is no run.
    fn under_way(&self, i: usize) -> bool {
        let entry = &self.entries[i];
        entry.in_run.load(Ordering::Acquire)
            || (entry.claim.load(Ordering::Acquire) && !self.has_result(i))
    }

    /// Claims check `i`'s run if no run holds it and its result goes stale before
    /// `stale_before` (any result, with `u64::MAX`).
    fn try_claim(&self, i: usize, stale_before: u64) -> Option<Claim> {
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
    fn spawn(self: &Arc<Self>, i: usize, claim: Claim) -> bool {
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
    fn keep_local(&self, i: usize, status: Status) {
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

    fn record(&self, i: usize, outcome: Outcome, elapsed: Duration, held: bool) {
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

    // === what a probe does ===

    /// Makes sure what `probe` (or check `only` of it) needs is there or coming: starts
    /// runs of checks that have no result, and of stale ones unless the background
    /// refresh keeps them fresh. Costs a few atomic loads when nothing is due.
    pub(crate) fn prepare(self: &Arc<Self>, probe: Probe, only: Option<usize>) -> Need {
        self.ensure_background();
        if !self.timed.is_empty() {
            self.look_at_timed();
        }
        let background = self.background_running.load(Ordering::Acquire);
        if background && only.is_none() && self.missing[probe.index()].load(Ordering::Acquire) == 0
        {
            // Every result is there and the background task keeps them fresh: no clock.
            return Need::Nothing;
        }
        let now = self.now();
        let stale_before = if background {
            // The background task refreshes; a probe only fills in what is missing.
            1
        } else {
            now.saturating_add(1)
        };
        let mut started = false;
        match only {
            Some(i) => {
                if let Some(claim) = self.try_claim(i, stale_before) {
                    started |= self.spawn(i, claim);
                }
                if self.has_result(i) || !started && !self.under_way(i) {
                    return Need::Nothing;
                }
            }
            None => {
                let p = probe.index();
                let missing = self.missing[p].load(Ordering::Acquire);
                if missing == 0 && now < self.next_stale[p].load(Ordering::Acquire) {
                    return Need::Nothing;
                }
                if missing == 0 && stale_before == 1 {
                    return Need::Nothing;
                }
                let mut earliest = u64::MAX;
                for (i, entry) in self.entries.iter().enumerate() {
                    if !entry.check.gates.contains(probe) {
                        continue;
                    }
                    if let Some(claim) = self.try_claim(i, stale_before) {
                        started |= self.spawn(i, claim);
                    }
                    // Read after any run finished: at most the true earliest, so a
                    // probe may scan once too often but never misses a stale check.
                    earliest = earliest.min(entry.fresh_until.load(Ordering::Acquire));
                }
                self.next_stale[p].store(earliest, Ordering::Release);
                if missing == 0 || !started && !self.runs_in_flight(probe) {
                    return Need::Nothing;
                }
            }
        }
        Need::Wait
    }

    fn runs_in_flight(&self, probe: Probe) -> bool {
        self.entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.check.gates.contains(probe) && self.under_way(i))
    }

    /// Waits until every check `probe` (or check `only`) needs has a result, at most the
    /// budget.
    pub(crate) async fn wait_for_results(&self, probe: Probe, only: Option<usize>) {
        let deadline = timers::enabled().then(|| deadline(self.budget)).flatten();
        loop {
            let notify = match only {
                Some(_) => &self.first_result,
                None => &self.complete[probe.index()],
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let done = match only {
                Some(i) => self.has_result(i),
                None => self.missing[probe.index()].load(Ordering::Acquire) == 0,
            };
            if done || !wait(deadline, notified).await {
                return;
            }
        }
    }

    // === refresh ===

    /// Runs every check now (a check whose run or thread is still under way is not
    /// started twice) and waits, at most the budget, for the runs it started and the
    /// runs already under way.
    pub(crate) async fn refresh(self: &Arc<Self>) {
        if self.runnable == 0 {
            return;
        }
        self.ensure_background();
        let mut awaited = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let runs = entry.runs.load(Ordering::Acquire);
            let started = match self.try_claim(i, u64::MAX) {
                Some(claim) => self.spawn(i, claim),
                None => self.under_way(i),
            };
            if started {
                awaited.push((i, runs));
            }
        }
        if awaited.is_empty() {
            return;
        }
        // Without a timer, runs end at once (they cannot run), so there is no need for one.
        let deadline = timers::enabled().then(|| deadline(self.budget)).flatten();
        // One pass over the awaited checks in all, however many runs finish meanwhile.
        let mut next = 0;
        while next < awaited.len() {
            let notified = self.finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            while let Some(&(i, runs)) = awaited.get(next) {
                if self.entries[i].runs.load(Ordering::Acquire) > runs || !self.under_way(i) {
                    next += 1;
                } else {
                    break;
                }
            }
            if next == awaited.len() || !wait(deadline, notified).await {
                return;
            }
        }
    }

    // === the fleet's questions and the application's ===

    /// Check `i`'s own status for a peer that asks: from the last run when that is no
    /// older than `max_age`, or is a failure no older than the check's cache time (an
    /// outage is not over until a run says so); otherwise after a run started for it
    /// (single flight), waiting at most the check's timeout. Never the fleet's verdict,
    /// so that nothing feeds back.
    pub(crate) async fn peer_answer(self: &Arc<Self>, i: usize, max_age: Duration) -> Status {
        let entry = &self.entries[i];
        if let Some(cell) = &entry.check.cell {
            return cell.said().status;
        }
        let limit = timers::enabled()
            .then(|| deadline(self.timeout_of(i)))
            .flatten();
        let mut asked_at = None;
        loop {
            let notified = self.local_seen.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let at = entry.local_at.load(Ordering::Acquire);
            let status = status_from_bits(entry.local_status.load(Ordering::Acquire));
            if at != 0 {
                let age = self.now().saturating_sub(at);
                let fresh = age < nanos(max_age)
                    || (status == Status::Fail && age <= nanos(entry.ttl))
                    || asked_at.is_some_and(|asked| at > asked);
                if fresh {
                    return status;
                }
            }
            if asked_at.is_none() {
                asked_at = Some(at);
                if let Some(claim) = self.try_claim(i, u64::MAX) {
                    self.spawn(i, claim);
                }
            }
            if !wait(limit, notified).await {
                return status;
            }
        }
    }

    /// Runs check `i` again now, because the application has seen its dependency fail:
    /// at once if no run is under way, else once right after the one that is. With
    /// `gap`, not when a run started less than [`RECHECK_GAP`] ago (its result is as
    /// new). Whether `i` is a check that runs.
    pub(crate) fn recheck(self: &Arc<Self>, i: usize, gap: bool) -> bool {
        let entry = &self.entries[i];
        if entry.check.cell.is_some() {
            return false;
        }
        let last = entry.last_start.load(Ordering::Acquire);
        if gap && last != 0 && self.now().saturating_sub(last) < nanos(RECHECK_GAP) {
            return true;
        }
        match self.try_claim(i, u64::MAX) {
            Some(claim) => {
                self.spawn(i, claim);
            }
            None => entry.rerun.store(true, Ordering::Release),
        }
        true
    }

    /// The index of the check called `name`, whatever it gates.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// How long one run of check `i` may take.
    fn timeout_of(&self, i: usize) -> Duration {
        let check = &self.entries[i].check;
        check.timeout.unwrap_or(self.budget).min(self.budget)
    }

    // === the background refresh ===

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
}

impl Engine {
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
/// gap: a storm of failing requests runs the check at most this often.
pub(crate) const RECHECK_GAP: Duration = Duration::from_millis(250);

fn status_bits(status: Status) -> u8 {
    status as u8
}

fn status_from_bits(bits: u8) -> Status {
    match bits {
        0 => Status::Pass,
        1 => Status::Warn,
        2 => Status::Fail,
        _ => Status::Unknown,
    }
}

/// A duration in nanoseconds, saturated at `u64::MAX` (some 584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Waits for `notified` until `deadline` (without one, for as long as it takes); whether
/// it came in time.
async fn wait(deadline: Option<Instant>, notified: impl std::future::Future<Output = ()>) -> bool {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, notified).await.is_ok(),
        None => {
            notified.await;
            true
        }
    }
}

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

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("checks", &self.entries.len())
            .field("budget", &self.budget)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}
