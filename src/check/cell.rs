//! The status of an entry the application sets itself (a gate, a switch, a heartbeat, the
//! wedge detector), and the bell that makes every answer see a change at once.
//!
//! A cell is shared by the application's handle and the engine's entry. Setting it
//! changes the status under the cell's lock, then rings the bell: the generations that key
//! every rendered answer and gRPC status move, and the observer publishes the change, so
//! the very next probe and an open gRPC Watch see it, with no run and no refresh.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::cache::lock;
use crate::observe::CheckChange;
use crate::observe::Observer;
use crate::shutdown::Progress;
use crate::vocabulary::{CheckKind, Status};

/// What every answer is keyed by, and the observer: shared by the engine and every cell.
#[derive(Debug)]
pub(crate) struct Bell {
    /// Bumped after every change of any entry's result.
    pub(crate) results: AtomicU64,
    /// Bumped after every change of any entry's status.
    pub(crate) statuses: AtomicU64,
    pub(crate) observer: Observer,
}

impl Bell {
    pub(crate) fn new(observer: Observer) -> Bell {
        Bell {
            results: AtomicU64::new(0),
            statuses: AtomicU64::new(0),
            observer,
        }
    }

    /// Rings after an entry's result changed from `before` to `after`: moves the
    /// generations every cached answer is keyed by, then, if the status changed, tells the
    /// observer. Called with the new result already in, so that an answer keyed by the
    /// new generations shows it.
    pub(crate) fn ring(
        &self,
        name: &Arc<str>,
        before: Status,
        after: Status,
        at: SystemTime,
        reason: Option<Arc<str>>,
    ) {
        let changed = after != before;
        if changed {
            self.statuses.fetch_add(1, Ordering::AcqRel);
        }
        self.results.fetch_add(1, Ordering::AcqRel);
        if changed {
            self.observer.status_changed(CheckChange {
                name: name.clone(),
                from: before,
                to: after,
                at,
                reason,
            });
        }
    }
}

/// What an entry says now.
#[derive(Debug, Clone)]
pub(crate) struct Said {
    pub(crate) status: Status,
    pub(crate) reason: Option<Arc<str>>,
    pub(crate) at: SystemTime,
}

/// A status set by the application (or, for heartbeats and the wedge detector, read from
/// what it does).
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) name: Arc<str>,
    source: Source,
    said: Mutex<Said>,
    /// Bumped after every change: the answers for this entry alone are keyed by it.
    changes: AtomicU64,
    /// Set once, when the entry is built into a `Health`.
    bell: OnceLock<Arc<Bell>>,
    /// Set for a switch shared by the fleet: its status is a run's outcome, so a change
    /// asks for a run instead of ringing the bell.
    nudge: OnceLock<Nudge>,
}

/// What a change of a switch shared by the fleet calls: a run of its entry.
struct Nudge(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Nudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nudge")
    }
}

/// Where a cell's status comes from.
#[derive(Debug)]
pub(crate) enum Source {
    Gate { open: AtomicBool },
    Switch,
    Heartbeat(Beat),
    Wedge(Wedge),
}

/// A heartbeat's last beat.
#[derive(Debug)]
pub(crate) struct Beat {
    origin: Instant,
    /// When the last beat came, in nanoseconds since the origin.
    last: AtomicU64,
    max_age: Duration,
    dropped: AtomicBool,
    /// Dropped once the drain had started: the loop ended with the shutdown, no failure.
    retired: AtomicBool,
    /// The reason given when no beat came in time (fixed, so that it changes nothing when
    /// told again).
    late: Arc<str>,
}

/// The wedge detector: waiting requests and heads, sampled.
#[derive(Debug)]
pub(crate) struct Wedge {
    progress: Arc<Progress>,
    stuck_after: Duration,
    sample: Mutex<Sample>,
    stuck: Arc<str>,
}

#[derive(Debug)]
struct Sample {
    /// The heads counter when last seen changed.
    heads: u32,
    /// Since when requests have been seen waiting with no new head (only when `busy`).
    since: Instant,
    busy: bool,
}

const GATE_CLOSED: &str = "not open yet";
const DROPPED: &str = "heartbeat handle dropped";

