//! # multiprocess
//!
//! A Rust framework for programs whose objects live on threads and in
//! processes — the Rust counterpart of libmultiprocess (typed cross-process
//! calls over Cap'n Proto, the IPC layer of Bitcoin Core) and of
//! SObjectizer (agents, cooperations, dispatchers; [`agents`], in progress).
//!
//! Call an object in another process as if it were local, from any thread:
//! each calling thread gets its own server thread on the other side, and
//! callbacks from the server run on the thread that is waiting for the
//! call. Tear it all down — on purpose or because a peer died — without a
//! race, a hang, a leak, or a thread that joins itself.
//!
//! ## Layers
//!
//! - [`thread`] (`mp-thread`): [`Worker`](thread::Worker),
//!   [`Reaper`](thread::Reaper), [`Waiter`](thread::Waiter),
//!   [`ThreadBound`](thread::ThreadBound).
//! - [`ipc`] (`mp-ipc`): [`EventLoop`],
//!   [`Connection`], [`Remote`], processes,
//!   listeners, and libmultiprocess's `proxy.capnp`.
//! - [`agents`] (`mp-agents`): agents, cooperations, dispatchers, mboxes,
//!   timers, with final deregistration on a dedicated thread.
//!
//! ## The invariants
//!
//! 1. No thread ever joins itself, and no `Drop` blocks on the thread running it.
//! 2. A value tied to a thread is used and dropped on that thread.
//! 3. A payload's last owner is its receiver.
//! 4. One owner for every registry of callbacks.
//! 5. No thread-local state is reachable from another thread.
//! 6. A lock order that is written down, and as few locks as can serve.
//! 7. Every blocking wait ends.
//!
//! ## Example
//!
//! A worker thread, a job on it, and a clean exit:
//!
//! ```
//! use multiprocess::thread::Worker;
//!
//! let worker = Worker::spawn("example").unwrap();
//! assert_eq!(worker.sync(|| 6 * 7).unwrap(), 42);
//! let handle = worker.thread_handle();
//! drop(worker); // closes the mailbox; the reaper joins the thread
//! assert!(handle.wait().unwrap().panic.is_none());
//! ```
//!
//! Cross-process calls: see the `mp-calc` crate (a complete interface
//! adapter) and `cargo run --release -p mp-demo`.

pub use mp_agents as agents;
pub use mp_ipc as ipc;
pub use mp_thread as thread;

pub use mp_ipc::{Connection, Error, EventLoop, Remote};
