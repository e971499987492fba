//! What the application knows itself and tells its health at once: start-up
//! [`Gate`]s, [`Switch`]es and [`Heartbeat`]s.
//!
//! A [`Check`](crate::Check) is for a dependency the application cannot see change, so
//! the layer asks it, on an interval. What the application knows (the migrations ran, the
//! model is loaded, maintenance mode is on, a background loop is alive) it says through
//! one of these handles instead. Each is an entry like a check: it has a name in the same
//! namespace, a line in verbose answers (in every format), on the page and in
//! [`Health::report`](crate::Health::report), an answer of its own at `/readyz/NAME`, a
//! gRPC health name (Check, Watch, List), a status gauge and events on the change stream.
//! Setting one moves the generations every cached answer is keyed by and publishes the
//! change before the call returns, so the very next probe and an open gRPC Watch see it,
//! with no run and no refresh.
//!
//! Make the handle, give it to the builder by reference, keep it:
//!
//! ```
//! use std::time::Duration;
//! use tower_health::{Gate, Health, Heartbeat, Probe, Status, Switch};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let migrations = Gate::new("migrations");
//! let maintenance = Switch::new("maintenance");
//! let consumer = Heartbeat::new("consumer", Duration::from_secs(30));
//! let health = Health::builder()
//!     .gate(&migrations)
//!     .switch(&maintenance)
//!     .heartbeat(&consumer)
//!     .build();
//!
//! health.ready();
//! assert_eq!(health.report().status(Probe::Readiness), Status::Fail); // gate closed
//! migrations.open();
//! assert_eq!(health.report().status(Probe::Readiness), Status::Pass);
//! maintenance.fail("in maintenance until 02:00");
//! assert_eq!(health.report().status(Probe::Readiness), Status::Fail);
//! consumer.beat(); // from the loop, every turn
//! assert_eq!(health.report().status(Probe::Liveness), Status::Pass);
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{capped, Cell, Check};
use crate::vocabulary::{Gates, Probe, Status};

// === impl Gate ===

/// A named start-up step ("migrations", "model", "cache-warm"): closed until the
/// application opens it, and one-way.
///
/// While any gate is closed, the startup and readiness probes fail, whatever the
/// lifecycle says.
///
/// # Gates and `ready()`
///
/// They compose by "and": readiness and startup pass only once
/// [`Health::ready`](crate::Health::ready) was called **and** every gate is open (and, for
/// readiness, every critical check passes). `ready()` says "the application as a whole
/// has started"; a gate names one step of it, so that a verbose answer, the page and the
/// change stream show which step a slow start waits on (`[-]model failed: reason
/// withheld`). An application whose start-up is nothing but its gates calls `ready()` at
/// once and opens the gates as the steps finish. Draining wins over both: a draining
/// application fails readiness with every gate open.
///
/// A gate opened before the `Health` is built starts open. Cloning gives another handle
/// to the same gate.
///
/// # Example
///
/// ```
/// use tower_health::{Gate, Health, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = Gate::new("model");
/// let health = Health::builder().gate(&model).build();
/// health.ready();
/// assert_eq!(health.report().status(Probe::Startup), Status::Fail);
///
/// let loading = model.clone();
/// tokio::spawn(async move {
///     // ... load the model ...
///     loading.open();
/// })
/// .await
/// .unwrap();
/// assert!(model.is_open());
/// assert_eq!(health.report().status(Probe::Startup), Status::Pass);
/// assert_eq!(health.report().status(Probe::Readiness), Status::Pass);
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a Gate does nothing until it is added with Builder::gate"]
pub struct Gate {
    cell: Arc<Cell>,
}

impl Gate {
    /// A closed gate called `name` (a name like a check's: ASCII letters, digits, `-`,
    /// `_` and `.`, and no name a check or another entry has).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Gate {
            cell: Cell::gate(Arc::from(name.into().as_ref())),
        }
    }

    /// Opens the gate, for good.
    ///
    /// Opening an open gate does nothing.
    ///
    /// ```
    /// use tower_health::{Gate, Health, Probe, Status};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = Gate::new("cache-warm");
    /// let health = Health::builder().gate(&cache).build();
    /// health.ready();
    /// cache.open();
    /// cache.open();
    /// assert_eq!(health.report().status(Probe::Readiness), Status::Pass);
    /// # }
    /// ```
    pub fn open(&self) {
        self.cell.open();
    }

    /// Whether it has been opened.
    ///
    /// ```
    /// let gate = tower_health::Gate::new("migrations");
    /// assert!(!gate.is_open());
    /// gate.open();
    /// assert!(gate.is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        self.cell.is_open()
    }

    /// Its name.
    ///
    /// ```
    /// assert_eq!(tower_health::Gate::new("model").name(), "model");
    /// ```
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    pub(crate) fn entry(&self) -> Check {
        Check::settable(self.cell.clone(), Gates::STARTUP_AND_READINESS, true)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.cell.name)
            .field("open", &self.is_open())
            .finish()
    }
}

