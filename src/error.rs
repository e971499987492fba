//! [`BuildError`]: why a configuration cannot be built, every problem of it at once.

use std::fmt;

use crate::vocabulary::Probe;

/// Why [`Builder::try_build`](crate::Builder::try_build) refused a configuration: every
/// problem found in it, not only the first, so that one look fixes them all.
///
/// Its `Display` is the problems, separated by `; `, each saying which name or path is
/// wrong and why; [`Builder::build`](crate::Builder::build) panics with the same text.
///
/// # Example
///
/// ```
/// use tower_health::{BuildProblem, Check, Health, Paths};
///
/// let ok = || async { Ok::<(), std::io::Error>(()) };
/// let error = Health::builder()
///     .check(Check::new("readiness", ok))
///     .paths(Paths::kubernetes().readiness("/livez"))
///     .try_build()
///     .unwrap_err();
/// assert_eq!(error.problems().len(), 2);
/// assert!(matches!(
///     &error.problems()[1],
///     BuildProblem::ReservedCheckName { name } if name == "readiness"
/// ));
/// assert!(error.to_string().contains("\"readiness\" is reserved"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildError {
    problems: Vec<BuildProblem>,
}

impl BuildError {
    /// `None` when there is no problem.
    pub(crate) fn from_problems(problems: Vec<BuildProblem>) -> Option<BuildError> {
        (!problems.is_empty()).then_some(BuildError { problems })
    }

    /// Every problem found, in the order of the configuration: paths, checks, gRPC
    /// service names.
    pub fn problems(&self) -> &[BuildProblem] {
        &self.problems
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            fmt::Display::fmt(problem, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}

/// One problem of a configuration, with the name or path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildProblem {
    /// A probe path that does not start with `/`, ends with `/`, or holds anything but
    /// visible ASCII, or `?` or `#`.
    InvalidPath {
        /// The probe it was given for.
        probe: Probe,
        /// The path.
        path: String,
    },
    /// Two probes given the same path.
    SharedPath {
        /// One probe.
        first: Probe,
        /// The other.
        second: Probe,
        /// The path they share.
        path: String,
    },
    /// A check name that is empty or holds anything but ASCII letters, digits, `-`, `_`
    /// and `.`.
    InvalidCheckName {
        /// The name.
        name: String,
    },
    /// A check name that answers already use for something else.
    ///
    /// The names are `liveness` and `lifecycle` (the entries of the liveness flag and the
    /// lifecycle in a probe answer), `readiness` and `startup` (with `liveness`, gRPC
    /// health's names of the probes).
    ReservedCheckName {
        /// The name.
        name: String,
    },
    /// Two checks with one name.
    DuplicateCheckName {
        /// The name.
        name: String,
    },
    /// A gRPC service name that is empty, or holds `/` or anything but visible ASCII.
    InvalidGrpcService {
        /// The name.
        name: String,
    },
    /// A gRPC service name that gRPC health already gives to a probe (`""`,
    /// `liveness`, `readiness`, `startup`).
    GrpcServiceIsProbe {
        /// The name.
        name: String,
    },
    /// A gRPC service name that is a check's name.
    GrpcServiceIsCheck {
        /// The name.
        name: String,
    },
    /// A gRPC service name mapped twice.
    DuplicateGrpcService {
        /// The name.
        name: String,
    },
    /// A [`Gate`](crate::Gate), [`Switch`](crate::Switch) or
    /// [`Heartbeat`](crate::Heartbeat) that another `Health` was already built with: each
    /// belongs to one.
    SignalInUse {
        /// Its name.
        name: String,
    },
    /// A path prefix given to [`Builder::stuck_exempt_paths`](crate::Builder::stuck_exempt_paths)
    /// that does not start with `/` or holds anything but visible ASCII.
    InvalidStuckExemptPath {
        /// The prefix.
        path: String,
    },
    /// A check whose [timeout](crate::Check::timeout) is longer than the
    /// [budget](crate::Builder::budget), which no run may outlast.
    ///
    /// Raise the budget (and the probes' `timeoutSeconds`) or shorten the timeout.
    TimeoutOverBudget {
        /// The check's name.
        name: String,
        /// Its timeout.
        timeout: std::time::Duration,
        /// The budget.
        budget: std::time::Duration,
    },
    /// A check or switch marked [shared](crate::Check::shared) that does not gate
    /// readiness: the fleet is asked about what readiness shows.
    SharedWithoutReadiness {
        /// Its name.
        name: String,
    },
}

impl fmt::Display for BuildProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildProblem::InvalidPath { probe, path } => write!(
                f,
                "the {probe} path {path:?} must start with '/', not end with '/', and hold \
                 only visible ASCII without '?' or '#'"
            ),
            BuildProblem::SharedPath {
                first,
                second,
                path,
            } => write!(f, "the {first} and {second} probes share the path {path:?}"),
            BuildProblem::InvalidCheckName { name } => write!(
                f,
                "the check name {name:?} must be non-empty ASCII letters, digits, '-', '_' \
                 or '.'"
            ),
            BuildProblem::ReservedCheckName { name } => write!(
                f,
                "the check name {name:?} is reserved: answers use \"liveness\", \"readiness\", \
                 \"startup\" and \"lifecycle\" for the probes and the lifecycle"
            ),
            BuildProblem::DuplicateCheckName { name } => {
                write!(f, "two checks are named {name:?}")
            }
            BuildProblem::InvalidGrpcService { name } => write!(
                f,
                "the gRPC service name {name:?} must be non-empty visible ASCII without '/'"
            ),
            BuildProblem::GrpcServiceIsProbe { name } => {
                write!(f, "the gRPC service name {name:?} is the name of a probe")
            }
            BuildProblem::GrpcServiceIsCheck { name } => {
                write!(f, "the gRPC service name {name:?} is the name of a check")
            }
            BuildProblem::DuplicateGrpcService { name } => {
                write!(f, "the gRPC service {name:?} is mapped twice")
            }
            BuildProblem::SignalInUse { name } => write!(
                f,
                "{name:?} (a gate, switch or heartbeat) already belongs to another Health"
            ),
            BuildProblem::InvalidStuckExemptPath { path } => write!(
                f,
                "the path prefix {path:?} left out of the wedge detector must start with '/' \
                 and hold only visible ASCII"
            ),
            BuildProblem::TimeoutOverBudget {
                name,
                timeout,
                budget,
            } => write!(
                f,
                "the check {name:?} has a timeout of {} ms, over the budget of {} ms that no \
                 run may outlast: raise the budget (Builder::budget, with the probes' \
                 timeoutSeconds) or shorten the timeout",
                timeout.as_millis(),
                budget.as_millis()
            ),
            BuildProblem::SharedWithoutReadiness { name } => write!(
                f,
                "{name:?} is shared by the fleet but does not gate readiness, which is what \
                 the fleet is asked about"
            ),
        }
    }
}
