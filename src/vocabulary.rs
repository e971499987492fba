//! The words every other module shares, and nothing else: the three probes, the
//! lifecycle's states and the word they are packed into, a check's status, gates, observed
//! value, last result and run outcome, the change events, and the names no check may take.
//!
//! It imports nothing from the crate, so that any module may import it.

use std::fmt;
use std::sync::Arc;

/// The names no check (nor any other named entry) may take, because answers use them for
/// something else: `""` (gRPC health's name of the server as a whole), `liveness`,
/// `readiness` and `startup` (gRPC health's names of the probes; `liveness` is also the
/// liveness flag's line in a verbose answer) and `lifecycle` (the lifecycle's line).
pub(crate) const RESERVED_NAMES: [&str; 5] = [
    "",
    Probe::Liveness.name(),
    Probe::Readiness.name(),
    Probe::Startup.name(),
    LIFECYCLE,
];

/// The name of the lifecycle's own line in verbose answers.
pub(crate) const LIFECYCLE: &str = "lifecycle";

// === probes ===

/// One of the three Kubernetes probes.
///
/// Used to say which probes a check gates
/// ([`Check::probes`](crate::Check::probes)), to ask a [`Report`](crate::Report) what a
/// probe answers, and to name a probe's path ([`Paths::path`](crate::Paths::path)).
///
/// # Example
///
/// ```
/// use tower_health::{Health, Paths, Probe};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder().paths(Paths::health()).build();
/// for probe in Probe::ALL {
///     println!("{probe}: {}", health.paths().path(probe)); // readyz: /health/ready ...
/// }
/// assert_eq!(health.paths().path(Probe::Startup), "/health/started");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// "Is the process alive?" A failure makes the orchestrator restart the container.
    Liveness,
    /// "Should this replica receive traffic?" A failure takes it out of the load balancer.
    Readiness,
    /// "Has start-up finished?" Until it passes, the other two probes are not run.
    Startup,
}

impl Probe {
    /// All three probes, in the order liveness, readiness, startup.
    pub const ALL: [Probe; 3] = [Probe::Liveness, Probe::Readiness, Probe::Startup];

    /// The Kubernetes API server's name for the probe (`livez`, `readyz`, `startupz`), used
    /// in the closing line of text answers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Probe::Liveness => "livez",
            Probe::Readiness => "readyz",
            Probe::Startup => "startupz",
        }
    }

    /// The probe's plain name (`liveness`, `readiness`, `startup`): its gRPC service name,
    /// its metrics label, and a name no check may take.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Probe::Liveness => "liveness",
            Probe::Readiness => "readiness",
            Probe::Startup => "startup",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === the lifecycle ===

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
/// use tower_health::{Health, Lifecycle};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder().build();
/// assert_eq!(health.state(), Lifecycle::Starting);
/// assert!(health.ready());
/// assert_eq!(health.state(), Lifecycle::Ready);
/// assert!(health.start_draining());
/// assert!(!health.ready()); // draining is one-way
/// assert_eq!(health.state(), Lifecycle::Draining);
/// assert!(Lifecycle::Ready < Lifecycle::Draining);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Start-up work is still running: readiness and startup probes fail, liveness passes.
    Starting,
    /// The application has finished starting and serves traffic.
    Ready,
    /// Shutdown has begun: readiness fails so that traffic moves elsewhere, while liveness
    /// and startup keep passing so that the orchestrator does not restart the process.
    Draining,
}

impl Lifecycle {
    /// The state's lower-case name, as it appears in probe answers and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Starting => "starting",
            Lifecycle::Ready => "ready",
            Lifecycle::Draining => "draining",
        }
    }

    /// All three states, in the order they happen.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [Lifecycle; 3] =
        [Lifecycle::Starting, Lifecycle::Ready, Lifecycle::Draining];

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    fn from_bits(bits: u8) -> Lifecycle {
        match bits & STATE_MASK {
            STARTING => Lifecycle::Starting,
            READY => Lifecycle::Ready,
            _ => Lifecycle::Draining,
        }
    }

    #[cfg(test)]
    fn bits(self) -> u8 {
        match self {
            Lifecycle::Starting => STARTING,
            Lifecycle::Ready => READY,
            Lifecycle::Draining => DRAINING,
        }
    }
}

impl fmt::Display for Lifecycle {
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

    pub(crate) fn state(self) -> Lifecycle {
        Lifecycle::from_bits(self.0)
    }

    pub(crate) fn is_live(self) -> bool {
        self.0 & NOT_LIVE == 0
    }

    #[cfg(test)]
    pub(crate) fn new(state: Lifecycle, live: bool) -> Phase {
        Phase(state.bits() | if live { 0 } else { NOT_LIVE })
    }

