//! [`Report`]: an owned snapshot of the lifecycle and of every check's last result, and
//! the aggregation of those results into each probe's answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::lifecycle::{Phase, State};
use crate::probe::Probe;

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

/// Which probes a check gates. Readiness only, unless the check asks for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Gates([bool; 3]);

impl Gates {
    pub(crate) const READINESS: Gates = Gates([false, true, false]);
    pub(crate) const NONE: Gates = Gates([false; 3]);

    pub(crate) fn with(mut self, probe: Probe, on: bool) -> Gates {
        self.0[probe.index()] = on;
        self
    }

    pub(crate) fn contains(self, probe: Probe) -> bool {
        self.0[probe.index()]
    }
}

/// A value a check observed, reported as `observedValue` and `observedUnit`. A
/// [`HealthCheck`](crate::HealthCheck) gives one with
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
/// assert_eq!(observed.value(), 17);
/// assert_eq!(observed.unit(), Some("connections"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub(crate) value: serde_json::Value,
    pub(crate) unit: Option<Arc<str>>,
}

impl Observed {
    /// A number or other JSON value with an optional unit (`"ms"`, `"connections"`...).
    pub fn new(value: impl Into<serde_json::Value>, unit: Option<&str>) -> Self {
        Observed {
            value: value.into(),
            unit: unit.map(Arc::from),
        }
    }

    /// The observed value.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// Its unit, if it has one.
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }
}

/// The last result of one check, as it stood when the [`Report`] was taken.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Health, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(Check::new("database", || async { Err("connection refused") }))
///     .build();
/// let report = health.refresh().await;
///
/// let database = report.check("database").unwrap();
/// assert_eq!(database.name(), "database");
/// assert_eq!(database.status(), Status::Fail);
/// assert_eq!(database.output(), Some("connection refused")); // never withheld here
/// assert!(database.is_critical());
/// assert!(database.gates(Probe::Readiness) && !database.gates(Probe::Liveness));
/// assert!(database.time().is_some() && database.duration().is_some());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub(crate) name: Arc<str>,
    pub(crate) status: Status,
    pub(crate) critical: bool,
    pub(crate) gates: Gates,
    pub(crate) time: Option<SystemTime>,
    pub(crate) duration: Option<Duration>,
    pub(crate) observed: Option<Observed>,
    pub(crate) output: Option<Arc<str>>,
}

impl CheckReport {
    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its status after damping; [`Status::Unknown`] until a first run finishes.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether its failure fails the probes it gates (`true`) or only degrades them.
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// Whether it gates `probe`.
    pub fn gates(&self, probe: Probe) -> bool {
        self.gates.contains(probe)
    }

    /// When the last run finished.
    pub fn time(&self) -> Option<SystemTime> {
        self.time
    }

    /// How long the last run took.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// What the check observed, when it reported a value of its own.
    pub fn observed(&self) -> Option<&Observed> {
        self.observed.as_ref()
    }

    /// Why the last run failed or warned: the error's text (at most 1 KiB, marked
    /// ` [cut]` where it was cut), "timed out after N ms" or `panicked: <message>`. Probe
    /// answers show it only where the detail policy allows.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    /// This check's contribution to a probe it gates: a critical failure fails the probe,
    /// a non-critical one only degrades it.
    pub(crate) fn gating_status(&self) -> Status {
        match (self.status, self.critical) {
            (Status::Pass, _) => Status::Pass,
            (Status::Warn, _) | (_, false) => Status::Warn,
            (Status::Fail | Status::Unknown, true) => Status::Fail,
        }
    }
}

/// An owned snapshot of the application's health: the lifecycle and every check's last
/// result. Taken with [`Health::report`](crate::Health::report) (the cached results, at
/// once) or [`Health::refresh`](crate::Health::refresh) (after running every check). It
/// holds the reasons that probe answers may withhold, for the application's own use: a
/// status page, a log line, a metric.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Health, Probe, State, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(Check::new("database", || async { Ok::<(), std::io::Error>(()) }))
///     .build();
///
/// let report = health.refresh().await;
/// assert_eq!(report.state(), State::Starting);
/// assert_eq!(report.status(Probe::Readiness), Status::Fail); // starting
/// assert_eq!(report.status(Probe::Liveness), Status::Pass);
///
/// health.ready();
/// let report = health.report();
/// assert_eq!(report.status(Probe::Readiness), Status::Pass);
/// for check in report.checks() {
///     println!("{}: {}", check.name(), check.status().as_str());
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    pub(crate) phase: Phase,
    pub(crate) checks: Vec<CheckReport>,
}