impl Cell {
    fn new(name: Arc<str>, source: Source, status: Status, reason: Option<&str>) -> Arc<Cell> {
        Arc::new(Cell {
            name,
            source,
            said: Mutex::new(Said {
                status,
                reason: reason.map(Arc::from),
                at: SystemTime::now(),
            }),
            changes: AtomicU64::new(0),
            bell: OnceLock::new(),
            nudge: OnceLock::new(),
        })
    }

    pub(crate) fn gate(name: Arc<str>) -> Arc<Cell> {
        let open = AtomicBool::new(false);
        Cell::new(name, Source::Gate { open }, Status::Fail, Some(GATE_CLOSED))
    }

    pub(crate) fn switch(name: Arc<str>) -> Arc<Cell> {
        Cell::new(name, Source::Switch, Status::Pass, None)
    }

    /// A heartbeat that counts as having beaten now.
    pub(crate) fn heartbeat(name: Arc<str>, max_age: Duration) -> Arc<Cell> {
        let beat = Beat {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            max_age,
            dropped: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            late: Arc::from(format!("no beat within {} ms", max_age.as_millis())),
        };
        Cell::new(name, Source::Heartbeat(beat), Status::Pass, None)
    }

    pub(crate) fn wedge(name: Arc<str>, stuck_after: Duration) -> Arc<Cell> {
        let wedge = Wedge {
            progress: Arc::default(),
            stuck_after,
            sample: Mutex::new(Sample {
                heads: 0,
                since: Instant::now(),
                busy: false,
            }),
            stuck: Arc::from(format!(
                "requests waiting, and no response for {} ms",
                stuck_after.as_millis()
            )),
        };
        Cell::new(name, Source::Wedge(wedge), Status::Pass, None)
    }

    pub(crate) fn kind(&self) -> CheckKind {
        match self.source {
            Source::Gate { .. } => CheckKind::Gate,
            Source::Switch => CheckKind::Switch,
            Source::Heartbeat(_) | Source::Wedge(_) => CheckKind::Heartbeat,
        }
    }

    /// Whether its status depends on time, and so must be looked at again (by a probe,
    /// and by the engine's watch task).
    pub(crate) fn is_timed(&self) -> bool {
        matches!(self.source, Source::Heartbeat(_) | Source::Wedge(_))
    }

    /// Joins the `Health` whose answers ring `bell`; `false` if it already has joined one.
    pub(crate) fn join(&self, bell: Arc<Bell>) -> bool {
        self.bell.set(bell).is_ok()
    }

    /// Makes a change call `nudge` instead of ringing the bell: for a switch whose status
    /// is read by runs of its entry (a switch shared by the fleet).
    pub(crate) fn nudge_with(&self, nudge: Box<dyn Fn() + Send + Sync>) {
        let _ = self.nudge.set(Nudge(nudge));
    }

    /// The wedge detector's counter, if this is its cell.
    pub(crate) fn progress(&self) -> Option<Arc<Progress>> {
        match &self.source {
            Source::Wedge(wedge) => Some(wedge.progress.clone()),
            _ => None,
        }
    }

    /// Whether it belongs to a `Health` already.
    pub(crate) fn has_joined(&self) -> bool {
        self.bell.get().is_some()
    }

    pub(crate) fn said(&self) -> Said {
        lock(&self.said).clone()
    }

    /// How many times what it says has changed.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Says `status` for `reason`; a change rings the bell. What was said already is no
    /// change and costs the lock alone.
    pub(crate) fn say(&self, status: Status, reason: Option<&str>) {
        let mut said = lock(&self.said);
        if said.status == status && said.reason.as_deref() == reason {
            return;
        }
        let before = said.status;
        let reason: Option<Arc<str>> = match (reason, &said.reason) {
            (None, _) => None,
            (Some(reason), Some(kept)) if **kept == *reason => Some(kept.clone()),
            (Some(reason), _) => Some(Arc::from(reason)),
        };
        self.set(&mut said, before, status, reason);
    }

    /// As [`say`](Cell::say), with a reason already shared.
    pub(crate) fn say_shared(&self, status: Status, reason: Option<&Arc<str>>) {
        let mut said = lock(&self.said);
        if said.status == status && said.reason.as_ref() == reason {
            return;
        }
        let before = said.status;
        self.set(&mut said, before, status, reason.cloned());
    }

