//! [`Health`], the handle through which an application reports its health, and its
//! [`Builder`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Request;

use crate::check::{Check, Engine};
use crate::future::{Reply, ResponseFuture};
use crate::layer::HealthLayer;
use crate::lifecycle::{Lifecycle, Phase, State};
use crate::probe::{Format, Matcher, MethodKind, Paths, Probe, ProbeRequest, Query, Reasons};
use crate::render::{self, Answers, Detail, Scope, Style};
use crate::report::Report;
use crate::shutdown::{self, InFlight};

const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
const DEFAULT_BUDGET: Duration = Duration::from_millis(900);
const DEFAULT_TTL: Duration = Duration::from_secs(1);

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

/// Configures a [`Health`]. Made by [`Health::builder`].
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until .build() is called"]
pub struct Builder {
    paths: Paths,
    checks: Vec<Check>,
    budget: Duration,
    ttl: Duration,
    refresh_every: Option<Duration>,
    reasons: Reasons,
    drain_delay: Duration,
    close_when_draining: bool,
    track_in_flight: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            paths: Paths::default(),
            checks: Vec::new(),
            budget: DEFAULT_BUDGET,
            ttl: DEFAULT_TTL,
            refresh_every: None,
            reasons: Reasons::default(),
            drain_delay: DEFAULT_DRAIN_DELAY,
            close_when_draining: true,
            track_in_flight: false,
        }
    }
}

