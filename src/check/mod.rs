//! Dependency checks: [`Check`], the [`HealthCheck`] trait and its [`Outcome`].
//!
//! A check is a named, cheap question about one dependency ("does `SELECT 1` work?").
//! The layer runs every check a probe needs concurrently, each under its own timeout and
//! all under one budget, and caches the results. How to choose a check's options is on
//! [`Check`], where the published docs show it.
//!
//! The folder holds the rest of what a check is and reports: `engine/` (the cache and
//! what a probe asks of it in `mod.rs`; claims, runs, damping and recording in `run.rs`;
//! the background refresh in `background.rs`), `cell.rs` (the entries
//! the application sets, and the bell every status change rings), `handles.rs` ([`Gate`],
//! [`Switch`], [`Heartbeat`]), `fleet.rs` (asking the other replicas) and `report.rs`
//! ([`Report`], [`CheckReport`] and the verdict rules).

mod cell;
mod engine;
pub(crate) mod fleet;
mod handles;
pub(crate) mod report;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::capped::Capped;
use crate::error::BuildProblem;
use crate::vocabulary::{Gates, Observed, ObservedValue, Probe, Status, RESERVED_NAMES};

pub(crate) use cell::{Bell, Cell};
pub(crate) use engine::{Engine, Need};
#[cfg(feature = "fleet")]
pub use fleet::Fleet;
pub use handles::{Gate, Heartbeat, Switch};
pub use report::{CheckReport, Report};

type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type Runner = Arc<dyn Fn(Hold) -> BoxFuture + Send + Sync>;

/// Keeps a run's claim on its check while it lives: a blocking check moves it into its
/// thread, so that no new run starts until the thread returns. Async checks drop it.
pub(crate) struct Hold(#[allow(dead_code)] Arc<ClaimFlag>);

/// A check's run claim, given back (the flag cleared) when the last [`Hold`] on it and the
/// engine's own copy are gone, however the run ended.
pub(crate) struct ClaimFlag(Arc<AtomicBool>);

impl ClaimFlag {
    pub(crate) fn new(flag: Arc<AtomicBool>) -> ClaimFlag {
        ClaimFlag(flag)
    }
}

impl Drop for ClaimFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What one run of a check found: pass, warn or fail, why, and optionally a value it
/// observed.
///
/// A [`HealthCheck`] returns one; a check made with [`Check::new`] gets one from
/// its `Result` (`Ok` passes, `Err` fails with the error's text).
///
/// # Example
///
/// ```
/// use tower_health::{Outcome, Status};
///
/// let lag_ms = 4_200; // replication lag, asked of the replica
/// let outcome = if lag_ms > 10_000 {
///     Outcome::fail(format!("replica is {lag_ms} ms behind"))
/// } else if lag_ms > 1_000 {
///     Outcome::warn("replica is falling behind")
/// } else {
///     Outcome::pass()
/// }
/// .observed(lag_ms, Some("ms"));
/// assert_eq!(outcome.status(), Status::Warn);
///
/// let from_result: Outcome = Err::<(), _>("connection refused").into();
/// assert_eq!(from_result.status(), Status::Fail);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub(crate) status: Status,
    pub(crate) output: Option<Arc<str>>,
    pub(crate) observed: Option<Observed>,
}

impl Outcome {
    /// The dependency is healthy.
    pub fn pass() -> Self {
        Outcome {
            status: Status::Pass,
            output: None,
            observed: None,
        }
    }

    /// The dependency works but is degraded; probes it gates still answer 200, with status
    /// `warn`.
    ///
    /// The reason is kept as [`Outcome::fail`] keeps it.
    pub fn warn(output: impl fmt::Display) -> Self {
        Outcome {
            status: Status::Warn,
            output: Some(capped(&output)),
            observed: None,
        }
    }

