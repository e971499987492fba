//! The parts of a shutdown that are not HTTP: background work that holds the shutdown open
//! with a [`DrainGuard`], and the hard deadline that bounds the whole shutdown, drain delay
//! included ([`Health::with_deadline`](crate::Health::with_deadline)).
//!
//! The shape is linkerd's `drain` crate's: one side starts the drain (here the shutdown
//! timeline), every holder learns of it and releases its hold when its work is done, and
//! the side that waits for the holders waits no longer than the deadline.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::InFlight;
use crate::time::{deadline_from, timers};

/// The default of [`Builder::shutdown_timeout`](crate::Builder::shutdown_timeout).
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// The target of its log lines, kept from before it moved into this folder.
const TARGET: &str = "tower_health::drain";

// === impl Drain ===

/// When the drain started, who still holds the shutdown open, and how long it may last.
#[derive(Debug)]
pub(crate) struct Drain {
    timeout: Duration,
    started: watch::Sender<Option<Instant>>,
    holders: Mutex<Vec<Holder>>,
    /// Bumped at every guard taken or dropped, so that cached answers that list the
    /// guards are rendered again.
    generation: AtomicU64,
    released: Notify,
}

/// The guards held under one name.
#[derive(Debug)]
struct Holder {
    name: Cow<'static, str>,
    count: usize,
}

impl Drain {
    pub(crate) fn new(timeout: Duration) -> Drain {
        Drain {
            timeout,
            started: watch::Sender::new(None),
            holders: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            released: Notify::new(),
        }
    }

    /// Records that the drain started now, unless it already had: the deadline counts
    /// from the first signal.
    pub(crate) fn start(&self) {
        let now = Instant::now();
        self.started.send_if_modified(|started| {
            let first = started.is_none();
            if first {
                *started = Some(now);
            }
            first
        });
    }

    /// Resolves once the drain has started, with the moment it did.
    fn started(&self) -> impl Future<Output = Instant> + Send + 'static {
        let mut started = self.started.subscribe();
        async move {
            let at = started.wait_for(Option::is_some).await.map(|at| *at);
            match at {
                Ok(at) => at.unwrap_or_else(Instant::now),
                // The sender lives as long as this state; gone, nothing starts.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Resolves `after` the start of the drain; never when that is past what a clock can
    /// hold (`Duration::MAX`: no limit); at the start itself on a runtime without a timer,
    /// which cannot wait (the shutdown timeline does the same with its delay).
    pub(crate) fn after_start(&self, after: Duration) -> impl Future<Output = ()> + Send + 'static {
        let started = self.started();
        async move {
            let start = started.await;
            if !timers::enabled() {
                return;
            }
            match deadline_from(start, after) {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    /// Resolves at the deadline: the timeout after the start of the drain. Never on a
    /// runtime without a timer (said once in the log), nor when the timeout is past what
    /// a clock can hold.
    fn deadline(&self) -> impl Future<Output = ()> + Send + 'static {
        let started = self.started();
        let timeout = self.timeout;
        async move {
            let start = started.await;
            if !timers::enabled() {
                tracing::error!(
                    target: TARGET,
                    "health: the Tokio runtime has no timer (build it with enable_time or \
                     enable_all); the shutdown deadline cannot be kept"
                );
                return std::future::pending().await;
            }
            match deadline_from(start, timeout) {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    /// The timeout as it reads in a log line.
    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn hold(self: &Arc<Self>, name: Cow<'static, str>) -> DrainGuard {
        {
            let mut holders = self.lock();
            match holders.iter_mut().find(|h| h.name == name) {
                Some(holder) => holder.count += 1,
                None => holders.push(Holder {
                    name: name.clone(),
                    count: 1,
                }),
            }
            self.generation.fetch_add(1, Ordering::Release);
        }
        DrainGuard {
            drain: self.clone(),
            name,
        }
    }

    fn release(&self, name: &str) {
        let empty = {
            let mut holders = self.lock();
            if let Some(i) = holders.iter().position(|h| h.name == name) {
                holders[i].count -= 1;
                if holders[i].count == 0 {
                    holders.remove(i);
                }
            }
            self.generation.fetch_add(1, Ordering::Release);
            holders.is_empty()
        };
        if empty {
            self.released.notify_waiters();
        }
    }

    /// Changes whenever a guard is taken or dropped.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Who holds the shutdown open now: each name with how many guards it holds, in the
    /// order they were first taken.
    pub(crate) fn holders(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|h| (h.name.clone().into_owned(), h.count))
            .collect()
    }

    /// Resolves once no guard is held (at once if none is).
    async fn released(&self) {
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Holder>> {
        // The list stays consistent whatever panicked while it was held: every change to
        // it is a single step.
        self.holders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once, after `delay_over`, nothing is in flight and no guard is held, both
    /// at once; never when requests are not counted (nothing says none is in flight).
    async fn work_ended(&self, delay_over: impl Future<Output = ()>, in_flight: Option<&InFlight>) {
        let Some(in_flight) = in_flight.filter(|c| c.count().is_some()) else {
            return std::future::pending().await;
        };
        delay_over.await;
        loop {
            in_flight.idle().await;
            self.released().await;
            // A connection still open may have sent a request meanwhile.
            if in_flight.count() == Some(0) && self.lock().is_empty() {
                return;
            }
        }
    }

    /// `server` run to its end, or until the deadline, or (with requests counted) until
    /// the drain delay is over with nothing in flight and no guard held; then, while
    /// draining, the guards waited for until the deadline. What the deadline cuts is said
    /// in one warning.
    pub(crate) async fn bounded<F: Future>(
        &self,
        server: F,
        draining: impl Fn() -> bool,
        in_flight: Option<&InFlight>,
        delay_over: impl Future<Output = ()>,
    ) -> Option<F::Output> {
        let deadline = self.deadline();
        tokio::pin!(deadline);
        let output = tokio::select! {
            biased;
            output = server => output,
            () = self.work_ended(delay_over, in_flight) => {
                tracing::info!(
                    target: TARGET,
                    "health: drain delay over, no request in flight and no guard held; \
                     stopping the server now, with its idle connections"
                );
                return None;
            }
            () = &mut deadline => {
                tracing::warn!(
                    target: TARGET,
                    timeout_ms = self.timeout_ms(),
                    in_flight = %InFlightCount(in_flight),
                    holders = %Holders(&self.holders()),
                    "health: shutdown deadline reached; dropping the server with the \
                     connections, streams and requests it still has open"
                );
                return None;
            }
        };
        if !draining() {
            // The server ended by itself (an error): nothing is draining to wait for.
            return Some(output);
        }
        let holders = self.holders();
        if !holders.is_empty() {
            tracing::info!(
                target: TARGET,
                holders = %Holders(&holders),
                "health: the server has stopped; waiting for the background work that \
                 holds the shutdown"
            );
        }
        tokio::select! {
            () = self.released() => {}
            () = &mut deadline => tracing::warn!(
                target: TARGET,
                timeout_ms = self.timeout_ms(),
                holders = %Holders(&self.holders()),
                "health: shutdown deadline reached; the server has stopped, cutting the \
                 background work that still holds the shutdown"
            ),
        }
        Some(output)
    }
}

/// The holders as a log line reads them: `"queue" x1, "refresher" x2`.
struct Holders<'a>(&'a [(String, usize)]);

impl fmt::Display for Holders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (name, count)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name:?} x{count}")?;
        }
        Ok(())
    }
}

/// The requests in flight as a log line reads them.
struct InFlightCount<'a>(Option<&'a InFlight>);

impl fmt::Display for InFlightCount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(InFlight::count) {
            Some(count) => write!(f, "{count}"),
            None => f.write_str("not counted (Builder::track_in_flight)"),
        }
    }
}

