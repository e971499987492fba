//! [`Report`]: an owned snapshot of the lifecycle and of every check's last result, and
//! the aggregation of those results into each probe's answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::vocabulary::{
    CheckKind, Gates, Lifecycle, Observed, ObservedValue, Phase, Probe, Status,
};

/// An owned snapshot of the application's health: the lifecycle and every check's last
/// result.
///
/// Taken with [`Health::report`](crate::Health::report) (the cached results, at
/// once) or [`Health::refresh`](crate::Health::refresh) (after running every check). It
/// holds the reasons that probe answers may withhold, for the application's own use: a
/// status page, a log line, a metric.
///
/// # Example
///
/// ```
/// use tower_health::{Check, Health, Probe, Lifecycle, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(Check::new("database", || async { Ok::<(), std::io::Error>(()) }))
///     .build();
///
/// let report = health.refresh().await;
/// assert_eq!(report.state(), Lifecycle::Starting);
/// assert_eq!(report.status(Probe::Readiness), Status::Fail); // starting
/// assert_eq!(report.status(Probe::Liveness), Status::Pass);
///
/// health.ready();
/// let report = health.report();
/// assert_eq!(report.status(Probe::Readiness), Status::Pass);
/// for check in report.checks() {
///     println!("{}: {}", check.name(), check.status().as_str());
/// }
///
/// // Serialize, for a status page or a log line of the application's own.
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["state"], "ready");
/// assert_eq!(json["readiness"], "pass");
/// assert_eq!(json["checks"][0]["name"], "database");
/// assert_eq!(json["checks"][0]["status"], "pass");
/// assert_eq!(json["checks"][0]["probes"], serde_json::json!(["readiness"]));
/// assert!(json["checks"][0]["durationMs"].is_number());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    pub(crate) phase: Phase,
    pub(crate) checks: Vec<CheckReport>,
    /// Who holds the shutdown open, while draining; empty otherwise.
    pub(crate) drain_holders: Vec<DrainHolder>,
}

/// A name under which [`DrainGuard`](crate::DrainGuard)s hold the shutdown open, as the
/// answers show it while the drain runs.
#[derive(Debug, Clone)]
pub(crate) struct DrainHolder {
    pub(crate) name: String,
    pub(crate) count: usize,
    /// `drain:NAME`, the entry's name: apart from every check's, since no check's name
    /// holds a `:`.
    pub(crate) entry: String,
    /// What the entry says: `holds the shutdown open (N guards)`.
    pub(crate) text: String,
}

impl DrainHolder {
    pub(crate) fn new(name: String, count: usize) -> DrainHolder {
        let guards = if count == 1 { "guard" } else { "guards" };
        DrainHolder {
            entry: format!("drain:{name}"),
            text: format!("holds the shutdown open ({count} {guards})"),
            name,
            count,
        }
    }
}

impl serde::Serialize for Report {
    /// An object: `state`, `live`, `readiness` (what the probe answers: `pass`, `warn` or
    /// `fail`), `checks` (each a [`CheckReport`]) and, while draining, `drainHolders`
    /// (`name` and `guards`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        struct Holders<'a>(&'a [DrainHolder]);
        impl serde::Serialize for Holders<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq as _;
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for holder in self.0 {
                    let mut one = std::collections::BTreeMap::new();
                    one.insert("name", serde_json::Value::from(holder.name.as_str()));
                    one.insert("guards", serde_json::Value::from(holder.count));
                    seq.serialize_element(&one)?;
                }
                seq.end()
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("state", self.state().as_str())?;
        map.serialize_entry("live", &self.is_live())?;
        map.serialize_entry("readiness", self.status(Probe::Readiness).as_str())?;
        map.serialize_entry("checks", &self.checks)?;
        if !self.drain_holders.is_empty() {
            map.serialize_entry("drainHolders", &Holders(&self.drain_holders))?;
        }
        map.end()
    }
}

impl Report {
    /// The lifecycle state.
    pub fn state(&self) -> Lifecycle {
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

    /// While draining, who still holds the shutdown open: each drain guard's name with the
    /// number of guards taken under it.
    ///
    /// The names are those given to [`Health::drain_guard`](crate::Health::drain_guard),
    /// in the order they were first taken. Empty unless draining.
    pub fn drain_holders(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.drain_holders
            .iter()
            .map(|h| (h.name.as_str(), h.count))
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
            Lifecycle::Starting => Some(Blocker::Starting),
            Lifecycle::Ready => None,
            Lifecycle::Draining => Some(Blocker::Draining),
        },
        Probe::Startup => (phase.state() == Lifecycle::Starting).then_some(Blocker::Starting),
    }
}

/// Whether `check`, a liveness entry that does not gate `probe`, fails `probe` anyway:
/// readiness fails while a critical liveness entry fails (a wedge, a late heartbeat, a
/// liveness check), so that a pod about to be restarted leaves the Service first. An entry
/// with no result yet (`unknown`) does not: that is liveness's own business.
pub(crate) fn fails_liveness(check: &CheckReport, probe: Probe) -> bool {
    probe == Probe::Readiness
        && check.gates(Probe::Liveness)
        && check.is_critical()
        && check.status() == Status::Fail
}

/// A probe's aggregate answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) status: Status,
    pub(crate) blocker: Option<Blocker>,
}