// === impl Switch ===

/// A named status that the application sets, and may set again: maintenance mode,
/// leadership lost, partitions not assigned, a dependency the application watches itself.
///
/// It starts passing. Like a check it gates readiness unless told otherwise
/// ([`probes`](Switch::probes)), and is critical unless made
/// [`non_critical`](Switch::non_critical); its reason is withheld from answers like any
/// check's, and shown where the detail policy allows.
///
/// Cloning gives another handle to the same switch.
///
/// # Example
///
/// ```
/// use tower_health::{Health, Probe, Status, Switch};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let database = Switch::new("database");
/// let leader = Switch::new("leader").non_critical();
/// let health = Health::builder().switch(&database).switch(&leader).build();
/// health.ready();
///
/// database.fail("connection lost");
/// assert_eq!(health.report().status(Probe::Readiness), Status::Fail);
/// assert_eq!(health.report().check("database").unwrap().output(), Some("connection lost"));
/// database.pass();
/// leader.warn("not the leader");
/// assert_eq!(health.report().status(Probe::Readiness), Status::Warn); // still 200
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a Switch does nothing until it is added with Builder::switch"]
pub struct Switch {
    cell: Arc<Cell>,
    gates: Gates,
    critical: bool,
    shared: bool,
}

impl Switch {
    /// A passing switch called `name` (a name like a check's).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Switch {
            cell: Cell::switch(Arc::from(name.into().as_ref())),
            gates: Gates::READINESS,
            critical: true,
            shared: false,
        }
    }

    /// While it fails, the probes it gates answer 200 with status `warn` instead of 503.
    ///
    /// ```
    /// let switch = tower_health::Switch::new("replica-lag").non_critical();
    /// # drop(switch);
    /// ```
    pub fn non_critical(mut self) -> Self {
        self.critical = false;
        self
    }

    /// Marks a dependency every replica shares, as [`Check::shared`](crate::Check::shared)
    /// does for a check.
    ///
    /// With a fleet configured, its failure is weighed against the fleet's before it
    /// shows, so a set reaches the answers once the peers have answered, not at once.
    ///
    /// ```
    /// let database = tower_health::Switch::new("database").shared();
    /// # drop(database);
    /// ```
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// The probes it gates, in place of readiness alone (as
    /// [`Check::probes`](crate::Check::probes)).
    ///
    /// ```
    /// use tower_health::{Probe, Switch};
    ///
    /// // A state only a restart gets out of.
    /// let poisoned = Switch::new("poisoned").probes([Probe::Liveness]);
    /// # drop(poisoned);
    /// ```
    pub fn probes(mut self, probes: impl IntoIterator<Item = Probe>) -> Self {
        self.gates = Gates::of(probes);
        self
    }

    /// Sets it passing.
    ///
    /// ```
    /// use tower_health::{Status, Switch};
    ///
    /// let switch = Switch::new("maintenance");
    /// switch.fail("planned");
    /// switch.pass();
    /// assert_eq!(switch.status(), Status::Pass);
    /// ```
    pub fn pass(&self) {
        self.cell.say(Status::Pass, None);
    }

    /// Sets it degraded, and why: the probes it gates still answer 200, with status
    /// `warn`.
    ///
    /// ```
    /// use tower_health::{Status, Switch};
    ///
    /// let switch = Switch::new("partitions");
    /// switch.warn("3 of 12 partitions unassigned");
    /// assert_eq!(switch.status(), Status::Warn);
    /// ```
    pub fn warn(&self, reason: impl fmt::Display) {
        self.set(Status::Warn, reason);
    }

    /// Sets it failing, and why.
    ///
    /// The reason (at most 1 KiB, like a check's) goes to the log and the change stream,
    /// and into answers only where the detail policy allows.
    ///
    /// ```
    /// use tower_health::{Status, Switch};
    ///
    /// let switch = Switch::new("leader");
    /// switch.fail("leadership lost");
    /// assert_eq!(switch.status(), Status::Fail);
    /// ```
    pub fn fail(&self, reason: impl fmt::Display) {
        self.set(Status::Fail, reason);
    }

    fn set(&self, status: Status, reason: impl fmt::Display) {
        let reason = capped(&reason);
        self.cell.say_shared(status, Some(&reason));
    }

    /// What it says now.
    ///
    /// ```
    /// use tower_health::{Status, Switch};
    ///
    /// assert_eq!(Switch::new("maintenance").status(), Status::Pass);
    /// ```
    pub fn status(&self) -> Status {
        self.cell.said().status
    }

    /// Its name.
    ///
    /// ```
    /// assert_eq!(tower_health::Switch::new("leader").name(), "leader");
    /// ```
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    pub(crate) fn entry(&self) -> Check {
        if self.shared {
            Check::shared_switch(self.cell.clone(), self.gates, self.critical)
        } else {
            Check::settable(self.cell.clone(), self.gates, self.critical)
        }
    }
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch")
            .field("name", &self.cell.name)
            .field("status", &self.status())
            .field("critical", &self.critical)
            .field("gates", &self.gates)
            .field("shared", &self.shared)
            .finish()
    }
}

