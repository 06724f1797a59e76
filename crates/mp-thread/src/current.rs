//! The calling thread's own [`Waiter`], kept in a thread-local slot.
//!
//! Invariant 5 (no thread-local state reachable from another thread): the
//! slot holds a *shared* handle. Other threads hold their own clones of the
//! `Waiter`, never a pointer into this slot, so the mailbox outlives the
//! thread for as long as anyone can still post to it. When the thread exits,
//! the slot's destructor closes the mailbox: later posts fail cleanly and
//! queued jobs are dropped, waking anyone waiting on their replies.

use std::cell::RefCell;

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

struct Slot(Option<Waiter>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(waiter) = self.0.take() {
            waiter.close();
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static CURRENT: RefCell<Slot> = const { RefCell::new(Slot(None)) };
}

#[cfg(loom)]
loom::thread_local! {
    static CURRENT: RefCell<Slot> = RefCell::new(Slot(None));
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
    #[cfg(not(loom))]
    {
        // While the thread's locals are being destroyed (a Drop that makes a
        // blocking call from a thread-local destructor), a fresh mailbox for
        // this one wait serves: only this thread runs it, and it is dropped
        // with the caller's handles.
        try_current_waiter().unwrap_or_else(|| Waiter::new("exiting thread"))
    }
    #[cfg(loom)]
    {
        CURRENT.with(|slot| {
            slot.borrow_mut()
                .0
                .get_or_insert_with(|| Waiter::new(thread_name()))
                .clone()
        })
    }
}

/// The calling thread's waiter, or `None` while its thread-locals are being
/// destroyed (or already are).
#[cfg(not(loom))]
pub(crate) fn try_current_waiter() -> Option<Waiter> {
    CURRENT
        .try_with(|slot| {
            let mut slot = slot.try_borrow_mut().ok()?;
            Some(
                slot.0
                    .get_or_insert_with(|| Waiter::new(thread_name()))
                    .clone(),
            )
        })
        .ok()
        .flatten()
}

/// Under loom a model thread's locals are never being destroyed while it
/// runs: it always has its waiter.
#[cfg(loom)]
pub(crate) fn try_current_waiter() -> Option<Waiter> {
    Some(current_waiter())
}

/// Makes `waiter` the calling thread's mailbox (a worker does this first).
pub(crate) fn install(waiter: Waiter) {
    CURRENT.with(|slot| {
        let mut slot = slot.borrow_mut();
        debug_assert!(slot.0.is_none(), "thread already has a waiter");
        slot.0 = Some(waiter);
    });
}

pub(crate) fn is_current(waiter: &Waiter) -> bool {
    CURRENT
        .try_with(|slot| slot.borrow().0.as_ref().is_some_and(|w| w.same_as(waiter)))
        .unwrap_or(false)
}

/// For debug checks: false only when this thread's slot is reachable and
/// holds a different mailbox (during thread-local destruction a temporary
/// mailbox is legitimately waited on).
#[cfg(not(loom))]
pub(crate) fn may_wait_on(waiter: &Waiter) -> bool {
    CURRENT
        .try_with(|slot| match slot.try_borrow() {
            Ok(slot) => slot.0.as_ref().is_none_or(|w| w.same_as(waiter)),
            Err(_) => true,
        })
        .unwrap_or(true)
}

#[cfg(loom)]
pub(crate) fn may_wait_on(waiter: &Waiter) -> bool {
    is_current(waiter)
}
