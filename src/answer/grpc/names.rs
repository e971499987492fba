//! Which service names gRPC health knows, what each one stands for, and the status of
//! each, computed once per change of the lifecycle or of a check's result.

use std::borrow::Cow;

use super::messages::ServingStatus;
use crate::cache::KeyedCache;
use crate::check::Report;
use crate::error::BuildProblem;
use crate::vocabulary::Probe;

/// The names that stand for a probe, besides the application's own services.
const PROBE_NAMES: [(&str, Probe); 4] = [
    ("", Probe::Readiness),
    (Probe::Liveness.name(), Probe::Liveness),
    (Probe::Readiness.name(), Probe::Readiness),
    (Probe::Startup.name(), Probe::Startup),
];

/// What a service name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A probe's verdict: `""`, `liveness`, `readiness`, `startup`, or an application
    /// service mapped to a probe.
    Probe(Probe),
    /// One check alone, by its index.
    Check(usize),
    /// A name nobody registered.
    Unknown,
}

/// The application's gRPC services, each mapped to the probe that stands for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Services {
    by_name: Vec<(Cow<'static, str>, Probe)>,
}

impl Services {
    pub(crate) fn add(&mut self, name: Cow<'static, str>, probe: Probe) {
        self.by_name.push((name, probe));
    }

    /// Why these names cannot be used, each problem pushed to `problems`: an empty name,
    /// one with a `/` or anything but visible ASCII, one that a probe or a check already
    /// has, or a name given twice.
    pub(crate) fn validate<'a>(
        &self,
        checks: impl Iterator<Item = &'a str> + Clone,
        problems: &mut Vec<BuildProblem>,
    ) {
        for (i, (name, _)) in self.by_name.iter().enumerate() {
            let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
            let problem = if !valid {
                BuildProblem::InvalidGrpcService {
                    name: name.to_string(),
                }
            } else if PROBE_NAMES.iter().any(|(probe, _)| probe == name) {
                BuildProblem::GrpcServiceIsProbe {
                    name: name.to_string(),
                }
            } else if checks.clone().any(|check| check == name) {
                BuildProblem::GrpcServiceIsCheck {
                    name: name.to_string(),
                }
            } else if self.by_name[..i].iter().any(|(other, _)| other == name) {
                BuildProblem::DuplicateGrpcService {
                    name: name.to_string(),
                }
            } else {
                continue;
            };
            problems.push(problem);
        }
    }

    /// What `name` stands for; `check` finds a check by name.
    pub(crate) fn resolve(&self, name: &str, check: impl FnOnce(&str) -> Option<usize>) -> Target {
        if let Some((_, probe)) = PROBE_NAMES.iter().find(|(known, _)| *known == name) {
            return Target::Probe(*probe);
        }
        if let Some((_, probe)) = self.by_name.iter().find(|(known, _)| known == name) {
            return Target::Probe(*probe);
        }
        match check(name) {
            Some(index) => Target::Check(index),
            None => Target::Unknown,
        }
    }

    /// Every name with what it stands for, in the order List shows them: the probes,
    /// the application's services, then the checks.
    pub(crate) fn all<'a>(
        &'a self,
        checks: impl Iterator<Item = &'a str> + 'a,
    ) -> impl Iterator<Item = (&'a str, Target)> + 'a {
        PROBE_NAMES
            .iter()
            .map(|(name, probe)| (*name, Target::Probe(*probe)))
            .chain(
                self.by_name
                    .iter()
                    .map(|(name, probe)| (name.as_ref(), Target::Probe(*probe))),
            )
            .chain(
                checks
                    .enumerate()
                    .map(|(index, name)| (name, Target::Check(index))),
            )
    }
}

/// The status of every target at one moment, computed from a [`Report`] once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statuses {
    draining: bool,
    probes: [bool; 3],
    checks: Box<[bool]>,
}

impl Statuses {
    pub(crate) fn new(report: &Report) -> Statuses {
        Statuses {
            draining: report.state() == crate::Lifecycle::Draining,
            probes: Probe::ALL.map(|probe| report.status(probe).is_passing()),
            checks: report
                .checks()
                .iter()
                .map(|check| check.status().is_passing())
                .collect(),
        }
    }