/// Aggregates the lifecycle and the checks that count for `probe` (the caller has already
/// left out excluded checks; this picks those that count).
pub(crate) fn verdict<'a>(
    phase: Phase,
    probe: Probe,
    checks: impl Iterator<Item = &'a CheckReport>,
) -> Verdict {
    let blocker = lifecycle_blocker(phase, probe);
    let checks = checks
        .filter_map(|c| {
            if c.gates(probe) {
                Some(c.gating_status())
            } else {
                fails_liveness(c, probe).then_some(Status::Fail)
            }
        })
        .max()
        .unwrap_or(Status::Pass);
    let status = if blocker.is_some() {
        Status::Fail
    } else {
        checks
    };
    Verdict { status, blocker }
}

// === impl CheckReport ===

/// The last result of one check, as it stood when the [`Report`](crate::Report) was taken.
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
    pub(crate) kind: CheckKind,
    pub(crate) status: Status,
    pub(crate) critical: bool,
    pub(crate) gates: Gates,
    pub(crate) time: Option<SystemTime>,
    pub(crate) duration: Option<Duration>,
    pub(crate) observed: Option<Observed>,
    pub(crate) output: Option<Arc<str>>,
}

impl serde::Serialize for CheckReport {
    /// An object: `name`, `kind`, `status` (`unknown` before a first result), `critical`,
    /// `probes` (the names of those it gates), and, when known, `time` (RFC 3339),
    /// `durationMs`, `observedValue`, `observedUnit` and `output` (the reason, which the
    /// application may read even where probes withhold it).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &*self.name)?;
        map.serialize_entry("kind", self.kind.as_str())?;
        map.serialize_entry("status", &self.status.to_string())?;
        map.serialize_entry("critical", &self.critical)?;
        let probes: Vec<&str> = Probe::ALL
            .into_iter()
            .filter(|p| self.gates.contains(*p))
            .map(Probe::name)
            .collect();
        map.serialize_entry("probes", &probes)?;
        if let Some(time) = self.time {
            let time = humantime::format_rfc3339_millis(time).to_string();
            map.serialize_entry("time", &time)?;
        }
        if let Some(duration) = self.duration {
            map.serialize_entry("durationMs", &(duration.as_secs_f64() * 1000.0))?;
        }
        if let Some(observed) = &self.observed {
            match &observed.value {
                ObservedValue::Integer(n) => map.serialize_entry("observedValue", n)?,
                ObservedValue::Unsigned(n) => map.serialize_entry("observedValue", n)?,
                ObservedValue::Float(x) => map.serialize_entry("observedValue", x)?,
                ObservedValue::Bool(b) => map.serialize_entry("observedValue", b)?,
                ObservedValue::Text(t) => map.serialize_entry("observedValue", &**t)?,
            }
            if let Some(unit) = &observed.unit {
                map.serialize_entry("observedUnit", &**unit)?;
            }
        }
        if let Some(output) = &self.output {
            map.serialize_entry("output", &**output)?;
        }
        map.end()
    }
}

impl CheckReport {
    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is: a check the layer runs, or a gate, switch or heartbeat the application
    /// sets.
    pub fn kind(&self) -> CheckKind {
        self.kind
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

    /// Why the last run failed or warned.
    ///
    /// It is the error's text (at most 1 KiB, marked ` [cut]` where it was cut), "timed
    /// out after N ms" or `panicked: <message>`. Probe answers show it only where the
    /// detail policy allows.
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

/// A readiness check's report with nothing but its name, status and criticality: what
/// the unit tests of verdicts and statuses build their reports from.
#[cfg(test)]
pub(crate) fn test_check(name: &str, status: Status, critical: bool) -> CheckReport {
    CheckReport {
        kind: CheckKind::Check,
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

    fn status(state: Lifecycle, live: bool, probe: Probe, checks: &[CheckReport]) -> Status {
        verdict(Phase::new(state, live), probe, checks.iter()).status
    }

    #[test]
    fn the_lifecycle_table() {
        use Lifecycle::*;
        use Probe::*;
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
        let ready = Lifecycle::Ready;
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

    fn liveness_entry(name: &str, status: Status, critical: bool) -> CheckReport {
        CheckReport {
            gates: Gates::LIVENESS,
            ..check(name, status, critical)
        }
    }

    #[test]
    fn a_failing_critical_liveness_entry_fails_readiness_too_and_nothing_else_does() {
        use Probe::*;
        let ready = Lifecycle::Ready;
        let failing = liveness_entry("requests", Status::Fail, true);
        assert_eq!(
            status(ready, true, Liveness, std::slice::from_ref(&failing)),
            Status::Fail
        );
        assert_eq!(
            status(ready, true, Readiness, std::slice::from_ref(&failing)),
            Status::Fail
        );
        assert_eq!(
            status(ready, true, Startup, std::slice::from_ref(&failing)),
            Status::Pass
        );
        // No result yet, non-critical, or passing: readiness does not follow.
        for entry in [
            liveness_entry("cold", Status::Unknown, true),
            liveness_entry("soft", Status::Fail, false),
            liveness_entry("fine", Status::Pass, true),
        ] {
            let name = entry.name.clone();
            assert_eq!(
                status(ready, true, Readiness, &[entry]),
                Status::Pass,
                "{name}"
            );
        }
    }
}
