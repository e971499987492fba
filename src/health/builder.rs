//! [`Builder`]: the configuration of a [`Health`](crate::Health), validated once when it is
//! built.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Health;
use crate::answer::matching::{Matcher, Paths};
use crate::answer::request::Reasons;
use crate::answer::shared::{Options, Shared};
use crate::check::{Cell, Check, Engine, Gate, Heartbeat, Switch};
use crate::error::{BuildError, BuildProblem};
use crate::lifecycle::LifecycleWatch;
use crate::observe::Observer;
use crate::vocabulary::{Gates, Probe};

const DEFAULT_BUDGET: Duration = Duration::from_millis(900);
const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// Configures a [`Health`](crate::Health).
///
/// Made by [`Health::builder`](crate::Health::builder).
///
/// Every setting has a default that suits a Kubernetes service, so a builder with nothing
/// but its checks is a good start; [`build`](Builder::build) checks the whole
/// configuration once and panics on a mistake (two checks with one name, a path that is
/// not a path), so that it shows at start-up rather than in a probe answer. For a
/// configuration read at run time (paths from the environment, check names from a file),
/// [`try_build`](Builder::try_build) returns every mistake as a [`BuildError`](crate::BuildError) instead.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_health::{Check, Health, Paths, Probe, Reasons};
///
/// # async fn ping_database() -> Result<(), std::io::Error> { Ok(()) }
/// # async fn model_loaded() -> Result<(), std::io::Error> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     // What is checked (see `Check` for choosing the options).
///     .check(Check::new("database", ping_database).timeout(Duration::from_millis(800)))
///     .check(Check::new("model", model_loaded).probes([Probe::Startup, Probe::Readiness]))
///     // Where the probes answer: /health, /health/ready, /health/started.
///     .paths(Paths::health())
///     // How long a probe on a cold cache may wait (default 900 ms), and how long a
///     // result stays fresh (default 1 s; the background refresh follows it).
///     .budget(Duration::from_millis(900))
///     .every(Duration::from_secs(2))
///     // Why a check failed, shown to every asker (default: to none, only logged).
///     .reasons(Reasons::always())
///     // After SIGTERM, keep serving this long before the server stops (default 5 s),
///     // end the whole shutdown by this deadline (default 20 s), and count requests in
///     // flight for `Health::drained`.
///     .drain_delay(Duration::from_secs(10))
///     .shutdown_timeout(Duration::from_secs(25))
///     .track_in_flight(true)
///     .build();
/// assert_eq!(health.paths().path(Probe::Readiness), "/health/ready");
/// # }
/// ```
///
/// | setting | default | what it governs |
/// |---|---|---|
/// | [`check`](Builder::check) | no checks | what readiness (or another probe) depends on |
/// | [`gate`](Builder::gate), [`switch`](Builder::switch), [`heartbeat`](Builder::heartbeat) | none | what the application tells its health itself |
/// | [`liveness_fails_when_stuck`](Builder::liveness_fails_when_stuck), [`stuck_exempt_paths`](Builder::stuck_exempt_paths) | off, none | liveness (and readiness) fail while requests wait for a response head that never comes; routes left out |
/// | [`paths`](Builder::paths) | `/livez`, `/readyz`, `/startupz` | where the probes answer |
/// | [`budget`](Builder::budget) | 900 ms | the longest a probe waits on a cold cache; no check's timeout may exceed it |
/// | [`every`](Builder::every) | 1 s | how often each check runs (how long a result stays fresh) |
/// | [`refresh_every`](Builder::refresh_every), [`background_refresh`](Builder::background_refresh) | on, at the cache time | checks run in the background, whether probes come or not |
/// | [`reasons`](Builder::reasons) | withheld | whether answers say why a check failed |
/// | [`drain_delay`](Builder::drain_delay) | 5 s | how long the server keeps serving after SIGTERM |
/// | [`shutdown_timeout`](Builder::shutdown_timeout) | 20 s | the hard deadline of the whole shutdown, drain delay included |
/// | [`close_connections_when_draining`](Builder::close_connections_when_draining) | on | `Connection: close` on HTTP/1 responses while draining |
/// | [`track_in_flight`](Builder::track_in_flight) | off | counting requests for [`Health::drained`](crate::Health::drained), and for [`Health::with_deadline`](crate::Health::with_deadline) to end the shutdown once nothing is in flight |
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until .build() is called"]
pub struct Builder {
    paths: Paths,
    checks: Vec<Check>,
    budget: Duration,
    ttl: Duration,
    refresh_every: Option<Duration>,
    background_refresh: bool,
    /// The other replicas, asked about shared checks.
    #[cfg(feature = "fleet")]
    fleet: Option<crate::check::fleet::Fleet>,
    /// What the shared state takes as it is.
    options: Options,
}

