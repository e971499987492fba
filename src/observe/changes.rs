//! The change stream: one typed [`Change`] per lifecycle transition, per change of the
//! liveness flag and per change of a check's status, for the application to read
//! ([`Health::changes`](crate::Health::changes)) and for gRPC `Watch` to follow.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::vocabulary::{Lifecycle, Status};

/// How many changes a subscriber may fall behind before it is told it missed some.
pub(crate) const BACKLOG: usize = 256;

/// A subscription to the changes of one [`Health`](crate::Health), made by
/// [`Health::changes`](crate::Health::changes).
///
/// It sees every change from the moment it was made. Memory is bounded: a subscriber
/// that falls more than 256 changes behind gets one [`Change::Missed`] with the count of
/// what it lost, then the newest changes.
///
/// ```
/// use tower_health::{Change, Health};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::new();
/// let mut changes = health.changes();
/// tokio::spawn(async move {
///     while let Some(change) = changes.next().await {
///         match change {
///             Change::Check(c) => println!("{} {:?} -> {:?}: {:?}", c.name(), c.from(), c.to(), c.reason()),
///             other => println!("{other:?}"),
///         }
///     }
/// });
/// health.ready();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a Changes subscription sees nothing unless it is read"]
pub struct Changes {
    receiver: broadcast::Receiver<Change>,
}

impl Changes {
    pub(crate) fn new(receiver: broadcast::Receiver<Change>) -> Self {
        Changes { receiver }
    }

    /// The next change, or `None` once the `Health` and everything made from it are
    /// gone.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: a change is taken off the subscription only when the
    /// future returns it, so a `next()` dropped in a `tokio::select!` loses nothing, and
    /// the next call returns that change.
    pub async fn next(&mut self) -> Option<Change> {
        match self.receiver.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(count)) => Some(Change::Missed { count }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Change> {
        match self.receiver.try_recv() {
            Ok(change) => Some(change),
            Err(broadcast::error::TryRecvError::Lagged(count)) => Some(Change::Missed { count }),
            Err(_) => None,
        }
    }
}

/// The sending side, shared by the lifecycle and the engine.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    sender: broadcast::Sender<Change>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Publisher {
            sender: broadcast::channel(BACKLOG).0,
        }
    }

    pub(crate) fn publish(&self, change: Change) {
        // No subscriber is no error.
        let _ = self.sender.send(change);
    }

    pub(crate) fn subscribe(&self) -> Changes {
        Changes::new(self.sender.subscribe())
    }
}

// === impl Change ===

/// One change of the application's health, as [`Changes`](crate::Changes) delivers it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// The lifecycle moved from one state to another.
    Lifecycle {
        /// The state before.
        from: Lifecycle,
        /// The state after.
        to: Lifecycle,
        /// When it changed.
        at: SystemTime,
    },
    /// Liveness was marked failed (`live: false`) or recovered (`live: true`).
    Liveness {
        /// Whether liveness passes now.
        live: bool,
        /// When it changed.
        at: SystemTime,
    },
    /// A check's status changed (after damping: a run that damping holds back is no
    /// change).
    Check(CheckChange),
    /// This subscriber fell more than the backlog behind and `count` changes were
    /// dropped for it; read [`Health::report`](crate::Health::report) for the state now.
    Missed {
        /// How many changes it missed.
        count: u64,
    },
}

/// A check whose status changed.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckChange {
    pub(crate) name: Arc<str>,
    pub(crate) from: Status,
    pub(crate) to: Status,
    pub(crate) at: SystemTime,
    pub(crate) reason: Option<Arc<str>>,
}

impl CheckChange {
    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its status before.
    pub fn from(&self) -> Status {
        self.from
    }

    /// Its status after.
    pub fn to(&self) -> Status {
        self.to
    }

    /// When the run that changed it finished.
    pub fn at(&self) -> SystemTime {
        self.at
    }

    /// Why it failed or warned: the application may read it even where probe answers
    /// withhold it.
    ///
    /// Capped like every check output.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}