impl Builder {
    /// Adds a dependency check. It gates readiness unless it says otherwise
    /// ([`Check::probes`]).
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// The most time one refresh of the checks may take, and so the longest a probe on a
    /// cold cache waits; every check's timeout is capped by it. 900 ms unless set, so
    /// that even a first probe answers inside the kubelet's default 1 s `timeoutSeconds`.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// How long a check's result stays fresh unless the check sets its own
    /// ([`Check::cache_for`]); 1 s unless set. A probe that finds a stale result is
    /// answered from it at once and starts one refresh behind it.
    ///
    /// So without [`Builder::refresh_every`], an answer shows the run that the previous
    /// probe started: with the kubelet probing every 10 s, a result up to 10 s old. When
    /// that matters, refresh in the background.
    pub fn cache_for(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Runs every check on this interval in the background as well, so that results are
    /// warm before the first probe and never older than the interval (plus a run),
    /// however rarely probes come. Recommended for production: with it, no probe waits
    /// and every answer is fresh. The task starts
    /// with the first Tokio runtime that sees this `Health` (at `build`, or at the first
    /// probe) and ends when the last `Health`, layer and service made from it are gone.
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.refresh_every = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Whether probe answers say why a check failed: [`Reasons::withheld`] unless set.
    pub fn reasons(mut self, reasons: Reasons) -> Self {
        self.reasons = reasons;
        self
    }

    /// The probe paths; [`Paths::kubernetes`] (`/livez`, `/readyz`, `/startupz`) unless
    /// set.
    pub fn paths(mut self, paths: Paths) -> Self {
        self.paths = paths;
        self
    }

    /// How long [`Health::shutdown_signal`] keeps serving after the signal, with readiness
    /// failing, before it resolves and the server stops accepting connections. It is the
    /// time the orchestrator needs to take the replica out of every load balancer; 5 s
    /// unless set. Keep the pod's `terminationGracePeriodSeconds` above this delay plus
    /// the longest request.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Whether HTTP/1 responses carry `Connection: close` while draining, so that
    /// keep-alive clients reconnect to another replica before the listener closes. On
    /// unless turned off.
    pub fn close_connections_when_draining(mut self, close: bool) -> Self {
        self.close_when_draining = close;
        self
    }

    /// Counts requests that pass through until their response body has ended or been
    /// dropped, for [`Health::in_flight`] and [`Health::drained`]. Off unless turned on,
    /// because it costs two atomic operations per request.
    pub fn track_in_flight(mut self, track: bool) -> Self {
        self.track_in_flight = track;
        self
    }

    /// Builds the [`Health`].
    ///
    /// # Panics
    ///
    /// If the configuration is unusable, with a message that says why: a probe path that
    /// does not start with `/`, ends with `/`, or holds anything but visible ASCII, or
    /// `?` or `#`; two probes on one path; a check name that is not letters, digits,
    /// `-`, `_` and `.`; two checks with one name.
    pub fn build(self) -> Health {
        if let Err(problem) = self.validate() {
            panic!("tower-health: {problem}");
        }
        let lifecycle = Lifecycle::new();
        let phase = lifecycle.phase();
        let engine = Engine::new(self.checks, self.budget, self.ttl);
        let report = Report {
            phase,
            checks: engine.snapshot(),
        };
        let shared = Arc::new(Shared {
            answers: ArcSwap::from_pointee(Cached {
                phase,
                generation: engine.generation(),
                answers: Answers::new(&report),
            }),
            render_lock: Mutex::new(()),
            lifecycle,
            engine,
            reasons: self.reasons,
            refresh_every: self.refresh_every,
            background: AtomicBool::new(false),
            matcher: Matcher::new(self.paths),
            drain_delay: self.drain_delay,
            close_when_draining: self.close_when_draining,
            in_flight: self.track_in_flight.then(Default::default),
        });
        SharedRef::Counted(shared.clone()).start_background();
        Health { shared }
    }

    fn validate(&self) -> Result<(), String> {
        self.paths.validate()?;
        for (i, check) in self.checks.iter().enumerate() {
            check.validate_name()?;
            if self.checks[..i].iter().any(|c| c.name() == check.name()) {
                return Err(format!("two checks are named {:?}", check.name()));
            }
        }
        Ok(())
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
        self.shared.matcher.paths()
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.shared.lifecycle.phase().state()
    }

    /// Marks start-up as done: `Starting → Ready`, so readiness and startup probes pass
    /// (given passing checks). Returns whether this call made the change; it makes none
    /// when already ready or draining.
    pub fn ready(&self) -> bool {
        self.shared.lifecycle.ready()
    }

    /// Starts draining: readiness fails from now on while liveness and startup keep
    /// passing. One-way. Returns whether this call made the change.
    ///
    /// [`Health::shutdown_signal`] calls this on SIGTERM; call it yourself when shutdown
    /// starts some other way.
    pub fn drain(&self) -> bool {
        self.shared.lifecycle.drain()
    }

    /// Whether liveness passes (it does unless [`Health::fail_liveness`] was called).
    pub fn is_live(&self) -> bool {
        self.shared.lifecycle.phase().is_live()
    }

    /// Marks the process broken beyond repair, so that the orchestrator restarts it:
    /// liveness and readiness fail until [`Health::recover_liveness`]. Returns whether
    /// this call made the change.
    ///
    /// Use it for states only a restart fixes (a deadlock detected, a poisoned cache),
    /// never for a dependency being down: that is what readiness checks are for.
    pub fn fail_liveness(&self) -> bool {
        self.shared.lifecycle.set_live(false)
    }

    /// Undoes [`Health::fail_liveness`]. Returns whether this call made the change.
    pub fn recover_liveness(&self) -> bool {
        self.shared.lifecycle.set_live(true)
    }

    /// Resolves at the next change of the lifecycle state or the liveness flag, with the
    /// state after it.
    pub fn changed(&self) -> impl Future<Output = State> + Send + 'static {
        let mut changes = self.shared.lifecycle.subscribe();
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
        let mut changes = self.shared.lifecycle.subscribe();
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
        self.shared.report(self.shared.lifecycle.phase())
    }

    /// Runs every check now (those already running are not started twice), waits at most
    /// the budget for them to finish, and returns the report. Useful at start-up, to
    /// have results before calling [`Health::ready`], and in tests.
    pub async fn refresh(&self) -> Report {
        let shared = SharedRef::Counted(self.shared.clone());
        if !shared.engine.is_empty() {
            let deadline = tokio::time::Instant::now() + shared.engine.budget();
            shared
                .engine
                .claim(None, None, true, |i| shared.spawn_run(i));
            shared.engine.wait_idle(deadline).await;
        }
        self.report()
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
        shutdown::sequence(
            self.clone(),
            self.shared.drain_delay,
            trigger,
            shutdown::os_signal(),
        )
    }

