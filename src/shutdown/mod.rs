//! Shutdown: the drain timeline that turns SIGTERM into a stop that loses no request, the
//! OS signals that start it, the drain and its guards, the opt-in count of requests in
//! flight and the wedge detector's progress counter.

mod drain;
mod in_flight;
mod progress;
mod signal;

pub use drain::DrainGuard;
pub(crate) use drain::{Drain, DEFAULT_SHUTDOWN_TIMEOUT};
pub(crate) use in_flight::{InFlight, InFlightGuard, RequestGuard};
pub(crate) use progress::Progress;
pub(crate) use signal::{os_signal, Signals};

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::time::timers;

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
    use std::sync::Arc;
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
                draining.start_draining();
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
        assert_eq!(health.state(), crate::Lifecycle::Draining);
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
            assert_eq!(health.state(), crate::Lifecycle::Draining);
            health.drain_delay_over().await;
            let served = health.with_deadline(async { 7 }).await;
            assert_eq!(served, Some(7), "the server's end is returned");
        });
    }

    /// Held by each test that sends this process a real SIGTERM: every timeline in the
    /// process sees every signal, so one test's signal must not reach another's timeline
    /// as its second (which cuts its drain delay short).
    static SIGNALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A real SIGTERM to this test process: the handler that `shutdown_signal` installs
    /// catches it (and every later one), so nothing else in the process sees it.
    #[cfg(unix)]
    #[test]
    fn shutdown_signal_on_a_runtime_without_a_timer_drains_on_sigterm_without_a_panic() {
        let _alone = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
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
        assert_eq!(health.state(), crate::Lifecycle::Draining);
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
        let _alone = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
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
        assert_eq!(health.state(), crate::Lifecycle::Draining);
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
                    health_for_server.start_draining();
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
        assert_eq!(health.state(), crate::Lifecycle::Draining);
        assert!(
            !server.is_finished(),
            "neither the delay nor a deadline ended it"
        );
        second_tx.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Some(()), "the second signal did");
        drop(drain_over);
    }
}