/// The name of the wedge detector's entry.
const WEDGE: &str = "requests";

impl Default for Builder {
    fn default() -> Self {
        Builder {
            paths: Paths::default(),
            checks: Vec::new(),
            budget: DEFAULT_BUDGET,
            ttl: DEFAULT_TTL,
            refresh_every: None,
            background_refresh: true,
            #[cfg(feature = "fleet")]
            fleet: None,
            options: Options::default(),
        }
    }
}

impl Builder {
    /// Adds a dependency check.
    ///
    /// It gates readiness unless it says otherwise ([`Check::probes`]).
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Adds a start-up [`Gate`]: startup and readiness fail until it is opened (see
    /// [`Gate`] for how gates and [`Health::ready`](crate::Health::ready) compose).
    ///
    /// ```
    /// use tower_health::{Gate, Health};
    ///
    /// let migrations = Gate::new("migrations");
    /// let health = Health::builder().gate(&migrations).build();
    /// # drop(health);
    /// ```
    pub fn gate(mut self, gate: &Gate) -> Self {
        self.checks.push(gate.entry());
        self
    }

    /// Adds a [`Switch`]: a status the application sets.
    ///
    /// ```
    /// use tower_health::{Health, Switch};
    ///
    /// let maintenance = Switch::new("maintenance");
    /// let health = Health::builder().switch(&maintenance).build();
    /// # drop(health);
    /// ```
    pub fn switch(mut self, switch: &Switch) -> Self {
        self.checks.push(switch.entry());
        self
    }

    /// Adds a [`Heartbeat`]: fails when its loop stops beating.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::{Health, Heartbeat};
    ///
    /// let consumer = Heartbeat::new("consumer", Duration::from_secs(30));
    /// let health = Health::builder().heartbeat(&consumer).build();
    /// # drop(health);
    /// ```
    pub fn heartbeat(mut self, heartbeat: &Heartbeat) -> Self {
        self.checks.push(heartbeat.entry());
        self
    }

    /// Turns on the wedge detector: liveness fails while requests wait for a response
    /// head that never comes.
    ///
    /// It fails when requests that passed through to the application are waiting for
    /// their response head and no response head has been produced for `stuck_after`. It
    /// is how liveness sees a deadlock (every handler stuck on one lock), which an atomic
    /// flag never can, and a restart fixes.
    ///
    /// - A service that is slow but answers something (one response a second while
    ///   others wait) never trips it: any response head is progress.
    /// - A streaming response (SSE, a long download) stops counting once its head is out,
    ///   however long its body runs.
    /// - Probes that the layer answers itself, and every answer of the probe listener
    ///   ([`Health::serve_probes`](crate::Health::serve_probes)), are never progress: they
    ///   would hide a wedge.
    /// - An idle service is never stuck.
    /// - Routes that may rightly wait long for their head (long-polls) are left out with
    ///   [`stuck_exempt_paths`](Builder::stuck_exempt_paths).
    /// - While it fails, readiness fails too: a pod about to be restarted leaves the
    ///   Service first.
    ///
    /// It shows as an entry named `requests` (kind
    /// [`CheckKind::Heartbeat`](crate::CheckKind), gating liveness), so no check may take that name. It is looked at by every probe
    /// and about ten times per `stuck_after` (at most once a second, at least every
    /// 10 ms), so a wedge fails liveness within `stuck_after` plus that. Off unless
    /// turned on; when on, a request that passes through costs the atomic operations of
    /// [`track_in_flight`](Builder::track_in_flight) (and shares them when both are on).
    /// Choose `stuck_after` above the slowest response head you expect on the routes not
    /// left out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::Health;
    ///
    /// let health = Health::builder()
    ///     .liveness_fails_when_stuck(Duration::from_secs(10))
    ///     .build();
    /// assert!(health.report().check("requests").is_some());
    /// ```
    pub fn liveness_fails_when_stuck(mut self, stuck_after: Duration) -> Self {
        self.checks.retain(|c| {
            !(c.cell.is_some() && self.options.progress.is_some() && &*c.name == WEDGE)
        });
        let cell = Cell::wedge(Arc::from(WEDGE), stuck_after);
        self.options.progress = cell.progress();
        self.checks
            .push(Check::settable(cell, Gates::LIVENESS, true));
        self
    }

    /// Leaves the requests under these path prefixes out of the wedge detector.
    ///
    /// For [`liveness_fails_when_stuck`](Builder::liveness_fails_when_stuck): long-polls,
    /// streams whose first bytes come late, whatever may rightly wait longer than
    /// `stuck_after` for its response head. Such a request neither waits nor counts as
    /// progress; it is still counted in flight ([`track_in_flight`](Builder::track_in_flight)).
    ///
    /// A prefix matches the path itself and every path under it (`/poll` matches `/poll`
    /// and `/poll/7`, never `/polls`), compared with the request's path as it came (no
    /// decoding); it must start with `/` and hold only visible ASCII. Calling it again adds
    /// prefixes. The probe listener's own answers ([`Health::serve_probes`](crate::Health::serve_probes))
    /// are left out without it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::Health;
    ///
    /// let health = Health::builder()
    ///     .liveness_fails_when_stuck(Duration::from_secs(10))
    ///     .stuck_exempt_paths(["/updates/poll", "/events"])
    ///     .build();
    /// # drop(health);
    /// ```
    pub fn stuck_exempt_paths<P: Into<String>>(
        mut self,
        prefixes: impl IntoIterator<Item = P>,
    ) -> Self {
        let prefixes = prefixes.into_iter().map(|p| p.into().into_boxed_str());
        self.options.stuck_exempt.extend(prefixes);
        self
    }

    /// The most time one refresh of the checks may take, and so the longest a probe on a
    /// cold cache waits.
    ///
    /// 900 ms unless set, so that even a first probe answers inside the kubelet's default
    /// 1 s `timeoutSeconds`. No check's [timeout](Check::timeout) may exceed it: a longer
    /// one is a [`BuildProblem::TimeoutOverBudget`] naming both, never a silent cut. Raise
    /// it together with the probes' `timeoutSeconds`.
    /// A duration too long to end (`Duration::MAX`) is no limit; this holds for every
    /// duration the builder and [`Check`] take.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// How often each check runs (and how long its result stays fresh), 1 s unless set.
    ///
    /// A check may set its own ([`Check::every`](crate::Check::every)). It is also the
    /// interval of the background refresh unless [`Builder::refresh_every`] sets another.
    pub fn every(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The interval of the background refresh: every check whose result would go stale
    /// before the next tick is run on each tick.
    ///
    /// Unless set, [`Builder::every`] (1 s).
    ///
    /// With the background refresh (on by default), results are warm before the first
    /// probe, no answer is older than the interval however rarely probes come, a probe
    /// never waits, and checks run at a steady rate that no storm of probes can raise.
    /// The task starts with the first Tokio runtime that sees this `Health` (at `build`,
    /// or at the first probe or [`Health::refresh`](crate::Health::refresh)) and ends
    /// when the last `Health`, layer and service made from it are gone.
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.refresh_every = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Whether checks are refreshed in the background (on unless turned off).
    ///
    /// Turned off, checks run only behind probes: a probe that finds a stale result is
    /// answered from it at once and starts one run, so an answer shows the run that the
    /// previous probe started (with the kubelet probing every 10 s, a result up to 10 s
    /// old).
    pub fn background_refresh(mut self, on: bool) -> Self {
        self.background_refresh = on;
        self
    }

    /// Whether probe answers say why a check failed: [`Reasons::withheld`] unless set.
    pub fn reasons(mut self, reasons: Reasons) -> Self {
        self.options.reasons = reasons;
        self
    }

    /// The probe paths; [`Paths::kubernetes`] (`/livez`, `/readyz`, `/startupz`) unless
    /// set.
    pub fn paths(mut self, paths: Paths) -> Self {
        self.paths = paths;
        self
    }

    /// How long the server keeps serving after the signal, with readiness failing, before
    /// it stops accepting connections; 5 s unless set.
    ///
    /// [`Health::shutdown_signal`](crate::Health::shutdown_signal) resolves when it is
    /// over. It is the time the orchestrator needs to take the replica out of every load
    /// balancer. Keep the pod's `terminationGracePeriodSeconds` above this delay plus the
    /// longest request.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.options.drain_delay = delay;
        self
    }

    /// The hard deadline of the whole shutdown, drain delay included; 20 s unless set.
    ///
    /// It is counted from the first signal (or whatever started the drain). At the
    /// deadline [`Health::with_deadline`](crate::Health::with_deadline) drops the server
    /// and whatever still holds the shutdown open (a client that never acknowledges
    /// HTTP/2's GOAWAY, a long-lived stream, a [`DrainGuard`](crate::DrainGuard) still
    /// held), says in one warning what it cut, and returns, so that the process exits by
    /// itself.
    ///
    /// The default leaves 10 s of Kubernetes' default `terminationGracePeriodSeconds` of
    /// 30 s for what the grace period also covers: a `preStop` hook, which runs before
    /// SIGTERM and counts against it, the application's own clean-up after the server
    /// returns, and a loaded node. Keep `preStop` + deadline + clean-up below the grace
    /// period. `Duration::MAX` means no deadline.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.options.shutdown_timeout = timeout;
        self
    }

