//! The opt-in count of requests in flight, which the drain waits on, and the guards a
//! request holds while it runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::progress::Progress;

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
