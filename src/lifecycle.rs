//! The application's lifecycle: [`State`] and the liveness flag, packed into one atomic
//! word so that a probe reads a consistent picture with a single load.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use std::time::SystemTime;

use tokio::sync::watch;

use crate::changes::{Change, Publisher};

/// Where the application is in its life, as the orchestrator should see it.
///
/// The only transitions are `Starting → Ready`, `Starting → Draining` and
/// `Ready → Draining`: draining is one-way, so a late [`Health::ready`](crate::Health::ready)
/// can never put a shutting-down replica back into the load balancer.
/// States are ordered as they happen: `Starting < Ready < Draining`.
///
/// # Example
///
/// ```
/// use tower_health::{Health, State};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder().build();
/// assert_eq!(health.state(), State::Starting);
/// assert!(health.ready());
/// assert_eq!(health.state(), State::Ready);
/// assert!(health.drain());
/// assert!(!health.ready()); // draining is one-way
/// assert_eq!(health.state(), State::Draining);
/// assert!(State::Ready < State::Draining);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Start-up work is still running: readiness and startup probes fail, liveness passes.
    Starting,
    /// The application has finished starting and serves traffic.
    Ready,
    /// Shutdown has begun: readiness fails so that traffic moves elsewhere, while liveness
    /// and startup keep passing so that the orchestrator does not restart the process.
    Draining,
}

impl State {
    /// The state's lower-case name, as it appears in probe answers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Draining => "draining",
        }
    }

    fn from_bits(bits: u8) -> State {
        match bits & STATE_MASK {
            STARTING => State::Starting,
            READY => State::Ready,
            _ => State::Draining,
        }
    }

    #[cfg(test)]
    fn bits(self) -> u8 {
        match self {
            State::Starting => STARTING,
            State::Ready => READY,
            State::Draining => DRAINING,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;
const STATE_MASK: u8 = 0b011;
/// Set when the application has marked liveness failed.
const NOT_LIVE: u8 = 0b100;

/// A consistent reading of the lifecycle word: the state and the liveness flag together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Phase(u8);

impl Phase {
    /// The word itself (three bits).
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    pub(crate) fn state(self) -> State {
        State::from_bits(self.0)
    }

    pub(crate) fn is_live(self) -> bool {
        self.0 & NOT_LIVE == 0
    }

    #[cfg(test)]
    pub(crate) fn new(state: State, live: bool) -> Phase {
        Phase(state.bits() | if live { 0 } else { NOT_LIVE })
    }
}

/// The atomic cell, a watch channel that wakes whoever waits for a change, and the change
/// stream that reports each transition.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    word: AtomicU8,
    changes: watch::Sender<Phase>,
    events: Publisher,
}

impl Lifecycle {
    pub(crate) fn new(events: Publisher) -> Self {
        let (changes, _) = watch::channel(Phase(STARTING));
        Lifecycle {
            word: AtomicU8::new(STARTING),
            changes,
            events,
        }
    }

    /// One load: what a probe answers from.
    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        Phase(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.phase().state() == State::Draining
    }

    /// `Starting → Ready`. Returns whether this call made the change.
    pub(crate) fn ready(&self) -> bool {
        self.update(|w| (w & STATE_MASK == STARTING).then_some((w & !STATE_MASK) | READY))
    }

    /// `Starting | Ready → Draining`. Returns whether this call made the change.
    pub(crate) fn drain(&self) -> bool {
        self.update(|w| (w & STATE_MASK != DRAINING).then_some((w & !STATE_MASK) | DRAINING))
    }

    /// Sets or clears the liveness flag. Returns whether this call made the change.
    pub(crate) fn set_live(&self, live: bool) -> bool {
        self.update(|w| {
            let next = if live { w & !NOT_LIVE } else { w | NOT_LIVE };
            (next != w).then_some(next)
        })
    }

    /// A receiver that has seen the current phase, so its next `changed()` is the next
    /// transition.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Phase> {
        self.changes.subscribe()
    }

    fn update(&self, f: impl Fn(u8) -> Option<u8>) -> bool {
        match self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, &f)
        {
            Ok(before_bits) => {
                let before = Phase(before_bits);
                // What this call wrote, whatever other calls wrote since.
                let after = Phase(f(before_bits).unwrap_or(before_bits));
                // Publish under the channel's lock and re-read the word there, so that
                // two racing transitions can never leave the channel behind the atomic.
                self.changes.send_modify(|seen| {
                    *seen = self.phase();
                    #[cfg(feature = "metrics")]
                    crate::metrics::lifecycle(*seen);
                });
                log_transition(before, after);
                let at = SystemTime::now();
                if before.state() != after.state() {
                    self.events.publish(Change::State {
                        from: before.state(),
                        to: after.state(),
                        at,
                    });
                }
                if before.is_live() != after.is_live() {
                    self.events.publish(Change::Liveness {
                        live: after.is_live(),
                        at,
                    });
                }
                true
            }
            Err(_) => false,
        }
    }
}

fn log_transition(before: Phase, after: Phase) {
    if before.state() != after.state() {
        tracing::info!(
            from = before.state().as_str(),
            to = after.state().as_str(),
            "health: lifecycle state changed"
        );
    }
    if before.is_live() != after.is_live() {
        if after.is_live() {
            tracing::info!("health: liveness recovered");
        } else {
            tracing::warn!("health: liveness marked failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_in_starting_and_live() {
        let l = Lifecycle::new(Publisher::new());
        assert_eq!(l.phase().state(), State::Starting);
        assert!(l.phase().is_live());
    }

    #[test]
    fn draining_is_one_way() {
        let l = Lifecycle::new(Publisher::new());
        assert!(l.ready());
        assert!(l.drain());
        assert!(!l.ready());
        assert_eq!(l.phase().state(), State::Draining);
        assert!(!l.drain(), "a second drain is not a change");
    }

    #[test]
    fn starting_can_drain_without_being_ready() {
        let l = Lifecycle::new(Publisher::new());
        assert!(l.drain());
        assert!(!l.ready());
        assert_eq!(l.phase().state(), State::Draining);
    }

    #[test]
    fn liveness_is_independent_of_state() {
        let l = Lifecycle::new(Publisher::new());
        assert!(l.set_live(false));
        assert!(!l.set_live(false));
        assert!(l.ready());
        assert_eq!(l.phase(), Phase::new(State::Ready, false));
        assert!(l.set_live(true));
        assert_eq!(l.phase(), Phase::new(State::Ready, true));
        assert!(l.drain());
        assert!(l.set_live(false));
        assert_eq!(l.phase(), Phase::new(State::Draining, false));
    }

    #[test]
    fn watchers_see_the_latest_phase() {
        let l = Lifecycle::new(Publisher::new());
        let mut rx = l.subscribe();
        assert!(!rx.has_changed().unwrap());
        l.ready();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().state(), State::Ready);
    }
}
