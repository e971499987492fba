//! The one place where something that happened to the application's health becomes what
//! people and machines see of it: a lifecycle transition, the end of a check's run, a
//! change of a check's status and a probe's answer each turn here into a `tracing` event,
//! a metric (feature `metrics`) and a [`Change`] on the change stream.
//!
//! The lifecycle and the engine hold an [`Observer`] and call it; it knows nothing of
//! them, only the shared words of [`crate::vocabulary`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::changes::{Change, Changes, CheckChange, Publisher};
use crate::vocabulary::{Lifecycle, Phase, Probe, RunOutcome, Status};

/// The target of its log lines, kept from before it moved into this folder.
const TARGET: &str = "tower_health::observer";

/// Turns what happened into logs, metrics and change events. Cheap to clone: every clone
/// publishes to the same change stream.
#[derive(Debug, Clone)]
pub(crate) struct Observer {
    changes: Publisher,
    /// Set once a transition to `Draining` has been seen (shared by every clone).
    draining: Arc<AtomicBool>,
}

impl Observer {
    pub(crate) fn new() -> Observer {
        Observer {
            changes: Publisher::new(),
            draining: Arc::default(),
        }
    }

    /// Whether the lifecycle has started draining: what ends then (a heartbeat's loop)
    /// has ended on purpose.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A new subscription to the change stream.
    pub(crate) fn subscribe(&self) -> Changes {
        self.changes.subscribe()
    }

    /// A [`Health`](crate::Health) was built: the metrics are described to the installed
    /// recorder, and the lifecycle gauges set.
    pub(crate) fn started(&self, phase: Phase) {
        #[cfg(feature = "metrics")]
        super::metrics::register(phase);
        #[cfg(not(feature = "metrics"))]
        let _ = phase;
    }

    /// The lifecycle word now reads `phase`. Called under the lifecycle watch's lock, so
    /// that the gauges end in the same order as the channel's values.
    #[inline]
    pub(crate) fn phase_published(&self, phase: Phase) {
        #[cfg(feature = "metrics")]
        super::metrics::lifecycle(phase);
        #[cfg(not(feature = "metrics"))]
        let _ = phase;
    }

    /// One call of the lifecycle moved it from `before` to `after` (the state, the
    /// liveness flag, or both).
    pub(crate) fn transition(&self, before: Phase, after: Phase) {
        let at = SystemTime::now();
        if after.state() == Lifecycle::Draining {
            self.draining.store(true, Ordering::Release);
        }
        if before.state() != after.state() {
            tracing::info!(target: TARGET,
                from = before.state().as_str(),
                to = after.state().as_str(),
                "health: lifecycle state changed"
            );
            self.changes.publish(Change::Lifecycle {
                from: before.state(),
                to: after.state(),
                at,
            });
        }
        if before.is_live() != after.is_live() {
            if after.is_live() {
                tracing::info!(target: TARGET, "health: liveness recovered");
            } else {
                tracing::warn!(target: TARGET, "health: liveness marked failed");
            }
            self.changes.publish(Change::Liveness {
                live: after.is_live(),
                at,
            });
        }
    }

    /// A run of the check `name` ended with `outcome` after `took`.
    pub(crate) fn run_ended(&self, name: &Arc<str>, outcome: RunOutcome, took: Duration) {
        #[cfg(feature = "metrics")]
        super::metrics::check_run(name, outcome, took);
        #[cfg(not(feature = "metrics"))]
        let _ = (name, outcome, took);
    }

    /// A run of the check `name` failed (before damping decides whether its status
    /// changes).
    pub(crate) fn run_failed(&self, name: &str, reason: &str) {
        tracing::debug!(target: TARGET, check = name, reason, "health: check failed");
    }

    /// A shared check's failure started (`held`) or stopped being held because the fleet
    /// shares it: readiness keeps passing while it is.
    pub(crate) fn shared_failure(&self, name: &str, held: bool, reason: &str) {
        if held {
            tracing::warn!(target: TARGET,
                check = name,
                reason,
                "health: shared dependency failing across the fleet, readiness held"
            );
        } else {
            tracing::info!(target: TARGET, check = name, "health: shared failure no longer held");
        }
    }

    /// The fleet could not be listed to weigh a shared check's failure: it counts as
    /// this replica's own.
    pub(crate) fn fleet_unlisted(&self, name: &str, why: &str) {
        tracing::warn!(target: TARGET, check = name, why, "health: peers could not be listed");
    }

    /// A check's status changed (after damping).
    pub(crate) fn status_changed(&self, change: CheckChange) {
        #[cfg(feature = "metrics")]
        super::metrics::check_status(&change.name, change.to);
        let name = &*change.name;
        if change.to == Status::Fail {
            let reason = change.reason.as_deref().unwrap_or("");
            tracing::warn!(target: TARGET, check = name, reason, "health: check now failing");
        } else {
            let status = change.to.as_str();
            tracing::info!(target: TARGET, check = name, status, "health: check status changed");
        }
        self.changes.publish(Change::Check(change));
    }

    /// An entry whose status the application sets was built into a `Health` with
    /// `status`: its gauge starts there (a check's starts with its first result).
    pub(crate) fn entry_joined(&self, name: &Arc<str>, status: Status) {
        #[cfg(feature = "metrics")]
        super::metrics::check_status(name, status);
        #[cfg(not(feature = "metrics"))]
        let _ = (name, status);
    }

    /// A probe was answered with `code`.
    #[inline]
    pub(crate) fn probe_answered(&self, probe: Probe, code: http::StatusCode) {
        #[cfg(feature = "metrics")]
        super::metrics::probe_answer(probe, code);
        #[cfg(not(feature = "metrics"))]
        let _ = (probe, code);
    }
}
