//! Shutdown: the drain timeline that turns SIGTERM into a stop that loses no request, and
//! the opt-in count of requests in flight.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::progress::Progress;
use crate::time::timers;

// === impl InFlight ===

/// The number of requests passed to the inner service whose response has not ended, and
/// the wedge detector's counter of those whose response head is not out yet: each is
/// there when turned on.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// Shared with the requests left out of the wedge detector, which are counted alike.
    counter: Arc<Counter>,
    /// Whether requests are counted in `counter` (`track_in_flight`).
    counted: bool,
    progress: Option<Arc<Progress>>,
}

/// The count of requests in flight, and the bell for its reaching zero.
#[derive(Debug, Default)]
struct Counter {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub(crate) fn new(counted: bool, progress: Option<Arc<Progress>>) -> InFlight {
        InFlight {
            counter: Arc::default(),
            counted,
            progress,
        }
    }

    /// The same count for the requests that the wedge detector leaves out: `None` when
    /// such a request would have nothing to do (requests are not counted).
    pub(crate) fn exempt(&self) -> Option<InFlight> {
        self.counted.then(|| InFlight {
            counter: self.counter.clone(),
            counted: true,
            progress: None,
        })
    }

    #[inline]
    pub(crate) fn enter(self: &Arc<Self>) -> RequestGuard {
        if self.counted {
            self.counter.count.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(progress) = &self.progress {
            progress.enter();
        }
        RequestGuard(Some(self.clone()))
    }

    fn leave(&self) {
        if self.counter.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.counter.idle.notify_waiters();
        }
    }

    /// The requests in flight, when they are counted (`track_in_flight`).
    pub(crate) fn count(&self) -> Option<usize> {
        self.counted
            .then(|| self.counter.count.load(Ordering::Acquire))
    }

