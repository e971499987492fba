//! [`Health`]: the handle through which an application reports its health, and its
//! [`Builder`] beside it. Everything it does goes through the shared state
//! ([`crate::answer::shared`]).

mod builder;

pub use builder::Builder;

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Weak};

use crate::answer::matching::Paths;
use crate::answer::shared::{Shared, SharedRef};
use crate::check::Report;
use crate::middleware::HealthLayer;
use crate::observe::Changes;
#[cfg(feature = "probe-server")]
use crate::server::ProbeServer;
use crate::shutdown;
use crate::shutdown::DrainGuard;
use crate::vocabulary::Lifecycle;

/// The handle through which an application reports its health.
///
/// Cheap to clone (an `Arc` inside); every clone, and every [`HealthLayer`] made from
/// one, shares the same state. Build one with [`Health::builder`], wrap the service with
/// [`Health::layer`], call [`Health::ready`] when start-up is done, and hand
/// [`Health::shutdown_signal`] to the server.
///
/// ```
/// use tower_health::{Health, Lifecycle};
///
/// let health = Health::builder().build();
/// assert_eq!(health.state(), Lifecycle::Starting);
/// health.ready();
/// assert_eq!(health.state(), Lifecycle::Ready);
/// health.start_draining();
/// health.ready(); // too late: draining is one-way
/// assert_eq!(health.state(), Lifecycle::Draining);
/// ```
#[derive(Clone)]
pub struct Health {
    shared: Arc<Shared>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// A `Health` with the default configuration and no checks.
    #[track_caller]
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
    /// one given up with `Box::leak`).
    ///
    /// The services it makes hold a plain reference, so that cloning one, which servers
    /// do for every request, writes no reference count.
    ///
    /// # Examples
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
    pub fn state(&self) -> Lifecycle {
        self.shared.lifecycle().phase().state()
    }

    /// Marks start-up as done: `Starting → Ready`, so readiness and startup probes pass
    /// (given passing checks).
    ///
    /// Returns whether this call made the change; it makes none when already ready or
    /// draining.
    pub fn ready(&self) -> bool {
        self.shared.lifecycle().ready()
    }

    /// Starts draining: readiness fails from now on while liveness and startup keep
    /// passing.
    ///
    /// One-way. Returns whether this call made the change.
    ///
    /// [`Health::shutdown_signal`] calls this on SIGTERM; call it yourself when shutdown
    /// starts some other way.
    pub fn start_draining(&self) -> bool {
        start_drain(&self.shared)
    }

    /// Whether liveness passes (it does unless [`Health::fail_liveness`] was called).
    pub fn is_live(&self) -> bool {
        self.shared.lifecycle().phase().is_live()
    }

    /// Marks the process broken beyond repair, so that the orchestrator restarts it:
    /// liveness and readiness fail until [`Health::recover_liveness`].
    ///
    /// Returns whether this call made the change.
    ///
    /// Use it for states only a restart fixes (a deadlock detected, a poisoned cache),
    /// never for a dependency being down: that is what readiness checks are for.
    pub fn fail_liveness(&self) -> bool {
        self.shared.lifecycle().set_live(false)
    }

    /// Undoes [`Health::fail_liveness`].
    ///
    /// Returns whether this call made the change.
    pub fn recover_liveness(&self) -> bool {
        self.shared.lifecycle().set_live(true)
    }

    /// Runs the check called `name` again now, because the application has just seen its
    /// dependency fail (a query returned an error); whether `name` is a check that runs.
    ///
    /// Without it, a failure shows at the next background run (up to the refresh interval
    /// later). It is cheap to call on every failed request: a run under way is followed
    /// by one more at most, and a check runs again this way at most every 250 ms, so a
    /// storm of failing requests never becomes a storm of checks. Use it where a dependency
    /// that fails only for this replica should take it out of the Service at once.
    ///
    /// ```
    /// use tower_health::{Check, Health};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # async fn select_1() -> Result<(), std::io::Error> { Ok(()) }
    /// let health = Health::builder().check(Check::new("postgres", select_1)).build();
    /// // In a handler whose query just failed:
    /// assert!(health.recheck("postgres"));
    /// assert!(!health.recheck("no-such-check"));
    /// # }
    /// ```
    pub fn recheck(&self, name: &str) -> bool {
        let engine = self.shared.engine();
        engine
            .index_of(name)
            .is_some_and(|i| engine.recheck(i, true))
    }