// === impl DrainGuard ===

/// Holds the shutdown open while a piece of background work finishes: made by
/// [`Health::drain_guard`](crate::Health::drain_guard), released when dropped.
///
/// [`Health::with_deadline`](crate::Health::with_deadline) returns only once the server
/// has stopped and every guard is dropped, or at the deadline
/// ([`Builder::shutdown_timeout`](crate::Builder::shutdown_timeout)), when it names in its
/// warning each guard still held. While the drain runs, the guards held are also listed by
/// name in `?verbose` answers and on the page.
#[must_use = "a DrainGuard holds the shutdown open only while it is kept"]
pub struct DrainGuard {
    drain: Arc<Drain>,
    name: Cow<'static, str>,
}

impl DrainGuard {
    /// The name the guard was taken under, as the log and the answers show it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        self.drain.release(&self.name);
    }
}

impl fmt::Debug for DrainGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainGuard")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[test]
    fn guards_are_counted_by_name_and_released_on_drop() {
        let drain = Arc::new(Drain::new(DEFAULT_SHUTDOWN_TIMEOUT));
        let a = drain.hold("queue".into());
        let b = drain.hold("queue".into());
        let c = drain.hold("refresher".into());
        assert_eq!(
            drain.holders(),
            [("queue".to_owned(), 2), ("refresher".to_owned(), 1)]
        );
        assert_eq!(a.name(), "queue");
        drop(a);
        drop(c);
        assert_eq!(drain.holders(), [("queue".to_owned(), 1)]);
        assert!(drain.released().now_or_never().is_none());
        drop(b);
        assert!(drain.holders().is_empty());
        assert!(drain.released().now_or_never().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_first_start() {
        let drain = Drain::new(Duration::from_secs(3));
        let begin = Instant::now();
        let deadline = drain.deadline();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drain.start();
        tokio::time::sleep(Duration::from_secs(1)).await;
        drain.start(); // a second start moves nothing
        deadline.await;
        assert_eq!(begin.elapsed(), Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_max_timeout_is_no_limit_and_does_not_panic() {
        let drain = Drain::new(Duration::MAX);
        drain.start();
        let deadline = tokio::spawn(drain.deadline());
        let delay = tokio::spawn(drain.after_start(Duration::MAX));
        tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
        assert!(!deadline.is_finished(), "no deadline");
        assert!(!delay.is_finished(), "no end to the delay");
        deadline.abort();
        delay.abort();
        assert!(
            deadline.await.unwrap_err().is_cancelled(),
            "it did not panic"
        );
        assert!(delay.await.unwrap_err().is_cancelled(), "it did not panic");
    }

    #[test]
    fn holders_read_as_one_line() {
        let holders = [("queue".to_owned(), 1), ("a\nb".to_owned(), 2)];
        assert_eq!(Holders(&holders).to_string(), r#""queue" x1, "a\nb" x2"#);
        assert_eq!(Holders(&[]).to_string(), "none");
    }
}