    /// Whether HTTP/1 responses carry `Connection: close` while draining, so that
    /// keep-alive clients reconnect to another replica before the listener closes.
    ///
    /// On unless turned off.
    pub fn close_connections_when_draining(mut self, close: bool) -> Self {
        self.options.close_when_draining = close;
        self
    }

    /// Counts requests that pass through until their response body has ended or been
    /// dropped.
    ///
    /// For [`Health::in_flight`](crate::Health::in_flight),
    /// [`Health::drained`](crate::Health::drained), and
    /// [`Health::with_deadline`](crate::Health::with_deadline), which then ends the
    /// shutdown as soon as the drain delay is over with nothing in flight and no guard
    /// held, rather than at the deadline. Off unless turned on, because it costs two
    /// atomic operations per request (about 370 instructions on the pass-through, by the
    /// pass-through bench in the repository's `benches/`).
    pub fn track_in_flight(mut self, track: bool) -> Self {
        self.options.track_in_flight = track;
        self
    }

    /// The other replicas of this service, asked while a [shared](Check::shared) check
    /// fails here whether it fails for them too; see [`Fleet`](crate::Fleet).
    ///
    /// ```
    /// use tower_health::{Check, Fleet, Health};
    ///
    /// # async fn select_1() -> Result<(), std::io::Error> { Ok(()) }
    /// let health = Health::builder()
    ///     .check(Check::new("postgres", select_1).shared())
    ///     .fleet(Fleet::dns("app-peers", 8080))
    ///     .build();
    /// # drop(health);
    /// ```
    #[cfg(feature = "fleet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
    pub fn fleet(mut self, fleet: crate::check::fleet::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Answers gRPC health for the application's own service `name` with `probe`'s
    /// verdict, so that a client checking `helloworld.Greeter` learns whether this replica
    /// serves it.
    ///
    /// `""`, `liveness`, `readiness`, `startup` and each check's name are known without
    /// this; any other name is unknown (`NOT_FOUND` from Check, `SERVICE_UNKNOWN` from
    /// Watch). With tonic, pass the name its generated server carries, so that it cannot
    /// drift from the proto:
    ///
    /// ```
    /// # mod tonic { pub mod server { pub trait NamedService { const NAME: &'static str; } } }
    /// # struct GreeterServer<T>(T);
    /// # impl<T> tonic::server::NamedService for GreeterServer<T> {
    /// #     const NAME: &'static str = "helloworld.Greeter";
    /// # }
    /// # struct MyGreeter;
    /// use tonic::server::NamedService;
    /// use tower_health::{Health, Probe};
    ///
    /// let health = Health::builder()
    ///     .grpc_service(<GreeterServer<MyGreeter> as NamedService>::NAME, Probe::Readiness)
    ///     .grpc_service("ops.Admin", Probe::Liveness)
    ///     .build();
    /// # drop(health);
    /// ```
    ///
    /// [`build`](Builder::build) panics, and [`try_build`](Builder::try_build) returns an
    /// error, when a name is empty, holds `/` or anything but visible ASCII, is a probe's
    /// or a check's name, or is given twice.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    pub fn grpc_service(
        mut self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        probe: Probe,
    ) -> Self {
        self.options.grpc_services.add(name.into(), probe);
        self
    }

