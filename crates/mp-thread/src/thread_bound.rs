//! `ThreadBound<T>`: a value that is used and dropped only on its home thread.
//!
//! Invariant 2. Cap'n Proto objects are `Rc`-based and `!Send`; a handle to
//! one must still be storable in `Send + Sync` user types. A `ThreadBound`
//! can travel anywhere, but [`get`](ThreadBound::get) works only on its home
//! thread, and dropping it elsewhere posts the value home to be dropped
//! there. If home is gone (its executor refuses work), the value is leaked
//! with a warning rather than dropped on a thread that must not touch it.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::thread::ThreadId;

use crate::error::Error;
use crate::waiter::{Job, Waiter};

/// Somewhere jobs can be sent to run on one particular thread.
pub trait Executor: Send + Sync + 'static {
    /// Queues `job` on the executor's thread; hands it back if that thread no
    /// longer accepts work.
    fn execute(&self, job: Job) -> Result<(), Job>;
}

impl Executor for Waiter {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.post_job(job)
    }
}

/// A value pinned to the thread it was made on. See the module docs.
pub struct ThreadBound<T: 'static> {
    value: ManuallyDrop<T>,
    home: ThreadId,
    executor: Arc<dyn Executor>,
}

// SAFETY: the `T` inside is only ever reached through `get`/`get_mut`/
// `into_inner`, which check that the caller is on `home`, and `Drop`, which
// either runs on `home` or moves the value (without touching it) into a
// `Homebound` parcel that drops it only if it is itself dropped on `home`
// (whatever the executor does with the job) and leaks it otherwise. So `T` is used, and its destructor runs,
// only on the thread it was created on, as a `!Send`/`!Sync` type requires.
unsafe impl<T: 'static> Send for ThreadBound<T> {}
// SAFETY: a shared `&ThreadBound<T>` gives access to `&T` only on `home`
// (checked in `get`), so two threads can never share the `T` itself.
unsafe impl<T: 'static> Sync for ThreadBound<T> {}

/// Moves a value between threads without using it, so it can reach home.
///
/// It checks where it is dropped itself rather than trusting the executor:
/// `Executor` is a safe trait, and a job can be dropped unrun on any thread
/// (an executor that refuses it late, or [`Waiter::close`] called from another
/// thread drops queued jobs on the caller). Dropped on `home`, the value is
/// dropped; anywhere else it is leaked, never dropped on the wrong thread.
struct Homebound<T> {
    value: ManuallyDrop<T>,
    home: ThreadId,
}
// SAFETY: the wrapped value is created by `ThreadBound::drop` off its home
// thread and is never touched until `Homebound::drop`, which drops it only
// when running on `home` (and leaks it otherwise). Moving the bytes of a
// value between threads without using it is sound; only its use and its
// destructor are tied to `home`.
unsafe impl<T> Send for Homebound<T> {}

impl<T> Drop for Homebound<T> {
    fn drop(&mut self) {
        if std::thread::current().id() == self.home {
            // SAFETY: taken once, here; `self.value` is never used again.
            drop(unsafe { ManuallyDrop::take(&mut self.value) });
        } else {
            tracing::warn!(
                home = ?self.home,
                "a thread-bound value's drop job was dropped or run off its home thread; leaking the value"
            );
        }
    }
}

impl<T: 'static> ThreadBound<T> {
    /// Binds `value` to the calling thread; `executor` must run jobs on this
    /// same thread (it is how a drop elsewhere sends the value back). An
    /// executor that runs or drops the job anywhere else makes the value
    /// leak, never drop on the wrong thread.
    pub fn new(value: T, executor: Arc<dyn Executor>) -> Self {
        ThreadBound {
            value: ManuallyDrop::new(value),
            home: std::thread::current().id(),
            executor,
        }
    }

    /// The home thread's id.
    pub fn home(&self) -> ThreadId {
        self.home
    }

    /// True on the home thread.
    pub fn is_home(&self) -> bool {
        std::thread::current().id() == self.home
    }

    /// The value, on the home thread only.
    pub fn get(&self) -> Result<&T, Error> {
        self.check()?;
        Ok(&self.value)
    }

    /// The value, mutably, on the home thread only.
    pub fn get_mut(&mut self) -> Result<&mut T, Error> {
        self.check()?;
        Ok(&mut self.value)
    }

    /// Unwraps the value, on the home thread only; elsewhere hands `self` back.
    pub fn into_inner(self) -> Result<T, Self> {
        if !self.is_home() {
            return Err(self);
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `value` is taken exactly once,
        // and the executor Arc is dropped in place right after.
        unsafe {
            let value = ManuallyDrop::take(&mut this.value);
            std::ptr::drop_in_place(&mut this.executor);
            Ok(value)
        }
    }

    fn check(&self) -> Result<(), Error> {
        let current = std::thread::current().id();
        if current == self.home {
            Ok(())
        } else {
            Err(Error::WrongThread {
                home: self.home,
                current,
            })
        }
    }
}

impl<T: 'static> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        // SAFETY: `value` is taken once, here, and never used again.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        if self.is_home() {
            drop(value);
            return;
        }
        let parcel = Homebound {
            value: ManuallyDrop::new(value),
            home: self.home,
        };
        let job: Job = Box::new(move || drop(parcel));
        if let Err(job) = self.executor.execute(job) {
            tracing::warn!(
                home = ?self.home,
                "home thread of a thread-bound value is gone; leaking the value instead of dropping it on the wrong thread"
            );
            // Dropping the job here would reach `Homebound::drop`, which
            // leaks off home anyway; forgetting it also keeps the job's box
            // from running any other code on this thread.
            std::mem::forget(job);
        }
    }
}