// === impl Heartbeat ===

/// A named heartbeat for a background loop (a queue consumer, a scheduler, a cache
/// refresher), which fails when the loop stops beating.
///
/// The loop calls [`beat`](Heartbeat::beat) on every turn, and when no beat comes within
/// the heartbeat's maximum age it fails, until the next beat. Dropping the handle fails
/// it for good: a loop that ended, or panicked, beats no more.
///
/// It gates liveness by default: a loop that stopped is what a restart fixes, and a
/// process whose background work has died while its requests are still answered is
/// otherwise invisible. [`probes`](Heartbeat::probes) and
/// [`non_critical`](Heartbeat::non_critical) change that like a check's options.
///
/// A heartbeat counts as having beaten when it is made. Its expiry is seen on time: a
/// probe looks at the last beat when it is answered, and a task of the `Health` wakes when
/// the age runs out, so that gRPC Watch and the change stream hear of it without a
/// probe. A recovery (the first beat after a failure) shows in the next probe at once,
/// and is pushed to watchers within a second (or the maximum age, if shorter).
///
/// Dropping the handle fails it for good, unless the application is draining: a loop that
/// ends with the shutdown has done what it should, and the heartbeat passes from then on.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_health::{Health, Heartbeat, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
/// let health = Health::builder().heartbeat(&consumer).build();
///
/// let worker = tokio::spawn(async move {
///     for _ in 0..3 {
///         // ... take a batch from the queue and handle it ...
///         consumer.beat();
///         tokio::time::sleep(Duration::from_secs(1)).await;
///     }
///     // the loop ends: the heartbeat is dropped with it
/// });
/// worker.await.unwrap();
/// assert_eq!(health.report().status(Probe::Liveness), Status::Fail);
///
/// // A loop that ends because the application drains is no failure.
/// let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
/// let health = Health::builder().heartbeat(&consumer).build();
/// health.start_draining();
/// drop(consumer);
/// assert_eq!(health.report().status(Probe::Liveness), Status::Pass);
/// # }
/// ```
#[must_use = "a Heartbeat does nothing until it is added with Builder::heartbeat"]
pub struct Heartbeat {
    cell: Arc<Cell>,
    gates: Gates,
    critical: bool,
}

impl Heartbeat {
    /// A heartbeat called `name` (a name like a check's) that fails when no beat has come
    /// for `max_age`.
    pub fn new(name: impl Into<Cow<'static, str>>, max_age: Duration) -> Self {
        Heartbeat {
            cell: Cell::heartbeat(Arc::from(name.into().as_ref()), max_age),
            gates: Gates::LIVENESS,
            critical: true,
        }
    }

    /// The loop is alive.
    ///
    /// One atomic store: no allocation, no lock, nothing to wake; call it as often as the
    /// loop turns.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let heartbeat = tower_health::Heartbeat::new("scheduler", Duration::from_secs(10));
    /// heartbeat.beat();
    /// ```
    #[inline]
    pub fn beat(&self) {
        self.cell.beat();
    }

    /// While it fails, the probes it gates answer 200 with status `warn` instead of 503.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let heartbeat =
    ///     tower_health::Heartbeat::new("metrics-push", Duration::from_secs(60)).non_critical();
    /// # drop(heartbeat);
    /// ```
    pub fn non_critical(mut self) -> Self {
        self.critical = false;
        self
    }

    /// The probes it gates, in place of liveness alone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::{Heartbeat, Probe};
    ///
    /// // A stalled consumer should take the replica out of traffic, not restart it.
    /// let heartbeat =
    ///     Heartbeat::new("consumer", Duration::from_secs(30)).probes([Probe::Readiness]);
    /// # drop(heartbeat);
    /// ```
    pub fn probes(mut self, probes: impl IntoIterator<Item = Probe>) -> Self {
        self.gates = Gates::of(probes);
        self
    }

    /// Its name.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let heartbeat = tower_health::Heartbeat::new("consumer", Duration::from_secs(5));
    /// assert_eq!(heartbeat.name(), "consumer");
    /// ```
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    pub(crate) fn entry(&self) -> Check {
        Check::settable(self.cell.clone(), self.gates, self.critical)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.cell.drop_heartbeat();
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heartbeat")
            .field("name", &self.cell.name)
            .field("critical", &self.critical)
            .field("gates", &self.gates)
            .finish_non_exhaustive()
    }
}