    /// Validates the configuration and makes the state every handle, layer and service
    /// will share; every problem of an unusable configuration, if it is one.
    pub(crate) fn into_shared(mut self) -> Result<Arc<Shared>, BuildError> {
        if let Some(error) = BuildError::from_problems(self.problems()) {
            return Err(error);
        }
        self.options.replica = crate::check::fleet::replica_id();
        #[cfg(feature = "fleet")]
        let fleet = (self.fleet.take()).map(|fleet| {
            fleet.into_consult(self.paths.path(Probe::Readiness), self.options.replica)
        });
        #[cfg(not(feature = "fleet"))]
        let fleet = None;
        let observer = Observer::new();
        let (alive, alive_rx) = watch::channel(());
        let background = self.background_refresh.then(|| {
            self.refresh_every
                .unwrap_or(self.ttl)
                .max(Duration::from_millis(1))
        });
        let engine = Engine::new(
            self.checks,
            self.budget,
            self.ttl,
            background,
            alive_rx,
            observer.clone(),
            fleet,
        );
        let lifecycle = LifecycleWatch::new(observer.clone());
        observer.started(lifecycle.phase());
        Ok(Arc::new(Shared::new(
            lifecycle,
            engine,
            Matcher::new(self.paths),
            observer,
            alive,
            self.options,
        )))
    }

