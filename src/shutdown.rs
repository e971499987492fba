//! Shutdown: the drain timeline that turns SIGTERM into a stop that loses no request, and
//! the opt-in count of requests in flight.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::progress::Progress;

// === impl InFlight ===

/// The number of requests passed to the inner service whose response has not ended, and
/// the wedge detector's counter of those whose response head is not out yet: each is
/// there when turned on.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
    /// Whether requests are counted in `count` (`track_in_flight`).
    counted: bool,
    progress: Option<Arc<Progress>>,
}

impl InFlight {
    pub(crate) fn new(counted: bool, progress: Option<Arc<Progress>>) -> InFlight {
        InFlight {
            count: AtomicUsize::new(0),
            idle: Notify::new(),
            counted,
            progress,
        }
    }

    /// Whether requests are counted, for [`Health::in_flight`](crate::Health::in_flight).
    pub(crate) fn is_counted(&self) -> bool {
        self.counted
    }

    #[inline]
    pub(crate) fn enter(self: &Arc<Self>) -> RequestGuard {
        if self.counted {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(progress) = &self.progress {
            progress.enter();
        }
        RequestGuard(Some(self.clone()))
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once the count is zero (at once if it already is).
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A request passed through whose response head is not out yet. Dropped before that (the
/// request cancelled), it ends the request without counting a head.
#[derive(Debug)]
pub(crate) struct RequestGuard(Option<Arc<InFlight>>);

impl RequestGuard {
    /// The response head is out (or the inner service failed): a head for the wedge
    /// detector, and the request stays in flight with its body, if requests are counted.
    pub(crate) fn head_out(mut self) -> Option<InFlightGuard> {
        let in_flight = self.0.take()?;
        if let Some(progress) = &in_flight.progress {
            progress.head();
        }
        in_flight.counted.then_some(InFlightGuard(in_flight))
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
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut over = self.0.subscribe();
        async move {
            // An error means the state is gone, and nothing is left to wait for.
            let _ = over.wait_for(|over| *over).await;
        }
    }
}

// === the drain timeline ===

/// SIGTERM or Ctrl-C, whichever comes first. If a handler cannot be installed, that
/// signal is logged and never arrives, rather than stopping the server at once.
pub(crate) async fn os_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "health: cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "health: cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("health: Ctrl-C received"),
        () = terminate => tracing::info!("health: SIGTERM received"),
    }
}

/// The timeline: wait for `first`, drain at once, keep serving for `delay` unless `second`
/// arrives sooner, then call `over` and resolve so that the server stops accepting.
pub(crate) async fn sequence(
    drain: impl FnOnce(),
    over: impl FnOnce(),
    delay: Duration,
    first: impl Future<Output = ()>,
    second: impl Future<Output = ()>,
) {
    first.await;
    drain();
    tracing::info!(
        delay_ms = delay.as_millis() as u64,
        "health: draining; readiness now fails, traffic is still served until the delay ends"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {
            tracing::info!("health: drain delay over; stopping the listener");
        }
        () = second => {
            tracing::warn!("health: second signal during the drain delay; stopping now");
        }
    }
    over();
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
            async move {
                let _ = first.await;
            },
            async move {
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
            async {},
            std::future::pending(),
        ));
        drain_over.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        sequence.await.unwrap();
    }
}
