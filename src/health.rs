//! [`Health`]: the handle through which an application reports its health, and nothing
//! else. Everything it does goes through the shared state ([`crate::shared`]).

use std::future::Future;
use std::sync::Arc;

use crate::builder::Builder;
use crate::changes::Changes;
use crate::error::BuildError;
use crate::layer::HealthLayer;
use crate::probe::Paths;
use crate::report::Report;
#[cfg(feature = "server")]
use crate::server::ProbeServer;
use crate::shared::{Shared, SharedRef};
use crate::shutdown;
use crate::vocabulary::State;

/// The handle through which an application reports its health.
///
/// Cheap to clone (an `Arc` inside); every clone, and every [`HealthLayer`] made from
/// one, shares the same state. Build one with [`Health::builder`], wrap the service with
/// [`Health::layer`], call [`Health::ready`] when start-up is done, and hand
/// [`Health::shutdown_signal`] to the server.
///
/// ```
/// use tower_health::{Health, State};
///
/// let health = Health::builder().build();
/// assert_eq!(health.state(), State::Starting);
/// health.ready();
/// assert_eq!(health.state(), State::Ready);
/// health.drain();
/// health.ready(); // too late: draining is one-way
/// assert_eq!(health.state(), State::Draining);
/// ```
#[derive(Clone)]
pub struct Health {
    shared: Arc<Shared>,
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

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// A `Health` with the default configuration and no checks.
    pub fn new() -> Self {
        Builder::default().build()
    }

    /// Starts configuring a `Health`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The layer that makes any HTTP service answer this `Health`'s probes.
    pub fn layer(&self) -> HealthLayer {
        HealthLayer::new(SharedRef::Counted(self.shared.clone()))
    }

    /// [`Health::layer`] for a `Health` that lives as long as the program (a `static`, or
    /// one given up with `Box::leak`): the services it makes hold a plain reference, so
    /// that cloning one, which servers do for every request, writes no reference count.
    ///
    /// ```
    /// use tower_health::Health;
    ///
    /// let health: &'static Health = Box::leak(Box::new(Health::new()));
    /// let layer = health.static_layer();
    /// # drop(layer);
    /// ```
    pub fn static_layer(&'static self) -> HealthLayer {
        HealthLayer::new(SharedRef::Static(&self.shared))
    }

    /// The probe paths.
    pub fn paths(&self) -> &Paths {
        self.shared.matcher().paths()
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.shared.lifecycle().phase().state()
    }

    /// Marks start-up as done: `Starting → Ready`, so readiness and startup probes pass
    /// (given passing checks). Returns whether this call made the change; it makes none
    /// when already ready or draining.
    pub fn ready(&self) -> bool {
        self.shared.lifecycle().ready()
    }

    /// Starts draining: readiness fails from now on while liveness and startup keep
    /// passing. One-way. Returns whether this call made the change.
    ///
    /// [`Health::shutdown_signal`] calls this on SIGTERM; call it yourself when shutdown
    /// starts some other way.
    pub fn drain(&self) -> bool {
        self.shared.lifecycle().drain()
    }

    /// Whether liveness passes (it does unless [`Health::fail_liveness`] was called).
    pub fn is_live(&self) -> bool {
        self.shared.lifecycle().phase().is_live()
    }

    /// Marks the process broken beyond repair, so that the orchestrator restarts it:
    /// liveness and readiness fail until [`Health::recover_liveness`]. Returns whether
    /// this call made the change.
    ///
    /// Use it for states only a restart fixes (a deadlock detected, a poisoned cache),
    /// never for a dependency being down: that is what readiness checks are for.
    pub fn fail_liveness(&self) -> bool {
        self.shared.lifecycle().set_live(false)
    }

    /// Undoes [`Health::fail_liveness`]. Returns whether this call made the change.
    pub fn recover_liveness(&self) -> bool {
        self.shared.lifecycle().set_live(true)
    }