    /// Resolves once the lifecycle has reached `state` or gone past it, with the state it
    /// is in then.
    ///
    /// The order is `Starting`, then `Ready`, then `Draining`: `wait_for(Lifecycle::Ready)`
    /// also resolves when the application drains without ever becoming ready.
    /// `wait_for(Lifecycle::Draining)` is the future a background task `select!`s on to
    /// stop taking new work (see [`Health::drain_guard`]); every change, liveness and
    /// check statuses included, comes through [`Health::changes`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches the state, and a new call resolves at once when the
    /// state was reached meanwhile.
    pub fn wait_for(&self, state: Lifecycle) -> impl Future<Output = Lifecycle> + Send + 'static {
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

    /// Runs every check now and returns the report once they have finished, waiting at
    /// most the budget.
    ///
    /// Checks already running are not started twice. Useful at start-up, to have results
    /// before calling [`Health::ready`], and in tests.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops only the wait: the runs it started are tasks of their
    /// own, which go on in the background and record their results (read them with
    /// [`Health::report`]). What is lost is the report it would have returned.
    pub async fn refresh(&self) -> Report {
        self.shared.engine().refresh().await;
        self.report()
    }

    /// A subscription to every change from now on: lifecycle transitions, the liveness
    /// flag, and each check's status changes with the reason.
    ///
    /// The application may read the reason even where probe answers withhold it. A
    /// subscriber that falls behind is told how many changes it missed
    /// ([`Change::Missed`](crate::Change::Missed)); [`Health::report`] says what holds now.
    /// See [`Changes`].
    ///
    /// # Examples
    ///
    /// Forward them wherever a person will see them, here as a log line and to a
    /// webhook:
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
    ///             Change::Lifecycle { from, to, .. } => format!("lifecycle: {from} -> {to}"),
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
    /// On SIGTERM or Ctrl-C it [starts draining](Health::start_draining) at once, keeps the
    /// server serving for the [drain delay](Builder::drain_delay) so that the orchestrator
    /// can stop sending traffic, then resolves: the server stops accepting and finishes the
    /// requests in flight. A second signal during the delay makes it resolve at once.
    /// Wrap the server in [`Health::with_deadline`] so that the whole shutdown ends by the
    /// [deadline](Builder::shutdown_timeout) whatever its clients do.
    ///
    /// # Signals are caught from this call
    ///
    /// Called on a Tokio runtime, this installs the SIGTERM and Ctrl-C handlers at once and
    /// runs the timeline in a task of its own: from here on a signal is never the default
    /// action (the process killed, exit 143), even before the returned future is first
    /// polled. A signal during start-up (a slow [`Health::refresh`], a pool that
    /// connects) starts the drain at once (readiness fails), and the server, once it runs,
    /// stops after the rest of the delay: exit 0. So ask for it first, before start-up
    /// work, and hand it to the server later:
    ///
    /// ```no_run
    /// # use axum::Router;
    /// # use tower_health::Health;
    /// # #[tokio::main]
    /// # async fn main() -> std::io::Result<()> {
    /// let health = Health::builder().build();
    /// let shutdown = health.shutdown_signal(); // SIGTERM caught from here
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// health.refresh().await; // a SIGTERM now starts the drain; it no longer kills
    /// health.ready();
    /// let app = Router::new().layer(health.layer());
    /// let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    /// health.with_deadline(server).await.unwrap_or(Ok(()))
    /// # }
    /// ```
    ///
    /// Called outside a runtime, the handlers are installed when the future is first
    /// polled, and the timeline runs inside the future (see "Cancel safety" below).
    ///
    /// # Runtime without a timer
    ///
    /// On a runtime built without `enable_time`, nothing panics: the drain delay cannot be
    /// waited for, so it is skipped (readiness fails and the future resolves at once after
    /// the signal), and the deadline is not kept; both are said in the log. A runtime
    /// without its IO driver cannot listen for signals: that is logged and the future
    /// never resolves on a signal.
    ///
    /// # Cancel safety
    ///
    /// Called on a Tokio runtime, it is cancel safe: the timeline runs in a task of its
    /// own, so after the future is dropped a signal still starts the drain, the drain
    /// delay still ends, and a new call resolves when the dropped future would have.
    ///
    /// Called outside a runtime, the timeline runs inside the future. Dropped before its
    /// first poll, it has done nothing. Dropped after, the timeline is gone but the
    /// handlers stay installed (Tokio never removes them): a later signal neither kills
    /// the process nor starts the drain. Keep that future until the server ends.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        // One timeline per `Health` on a runtime: a later call (a probe listener beside
        // the main server, say) resolves with the first one's, when the drain delay is
        // over, rather than draining and logging a second time.
        let on_runtime = tokio::runtime::Handle::try_current().is_ok();
        let joined = (on_runtime && !self.shared.claim_signal_timeline())
            .then(|| self.shared.drain_over().wait());
        let spawned = match joined {
            Some(_) => None,
            None => {
                let timeline = self.signal_timeline(shutdown::Signals::catch());
                tokio::runtime::Handle::try_current()
                    .ok()
                    .map(|runtime| runtime.spawn(timeline))
            }
        };
        let weak = self.weak();
        async move {
            if let Some(joined) = joined {
                return joined.await;
            }
            match spawned {
                // An error means the runtime is shutting down: nothing is left to wait for.
                Some(task) => drop(task.await),
                None => {
                    if let Some(shared) = weak.upgrade() {
                        let health = Health { shared };
                        health.signal_timeline(shutdown::Signals::catch()).await;
                    }
                }
            }
        }
    }

    /// [`Health::shutdown_signal`] started by `trigger` instead of the first signal.
    ///
    /// SIGTERM or Ctrl-C still cut the drain delay short. Their handlers are installed
    /// once `trigger` has fired, so before it a signal has its default action.
    ///
    /// # Cancel safety
    ///
    /// The timeline runs inside the returned future. Dropped before `trigger` fires, it
    /// drops `trigger` and nothing drains. Dropped after, the drain it started goes on (it
    /// is one-way, and [`Health::drain_delay_over`] still resolves one drain delay after
    /// its start); only the wait for a second signal, which would cut the delay short, is
    /// lost.
    pub fn shutdown_on(
        &self,
        trigger: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.timeline(trigger, |()| shutdown::os_signal())
    }

    /// The drain timeline on the first signal of `signals`, cut short by the second.
    fn signal_timeline(
        &self,
        signals: shutdown::Signals,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.timeline(
            async move {
                let mut signals = signals;
                signals.next().await;
                signals
            },
            |mut signals| async move { signals.next().await },
        )
    }

    /// The drain timeline on `first` and `second`, holding this state only weakly until
    /// `first`, so that a timeline waiting for a signal keeps nothing alive.
    fn timeline<S, Second>(
        &self,
        first: impl Future<Output = S> + Send + 'static,
        second: impl FnOnce(S) -> Second + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        S: Send + 'static,
        Second: Future<Output = ()> + Send + 'static,
    {
        self.shared.shutdown_future_made();
        let weak = self.weak();
        let over = self.weak();
        let delay = self.shared.options().drain_delay;
        // Counted from the start of the drain, which may have begun before the signal.
        let delay_over = self.shared.drain().after_start(delay);
        shutdown::sequence(
            move || {
                if let Some(shared) = weak.upgrade() {
                    start_drain(&shared);
                }
            },
            move || {
                if let Some(shared) = over.upgrade() {
                    shared.drain_over().set();
                }
            },
            delay,
            delay_over,
            first,
            second,
        )
    }

    /// Binds a probe listener of its own on `addr` (feature `probe-server`), which answers
    /// the probes, the page and gRPC health, and `404` to anything else.
    ///
    /// It answers them as [`Health::layer`] does. Port 0 picks a free port;
    /// [`ProbeServer::local_addr`] says which. Await the [`ProbeServer`] (or spawn it) to
    /// serve until [`Health::shutdown_signal`] resolves, and to end its connections and
    /// wait for the [drain guards](Health::drain_guard) after it, within
    /// [the deadline](Health::with_deadline). SIGTERM and Ctrl-C are caught from this call.
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
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: until it resolves it is only resolving `addr`, so a future dropped
    /// before then has bound nothing and caught no signal. The [`ProbeServer`] it returns
    /// serves nothing until it is awaited or spawned.
    #[cfg(feature = "probe-server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "probe-server")))]
    pub async fn serve_probes(
        &self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<ProbeServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let health = self.clone();
        ProbeServer::new(
            listener,
            self.layer(),
            self.shutdown_signal(),
            Box::new(move |serving| {
                Box::pin(async move {
                    // Cut at the deadline, which says in the log what it cut.
                    health.with_deadline(serving).await.unwrap_or(Ok(()))
                })
            }),
        )
    }

    fn weak(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    /// Runs `server` to its end, but never past the shutdown's deadline.
    ///
    /// `server` is a server future whose graceful shutdown was handed
    /// [`Health::shutdown_signal`]. At the [deadline](Builder::shutdown_timeout), counted
    /// from the first signal, it drops the server with whatever still holds it open (a
    /// client that never acknowledges HTTP/2's GOAWAY PING, a half-open connection, a
    /// long-lived stream) and returns `None`. Once the server has stopped, it waits, still no later than the deadline,
    /// for every [`DrainGuard`] to be dropped. What the deadline cut is said in one
    /// warning: requests in flight (or `not counted`, without
    /// [`Builder::track_in_flight`]) and the guards still held by name and count.
    ///
    /// # Ending when the work ends
    ///
    /// With [`Builder::track_in_flight`] on, it does not wait for the deadline when
    /// nothing is left to wait for: once the drain delay is over, no request that passed
    /// through the layer is in flight (its response body ended or was dropped) and no
    /// guard is held, it drops the server at once, with the idle connections whose
    /// clients never acknowledge HTTP/2's GOAWAY (a frozen client, a NAT that forgot the
    /// flow), says so in the log, and returns `None`. Without counting, nothing tells it
    /// that no request is in flight (the layer writes nothing on the pass-through path),
    /// so it waits for the server's own graceful end, the deadline being the backstop.
    /// Counting costs an atomic increment and decrement per request that passes through
    /// (the pass-through bench in the repository's `benches/` gives the instruction counts).
    ///
    /// It takes any server future (or `IntoFuture`): `axum::serve(..).with_graceful_shutdown(..)`,
    /// tonic's `serve_with_shutdown`, or a future that runs hyper-util's
    /// `GracefulShutdown` after an accept loop. Dropping the server future cancels what
    /// it awaits; connection tasks it spawned end with the runtime as `main` returns.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::Health;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let health = Health::builder()
    ///     .drain_delay(Duration::from_secs(1))
    ///     .shutdown_timeout(Duration::from_secs(3))
    ///     .build();
    /// let shutdown = health.shutdown_on(async {}); // a trigger that fires at once
    /// // A server whose graceful shutdown never finishes (a frozen HTTP/2 client, say).
    /// let server = async move {
    ///     shutdown.await;
    ///     std::future::pending::<std::io::Result<()>>().await
    /// };
    /// let start = tokio::time::Instant::now();
    /// assert!(health.with_deadline(server).await.is_none(), "cut at the deadline");
    /// assert_eq!(start.elapsed(), Duration::from_secs(3));
    ///
    /// // The same server, with requests counted and none in flight: stopped as soon as
    /// // the drain delay is over.
    /// let health = Health::builder()
    ///     .drain_delay(Duration::from_secs(1))
    ///     .shutdown_timeout(Duration::from_secs(3))
    ///     .track_in_flight(true)
    ///     .build();
    /// let shutdown = health.shutdown_on(async {});
    /// let server = async move {
    ///     shutdown.await;
    ///     std::future::pending::<std::io::Result<()>>().await
    /// };
    /// let start = tokio::time::Instant::now();
    /// assert!(health.with_deadline(server).await.is_none(), "stopped");
    /// assert_eq!(start.elapsed(), Duration::from_secs(1));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `server` with it, as the deadline does; nothing
    /// else is lost (the drain and its guards live in the shared state).
    pub async fn with_deadline<F: IntoFuture>(&self, server: F) -> Option<F::Output> {
        let shared = &self.shared;
        if !shared.has_shutdown_future() {
            tracing::warn!(
                "health: with_deadline() runs without shutdown_signal() (or shutdown_on()): \
                 SIGTERM is not caught, so it ends the process at once instead of draining; \
                 ask for the shutdown future before start-up"
            );
        }
        shared
            .drain()
            .bounded(
                server.into_future(),
                || shared.lifecycle().is_draining(),
                shared.in_flight().map(|c| &**c),
                shared.drain_delay_over(),
            )
            .await
    }

    /// Resolves once the drain delay is over and the server stops accepting (at once if it
    /// is).
    ///
    /// It is the moment for long-lived responses (server-sent events, streaming bodies,
    /// websockets) to end, as gRPC Watch streams do, so that the server's graceful
    /// shutdown is not held up by them. Ending them sooner, when the drain starts,
    /// would send their clients back while this replica may still be in the load
    /// balancer's list.
    ///
    /// It resolves one drain delay after the drain started (or sooner, when a second
    /// signal cut the delay short): the one instant at which the shutdown timeline stops
    /// the listener and gRPC Watch streams end, however late each saw the drain. Never
    /// before the drain.
    ///
    /// # Examples
    ///
    /// An SSE stream that ends at the drain, with `futures_util::StreamExt::take_until`:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use axum::response::sse::{Event, Sse};
    /// use futures_util::StreamExt as _;
    /// use tower_health::Health;
    ///
    /// fn ticks(health: &Health) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    ///     let ticks = futures_util::stream::unfold(0u64, |n| async move {
    ///         tokio::time::sleep(Duration::from_secs(1)).await;
    ///         Some((Ok(Event::default().data(n.to_string())), n + 1))
    ///     });
    ///     Sse::new(ticks.take_until(health.drain_delay_over()))
    /// }
    /// # let _ = ticks;
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future misses nothing, and a new one resolves at once once
    /// the delay is over.
    pub fn drain_delay_over(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shared.drain_delay_over()
    }

    /// A guard that holds the shutdown open under `name` until it is dropped, for
    /// background work that must finish its batch before the process exits.
    ///
    /// A queue consumer, a scheduler or a cache refresher takes one.
    /// [`Health::with_deadline`] waits for every guard once the server has stopped, no
    /// later than the [deadline](Builder::shutdown_timeout), and names those it cut; while
    /// the drain runs, `?verbose` answers and the page list who still holds it. Take it
    /// when the work starts, and stop taking more once
    /// [`wait_for(Lifecycle::Draining)`](Health::wait_for) resolves.
    ///
    /// Any number of guards may share a name; they are counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_health::{Health, Lifecycle};
    ///
    /// # async fn next_message() -> u32 { 7 }
    /// # async fn handle(_message: u32) {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = Health::builder().build();
    /// let consumer = tokio::spawn({
    ///     let guard = health.drain_guard("queue-consumer");
    ///     let draining = health.wait_for(Lifecycle::Draining);
    ///     async move {
    ///         tokio::pin!(draining);
    ///         loop {
    ///             tokio::select! {
    ///                 _ = &mut draining => break,
    ///                 message = next_message() => handle(message).await,
    ///             }
    ///         }
    ///         // Finish the batch, commit the offsets...
    ///         drop(guard); // now the shutdown may end
    ///     }
    /// });
    /// health.start_draining();
    /// consumer.await.unwrap();
    /// # }
    /// ```
    pub fn drain_guard(&self, name: impl Into<Cow<'static, str>>) -> DrainGuard {
        self.shared.drain().hold(name.into())
    }

    /// How many requests that passed through have a response still in flight (their body
    /// has not ended or been dropped).
    ///
    /// `None` unless [`Builder::track_in_flight`] was turned on.
    pub fn in_flight(&self) -> Option<usize> {
        self.shared.in_flight().and_then(|c| c.count())
    }

    /// Resolves once the application is draining and no request is in flight.
    ///
    /// Without [`Builder::track_in_flight`] nothing is known to be in flight (the wedge
    /// detector follows requests only until their response head), so it resolves as soon
    /// as the application drains.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches, and a new future sees what the dropped one would have.
    pub fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let health = self.clone();
        async move {
            health.wait_for(Lifecycle::Draining).await;
            if let Some(in_flight) = &health.shared.in_flight() {
                in_flight.idle().await;
            }
        }
    }
}

/// Starts the drain: the lifecycle, and the moment the deadline counts from.
fn start_drain(shared: &Shared) -> bool {
    let changed = shared.lifecycle().drain();
    shared.drain().start();
    changed
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
