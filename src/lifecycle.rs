//! The application's lifecycle: the [`Lifecycle`] and the liveness flag, packed into one
//! atomic word ([`Phase`]) so that a probe reads a consistent picture with a single load;
//! its transitions, and waiting for them.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

use crate::observe::Observer;
use crate::vocabulary::{Lifecycle, Phase};

/// The atomic cell, a watch channel that wakes whoever waits for a change, and the
/// observer that reports each transition.
#[derive(Debug)]
pub(crate) struct LifecycleWatch {
    word: AtomicU8,
    changes: watch::Sender<Phase>,
    observer: Observer,
}

impl LifecycleWatch {
    pub(crate) fn new(observer: Observer) -> Self {
        let start = Phase::default();
        let (changes, _) = watch::channel(start);
        LifecycleWatch {
            word: AtomicU8::new(start.bits()),
            changes,
            observer,
        }
    }

    /// One load: what a probe answers from.
    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_bits(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.phase().state() == Lifecycle::Draining
    }

    /// `Starting → Ready`. Returns whether this call made the change.
    pub(crate) fn ready(&self) -> bool {
        self.update(Phase::to_ready)
    }

    /// `Starting | Ready → Draining`. Returns whether this call made the change.
    pub(crate) fn drain(&self) -> bool {
        self.update(Phase::to_draining)
    }

    /// Sets or clears the liveness flag. Returns whether this call made the change.
    pub(crate) fn set_live(&self, live: bool) -> bool {
        self.update(|phase| phase.with_live(live))
    }

    /// A receiver that has seen the current phase, so its next `changed()` is the next
    /// transition.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Phase> {
        self.changes.subscribe()
    }

    fn update(&self, f: impl Fn(Phase) -> Option<Phase>) -> bool {
        let step = |bits| f(Phase::from_bits(bits)).map(Phase::bits);
        let Ok(before_bits) = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, step)
        else {
            return false;
        };
        let before = Phase::from_bits(before_bits);
        // What this call wrote, whatever other calls wrote since.
        let after = f(before).unwrap_or(before);
        // Publish under the channel's lock and re-read the word there, so that two racing
        // transitions can never leave the channel (nor the gauges) behind the atomic.
        self.changes.send_modify(|seen| {
            *seen = self.phase();
            self.observer.phase_published(*seen);
        });
        self.observer.transition(before, after);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_in_starting_and_live() {
        let l = LifecycleWatch::new(Observer::new());
        assert_eq!(l.phase().state(), Lifecycle::Starting);
        assert!(l.phase().is_live());
    }

    #[test]
    fn draining_is_one_way() {
        let l = LifecycleWatch::new(Observer::new());
        assert!(l.ready());
        assert!(l.drain());
        assert!(!l.ready());
        assert_eq!(l.phase().state(), Lifecycle::Draining);
        assert!(!l.drain(), "a second drain is not a change");
    }

    #[test]
    fn starting_can_drain_without_being_ready() {
        let l = LifecycleWatch::new(Observer::new());
        assert!(l.drain());
        assert!(!l.ready());
        assert_eq!(l.phase().state(), Lifecycle::Draining);
    }

    #[test]
    fn liveness_is_independent_of_state() {
        let l = LifecycleWatch::new(Observer::new());
        assert!(l.set_live(false));
        assert!(!l.set_live(false));
        assert!(l.ready());
        assert_eq!(l.phase(), Phase::new(Lifecycle::Ready, false));
        assert!(l.set_live(true));
        assert_eq!(l.phase(), Phase::new(Lifecycle::Ready, true));
        assert!(l.drain());
        assert!(l.set_live(false));
        assert_eq!(l.phase(), Phase::new(Lifecycle::Draining, false));
    }

    #[test]
    fn watchers_see_the_latest_phase() {
        let l = LifecycleWatch::new(Observer::new());
        let mut rx = l.subscribe();
        assert!(!rx.has_changed().unwrap());
        l.ready();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().state(), Lifecycle::Ready);
    }
}
