//! Time helpers every part shares: a deadline that cannot overflow Tokio's timer, and
//! whether the current runtime has a timer at all.

use std::time::Duration;

use tokio::time::Instant;

/// `after` from now; `None` when that is too far to be an instant (a `Duration::MAX`
/// budget, say), which means no limit.
pub(crate) fn deadline(after: Duration) -> Option<Instant> {
    deadline_from(Instant::now(), after)
}

/// `after` from `from`, or `None`, as [`deadline`].
pub(crate) fn deadline_from(from: Instant, after: Duration) -> Option<Instant> {
    let at = from.checked_add(after)?;
    // Tokio's timer rounds a deadline up to its next millisecond by adding to it: leave
    // it room, so that no deadline given to it overflows there.
    at.checked_add(Duration::from_secs(1)).map(|_| at)
}

/// Whether the current Tokio runtime has a timer. Tokio has no way to ask but to try,
/// and trying panics; the answer is remembered per runtime, so each runtime without a
/// timer costs one caught panic (its message goes through the panic hook once).
pub(crate) mod timers {
    use std::cell::Cell;
    use std::sync::Mutex;

    use tokio::runtime::{Handle, Id};

    pub(crate) const NO_TIMER: &str =
        "not run: the Tokio runtime has no timer (build it with enable_time or enable_all)";

    static KNOWN: Mutex<Vec<(Id, bool)>> = Mutex::new(Vec::new());

    thread_local! {
        static LAST: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
    }

    pub(crate) fn enabled() -> bool {
        let Ok(handle) = Handle::try_current() else {
            return false;
        };
        let id = handle.id();
        if let Some((last, enabled)) = LAST.get() {
            if last == id {
                return enabled;
            }
        }
        let enabled = ask(id);
        LAST.set(Some((id, enabled)));
        enabled
    }

    fn ask(id: Id) -> bool {
        let mut known = crate::cache::lock(&KNOWN);
        if let Some(&(_, enabled)) = known.iter().find(|(known, _)| *known == id) {
            return enabled;
        }
        let enabled = std::panic::catch_unwind(|| {
            drop(tokio::time::sleep(std::time::Duration::ZERO));
        })
        .is_ok();
        if known.len() >= 64 {
            known.clear();
        }
        known.push((id, enabled));
        enabled
    }
}