    /// The word read back from its bits.
    pub(crate) fn from_bits(bits: u8) -> Phase {
        Phase(bits)
    }

    /// `Starting → Ready`, or `None` when that is no transition from here.
    pub(crate) fn to_ready(self) -> Option<Phase> {
        (self.0 & STATE_MASK == STARTING).then_some(Phase((self.0 & !STATE_MASK) | READY))
    }

    /// `Starting | Ready → Draining`, or `None` when already draining.
    pub(crate) fn to_draining(self) -> Option<Phase> {
        (self.0 & STATE_MASK != DRAINING).then_some(Phase((self.0 & !STATE_MASK) | DRAINING))
    }

    /// The liveness flag set to `live`, or `None` when it already is.
    pub(crate) fn with_live(self, live: bool) -> Option<Phase> {
        let next = if live {
            self.0 & !NOT_LIVE
        } else {
            self.0 | NOT_LIVE
        };
        (next != self.0).then_some(Phase(next))
    }
}

// === checks ===

/// The outcome of a check, or of a probe as a whole.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Health, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(Check::new("cache", || async { Err("down") }).non_critical())
///     .build();
/// health.ready();
/// let report = health.refresh().await;
///
/// let readiness = report.status(Probe::Readiness);
/// assert_eq!(readiness, Status::Warn); // a non-critical check failed
/// assert!(readiness.is_passing()); // so the probe still answers 200
/// assert_eq!(readiness.as_str(), "warn"); // as its JSON body says
/// assert_eq!(readiness.to_string(), "warn");
/// assert_eq!(Status::Unknown.to_string(), "unknown"); // no run yet; JSON writes `fail`
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Healthy.
    Pass,
    /// Working, but degraded: the probe still answers 200.
    Warn,
    /// Not healthy: a probe that this gates answers 503.
    Fail,
    /// The check has not finished a run yet; it gates like [`Status::Fail`].
    Unknown,
}

impl Status {
    /// The name used in `application/health+json` bodies: `pass`, `warn` or `fail`
    /// ([`Status::Unknown`] is written as `fail`, since the format has no other word).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail | Status::Unknown => "fail",
        }
    }

    /// Whether a probe with this status answers 2xx.
    pub fn is_passing(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

impl fmt::Display for Status {
    /// `pass`, `warn`, `fail` or `unknown` (unlike [`Status::as_str`], which writes
    /// [`Status::Unknown`] as `fail`, as the JSON format has it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Unknown => "unknown",
            status => status.as_str(),
        })
    }
}

/// Which probes a check gates. Readiness only, unless the check asks for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Gates([bool; 3]);

impl Gates {
    pub(crate) const READINESS: Gates = Gates([false, true, false]);
    pub(crate) const LIVENESS: Gates = Gates([true, false, false]);
    pub(crate) const STARTUP_AND_READINESS: Gates = Gates([false, true, true]);
    pub(crate) const NONE: Gates = Gates([false; 3]);

    /// Exactly these probes: what `probes([..])` of a check, a switch or a heartbeat sets.
    pub(crate) fn of(probes: impl IntoIterator<Item = Probe>) -> Gates {
        probes
            .into_iter()
            .fold(Gates::NONE, |gates, probe| gates.with(probe, true))
    }

    pub(crate) fn with(mut self, probe: Probe, on: bool) -> Gates {
        self.0[probe.index()] = on;
        self
    }

    pub(crate) fn contains(self, probe: Probe) -> bool {
        self.0[probe.index()]
    }
}

/// A value a check observed, reported as `observedValue` and `observedUnit`.
///
/// A [`HealthCheck`](crate::HealthCheck) gives one with
/// [`Outcome::observed`](crate::Outcome::observed); otherwise a check reports the
/// duration of its run in milliseconds.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Health, HealthCheck, Outcome};
///
/// struct Connections;
///
/// impl HealthCheck for Connections {
///     async fn check(&self) -> Outcome {
///         Outcome::pass().observed(17, Some("connections"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(Check::from_health_check("pool", Connections))
///     .build();
/// let report = health.refresh().await;
/// let observed = report.check("pool").unwrap().observed().unwrap();
/// assert_eq!(observed.value().as_i64(), Some(17));
/// assert_eq!(observed.unit(), Some("connections"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub(crate) value: ObservedValue,
    pub(crate) unit: Option<Arc<str>>,
}

impl Observed {
    /// A number, a flag or a short text, with an optional unit (`"ms"`,
    /// `"connections"`...).
    pub fn new(value: impl Into<ObservedValue>, unit: Option<&str>) -> Self {
        Observed {
            value: value.into(),
            unit: unit.map(Arc::from),
        }
    }