    /// The dependency is not healthy, and why.
    ///
    /// The reason goes to the log and into probe answers only where the detail policy
    /// allows. It is kept to its first 1 KiB (cut on a character boundary and marked
    /// ` [cut]`), so that no answer carries more; and formatting it stops there, so that
    /// an error whose text runs to megabytes costs no more time or memory than one of a
    /// KiB (its `Display` must pass on the error of a failed write, as `write!` with `?`
    /// does).
    pub fn fail(output: impl fmt::Display) -> Self {
        Outcome {
            status: Status::Fail,
            output: Some(capped(&output)),
            observed: None,
        }
    }

    /// Reports a value the check observed (a queue length, a replication lag) as
    /// `observedValue`/`observedUnit` instead of the run's duration in milliseconds.
    pub fn observed(mut self, value: impl Into<ObservedValue>, unit: Option<&str>) -> Self {
        self.observed = Some(Observed::new(value, unit));
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }
}

/// The most of a check's output that is kept, in bytes, the mark of a cut included.
pub(crate) const OUTPUT_CAP: usize = 1024;
const CUT_MARK: &str = " [cut]";

/// A check's output, formatted into at most [`OUTPUT_CAP`] bytes.
pub(crate) fn capped(output: &dyn fmt::Display) -> Arc<str> {
    Arc::from(Capped::format(output, OUTPUT_CAP, CUT_MARK))
}

impl<E: Into<CheckError>> From<Result<(), E>> for Outcome {
    /// `Ok` passes; `Err` fails with the error and its chain of causes as the reason.
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Outcome::pass(),
            Err(error) => {
                let error = error.into();
                match error.source() {
                    // The text alone, formatted once, up to the cap.
                    None => Outcome::fail(&*error),
                    Some(_) => Outcome::fail(causes(&*error)),
                }
            }
        }
    }
}

