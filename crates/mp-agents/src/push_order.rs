//! How a same-thread send is ordered against the pushes of other threads
//! (invariant 6: an agent's start runs before its first message, its
//! finish after its last). A leaf of the crate's stack, written over
//! mp-thread's sync facade alone so that `tests/loom_same_thread.rs`
//! model-checks this very file.
//!
//! A single-threaded queue numbers each push from another thread (under
//! the lock that orders those pushes) with a [`PushCount`]. A handler
//! sending to an agent of the queue its own thread drains skips that lock:
//! its demand goes to the thread's local list with the number of shared
//! pushes it saw, and runs before every shared demand numbered after it.
//! An agent's [`Gate`] says whether its messages may take that way: opened
//! after its start is pushed, closed before its finish is.
//!
//! Why that suffices: [`PushCount::number_local`] reads the count, then the
//! gate. If the count it read includes the finish, the gate was closed
//! before (closing precedes that push, which the count publishes with
//! release), and the gate reads closed: the send takes the locked way.
//! Otherwise the send is numbered before the finish and runs first. The
//! start is the mirror image: a send that sees the gate open sees the
//! start's number, and is numbered at or after it.

use mp_thread::sync::{AtomicBool, AtomicU64, Ordering};

/// A queue's count of pushes from other threads: the number the last one
/// got.
#[derive(Default)]
pub(crate) struct PushCount(AtomicU64);

impl PushCount {
    /// A count of none.
    pub(crate) fn new() -> PushCount {
        PushCount(AtomicU64::new(0))
    }

    /// Numbers one shared push: `push` gets the number and puts the demand
    /// where the drain takes it; the number is published after. Callers
    /// hold the lock that orders shared pushes (the count is changed only
    /// under it, so no read-modify-write is needed).
    #[inline]
    pub(crate) fn push_shared<R>(&self, push: impl FnOnce(u64) -> R) -> R {
        let seq = self.0.load(Ordering::Relaxed) + 1;
        let pushed = push(seq);
        self.0.store(seq, Ordering::Release);
        pushed
    }

    /// The number of the last shared push published.
    #[inline]
    pub(crate) fn seen(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// The number a local push gets — the shared pushes seen so far — if
    /// `still_open` (read after them) lets it go the local way.
    #[inline]
    pub(crate) fn number_local(&self, still_open: impl FnOnce() -> bool) -> Option<u64> {
        let seq = self.seen();
        still_open().then_some(seq)
    }
}

/// Whether an agent's messages may go the same-thread way.
#[derive(Default)]
pub(crate) struct Gate(AtomicBool);

impl Gate {
    /// A closed gate.
    pub(crate) fn new() -> Gate {
        Gate(AtomicBool::new(false))
    }

    /// Opens it; only after the agent's start is pushed.
    pub(crate) fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Closes it; before the agent's finish is pushed.
    pub(crate) fn close(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// True while it is open.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