impl Report {
    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.phase.state()
    }

    /// Whether liveness is not marked failed.
    pub fn is_live(&self) -> bool {
        self.phase.is_live()
    }

    /// Every check, in the order they were registered.
    pub fn checks(&self) -> &[CheckReport] {
        &self.checks
    }

    /// The check called `name`.
    pub fn check(&self, name: &str) -> Option<&CheckReport> {
        self.checks.iter().find(|c| &*c.name == name)
    }

    /// What `probe` answers now (without exclusions): [`Status::Pass`] and
    /// [`Status::Warn`] are 200, [`Status::Fail`] is 503.
    pub fn status(&self, probe: Probe) -> Status {
        verdict(self.phase, probe, self.checks.iter()).status
    }
}

/// Why the lifecycle itself fails a probe, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocker {
    NotLive,
    Starting,
    Draining,
}

impl Blocker {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Blocker::NotLive => "liveness marked failed",
            Blocker::Starting => "starting",
            Blocker::Draining => "draining",
        }
    }
}

/// The lifecycle's part of a probe's answer: the table in the crate docs.
pub(crate) fn lifecycle_blocker(phase: Phase, probe: Probe) -> Option<Blocker> {
    match probe {
        Probe::Liveness => (!phase.is_live()).then_some(Blocker::NotLive),
        Probe::Readiness if !phase.is_live() => Some(Blocker::NotLive),
        Probe::Readiness => match phase.state() {
            State::Starting => Some(Blocker::Starting),
            State::Ready => None,
            State::Draining => Some(Blocker::Draining),
        },
        Probe::Startup => (phase.state() == State::Starting).then_some(Blocker::Starting),
    }
}

/// A probe's aggregate answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) status: Status,
    pub(crate) blocker: Option<Blocker>,
}

/// Aggregates the lifecycle and the checks that gate `probe` (the caller has already left
/// out excluded checks).
pub(crate) fn verdict<'a>(
    phase: Phase,
    probe: Probe,
    checks: impl Iterator<Item = &'a CheckReport>,
) -> Verdict {
    let blocker = lifecycle_blocker(phase, probe);
    let checks = checks
        .filter(|c| c.gates(probe))
        .map(CheckReport::gating_status)
        .max()
        .unwrap_or(Status::Pass);
    let status = if blocker.is_some() {
        Status::Fail
    } else {
        checks
    };
    Verdict { status, blocker }
}

/// A readiness check's report with nothing but its name, status and criticality: what
/// the unit tests of verdicts and statuses build their reports from.
#[cfg(test)]
pub(crate) fn test_check(name: &str, status: Status, critical: bool) -> CheckReport {
    CheckReport {
        name: name.into(),
        status,
        critical,
        gates: Gates::READINESS,
        time: None,
        duration: None,
        observed: None,
        output: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_check as check;

    fn status(state: State, live: bool, probe: Probe, checks: &[CheckReport]) -> Status {
        verdict(Phase::new(state, live), probe, checks.iter()).status
    }

    #[test]
    fn the_lifecycle_table() {
        use Probe::*;
        use State::*;
        use Status::*;
        let none: &[CheckReport] = &[];
        let rows = [
            (Starting, true, [Pass, Fail, Fail]),
            (Ready, true, [Pass, Pass, Pass]),
            (Draining, true, [Pass, Fail, Pass]),
            (Starting, false, [Fail, Fail, Fail]),
            (Ready, false, [Fail, Fail, Pass]),
            (Draining, false, [Fail, Fail, Pass]),
        ];
        for (state, live, want) in rows {
            let got = [Liveness, Readiness, Startup].map(|p| status(state, live, p, none));
            assert_eq!(got, want, "{state:?} live={live}");
        }
    }

    #[test]
    fn critical_failures_fail_and_non_critical_ones_warn() {
        let ready = State::Ready;
        let r = Probe::Readiness;
        let pass = check("a", Status::Pass, true);
        let crit = check("b", Status::Fail, true);
        let soft = check("c", Status::Fail, false);
        let unknown = check("d", Status::Unknown, true);
        let warn = check("e", Status::Warn, true);
        assert_eq!(
            status(ready, true, r, std::slice::from_ref(&pass)),
            Status::Pass
        );
        assert_eq!(
            status(ready, true, r, &[pass.clone(), soft.clone()]),
            Status::Warn
        );
        assert_eq!(status(ready, true, r, &[soft.clone(), crit]), Status::Fail);
        assert_eq!(status(ready, true, r, &[unknown]), Status::Fail);
        assert_eq!(status(ready, true, r, &[warn]), Status::Warn);
        // Readiness checks never touch liveness or startup.
        assert_eq!(status(ready, true, Probe::Liveness, &[soft]), Status::Pass);
    }
}