    /// How many requests that passed through have a response still in flight (their body
    /// has not ended or been dropped). `None` unless
    /// [`Builder::track_in_flight`] was turned on.
    pub fn in_flight(&self) -> Option<usize> {
        self.shared.in_flight.as_ref().map(|c| c.count())
    }

    /// Resolves once the application is draining and no request is in flight. Without
    /// [`Builder::track_in_flight`] it resolves as soon as the application drains.
    pub fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let health = self.clone();
        async move {
            health.wait_for(State::Draining).await;
            if let Some(in_flight) = &health.shared.in_flight {
                in_flight.idle().await;
            }
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = self.shared.lifecycle.phase();
        f.debug_struct("Health")
            .field("state", &phase.state())
            .field("live", &phase.is_live())
            .field("paths", self.shared.matcher.paths())
            .finish_non_exhaustive()
    }
}

// === impl Shared ===

/// The state every clone of a [`Health`] and every layer and service made from it share.
pub(crate) struct Shared {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) matcher: Matcher,
    pub(crate) close_when_draining: bool,
    pub(crate) in_flight: Option<Arc<InFlight>>,
    drain_delay: Duration,
    engine: Engine,
    reasons: Reasons,
    refresh_every: Option<Duration>,
    background: AtomicBool,
    /// The answers for the phase and results they were rendered from.
    answers: ArcSwap<Cached>,
    render_lock: Mutex<()>,
}

struct Cached {
    phase: Phase,
    generation: u64,
    answers: Answers,
}

/// What a probe request asks for, owned, so that a probe on a cold cache can carry it
/// while it waits.
struct Ask {
    probe: Probe,
    only: Option<usize>,
    style: Style,
    head: bool,
    excluded: Option<Box<[bool]>>,
}

impl Shared {
    /// Whether a request that is not a probe needs more than passing through: counting,
    /// or `Connection: close` while draining.
    #[inline]
    pub(crate) fn tracks_pass_through(&self) -> bool {
        self.in_flight.is_some() || (self.close_when_draining && self.lifecycle.is_draining())
    }

    fn report(&self, phase: Phase) -> Report {
        Report {
            phase,
            checks: self.engine.snapshot(),
        }
    }

    /// The rendered answers for the current phase and results, rendering them if the
    /// cached ones are older.
    fn current(&self) -> arc_swap::Guard<Arc<Cached>> {
        let is_current = |c: &Cached| {
            c.phase == self.lifecycle.phase() && c.generation == self.engine.generation()
        };
        let cached = self.answers.load();
        if is_current(&cached) {
            return cached;
        }
        drop(cached);
        let _lock = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
        let cached = self.answers.load();
        if is_current(&cached) {
            return cached;
        }
        // Read the generation before the results, so that a run finishing meanwhile
        // makes the next probe render again rather than be missed.
        let generation = self.engine.generation();
        let phase = self.lifecycle.phase();
        self.answers.store(Arc::new(Cached {
            phase,
            generation,
            answers: Answers::new(&self.report(phase)),
        }));
        self.answers.load()
    }

    fn respond(&self, ask: &Ask) -> Reply {
        let cached = self.current();
        let rendered = match ask.only {
            Some(index) => cached.answers.check(index, ask.probe),
            None if ask.excluded.is_none() => Some(cached.answers.probe(ask.probe)),
            None => None,
        };
        if let Some(rendered) = rendered {
            return rendered.reply(ask.style, ask.head);
        }
        let scope = match (&ask.excluded, ask.only) {
            (_, Some(index)) => Scope::Check(index),
            (Some(excluded), None) => Scope::Probe { excluded },
            (None, None) => Scope::Probe { excluded: &[] },
        };
        let report = self.report(cached.phase);
        render::reply(&report, ask.probe, scope, ask.style, ask.head)
    }
}

// === impl SharedRef ===

