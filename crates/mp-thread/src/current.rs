//! The calling thread's own [`Waiter`], kept in the thread's
//! [context](crate::context).
//!
//! Invariant 5 (no thread-local state reachable from another thread): the
//! context holds a *shared* handle. Other threads hold their own clones of
//! the `Waiter`, never a pointer into the context, so the mailbox outlives
//! the thread for as long as anyone can still post to it. When the thread
//! exits, the context closes the mailbox: later posts fail cleanly and
//! queued jobs are dropped, waking anyone waiting on their replies.

use crate::context;
use crate::error::Error;
use crate::waiter::{Reply, Waiter};

/// What a waiter knows of the thread it belongs to (defined here, beside
/// the slot it reads, so `waiter` needs nothing from this module).
impl Waiter {
    /// The calling thread's waiter, made on first use. On a [`Worker`](crate::Worker)
    /// this is the worker's mailbox. It closes when the thread exits.
    pub fn current() -> Waiter {
        current_waiter()
    }

    /// True if this is the calling thread's own waiter.
    pub fn is_current(&self) -> bool {
        is_current(self)
    }

    /// Blocks until `reply` is ready, running jobs posted to this waiter in
    /// the meantime. Must be called on the owner thread (jobs run here).
    ///
    /// Returns [`Error::ReplyDropped`] if the sender was dropped unsent.
    pub fn wait<T>(&self, reply: Reply<T>) -> Result<T, Error> {
        debug_assert!(
            may_wait_on(self),
            "Waiter::wait called off its owner thread"
        );
        self.wait_as_owner(reply)
    }
}

fn thread_name() -> String {
    #[cfg(not(loom))]
    {
        let t = std::thread::current();
        match t.name() {
            Some(name) => name.to_string(),
            None => format!("{:?}", t.id()),
        }
    }
    #[cfg(loom)]
    {
        "loom-thread".to_string()
    }
}

pub(crate) fn current_waiter() -> Waiter {
    // While the thread's context is being torn down (a Drop that makes a
    // blocking call at thread exit), a fresh mailbox for this one wait
    // serves: only this thread runs it, and it is dropped with the caller's
    // handles. (Under loom a model thread's context is never torn down
    // while it runs.)
    try_current_waiter().unwrap_or_else(|| Waiter::new("exiting thread"))
}

/// The calling thread's waiter, or `None` while its context is being
/// torn down (or already is).
pub(crate) fn try_current_waiter() -> Option<Waiter> {
    context::waiter(thread_name)
}

/// Makes `waiter` the calling thread's mailbox (a worker does this first).
pub(crate) fn install(waiter: Waiter) {
    context::install(waiter)
}

pub(crate) fn is_current(waiter: &Waiter) -> bool {
    context::inspect_waiter(|mine| mine.is_some_and(|w| w.same_as(waiter))).unwrap_or(false)
}

/// For debug checks: false only when this thread's context is readable
/// and holds a different mailbox (during teardown a temporary mailbox is
/// legitimately waited on).
pub(crate) fn may_wait_on(waiter: &Waiter) -> bool {
    context::inspect_waiter(|mine| mine.is_none_or(|w| w.same_as(waiter))).unwrap_or(true)
}