    /// Resolves at the next change of the lifecycle state or the liveness flag, with the
    /// state after it: the lifecycle watch. Check results do not wake it; every event,
    /// check status changes included, comes through [`Health::changes`].
    ///
    /// ```
    /// use tower_health::{Health, State};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = Health::new();
    /// let changed = health.state_changed();
    /// health.ready();
    /// assert_eq!(changed.await, State::Ready);
    /// # }
    /// ```
    pub fn state_changed(&self) -> impl Future<Output = State> + Send + 'static {
        let mut changes = self.shared.lifecycle().subscribe();
        async move {
            // The sender lives as long as the Health; if it is gone nothing changes again.
            match changes.changed().await {
                Ok(()) => changes.borrow_and_update().state(),
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Resolves once the lifecycle has reached `state` or gone past it (`Starting`, then
    /// `Ready`, then `Draining`): `wait_for(State::Ready)` also resolves when the
    /// application drains without ever becoming ready.
    pub fn wait_for(&self, state: State) -> impl Future<Output = State> + Send + 'static {
        let mut changes = self.shared.lifecycle().subscribe();
        async move {
            let reached = changes
                .wait_for(|phase| phase.state() >= state)
                .await
                .map(|phase| phase.state());
            match reached {
                Ok(state) => state,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// An owned snapshot of the lifecycle and of every check's last result.
    pub fn report(&self) -> Report {
        self.shared.report(self.shared.lifecycle().phase())
    }

    /// Runs every check now (those already running are not started twice), waits at most
    /// the budget for them to finish, and returns the report. Useful at start-up, to
    /// have results before calling [`Health::ready`], and in tests.
    pub async fn refresh(&self) -> Report {
        self.shared.engine().refresh().await;
        self.report()
    }

    /// A subscription to every change from now on: lifecycle transitions, the liveness
    /// flag, and each check's status changes with the reason (which the application may
    /// read even where probe answers withhold it). See [`Changes`].
    ///
    /// Forward them wherever a person will see them, here as a log line and to a
    /// webhook. A subscriber that falls behind is told how many changes it missed
    /// ([`Change::Missed`](crate::Change::Missed)); [`Health::report`] says what holds now.
    ///
    /// ```
    /// use tower_health::{Change, Check, Health};
    ///
    /// # async fn post_webhook(_url: &str, _text: String) -> Result<(), std::io::Error> { Ok(()) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = Health::builder()
    ///     .check(Check::new("database", || async { Err::<(), _>("connection refused") }))
    ///     .build();
    /// let mut changes = health.changes();
    /// let watcher = health.clone();
    /// tokio::spawn(async move {
    ///     while let Some(change) = changes.next().await {
    ///         let text = match change {
    ///             Change::Check(c) => format!(
    ///                 "{} went from {:?} to {:?}: {}",
    ///                 c.name(), c.from(), c.to(), c.reason().unwrap_or("-")
    ///             ),
    ///             Change::State { from, to, .. } => format!("lifecycle: {from} -> {to}"),
    ///             Change::Liveness { live, .. } => format!("live: {live}"),
    ///             Change::Missed { count } => {
    ///                 format!("{count} changes missed; now {:?}", watcher.report())
    ///             }
    ///             other => format!("{other:?}"),
    ///         };
    ///         tracing::warn!("health: {text}");
    ///         if let Err(error) = post_webhook("https://hooks.example/health", text).await {
    ///             tracing::warn!(%error, "health webhook failed");
    ///         }
    ///     }
    /// });
    /// health.refresh().await; // database: Unknown -> Fail, "connection refused"
    /// health.ready();
    /// # tokio::task::yield_now().await;
    /// # }
    /// ```
    pub fn changes(&self) -> Changes {
        self.shared.changes()
    }

    /// The future to hand to the server's graceful shutdown
    /// (`axum::serve(..).with_graceful_shutdown(..)`, tonic's `serve_with_shutdown`,
    /// hyper-util's `GracefulShutdown`).
    ///
    /// On SIGTERM or Ctrl-C it [drains](Health::drain) at once, keeps the server serving
    /// for the [drain delay](Builder::drain_delay) so that the orchestrator can stop
    /// sending traffic, then resolves: the server stops accepting and finishes the
    /// requests in flight. A second signal during the delay makes it resolve at once.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown_on(shutdown::os_signal())
    }

    /// [`Health::shutdown_signal`] started by `trigger` instead of the first signal
    /// (SIGTERM or Ctrl-C still cut the drain delay short).
    pub fn shutdown_on(
        &self,
        trigger: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let health = self.clone();
        let shared = self.shared.clone();
        shutdown::sequence(
            move || {
                health.drain();
            },
            move || shared.drain_over().set(),
            self.shared.options().drain_delay,
            trigger,
            shutdown::os_signal(),
        )
    }

    /// Binds a probe listener of its own on `addr` (feature `server`): the probes, the
    /// page and gRPC health, answered as [`Health::layer`] answers them, and `404` for
    /// anything else. Port 0 picks a free port; [`ProbeServer::local_addr`] says which.
    /// Await the [`ProbeServer`] (or spawn it) to serve until
    /// [`Health::shutdown_signal`] resolves.
    ///
    /// For a process with no HTTP server (a worker), or whose port the kubelet cannot
    /// reach. When the application has an HTTP server the kubelet can reach, serve the
    /// probes there with [`Health::layer`]: see the
    /// [`ProbeServer`](ProbeServer#same-port-or-a-port-of-its-own) docs for why.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, or the Tokio runtime has no timer.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with I/O enabled, as [`tokio::net::TcpListener::bind`] does.
    #[cfg(feature = "server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "server")))]
    pub async fn serve_probes(
        &self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<ProbeServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve_probes_on(listener)
    }

    /// [`Health::serve_probes`] on a listener already bound.
    ///
    /// # Errors
    ///
    /// When the listener's address cannot be read, or the Tokio runtime has no timer.
    #[cfg(feature = "server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "server")))]
    pub fn serve_probes_on(
        &self,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<ProbeServer> {
        ProbeServer::new(listener, self.layer(), self.shutdown_signal())
    }

    /// How many requests that passed through have a response still in flight (their body
    /// has not ended or been dropped). `None` unless
    /// [`Builder::track_in_flight`] was turned on.
    pub fn in_flight(&self) -> Option<usize> {
        let in_flight = self.shared.in_flight();
        in_flight.filter(|c| c.is_counted()).map(|c| c.count())
    }

    /// Resolves once the application is draining and no request is in flight. Without
    /// [`Builder::track_in_flight`] it resolves as soon as the application drains.
    pub fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let health = self.clone();
        async move {
            health.wait_for(State::Draining).await;
            if let Some(in_flight) = &health.shared.in_flight() {
                in_flight.idle().await;
            }
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = self.shared.lifecycle().phase();
        f.debug_struct("Health")
            .field("state", &phase.state())
            .field("live", &phase.is_live())
            .field("paths", self.shared.matcher().paths())
            .finish_non_exhaustive()
    }
}
