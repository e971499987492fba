//! The refresh engine: per-check cached results, single-flight runs under a timeout and a
//! budget, damping, the background refresh, and the wait of a probe that finds no result.
//!
//! Costs: a finished run touches its own check only; a probe answered from the cache reads
//! a few atomics whatever the number of checks; scans over every check happen once per
//! refresh tick, once per `refresh()`, or (with the background refresh off) once per
//! staleness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::fleet::{Consult, Verdict};
use super::report::CheckReport;
use super::{Bell, Cell, Check, ClaimFlag, Hold, Outcome};
use crate::cache::lock;
use crate::observe::Observer;
use crate::time::{deadline, timers};
use crate::vocabulary::{CheckKind, Probe, Status};

mod background;
mod run;

pub(crate) use run::panic_reason;

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
}

impl Engine {
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
}

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

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("checks", &self.entries.len())
            .field("budget", &self.budget)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}