    /// The status of `target`: `SERVING` when it passes (pass or warn), `NOT_SERVING`
    /// otherwise and for every known name while draining, `SERVICE_UNKNOWN` for a name
    /// nobody registered.
    pub(crate) fn of(&self, target: Target) -> ServingStatus {
        let passing = match target {
            Target::Unknown => return ServingStatus::ServiceUnknown,
            _ if self.draining => false,
            Target::Probe(probe) => self.probes[probe.index()],
            Target::Check(index) => self.checks.get(index).copied().unwrap_or(false),
        };
        if passing {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    }
}

/// [`Statuses`] for the lifecycle phase and check-status generation they were computed
/// from, computed again only when one of them moves.
#[derive(Debug, Default)]
pub(crate) struct StatusCache(KeyedCache<(u8, u64), Statuses>);

impl StatusCache {
    /// `f` of the statuses for `key`, computed from `report` when the cached ones are for
    /// another key.
    pub(crate) fn with<R>(
        &self,
        key: (u8, u64),
        report: impl FnOnce() -> Report,
        f: impl FnOnce(&Statuses) -> R,
    ) -> R {
        f(&self.0.get(key, || Statuses::new(&report())).value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::test_check as check;
    use crate::vocabulary::{Phase, Status};
    use crate::Lifecycle;

    use ServingStatus::{NotServing, ServiceUnknown, Serving};

    fn services() -> Services {
        let mut services = Services::default();
        services.add("helloworld.Greeter".into(), Probe::Readiness);
        services.add("ops.Admin".into(), Probe::Liveness);
        services
    }

    const CHECKS: [&str; 2] = ["db", "cache"];

    fn resolve(name: &str) -> Target {
        services().resolve(name, |n| CHECKS.iter().position(|c| *c == n))
    }

    #[test]
    fn names_resolve_to_probes_checks_and_services() {
        assert_eq!(resolve(""), Target::Probe(Probe::Readiness));
        assert_eq!(resolve("readiness"), Target::Probe(Probe::Readiness));
        assert_eq!(resolve("liveness"), Target::Probe(Probe::Liveness));
        assert_eq!(resolve("startup"), Target::Probe(Probe::Startup));
        assert_eq!(
            resolve("helloworld.Greeter"),
            Target::Probe(Probe::Readiness)
        );
        assert_eq!(resolve("ops.Admin"), Target::Probe(Probe::Liveness));
        assert_eq!(resolve("db"), Target::Check(0));
        assert_eq!(resolve("cache"), Target::Check(1));
        for unknown in ["x", "Liveness", "db ", "helloworld.greeter", "/"] {
            assert_eq!(resolve(unknown), Target::Unknown, "{unknown:?}");
        }
        let services = services();
        let all: Vec<_> = services.all(CHECKS.into_iter()).collect();
        let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "",
                "liveness",
                "readiness",
                "startup",
                "helloworld.Greeter",
                "ops.Admin",
                "db",
                "cache"
            ]
        );
        for (name, target) in all {
            assert_eq!(resolve(name), target, "{name:?}");
        }
    }

    #[test]
    fn bad_service_names_are_refused_with_the_reason() {
        let cases = [
            ("", "must be non-empty"),
            ("a/b", "without '/'"),
            ("a b", "visible ASCII"),
            ("liveness", "is the name of a probe"),
            ("db", "is the name of a check"),
            ("helloworld.Greeter", "is mapped twice"),
        ];
        for (name, reason) in cases {
            let mut services = services();
            services.add(name.into(), Probe::Readiness);
            let mut problems = Vec::new();
            services.validate(CHECKS.into_iter(), &mut problems);
            assert_eq!(problems.len(), 1, "{name:?}: {problems:?}");
            let error = problems[0].to_string();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
        let mut problems = Vec::new();
        services().validate(CHECKS.into_iter(), &mut problems);
        assert_eq!(problems, []);
    }

    #[test]
    fn no_check_may_take_a_name_that_stands_for_a_probe() {
        for (name, _) in PROBE_NAMES {
            assert!(
                crate::vocabulary::RESERVED_NAMES.contains(&name),
                "{name:?}"
            );
        }
    }

    /// Liveness, readiness, startup, db (critical), cache (non-critical), an unknown name.
    fn row(state: Lifecycle, live: bool, db: Status, cache: Status) -> [ServingStatus; 6] {
        let report = Report {
            phase: Phase::new(state, live),
            checks: vec![check("db", db, true), check("cache", cache, false)],
            drain_holders: Vec::new(),
        };
        let statuses = Statuses::new(&report);
        [
            Target::Probe(Probe::Liveness),
            Target::Probe(Probe::Readiness),
            Target::Probe(Probe::Startup),
            Target::Check(0),
            Target::Check(1),
            Target::Unknown,
        ]
        .map(|target| statuses.of(target))
    }

    #[test]
    fn statuses_follow_the_probes_and_draining_fails_every_name() {
        use Lifecycle::{Draining, Ready, Starting};
        use Status::{Fail, Pass, Unknown, Warn};
        let rows = [
            // state, live, db, cache: liveness, readiness, startup, db, cache, unknown
            (
                Starting,
                true,
                Unknown,
                Unknown,
                [
                    Serving,
                    NotServing,
                    NotServing,
                    NotServing,
                    NotServing,
                    ServiceUnknown,
                ],
            ),
            (
                Starting,
                true,
                Pass,
                Pass,
                [
                    Serving,
                    NotServing,
                    NotServing,
                    Serving,
                    Serving,
                    ServiceUnknown,
                ],
            ),
            (
                Ready,
                true,
                Pass,
                Pass,
                [Serving, Serving, Serving, Serving, Serving, ServiceUnknown],
            ),
            (
                Ready,
                true,
                Fail,
                Pass,
                [
                    Serving,
                    NotServing,
                    Serving,
                    NotServing,
                    Serving,
                    ServiceUnknown,
                ],
            ),
            (
                Ready,
                true,
                Pass,
                Fail,
                [
                    Serving,
                    Serving,
                    Serving,
                    Serving,
                    NotServing,
                    ServiceUnknown,
                ],
            ),
            (
                Ready,
                true,
                Warn,
                Warn,
                [Serving, Serving, Serving, Serving, Serving, ServiceUnknown],
            ),
            (
                Ready,
                false,
                Pass,
                Pass,
                [
                    NotServing,
                    NotServing,
                    Serving,
                    Serving,
                    Serving,
                    ServiceUnknown,
                ],
            ),
            (
                Draining,
                true,
                Pass,
                Pass,
                [
                    NotServing,
                    NotServing,
                    NotServing,
                    NotServing,
                    NotServing,
                    ServiceUnknown,
                ],
            ),
        ];
        for (state, live, db, cache, expected) in rows {
            assert_eq!(
                row(state, live, db, cache),
                expected,
                "{state:?} live={live} db={db:?} cache={cache:?}"
            );
        }
    }
}