    /// Resolves once the count is zero (at once if it already is, or if requests are not
    /// counted: nothing is known to be in flight).
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.counter.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count().unwrap_or(0) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A request passed through whose response head is not out yet. Dropped before that (the
/// request cancelled), it ends the request without counting a head. Empty once the head
/// is out (or for a request that is not counted): the emptiness is inside, so that the
/// response future holds it in one word.
#[derive(Debug, Default)]
pub(crate) struct RequestGuard(Option<Arc<InFlight>>);

impl RequestGuard {
    /// The response head is out (or the inner service failed): a head for the wedge
    /// detector, and the request stays in flight with its body, if requests are counted.
    pub(crate) fn head_out(&mut self) -> Option<InFlightGuard> {
        let in_flight = self.0.take()?;
        if let Some(progress) = &in_flight.progress {
            progress.head();
        }
        // Not `then_some`: that would build the guard, and its drop would count a
        // request out that was never counted in.
        if in_flight.counted {
            Some(InFlightGuard(in_flight))
        } else {
            None
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if let Some(in_flight) = self.0.take() {
            if let Some(progress) = &in_flight.progress {
                progress.cancel();
            }
            if in_flight.counted {
                in_flight.leave();
            }
        }
    }
}

/// One request in flight; dropping it (when the response body ends or is dropped) ends it.
#[derive(Debug)]
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

// === impl DrainOver ===

/// Set once the drain delay is over (or a second signal cut it short), as the shutdown
/// future resolves and the server stops accepting: long-lived health streams end then, so
/// that they never hold up a graceful shutdown.
#[derive(Debug)]
pub(crate) struct DrainOver(watch::Sender<bool>);

impl Default for DrainOver {
    fn default() -> Self {
        DrainOver(watch::Sender::new(false))
    }
}

impl DrainOver {
    pub(crate) fn set(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the drain delay is over (at once if it already is).
    pub(crate) fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut over = self.0.subscribe();
        async move {
            // An error means the state is gone, and nothing is left to wait for.
            let _ = over.wait_for(|over| *over).await;
        }
    }
}

// === impl Signals ===

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment this is made on a Tokio runtime,
/// so that a signal that arrives before anything waits for it is never the default action
/// (ending the process at once, exit 143): it is kept, and the next [`Signals::next`]
/// returns at once. Made outside a runtime, the handlers are installed at the first
/// `next`.
///
/// A handler that cannot be installed (no IO driver in the runtime, the OS refused) is
/// logged, and that signal never arrives, rather than stopping the server at once.
#[derive(Debug)]
pub(crate) struct Signals {
    installed: bool,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn catch() -> Signals {
        let mut signals = Signals {
            installed: false,
            #[cfg(unix)]
            terminate: None,
            #[cfg(unix)]
            interrupt: None,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            signals.install();
        }
        signals
    }

    fn install(&mut self) {
        self.installed = true;
        #[cfg(unix)]
        {
            use tokio::signal::unix::SignalKind;
            self.terminate = unix_signal(SignalKind::terminate(), "SIGTERM");
            self.interrupt = unix_signal(SignalKind::interrupt(), "Ctrl-C (SIGINT)");
        }
    }

    /// The next signal caught, logged by name.
    pub(crate) async fn next(&mut self) {
        if !self.installed {
            self.install();
        }
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.terminate) => tracing::info!("health: SIGTERM received"),
                () = recv(&mut self.interrupt) => tracing::info!("health: Ctrl-C received"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "health: cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("health: Ctrl-C received");
        }
    }
}

/// The handler for `kind`, or `None` (logged) when it cannot be had. tokio panics rather
/// than erring on a runtime built without its IO driver; that is caught here, once per
/// call, so that a shutdown future never takes the process down.
#[cfg(unix)]
fn unix_signal(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
) -> Option<tokio::signal::unix::Signal> {
    match std::panic::catch_unwind(|| tokio::signal::unix::signal(kind)) {
        Ok(Ok(signal)) => Some(signal),
        Ok(Err(error)) => {
            tracing::error!(%error, "health: cannot listen for {name}");
            None
        }
        Err(_) => {
            tracing::error!(
                "health: cannot listen for {name}: the Tokio runtime has no IO driver \
                 (build it with enable_io or enable_all)"
            );
            None
        }
    }
}

/// SIGTERM or Ctrl-C, whichever comes first, with handlers installed when first polled.
pub(crate) async fn os_signal() {
    Signals {
        installed: false,
        #[cfg(unix)]
        terminate: None,
        #[cfg(unix)]
        interrupt: None,
    }
    .next()
    .await
}

// === the drain timeline ===

/// The timeline: wait for `first`, drain at once, keep serving until `delay_over` (one
/// drain delay after the drain started, the instant every part of the shutdown shares)
/// unless `second` (made from what `first` gave) arrives sooner, then call `over` and
/// resolve so that the server stops accepting. `delay` is the delay's length, for the log.
///
/// On a runtime without a timer the delay cannot be waited for: it is skipped, with an
/// error in the log, so that the shutdown still ends (the engine answers the same way:
/// "not run", never a panic). A delay past what a clock can hold (`Duration::MAX`) lasts
/// until `second`.
pub(crate) async fn sequence<S, Second>(
    drain: impl FnOnce(),
    over: impl FnOnce(),
    delay: Duration,
    delay_over: impl Future<Output = ()>,
    first: impl Future<Output = S>,
    second: impl FnOnce(S) -> Second,
) where
    Second: Future<Output = ()>,
{
    let signalled = first.await;
    drain();
    if !timers::enabled() {
        tracing::error!(
            "health: draining, but the Tokio runtime has no timer (build it with enable_time \
             or enable_all): the drain delay is skipped and the listener stops now"
        );
        over();
        return;
    }
    tracing::info!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "health: draining; readiness now fails, traffic is still served until the delay ends"
    );
    tokio::select! {
        () = delay_over => {
            tracing::info!("health: drain delay over; stopping the listener");
        }
        () = second(signalled) => {
            tracing::warn!("health: second signal during the drain delay; stopping now");
        }
    }
    over();
}

/// Resolves `delay` after `start` (never when that is past what a clock can hold).
#[cfg(test)]
async fn after(start: tokio::time::Instant, delay: Duration) {
    match crate::time::deadline_from(start, delay) {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Health;
    use futures_util::FutureExt as _;
    use tokio::sync::oneshot;

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_cuts_the_delay_short() {
        let health = Health::new();
        health.ready();
        let (first_tx, first) = oneshot::channel::<()>();
        let (second_tx, second) = oneshot::channel::<()>();
        let draining = health.clone();
        let drain_over = Arc::new(DrainOver::default());
        let mut over = Box::pin(drain_over.wait());
        let setting = drain_over.clone();
        let mut sequence = Box::pin(sequence(
            move || {
                draining.drain();
            },
            move || setting.set(),
            Duration::from_secs(30),
            after(tokio::time::Instant::now(), Duration::from_secs(30)),
            async move {
                let _ = first.await;
            },
            move |()| async move {
                let _ = second.await;
            },
        ));
        first_tx.send(()).unwrap();
        assert!(sequence.as_mut().now_or_never().is_none());
        assert_eq!(health.state(), crate::State::Draining);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(sequence.as_mut().now_or_never().is_none());
        assert!(
            over.as_mut().now_or_never().is_none(),
            "the delay is not over"
        );
        second_tx.send(()).unwrap();
        assert!(sequence.now_or_never().is_some(), "resolved at once");
        assert!(over.now_or_never().is_some(), "the drain is over with it");
        assert!(drain_over.wait().now_or_never().is_some(), "and stays over");
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_is_over_when_the_delay_ends() {
        let drain_over = Arc::new(DrainOver::default());
        let setting = drain_over.clone();
        let start = tokio::time::Instant::now();
        let sequence = tokio::spawn(sequence(
            || {},
            move || setting.set(),
            Duration::from_secs(5),
            after(start, Duration::from_secs(5)),
            async {},
            |()| std::future::pending(),
        ));
        drain_over.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        sequence.await.unwrap();
    }

    fn without_a_timer() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
    }

    #[test]
    fn on_a_runtime_without_a_timer_the_shutdown_drains_and_ends_without_a_panic() {
        let health = Health::builder()
            .drain_delay(Duration::from_secs(5))
            .build();
        health.ready();
        without_a_timer().block_on(async {
            // The old timeline panicked here, in the drain delay's `sleep`.
            health.shutdown_on(async {}).await;
            assert_eq!(health.state(), crate::State::Draining);
            health.drain_delay_over().await;
            let served = health.with_deadline(async { 7 }).await;
            assert_eq!(served, Some(7), "the server's end is returned");
        });
    }

    /// A real SIGTERM to this test process: the handler that `shutdown_signal` installs
    /// catches it (and every later one), so nothing else in the process sees it.
    #[cfg(unix)]
    #[test]
    fn shutdown_signal_on_a_runtime_without_a_timer_drains_on_sigterm_without_a_panic() {
        let health = Health::builder()
            .drain_delay(Duration::from_secs(5))
            .build();
        health.ready();
        without_a_timer().block_on(async {
            let shutdown = health.shutdown_signal();
            tokio::pin!(shutdown);
            let sent = std::process::Command::new("sh")
                .args(["-c", "kill -s TERM \"$0\"", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            // No timer to bound the wait with: a bounded number of turns instead.
            let mut ended = false;
            for _ in 0..5_000 {
                if shutdown.as_mut().now_or_never().is_some() {
                    ended = true;
                    break;
                }
                tokio::task::yield_now().await;
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(ended, "the delay is skipped: no timer can wait for it");
        });
        assert_eq!(health.state(), crate::State::Draining);
    }

    /// A writer for a test's log, shared with the test.
    #[derive(Clone, Default)]
    struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn two_shutdown_futures_of_one_health_share_one_timeline() {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);
        let health = Health::builder()
            .drain_delay(Duration::from_millis(50))
            .build();
        health.ready();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // The main server's and a probe listener's, say.
            let first = health.shutdown_signal();
            let second = health.shutdown_signal();
            let sent = std::process::Command::new("sh")
                .args(["-c", "kill -s TERM \"$0\"", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            let both = async {
                first.await;
                second.await;
            };
            tokio::time::timeout(Duration::from_secs(10), both)
                .await
                .expect("both futures end when the drain delay is over");
        });
        assert_eq!(health.state(), crate::State::Draining);
        let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("drain delay over").count(), 1, "{log}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_max_delay_and_deadline_are_no_limit() {
        let health = Health::builder()
            .drain_delay(Duration::MAX)
            .shutdown_timeout(Duration::MAX)
            .build();
        let (second_tx, second) = oneshot::channel::<()>();
        let drain_over = health.drain_delay_over();
        let health_for_server = health.clone();
        let server = tokio::spawn(async move {
            let timeline = sequence(
                || {
                    health_for_server.drain();
                },
                || {},
                Duration::MAX,
                after(tokio::time::Instant::now(), Duration::MAX),
                async {},
                move |()| async move {
                    let _ = second.await;
                },
            );
            health_for_server.with_deadline(timeline).await
        });
        tokio::time::sleep(Duration::from_secs(100 * 365 * 24 * 3600)).await;
        assert_eq!(health.state(), crate::State::Draining);
        assert!(
            !server.is_finished(),
            "neither the delay nor a deadline ended it"
        );
        second_tx.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Some(()), "the second signal did");
        drop(drain_over);
    }
}
