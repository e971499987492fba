//! The state that every [`Health`](crate::Health) clone, layer and service share, and the
//! answer to a request whose path matched a probe.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tokio::sync::watch;

use crate::check::Engine;
use crate::observe::Changes;

#[cfg(feature = "grpc")]
use super::grpc::names::{Services, StatusCache, Statuses};
use super::matching::Matcher;
use super::render::AnswerCache;
use super::request::Reasons;
use crate::check::report::DrainHolder;
use crate::check::Report;
use crate::lifecycle::LifecycleWatch;
use crate::observe::Observer;
use crate::shutdown::{Drain, DrainOver, InFlight, DEFAULT_SHUTDOWN_TIMEOUT};
use crate::vocabulary::{Lifecycle, Phase};

/// The settings of a [`Builder`](crate::Builder) that the shared state keeps as they are:
/// the builder holds one and sets it, the shared state takes it whole. A setting of this
/// kind is a field here, its default below, and its setter on the builder.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) reasons: Reasons,
    pub(crate) drain_delay: Duration,
    /// The hard deadline of the whole shutdown, from the start of the drain.
    pub(crate) shutdown_timeout: Duration,
    pub(crate) close_when_draining: bool,
    pub(crate) track_in_flight: bool,
    /// The wedge detector's counter, when it is on.
    pub(crate) progress: Option<Arc<crate::shutdown::Progress>>,
    /// Path prefixes whose requests the wedge detector leaves out.
    pub(crate) stuck_exempt: Vec<Box<str>>,
    /// The application's gRPC services and the probe each one is mapped to.
    #[cfg(feature = "grpc")]
    pub(crate) grpc_services: Services,
    /// Who this replica is, in its answers to peers.
    pub(crate) replica: u64,
}

impl Options {
    /// Whether the wedge detector leaves out a request for `path`: a prefix matches the
    /// path itself and what lies under it (`/events` matches `/events` and `/events/7`,
    /// never `/eventsource`). No allocation.
    pub(crate) fn is_stuck_exempt(&self, path: &str) -> bool {
        self.stuck_exempt.iter().any(|prefix| {
            path.strip_prefix(&**prefix).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')
            })
        })
    }
}

/// How long after a `Health` is built a probe that finds it still starting says, once,
/// that `ready()` may have been forgotten.
const STILL_STARTING_WARNING: Duration = Duration::from_secs(60);

/// How long the server keeps serving after the first signal, by default.
pub(crate) const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);

impl Default for Options {
    fn default() -> Self {
        Options {
            reasons: Reasons::default(),
            drain_delay: DEFAULT_DRAIN_DELAY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            close_when_draining: true,
            track_in_flight: false,
            progress: None,
            stuck_exempt: Vec::new(),
            #[cfg(feature = "grpc")]
            grpc_services: Services::default(),
            replica: 0,
        }
    }
}

/// The state every clone of a [`Health`](crate::Health) and every layer and service made
/// from it share.
pub(crate) struct Shared {
    pub(super) lifecycle: LifecycleWatch,
    matcher: Matcher,
    /// Counted requests, when in-flight tracking is on.
    in_flight: Option<Arc<InFlight>>,
    /// The same for requests the wedge detector leaves out (`None`: nothing to do then).
    in_flight_exempt: Option<Arc<InFlight>>,
    drain_over: DrainOver,
    /// Set once `shutdown_signal()` has started the signal timeline on a runtime.
    signal_timeline: AtomicBool,
    /// Set once a shutdown future (`shutdown_signal()`, `shutdown_on()`) was made.
    shutdown_future: AtomicBool,
    /// When this state was built, and whether the warning that `ready()` was not called
    /// has been given.
    built: tokio::time::Instant,
    ready_warned: AtomicBool,
    /// When the drain started, who holds the shutdown open, and its deadline.
    pub(super) drain: Arc<Drain>,
    /// Shared with the runs under way and the background task, which end when this
    /// state is dropped (see `_alive`).
    pub(super) engine: Arc<Engine>,
    pub(super) options: Options,
    pub(super) answers: AnswerCache,
    #[cfg(feature = "grpc")]
    grpc_statuses: StatusCache,
    pub(super) observer: Observer,
    /// Dropped with this state: closes the engine's `alive` channel, which cancels every
    /// run under way and ends the background refresh.
    _alive: watch::Sender<()>,
}

impl Shared {
    /// The shared state around `engine`, which must have been made with the receiving end
    /// of `alive` and the same `observer`.
    pub(crate) fn new(
        lifecycle: LifecycleWatch,
        engine: Arc<Engine>,
        matcher: Matcher,
        observer: Observer,
        alive: watch::Sender<()>,
        options: Options,
    ) -> Shared {
        let in_flight = (options.track_in_flight || options.progress.is_some()).then(|| {
            let progress = options.progress.clone();
            Arc::new(InFlight::new(options.track_in_flight, progress))
        });
        let in_flight_exempt = match (&in_flight, &options.progress) {
            (Some(in_flight), Some(_)) => in_flight.exempt().map(Arc::new),
            (in_flight, _) => in_flight.clone(),
        };
        Shared {
            answers: AnswerCache::new(engine.len()),
            lifecycle,
            engine,
            matcher,
            in_flight,
            in_flight_exempt,
            drain_over: DrainOver::default(),
            signal_timeline: AtomicBool::new(false),
            shutdown_future: AtomicBool::new(false),
            built: tokio::time::Instant::now(),
            ready_warned: AtomicBool::new(false),
            drain: Arc::new(Drain::new(options.shutdown_timeout)),
            options,
            #[cfg(feature = "grpc")]
            grpc_statuses: StatusCache::default(),
            observer,
            _alive: alive,
        }
    }