    /// The observed value.
    pub fn value(&self) -> &ObservedValue {
        &self.value
    }

    /// Its unit, if it has one.
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }
}

/// The value of an [`Observed`]: what `observedValue` holds in a JSON answer.
///
/// Made with `From` from any integer, float, `bool`, `&str` or `String`.
///
/// ```
/// use tower_health::ObservedValue;
///
/// assert_eq!(ObservedValue::from(17u32), ObservedValue::Integer(17));
/// assert_eq!(ObservedValue::from(0.25).as_f64(), Some(0.25));
/// assert_eq!(ObservedValue::from("primary").as_str(), Some("primary"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObservedValue {
    /// A whole number that fits an `i64`.
    Integer(i64),
    /// A whole number above `i64::MAX`.
    Unsigned(u64),
    /// A number with a fraction; one that is not finite is written as JSON `null`.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A short text (the role of a replica, a version...).
    Text(Arc<str>),
}

impl ObservedValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ObservedValue::Integer(n) => Some(n as f64),
            ObservedValue::Unsigned(n) => Some(n as f64),
            ObservedValue::Float(n) => Some(n),
            ObservedValue::Bool(_) | ObservedValue::Text(_) => None,
        }
    }

    /// The value as a whole number, if it is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ObservedValue::Integer(n) => Some(n),
            _ => None,
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ObservedValue::Text(text) => Some(text),
            _ => None,
        }
    }
}

macro_rules! observed_from {
    ($variant:ident as $as:ty: $($from:ty),*) => {
        $(impl From<$from> for ObservedValue {
            fn from(value: $from) -> Self {
                ObservedValue::$variant(<$as>::from(value))
            }
        })*
    };
}

observed_from!(Integer as i64: i8, i16, i32, i64, u8, u16, u32);
observed_from!(Float as f64: f32, f64);
observed_from!(Bool as bool: bool);

impl From<u64> for ObservedValue {
    fn from(value: u64) -> Self {
        match i64::try_from(value) {
            Ok(n) => ObservedValue::Integer(n),
            Err(_) => ObservedValue::Unsigned(value),
        }
    }
}

impl From<usize> for ObservedValue {
    fn from(value: usize) -> Self {
        ObservedValue::from(value as u64)
    }
}

impl From<isize> for ObservedValue {
    fn from(value: isize) -> Self {
        ObservedValue::Integer(value as i64)
    }
}

impl From<&str> for ObservedValue {
    fn from(value: &str) -> Self {
        ObservedValue::Text(Arc::from(value))
    }
}

impl From<String> for ObservedValue {
    fn from(value: String) -> Self {
        ObservedValue::Text(Arc::from(value))
    }
}

/// What a line of a [`Report`](crate::Report) (and of a verbose answer) is: a check
/// that the layer runs, or a signal whose status the application sets itself.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Gate, Health, CheckKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let migrations = Gate::new("migrations");
/// let health = Health::builder()
///     .check(Check::new("database", || async { Ok::<(), std::io::Error>(()) }))
///     .gate(&migrations)
///     .build();
/// let report = health.report();
/// assert_eq!(report.check("database").unwrap().kind(), CheckKind::Check);
/// assert_eq!(report.check("migrations").unwrap().kind(), CheckKind::Gate);
/// assert_eq!(CheckKind::Gate.as_str(), "gate");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckKind {
    /// A [`Check`](crate::Check): a question the layer asks a dependency, cached.
    Check,
    /// A [`Gate`](crate::Gate): a start-up step, closed until the application opens it.
    Gate,
    /// A [`Switch`](crate::Switch): a status the application sets and may set again.
    Switch,
    /// A [`Heartbeat`](crate::Heartbeat): fails when its loop stops beating.
    ///
    /// It is also the kind of the wedge detector's line, whose beats are response heads
    /// ([`Builder::liveness_fails_when_stuck`](crate::Builder::liveness_fails_when_stuck)).
    Heartbeat,
}

impl CheckKind {
    /// The kind's lower-case name: `check`, `gate`, `switch` or `heartbeat` (the
    /// `componentType` of a JSON answer's entry).
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Check => "check",
            CheckKind::Gate => "gate",
            CheckKind::Switch => "switch",
            CheckKind::Heartbeat => "heartbeat",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run of a check ended, as metrics and traces name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    Pass,
    Warn,
    Fail,
    Timeout,
    Panic,
}

impl RunOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Pass => "pass",
            RunOutcome::Warn => "warn",
            RunOutcome::Fail => "fail",
            RunOutcome::Timeout => "timeout",
            RunOutcome::Panic => "panic",
        }
    }
}