    fn set(&self, said: &mut Said, before: Status, status: Status, reason: Option<Arc<str>>) {
        let at = SystemTime::now();
        *said = Said {
            status,
            reason: reason.clone(),
            at,
        };
        // The change is in before the generations move: an answer keyed by the new
        // generation shows it. Bumped under the lock, so that changes publish in order.
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(nudge) = self.nudge.get() {
            (nudge.0)();
            return;
        }
        let Some(bell) = self.bell.get() else {
            return;
        };
        bell.ring(&self.name, before, status, at, reason);
    }

    // === gates ===

    pub(crate) fn open(&self) {
        if let Source::Gate { open } = &self.source {
            if !open.load(Ordering::Acquire) && !open.swap(true, Ordering::AcqRel) {
                self.say(Status::Pass, None);
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        match &self.source {
            Source::Gate { open } => open.load(Ordering::Acquire),
            _ => false,
        }
    }

    // === heartbeats ===

    /// One atomic store.
    #[inline]
    pub(crate) fn beat(&self) {
        if let Source::Heartbeat(beat) = &self.source {
            let now = Instant::now().saturating_duration_since(beat.origin);
            beat.last.store(nanos(now), Ordering::Relaxed);
        }
    }

    /// The handle is gone: no beat will come. While draining that is the loop ending with
    /// the shutdown, and the heartbeat passes from then on; before, it fails.
    pub(crate) fn drop_heartbeat(&self) {
        if let Source::Heartbeat(beat) = &self.source {
            let draining = (self.bell.get()).is_some_and(|bell| bell.observer.is_draining());
            beat.retired.store(draining, Ordering::Release);
            beat.dropped.store(true, Ordering::Release);
            self.say_dropped(beat);
        }
    }

    fn say_dropped(&self, beat: &Beat) {
        if beat.retired.load(Ordering::Acquire) {
            self.say(Status::Pass, None);
        } else {
            self.say(Status::Fail, Some(DROPPED));
        }
    }

    /// Looks at a heartbeat's last beat, or the wedge detector's counter, at `now`, says
    /// what it finds, and tells when to look again (`None`: no need to).
    pub(crate) fn look(&self, now: Instant) -> Option<Instant> {
        match &self.source {
            Source::Heartbeat(beat) => {
                if beat.dropped.load(Ordering::Acquire) {
                    self.say_dropped(beat);
                    return None;
                }
                let last = Duration::from_nanos(beat.last.load(Ordering::Relaxed));
                let since = now.saturating_duration_since(beat.origin);
                let age = since.saturating_sub(last);
                if age >= beat.max_age {
                    self.say_shared(Status::Fail, Some(&beat.late));
                    // A beat is a store that wakes nobody: look again soon, so that a
                    // recovery is pushed to watchers (a probe sees it at once).
                    now.checked_add(beat.max_age.min(Duration::from_secs(1)))
                } else {
                    self.say(Status::Pass, None);
                    beat.origin
                        .checked_add(last)
                        .and_then(|at| at.checked_add(beat.max_age))
                }
            }
            Source::Wedge(wedge) => {
                let (waiting, heads) = wedge.progress.read();
                let mut sample = lock(&wedge.sample);
                let stuck = if waiting == 0 || !sample.busy || heads != sample.heads {
                    // Idle, or a head came since the last look: the clock starts again
                    // (from this look, so that it never fails early).
                    sample.heads = heads;
                    sample.since = now;
                    sample.busy = waiting > 0;
                    false
                } else {
                    now.saturating_duration_since(sample.since) >= wedge.stuck_after
                };
                drop(sample);
                if stuck {
                    self.say_shared(Status::Fail, Some(&wedge.stuck));
                } else {
                    self.say(Status::Pass, None);
                }
                let every = (wedge.stuck_after / 10)
                    .clamp(Duration::from_millis(10), Duration::from_secs(1));
                now.checked_add(every)
            }
            Source::Gate { .. } | Source::Switch => None,
        }
    }
}

/// A duration in nanoseconds, saturated at `u64::MAX`.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
