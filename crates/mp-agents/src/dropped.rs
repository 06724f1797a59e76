//! Why a message that never reached a handler is being dropped, told to
//! the `Drop` of what it carries: a request's [`Replier`](crate::Replier)
//! answers its asker with that reason instead of a bare "no reply".
//!
//! The reason lives in a thread-local for the length of one drop
//! ([`drop_as`]); nested drops see the innermost reason, and a drop
//! outside any (a handler that lets a request go) sees none.

use std::cell::Cell;

/// Why an undelivered message is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The receiver is gone, finishing, or never registered.
    ReceiverGone,
    /// No handler for it in the receiver's current state.
    NoHandler,
    /// Refused by the receiver's message limit for its type.
    Limit,
}

thread_local! {
    static REASON: Cell<Option<DropReason>> = const { Cell::new(None) };
}

/// Drops `value` with `reason` visible to the `Drop`s it runs.
pub(crate) fn drop_as<T>(reason: DropReason, value: T) {
    /// Puts the outer reason back, also when a `Drop` panics.
    struct Restore(Option<DropReason>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REASON.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REASON.with(|r| r.replace(Some(reason))));
    drop(value);
}

/// The reason of the drop in progress on this thread, if any.
pub(crate) fn current() -> Option<DropReason> {
    REASON.with(Cell::get)
}
