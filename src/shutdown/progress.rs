//! The wedge detector's counter: how many requests that passed through are waiting for
//! their response head, and how many heads have been produced, in one atomic word.

use std::sync::atomic::{AtomicU64, Ordering};

/// One head produced: the high half counts heads (wrapping), the low half the waiting
/// requests, so that a head is one atomic add that ends a wait and counts the head.
const HEAD: u64 = 1 << 32;

/// Requests waiting for their response head, and heads produced, in one word.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    word: AtomicU64,
}

impl Progress {
    /// A request passed through and waits for its head.
    #[inline]
    pub(crate) fn enter(&self) {
        self.word.fetch_add(1, Ordering::Relaxed);
    }

    /// A waiting request's head is out (or its service answered with an error).
    #[inline]
    pub(crate) fn head(&self) {
        // Adds one head and takes one waiter away; the low half never borrows, since
        // every head follows its request's `enter`.
        self.word.fetch_add(HEAD - 1, Ordering::Relaxed);
    }

    /// A waiting request went away without a head (its future was dropped): no progress.
    #[inline]
    pub(crate) fn cancel(&self) {
        self.word.fetch_sub(1, Ordering::Relaxed);
    }

    /// How many requests wait now, and the heads counter (which wraps).
    pub(crate) fn read(&self) -> (u32, u32) {
        let word = self.word.load(Ordering::Relaxed);
        (word as u32, (word >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_a_wait_and_counts_itself() {
        let progress = Progress::default();
        progress.enter();
        progress.enter();
        assert_eq!(progress.read(), (2, 0));
        progress.head();
        assert_eq!(progress.read(), (1, 1));
        progress.cancel();
        assert_eq!(progress.read(), (0, 1));
    }
}
