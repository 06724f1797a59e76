//! # mp-thread
//!
//! The threading layer of `multiprocess`: the few primitives every other
//! layer builds on, each one keeping an invariant of the design by
//! construction.
//!
//! | type | what it is | invariant |
//! |---|---|---|
//! | [`Worker`] | a named thread with a mailbox: `post`, `sync` | 1, 3 |
//! | [`Reaper`] | the only owner of join handles; final drops | 1 |
//! | [`Waiter`] | a thread's mailbox, run while the thread waits | 3, 7 |
//! | [`ThreadBound`] | a value used and dropped only on its home thread | 2 |
//! | [`CallbackRegistry`] | callbacks owned by one thread | 4 |
//! | [`Backoff`], [`poll_until`] | the one bounded poll before sleeping: mailboxes, busy-waiting workers, event loops | 7 |
//! | [`context`] | the one per-thread context: a thread's waiter, and typed slots for the crates above | 5 |
//! | [`sync_call`] | run a closure on another thread and wait for it: `Worker::sync`'s protocol, for any mailbox | 3, 7 |
//!
//! [`sync`] is the synchronisation facade these protocols (and those of
//! the crates above) are written over: parking_lot's locks and std's
//! atomics, or loom's model-checked ones under `--cfg loom`, behind one
//! API, so loom models compile the shipped code.
//!
//! ```
//! use mp_thread::Worker;
//!
//! let worker = Worker::spawn("adder").unwrap();
//! let sum = worker.sync(|| 2 + 2).unwrap();
//! assert_eq!(sum, 4);
//! // Dropping the last handle only closes the mailbox; the reaper joins.
//! let exited = worker.thread_handle();
//! drop(worker);
//! exited.wait().unwrap();
//! ```

mod backoff;
mod call;
pub mod context;
mod current;
mod error;
mod registry;
pub mod sync;
mod waiter;

mod reaper;
mod thread_bound;
mod worker;

pub use backoff::{poll_until, Backoff, SPIN_ONLY};
pub use call::sync_call;
pub use error::{panic_message, Error};
pub use registry::CallbackRegistry;
pub use waiter::{Job, Reply, ReplySender, Waiter};

pub use reaper::{ExitStatus, Reaper, ThreadHandle};
pub use thread_bound::{Executor, ThreadBound};
pub use worker::{Worker, WorkerBuilder};

/// Loom-only hooks: lets model tests run a thread's mailbox on a loom thread.
#[cfg(loom)]
pub mod loom_support {
    use crate::waiter::Waiter;

    /// A mailbox for a model thread; call [`install`] on that thread first.
    pub fn new_waiter(name: &str) -> Waiter {
        Waiter::new(name)
    }

    /// A mailbox whose owner busy-waits (a fixed [`Backoff`](crate::Backoff))
    /// before it sleeps, as a busy-waiting worker's does.
    pub fn new_busy_waiting_waiter(name: &str) -> Waiter {
        Waiter::with_busy_wait(name, std::time::Duration::from_micros(50))
    }

    /// Makes `waiter` the calling model thread's own mailbox.
    pub fn install(waiter: Waiter) {
        crate::current::install(waiter)
    }

    /// Closes `waiter` after its queued jobs, as dropping a worker's last handle does.
    pub fn close_after_queued(waiter: &Waiter) {
        waiter.close_after_queued()
    }

    /// Runs `waiter`'s jobs on its owner until `done()` holds (true) or, with
    /// `stop_if_closed_and_empty`, until it is closed and empty first
    /// (false): how `ThreadHandle::wait` waits for a thread's exit.
    pub fn run_until(
        waiter: &Waiter,
        done: &dyn Fn() -> bool,
        stop_if_closed_and_empty: bool,
    ) -> bool {
        waiter.run_until(done, None, stop_if_closed_and_empty) == crate::waiter::RunUntil::Done
    }

    /// Wakes `waiter`'s owner to re-check its condition, as opening a
    /// thread's exit latch does.
    pub fn wake(waiter: &Waiter) {
        waiter.wake()
    }
}