    /// Every problem of this configuration, in the order of its parts.
    fn problems(&self) -> Vec<BuildProblem> {
        let mut problems = Vec::new();
        for probe in Probe::ALL {
            let path = self.paths.path(probe);
            if !Paths::is_valid(path) {
                let path = path.to_owned();
                problems.push(BuildProblem::InvalidPath { probe, path });
            }
        }
        for prefix in &self.options.stuck_exempt {
            let visible = prefix.bytes().all(|b| b.is_ascii_graphic());
            if !prefix.starts_with('/') || !visible {
                let path = prefix.to_string();
                problems.push(BuildProblem::InvalidStuckExemptPath { path });
            }
        }
        for (i, first) in Probe::ALL.into_iter().enumerate() {
            for second in Probe::ALL[i + 1..].iter().copied() {
                let path = self.paths.path(first);
                if path == self.paths.path(second) {
                    let path = path.to_owned();
                    problems.push(BuildProblem::SharedPath {
                        first,
                        second,
                        path,
                    });
                }
            }
        }
        for (i, check) in self.checks.iter().enumerate() {
            let name = check.name();
            // Each name's problem is told once: a bad name at its first use, a name given
            // twice at its second.
            let earlier = self.checks[..i].iter().filter(|c| c.name() == name).count();
            let cell = check.cell.as_ref().or(check.switch.as_ref());
            if cell.is_some_and(|cell| cell.has_joined()) {
                problems.push(BuildProblem::SignalInUse { name: name.into() });
            }
            if let Some(timeout) = check.timeout.filter(|t| *t > self.budget) {
                problems.push(BuildProblem::TimeoutOverBudget {
                    name: name.into(),
                    timeout,
                    budget: self.budget,
                });
            }
            if check.shared && !check.gates.contains(Probe::Readiness) {
                problems.push(BuildProblem::SharedWithoutReadiness { name: name.into() });
            }
            match check.validate_name() {
                Err(problem) if earlier == 0 => problems.push(problem),
                Ok(()) if earlier == 1 => {
                    problems.push(BuildProblem::DuplicateCheckName { name: name.into() });
                }
                _ => {}
            }
        }
        #[cfg(feature = "grpc")]
        self.options
            .grpc_services
            .validate(self.checks.iter().map(Check::name), &mut problems);
        problems
    }
}

impl Builder {
    /// Builds the [`Health`].
    ///
    /// # Panics
    ///
    /// If the configuration is unusable, with a message that names every problem (the
    /// [`BuildError`] that [`Builder::try_build`] returns, after `tower-health: `): a
    /// probe path that does not start with `/`, ends with `/`, or holds anything but
    /// visible ASCII, or `?` or `#`; two probes on one path; a check name that is not
    /// letters, digits, `-`, `_` and `.`, or is `liveness`, `readiness`, `startup` or
    /// `lifecycle`; two checks with one name; with the `grpc` feature, a gRPC service
    /// name that `Builder::grpc_service` refuses.
    #[track_caller]
    pub fn build(self) -> Health {
        match self.try_build() {
            Ok(health) => health,
            Err(error) => panic!("tower-health: {error}"),
        }
    }

    /// Builds the [`Health`], or says why the configuration is unusable: every problem
    /// [`Builder::build`] would panic on, each naming the path or name it is about.
    ///
    /// ```
    /// use tower_health::{BuildProblem, Health, Paths};
    ///
    /// // A path read from the environment, say.
    /// let readiness = "ready";
    /// let error = Health::builder()
    ///     .paths(Paths::kubernetes().readiness(readiness))
    ///     .try_build()
    ///     .unwrap_err();
    /// assert!(matches!(
    ///     error.problems(),
    ///     [BuildProblem::InvalidPath { path, .. }] if path == "ready"
    /// ));
    /// ```
    pub fn try_build(self) -> Result<Health, BuildError> {
        let shared = self.into_shared()?;
        shared.engine().ensure_background();
        Ok(Health { shared })
    }
}