/// The error a check returns: any error (`std::io::Error`, a driver's, `anyhow`'s), a
/// `String` or a `&str`, boxed.
///
/// A check made with [`Check::with_state`] returns `Result<(), CheckError>`, so that `?`
/// works on any error without a type annotation. Its reason is the error's text followed
/// by each of its causes (`error sending request: connection refused`).
pub type CheckError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How deep a chain of causes is followed: past this, a chain is cut (a source that
/// returns itself would otherwise never end).
const MAX_CAUSES: usize = 16;

/// An error's text followed by each of its causes (`Error::source`), joined by `": "`, each
/// formatted only up to the cap of a reason.
///
/// A cause whose text the text before it already holds is left out, since many errors
/// repeat their source's message in their own.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Capped::format(&error, OUTPUT_CAP, CUT_MARK);
    let mut source = error.source();
    let mut depth = 0;
    while let Some(cause) = source {
        depth += 1;
        if depth > MAX_CAUSES {
            chain.push_str(": ...");
            break;
        }
        let text = Capped::format(&cause, OUTPUT_CAP, CUT_MARK);
        if !text.is_empty() && !chain.contains(&*text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}

/// A check that reports more than pass or fail: a `warn`, or a value it observed.
///
/// Register one with [`Check::from_health_check`]; its value appears as `observedValue`
/// and `observedUnit` in verbose answers, and in [`CheckReport::observed`](crate::CheckReport::observed).
///
/// # Example
///
/// ```
/// use tower_health::{Check, HealthCheck, Outcome};
///
/// struct QueueDepth;
///
/// impl HealthCheck for QueueDepth {
///     async fn check(&self) -> Outcome {
///         let depth = 1_200; // ask the broker
///         let outcome = if depth > 1_000 {
///             Outcome::warn("queue is backing up")
///         } else {
///             Outcome::pass()
///         };
///         outcome.observed(depth, Some("messages"))
///     }
/// }
///
/// let check = Check::from_health_check("queue", QueueDepth).non_critical();
/// # drop(check);
/// ```
pub trait HealthCheck: Send + Sync + 'static {
    /// Runs the check once.
    ///
    /// It is run under the check's timeout; there is no need to add one inside.
    ///
    /// # Cancel safety
    ///
    /// The future is dropped when the check's timeout expires, and when the last handle to
    /// the `Health` goes, at whichever `.await` it is waiting on: write it so that stopping
    /// there leaves nothing half done.
    fn check(&self) -> impl Future<Output = Outcome> + Send;
}

/// A named dependency check and the options that say how it gates the probes.
///
/// A check is a cheap question about one dependency ("does `SELECT 1` work?"): an async
/// function ([`Check::new`]), a type that reports `warn` or a value
/// ([`Check::from_health_check`]), or a blocking function ([`Check::blocking`]). Add it
/// with [`Builder::check`](crate::Builder::check). The layer runs every check a probe
/// needs concurrently, each under its own timeout and all under one budget, and caches the
/// results: checks are refreshed in the background, a probe is answered from the cache at
/// once, and however many probes arrive a check has at most one run in flight.
///
/// A name is what probe answers, `/readyz/<name>` and `?exclude=<name>` use: ASCII
/// letters, digits, `-`, `_` and `.`, but not `liveness`, `readiness`, `startup` or
/// `lifecycle`, which answers use for the probes and the lifecycle.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_health::{Check, Health, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     // Critical (the default): while it fails, readiness answers 503.
///     .check(
///         Check::new("database", || async { Ok::<(), std::io::Error>(()) })
///             .timeout(Duration::from_millis(500)),
///     )
///     // Non-critical: while it fails, readiness answers 200 with status `warn`.
///     .check(Check::new("cache", || async { Err("connection refused") }).non_critical())
///     .build();
/// health.ready();
///
/// let report = health.refresh().await;
/// assert_eq!(report.check("database").unwrap().status(), Status::Pass);
/// assert_eq!(report.check("cache").unwrap().status(), Status::Fail);
/// assert_eq!(report.status(Probe::Readiness), Status::Warn);
/// # }
/// ```
///
/// # Choosing the options
///
/// - **Critical or not.** A critical check (the default) fails readiness: the replica
///   leaves the load balancer while the dependency is down. Mark a check
///   [`non_critical`](Check::non_critical) when the service still does useful work
///   without it (a cache, a recommendations API): readiness then answers 200 with status
///   `warn`, so a flaky extra does not take every replica out of service at once.
/// - **Which probes.** Checks gate readiness only. Put one on liveness
///   ([`probes`](Check::probes)) almost never: a liveness failure restarts the container,
///   and a shared dependency that is down would restart every replica together without
///   fixing anything. Liveness checks are for faults a restart fixes (a wedged worker
///   thread). A check on startup holds back the other probes until it first passes (a
///   model or a cache that must be loaded before anything else makes sense).
/// - **Timeouts and the budget.** A probe on a cold cache waits for results at most the
///   [budget](crate::Builder::budget) (900 ms by default, inside the kubelet's default
///   1 s probe timeout), and no check's timeout may exceed it (the build says so). For a
///   dependency that may take 2 s, raise the budget to 2 s together with the probe's
///   `timeoutSeconds`. With the background refresh (on by
///   default, every [`refresh_every`](crate::Builder::refresh_every)) only the first
///   probes after start-up can find no result.
/// - **Interval.** A check runs [`every`](Check::every) interval (the builder's, 1 s,
///   unless set): lengthen it for a check that is expensive or paid for, so that it runs
///   less often than the others.
/// - **Damping.** [`fail_after`](Check::fail_after) and [`pass_after`](Check::pass_after)
///   keep one lost packet from flapping readiness; the kubelet's own
///   `failureThreshold` does the same per probe, so use damping for checks shared by
///   several probes or read through [`Health::report`](crate::Health::report).
/// - **Blocking clients.** A synchronous client goes through [`Check::blocking`], which
///   runs it on Tokio's blocking pool: never call it from an async check.
#[must_use = "a Check does nothing until it is added with Builder::check"]
#[derive(Clone)]
pub struct Check {
    pub(crate) name: Arc<str>,
    pub(crate) run: Runner,
    pub(crate) timeout: Option<Duration>,
    pub(crate) critical: bool,
    pub(crate) gates: Gates,
    pub(crate) ttl: Option<Duration>,
    pub(crate) fail_after: u32,
    pub(crate) pass_after: u32,
    /// Set for an entry whose status the application sets: it never runs.
    pub(crate) cell: Option<Arc<Cell>>,
    /// A dependency every replica shares: while it fails, the fleet is asked.
    pub(crate) shared: bool,
    /// For a switch shared by the fleet: the switch whose status each run reads.
    pub(crate) switch: Option<Arc<Cell>>,
}

impl Check {
    /// A check from an async function or closure that returns `Result<(), E>`; an `Err`
    /// fails the check with the error and its causes as the reason.
    ///
    /// `E` is any error, a `String` or a `&str`. For a check over the application's own
    /// pool or client, [`Check::with_state`] hands it to each run and lets `?` work
    /// without a type annotation.
    pub fn new<F, Fut, E>(name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<CheckError> + 'static,
    {
        Check::with_runner(
            name,
            Arc::new(move |_| {
                let run = check();
                Box::pin(async move { Outcome::from(run.await) }) as BoxFuture
            }),
        )
    }

    /// A check over the application's state (a pool, a client), which each run gets a
    /// clone of.
    ///
    /// The state is cloned once per run (a pool or a client is a shared handle, so that
    /// is cheap), and the check returns `Result<(), CheckError>`, so `?` works on any
    /// error with no type annotation. The reason of a failure is the error with its causes.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_health::{Check, Health, Status};
    ///
    /// # struct Pool;
    /// # impl Pool { async fn ping(&self) -> std::io::Result<()> { Err(std::io::Error::other("connection refused")) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Arc::new(Pool); // the application's own, shared with its handlers
    /// let health = Health::builder()
    ///     .check(Check::with_state("database", pool.clone(), |pool| async move {
    ///         pool.ping().await?;
    ///         Ok(())
    ///     }))
    ///     .build();
    /// let report = health.refresh().await;
    /// assert_eq!(report.check("database").unwrap().status(), Status::Fail);
    /// assert_eq!(report.check("database").unwrap().output(), Some("connection refused"));
    /// # }
    /// ```
    pub fn with_state<S, F, Fut>(name: impl Into<Cow<'static, str>>, state: S, check: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), CheckError>> + Send + 'static,
    {
        Check::with_runner(
            name,
            Arc::new(move |_| {
                let run = check(state.clone());
                Box::pin(async move { Outcome::from(run.await) }) as BoxFuture
            }),
        )
    }

    /// A check from a [`HealthCheck`], for checks that report `warn` or a value.
    pub fn from_health_check<C: HealthCheck>(name: impl Into<Cow<'static, str>>, check: C) -> Self {
        let check = Arc::new(check);
        Check::with_runner(
            name,
            Arc::new(move |_| {
                let check = check.clone();
                Box::pin(async move { check.check().await }) as BoxFuture
            }),
        )
    }

    /// A check from a blocking function (a synchronous client), run on Tokio's blocking
    /// thread pool so that it never stalls the async runtime.
    ///
    /// A run that overruns its timeout is reported failed at the timeout ("timed out
    /// after N ms"), but a thread cannot be cancelled: it finishes in its own time, and no
    /// new run of this check starts until it has. So a check that hangs forever holds one
    /// thread of the pool, never more, and keeps reporting the timeout.
    ///
    /// ```
    /// use std::net::TcpStream;
    /// use std::time::Duration;
    /// use tower_health::Check;
    ///
    /// let check = Check::blocking("legacy-db", || {
    ///     TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), Duration::from_millis(500))
    ///         .map(drop)
    /// })
    /// .timeout(Duration::from_millis(800));
    /// # drop(check);
    /// ```
    pub fn blocking<F, E>(name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: Into<CheckError> + 'static,
    {
        let check = Arc::new(check);
        Check::with_runner(
            name,
            Arc::new(move |hold: Hold| {
                let check = check.clone();
                Box::pin(async move {
                    let thread = tokio::task::spawn_blocking(move || {
                        // The claim ends when this thread is done, not at the timeout.
                        let _hold = hold;
                        Outcome::from(check())
                    });
                    match thread.await {
                        Ok(outcome) => outcome,
                        Err(error) if error.is_panic() => {
                            Outcome::fail(engine::panic_reason(&*error.into_panic()))
                        }
                        Err(_) => Outcome::fail("cancelled"),
                    }
                }) as BoxFuture
            }),
        )
    }

    fn with_runner(name: impl Into<Cow<'static, str>>, run: Runner) -> Self {
        Check {
            name: Arc::from(name.into().as_ref()),
            run,
            timeout: None,
            critical: true,
            gates: Gates::READINESS,
            ttl: None,
            fail_after: 1,
            pass_after: 1,
            cell: None,
            shared: false,
            switch: None,
        }
    }

    /// The entry of a gate, switch or heartbeat: named as its cell, never run.
    pub(crate) fn settable(cell: Arc<Cell>, gates: Gates, critical: bool) -> Self {
        let mut check = Check::with_runner(
            cell.name.to_string(),
            Arc::new(|_| Box::pin(async { Outcome::pass() }) as BoxFuture),
        );
        check.name = cell.name.clone();
        check.gates = gates;
        check.critical = critical;
        check.cell = Some(cell);
        check
    }

    /// The entry of a switch shared by the fleet: a check whose runs read the switch, so
    /// that its failure can be weighed against the fleet's before it shows.
    pub(crate) fn shared_switch(cell: Arc<Cell>, gates: Gates, critical: bool) -> Self {
        let read = cell.clone();
        let mut check = Check::with_runner(
            cell.name.to_string(),
            Arc::new(move |_| {
                let said = read.said();
                let outcome = Outcome {
                    status: said.status,
                    output: said.reason,
                    observed: None,
                };
                Box::pin(async move { outcome }) as BoxFuture
            }),
        );
        check.name = cell.name.clone();
        check.gates = gates;
        check.critical = critical;
        check.shared = true;
        check.switch = Some(cell);
        check
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long one run may take before it counts as failed ("timed out after N ms") and
    /// is dropped; the [budget](crate::Builder::budget) unless set.
    ///
    /// It may not exceed the budget: a longer timeout is a
    /// [`BuildProblem::TimeoutOverBudget`](crate::BuildProblem::TimeoutOverBudget), never
    /// a silent cut.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::{Check, Health, Status};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hangs = Check::new("upstream", || async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .timeout(Duration::from_millis(50));
    /// let health = Health::builder().check(hangs).build();
    ///
    /// let report = health.refresh().await;
    /// let upstream = report.check("upstream").unwrap();
    /// assert_eq!(upstream.status(), Status::Fail);
    /// assert_eq!(upstream.output(), Some("timed out after 50 ms"));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Its failure degrades the probes it gates (200, status `warn`) instead of failing
    /// them.
    ///
    /// For a dependency the service can do without for a while: a cache, an
    /// optional API. The [example on `Check`](Check#example) shows one.
    pub fn non_critical(mut self) -> Self {
        self.critical = false;
        self
    }

    /// The probes this check gates, instead of readiness alone.
    ///
    /// See [choosing the options](Check#choosing-the-options) before putting one on
    /// liveness.
    ///
    /// # Example
    ///
    /// A model that must be loaded before the replica starts: startup and readiness wait
    /// for it, liveness does not.
    ///
    /// ```
    /// use tower_health::{Check, Health, Probe, Status};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let model = Check::new("model", || async { Err("still loading") })
    ///     .probes([Probe::Startup, Probe::Readiness]);
    /// let health = Health::builder().check(model).build();
    /// health.ready();
    ///
    /// let report = health.refresh().await;
    /// assert_eq!(report.status(Probe::Startup), Status::Fail);
    /// assert_eq!(report.status(Probe::Readiness), Status::Fail);
    /// assert_eq!(report.status(Probe::Liveness), Status::Pass);
    /// # }
    /// ```
    pub fn probes(mut self, probes: impl IntoIterator<Item = Probe>) -> Self {
        self.gates = Gates::of(probes);
        self
    }

    /// How often this check runs: the background refresh runs it once its result is this
    /// old, and a result stays fresh this long; the builder's
    /// [`Builder::every`](crate::Builder::every) (1 s) unless set.
    ///
    /// For a dependency that is costly or paid for per request (a search index, an
    /// external API), so that it is asked once a minute rather than once a second.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::{Check, Health};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // A search index that is costly to ask: once every 30 s is enough.
    /// let index = Check::new("search-index", || async { Ok::<(), std::io::Error>(()) })
    ///     .every(Duration::from_secs(30));
    /// let health = Health::builder().check(index).build();
    /// # drop(health);
    /// # }
    /// ```
    pub fn every(mut self, interval: Duration) -> Self {
        self.ttl = Some(interval);
        self
    }

    /// Reports failure only after `n` consecutive failed runs (at least 1, the default).
    ///
    /// The first result a check ever has is taken as it is.
    ///
    /// # Example
    ///
    /// One lost packet does not fail readiness; three failures in a row do.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use tower_health::{Check, Health, Status};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let up = Arc::new(AtomicBool::new(true));
    /// let dependency = up.clone();
    /// let check = Check::new("upstream", move || {
    ///     let up = dependency.load(Ordering::SeqCst);
    ///     async move { if up { Ok(()) } else { Err("no answer") } }
    /// })
    /// .fail_after(3);
    /// let health = Health::builder()
    ///     .check(check)
    ///     .background_refresh(false) // only the refreshes below run the check
    ///     .build();
    /// let status = |report: tower_health::Report| report.check("upstream").unwrap().status();
    ///
    /// assert_eq!(status(health.refresh().await), Status::Pass);
    /// up.store(false, Ordering::SeqCst);
    /// assert_eq!(status(health.refresh().await), Status::Pass); // 1 failure
    /// assert_eq!(status(health.refresh().await), Status::Pass); // 2
    /// assert_eq!(status(health.refresh().await), Status::Fail); // 3: now it fails
    /// # }
    /// ```
    pub fn fail_after(mut self, n: u32) -> Self {
        self.fail_after = n.max(1);
        self
    }

    /// Reports a failed check as passing again only after `n` consecutive successful runs
    /// (at least 1, the default).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::Check;
    ///
    /// // Back in the load balancer only after two good answers in a row, so that a
    /// // dependency that comes and goes does not flap readiness.
    /// let check = Check::new("upstream", || async { Ok::<(), std::io::Error>(()) })
    ///     .fail_after(3)
    ///     .pass_after(2)
    ///     .timeout(Duration::from_millis(300));
    /// # drop(check);
    /// ```
    pub fn pass_after(mut self, n: u32) -> Self {
        self.pass_after = n.max(1);
        self
    }

    /// Marks a dependency that every replica shares (the database, the queue, an
    /// upstream API), so that its outage never takes the whole fleet out of the Service.
    ///
    /// With a [fleet](crate::Builder::fleet) configured, a failure of this check asks the
    /// other replicas for their own result of it: when a strict majority of the fleet,
    /// this replica included, fails too, the outage is shared and readiness is held (the
    /// check shows `warn`, "failing on 3 of 3 replicas: readiness held"); otherwise it is
    /// this replica's own and fails readiness as usual. Without a fleet it changes
    /// nothing. The check must gate readiness (it does by default). The table of outages
    /// is on `Fleet`.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_health::Check;
    ///
    /// # async fn select_1() -> Result<(), std::io::Error> { Ok(()) }
    /// let postgres = Check::new("postgres", select_1).shared();
    /// # drop(postgres);
    /// ```
    ///
    /// Mark a dependency shared when every replica reaches the same one and a replica
    /// without it still answers something useful (other routes, cached data, a clear
    /// error). Leave unmarked what only this replica can lose (a local disk, a sidecar).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Why this check's name cannot be used, if it cannot.
    pub(crate) fn validate_name(&self) -> Result<(), BuildProblem> {
        let name = &*self.name;
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            Err(BuildProblem::InvalidCheckName { name: name.into() })
        } else if RESERVED_NAMES.contains(&name) {
            Err(BuildProblem::ReservedCheckName { name: name.into() })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("critical", &self.critical)
            .field("gates", &self.gates)
            .field("ttl", &self.ttl)
            .field("fail_after", &self.fail_after)
            .field("pass_after", &self.pass_after)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}
