//! The synchronisation primitives the project's protocols are written
//! over, switchable to loom's model-checked versions with `--cfg loom`:
//! the one sync facade of mp-thread and of the crates above it.
//!
//! Normal builds use `parking_lot`'s locks (instrumented, so ThreadSanitizer
//! sees their happens-before edges) and std's atomics and `Arc`; loom builds
//! use `loom::sync`. Both sides have one shape — parking_lot's: `lock`
//! never reports poisoning, and a condition variable waits on `&mut` guard
//! — so a protocol is written once and its loom model compiles the shipped
//! code, not a copy of it.
//!
//! loom has no clock: under `--cfg loom` a timed wait is an untimed one
//! (it never reports a timeout), so models use no deadlines.
//!
//! ```
//! use mp_thread::sync::{Arc, Condvar, Mutex};
//!
//! let pair = Arc::new((Mutex::new(false), Condvar::new()));
//! let other = pair.clone();
//! let t = std::thread::spawn(move || {
//!     *other.0.lock() = true;
//!     other.1.notify_one();
//! });
//! let mut ready = pair.0.lock();
//! while !*ready {
//!     pair.1.wait(&mut ready);
//! }
//! drop(ready);
//! t.join().unwrap();
//! ```

use std::time::Instant;

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::Arc;

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::Arc;

/// Whether a timed wait returned because its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the deadline passed (never under loom).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// Tells the processor (or, under loom, the model's scheduler) that the
/// caller is busy-waiting.
pub fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

#[cfg(not(loom))]
mod imp {
    use super::{Instant, WaitTimeoutResult};

    /// A mutual-exclusion lock whose `lock` never reports poisoning.
    #[derive(Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of a locked [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub const fn new(value: T) -> Self {
            Mutex(parking_lot::const_mutex(value))
        }

        /// Locks it, blocking until it is free.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable waited on with a [`Mutex`]'s guard.
    #[derive(Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A condition variable nobody waits on.
        pub const fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Unlocks `guard`'s mutex, waits for a notification, locks again.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }

        /// As [`wait`](Self::wait), returning at `deadline` at the latest.
        pub fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> WaitTimeoutResult {
            WaitTimeoutResult(self.0.wait_until(guard, deadline).timed_out())
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::{Instant, WaitTimeoutResult};
    use std::ops::{Deref, DerefMut};

    /// A mutual-exclusion lock whose `lock` never reports poisoning.
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    /// The guard of a locked [`Mutex`]. (An `Option` inside, so a wait can
    /// hand loom's guard over by value and put the new one back.)
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("a guard is held outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("a guard is held outside a wait")
        }
    }

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Locks it, blocking until it is free.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }
    }

    /// A condition variable waited on with a [`Mutex`]'s guard.
    #[derive(Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A condition variable nobody waits on.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        /// Unlocks `guard`'s mutex, waits for a notification, locks again.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.0.take().expect("a guard is held outside a wait");
            guard.0 = Some(self.0.wait(held).unwrap_or_else(|e| e.into_inner()));
        }

        /// Under loom, an untimed [`wait`](Self::wait): the model has no
        /// clock.
        pub fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub use imp::{Condvar, Mutex, MutexGuard};