    /// The lifecycle: its state, liveness flag and transitions.
    #[inline]
    pub(crate) fn lifecycle(&self) -> &LifecycleWatch {
        &self.lifecycle
    }

    /// The matching rule and the probe paths.
    #[inline]
    pub(crate) fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The checks and their cached results.
    #[inline]
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The settings the builder gave.
    #[inline]
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// The count of requests in flight, when tracking is on.
    #[inline]
    pub(crate) fn in_flight(&self) -> Option<&Arc<InFlight>> {
        self.in_flight.as_ref()
    }

    /// Where a request that passes through is counted: with the wedge detector, unless
    /// `exempt` (the probe listener's own answers) or its path is left out of it.
    #[inline]
    pub(crate) fn in_flight_for<B>(
        &self,
        req: &Request<B>,
        exempt: bool,
    ) -> Option<&Arc<InFlight>> {
        // The path is looked at only when some are left out.
        let listed = || {
            !self.options.stuck_exempt.is_empty() && self.options.is_stuck_exempt(req.uri().path())
        };
        if exempt || listed() {
            self.in_flight_exempt.as_ref()
        } else {
            self.in_flight.as_ref()
        }
    }

    /// Set when the drain delay is over.
    pub(crate) fn drain_over(&self) -> &DrainOver {
        &self.drain_over
    }

    /// Resolves once the drain delay is over: one delay after the drain started, or
    /// sooner when the timeline ended it (a second signal). The one instant the timeline,
    /// [`Health::drain_delay_over`](crate::Health::drain_delay_over) and gRPC Watch share.
    pub(crate) fn drain_delay_over(&self) -> impl Future<Output = ()> + Send + 'static {
        let over = self.drain_over.wait();
        let delay = self.drain.after_start(self.options.drain_delay);
        async move {
            tokio::select! {
                () = over => {}
                () = delay => {}
            }
        }
    }

    /// A shutdown future was made: SIGTERM is the application's to handle.
    pub(crate) fn shutdown_future_made(&self) {
        self.shutdown_future.store(true, Ordering::Release);
    }

    /// Whether a shutdown future was ever made.
    pub(crate) fn has_shutdown_future(&self) -> bool {
        self.shutdown_future.load(Ordering::Acquire)
    }

    /// Says once, in the log, that the application is still starting long after it
    /// built its health: a forgotten `ready()` is otherwise silent for ever.
    #[cold]
    pub(super) fn starting(&self) {
        if self.ready_warned.load(Ordering::Relaxed)
            || self.built.elapsed() < STILL_STARTING_WARNING
            || self.ready_warned.swap(true, Ordering::AcqRel)
        {
            return;
        }
        tracing::warn!(
            target: "tower_health::shared",
            "health: still starting {} s after the Health was built, so readiness and \
             startup fail: has the application called ready()?",
            STILL_STARTING_WARNING.as_secs()
        );
    }

    /// Whether this call is the first to start the signal timeline (then it must).
    pub(crate) fn claim_signal_timeline(&self) -> bool {
        !self.signal_timeline.swap(true, Ordering::AcqRel)
    }

    /// The start of the drain, its guards and its deadline.
    pub(crate) fn drain(&self) -> &Arc<Drain> {
        &self.drain
    }

    /// Whether a request that is not a probe needs more than passing through: counting
    /// (in flight, or for the wedge detector), or `Connection: close` while draining.
    #[inline]
    pub(crate) fn tracks_pass_through(&self) -> bool {
        self.in_flight.is_some()
            || (self.options.close_when_draining && self.lifecycle.is_draining())
    }

    pub(crate) fn report(&self, phase: Phase) -> Report {
        let drain_holders = match phase.state() {
            Lifecycle::Draining => (self.drain.holders().into_iter())
                .map(|(name, count)| DrainHolder::new(name, count))
                .collect(),
            _ => Vec::new(),
        };
        Report {
            phase,
            checks: self.engine.snapshot(),
            drain_holders,
        }
    }

    pub(crate) fn changes(&self) -> Changes {
        self.observer.subscribe()
    }

    /// `f` of the status of every gRPC service name now, computed once per change of the
    /// lifecycle or of a check's status.
    #[cfg(feature = "grpc")]
    pub(crate) fn with_grpc_statuses<R>(&self, f: impl FnOnce(&Statuses) -> R) -> R {
        // Read the generation before the statuses, so that a change meanwhile makes the
        // next call compute again rather than be missed.
        let phase = self.lifecycle.phase();
        let key = (phase.bits(), self.engine.status_generation());
        self.grpc_statuses.with(key, || self.report(phase), f)
    }
}

// === impl SharedRef ===

/// How layers and services hold the shared state: by a counted reference, or borrowed
/// for the rest of the program ([`Health::static_layer`](crate::Health::static_layer)), which
/// makes cloning a service a plain copy.
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
