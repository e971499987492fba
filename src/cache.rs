//! Two small tools that several modules share: a lock that a panic elsewhere cannot
//! poison for good, and a value cached under the key it was computed for.
//!
//! It imports nothing from the crate.

use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwapOption, Guard};

/// Locks `mutex`, taking it over even if a thread panicked while it held it. Nothing this
/// crate guards with a mutex is left half-changed by a panic, and a poisoned lock must
/// never take the probes down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A value and the key it was computed for.
#[derive(Debug)]
pub(crate) struct Keyed<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One value, kept with the key it was computed for (a generation, a lifecycle word) and
/// computed again only when asked for under another key. Reading it is one atomic load;
/// however many callers find it out of date at once, one of them computes.
#[derive(Debug)]
pub(crate) struct KeyedCache<K, V> {
    slot: ArcSwapOption<Keyed<K, V>>,
    compute: Mutex<()>,
}

impl<K, V> Default for KeyedCache<K, V> {
    fn default() -> Self {
        KeyedCache {
            slot: ArcSwapOption::empty(),
            compute: Mutex::new(()),
        }
    }
}

impl<K: PartialEq + Copy, V> KeyedCache<K, V> {
    /// The value for `key`: the cached one if it was computed for `key`, or else the one
    /// `compute` makes, which is then kept.
    #[inline]
    pub(crate) fn get(&self, key: K, compute: impl FnOnce() -> V) -> Arc<Keyed<K, V>> {
        let cached = self.slot.load();
        if cached.as_ref().is_some_and(|c| c.key == key) {
            if let Some(hit) = Guard::into_inner(cached) {
                return hit;
            }
        }
        self.compute(key, compute)
    }

    #[inline(never)]
    fn compute(&self, key: K, compute: impl FnOnce() -> V) -> Arc<Keyed<K, V>> {
        let _computing = lock(&self.compute);
        if let Some(hit) = self.slot.load_full().filter(|c| c.key == key) {
            return hit;
        }
        let fresh = Arc::new(Keyed {
            key,
            value: compute(),
        });
        self.slot.store(Some(fresh.clone()));
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_value_is_computed_once_per_key() {
        let cache = KeyedCache::<u64, String>::default();
        let computed = Cell::new(0);
        let make = |s: &str| {
            computed.set(computed.get() + 1);
            s.to_owned()
        };
        assert_eq!(cache.get(1, || make("one")).value, "one");
        assert_eq!(cache.get(1, || make("again")).value, "one");
        assert_eq!(computed.get(), 1);
        assert_eq!(cache.get(2, || make("two")).value, "two");
        assert_eq!(computed.get(), 2);
    }

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let mutex = Arc::new(Mutex::new(5));
        let poisoner = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 5);
    }
}