/// How layers and services hold the shared state: by a counted reference, or borrowed
/// for the rest of the program ([`Health::static_layer`]), which makes cloning a service
/// a plain copy.
#[derive(Clone)]
pub(crate) enum SharedRef {
    Counted(Arc<Shared>),
    Static(&'static Shared),
}

impl std::ops::Deref for SharedRef {
    type Target = Shared;

    #[inline]
    fn deref(&self) -> &Shared {
        match self {
            SharedRef::Counted(shared) => shared,
            SharedRef::Static(shared) => shared,
        }
    }
}

/// A [`SharedRef`] that does not keep the state alive.
enum WeakRef {
    Counted(Weak<Shared>),
    Static(&'static Shared),
}

impl WeakRef {
    fn upgrade(&self) -> Option<SharedRef> {
        match self {
            WeakRef::Counted(weak) => weak.upgrade().map(SharedRef::Counted),
            WeakRef::Static(shared) => Some(SharedRef::Static(shared)),
        }
    }
}

impl SharedRef {
    fn downgrade(&self) -> WeakRef {
        match self {
            SharedRef::Counted(shared) => WeakRef::Counted(Arc::downgrade(shared)),
            SharedRef::Static(shared) => WeakRef::Static(shared),
        }
    }

    /// Starts the `refresh_every` task once, if configured and a runtime is at hand.
    fn start_background(&self) {
        let Some(every) = self.refresh_every else {
            return;
        };
        if self.background.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.downgrade();
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Hold the state only while starting runs, so that dropping the last
                // handle ends this task.
                let Some(shared) = weak.upgrade() else {
                    tracing::debug!("health: background refresh stopped");
                    return;
                };
                shared
                    .engine
                    .claim(None, None, true, |i| shared.spawn_run(i));
            }
        });
    }

    /// Starts the claimed run of check `index` on the current runtime; without one, gives
    /// the claim back and returns `false`.
    fn spawn_run(&self, index: usize) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.engine.release(index);
            return false;
        };
        let shared = self.clone();
        runtime.spawn(async move {
            shared.engine.run(index).await;
            // Render now, so that the next probe finds the answers ready.
            let _ = shared.current();
        });
        true
    }

    /// The answer to a request whose path matched `probe` (with `rest` after a `/`), or
    /// `None` when it is not a probe after all and goes to the inner service.
    #[inline(never)]
    pub(crate) fn answer<B, F>(
        &self,
        probe: Probe,
        rest: Option<&str>,
        req: &Request<B>,
    ) -> Option<ResponseFuture<F>> {
        // Below a probe path only a check that gates that probe is a probe; anything
        // else belongs to the application.
        let only = match rest {
            None => None,
            Some(name) => Some(self.engine.find(probe, name)?),
        };
        let method = MethodKind::of(req.method());
        if method == MethodKind::Other {
            return Some(ResponseFuture::reply(Reply::method_not_allowed()));
        }
        let query = Query::parse(req.uri().query());
        let shown = self.reasons.allow(&ProbeRequest::new(req));
        let ask = Ask {
            probe,
            only,
            style: Style {
                format: Format::negotiate(req.headers()),
                verbose: query.verbose,
                detail: if shown {
                    Detail::Shown
                } else {
                    Detail::Withheld
                },
            },
            head: method == MethodKind::Head,
            excluded: (query.has_excludes && only.is_none())
                .then(|| self.engine.names().map(|n| query.excludes(n)).collect()),
        };
        if self.engine.is_empty() {
            return Some(ResponseFuture::reply(self.respond(&ask)));
        }
        self.start_background();
        let mut runtime = true;
        let complete = self.engine.claim(Some(probe), only, false, |i| {
            let started = self.spawn_run(i);
            runtime &= started;
            started
        });
        if complete || !runtime {
            return Some(ResponseFuture::reply(self.respond(&ask)));
        }
        // Nothing cached for a check this probe needs: wait for it, at most the budget.
        let shared = self.clone();
        let deadline = tokio::time::Instant::now() + self.engine.budget();
        Some(ResponseFuture::pending(Box::pin(async move {
            shared.engine.wait_for_results(probe, only, deadline).await;
            shared.respond(&ask)
        })))
    }
}
