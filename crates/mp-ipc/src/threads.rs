//! Server threads: the `ThreadMap` and `Thread` capabilities of
//! `proxy.capnp`, and the record of which call a server thread is serving.
//!
//! A `Thread` capability stands for a mailbox ([`Waiter`]): a worker made by
//! `ThreadMap.makeThread`, a pool worker, or a client thread that accepts
//! callbacks while it waits. Every `Thread` a connection hands out is entered
//! in that connection's `CapabilityServerSet`, so a `Context` naming a Thread
//! from anywhere else is recognised and refused.
//!
//! Invariant 5: while a server thread runs a call, the call's
//! `callbackThread` is pushed on a stack that only that thread reads (a
//! thread-local of plain values; no other thread points into it). Calls that
//! thread makes back over the same connection go to that callback thread.

use crate::call_id::CallId;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use capnp::capability::Promise;
use mp_thread::{ThreadBound, Waiter, Worker};

use crate::cancel::{self, CancelToken};

use crate::error::bad_request;
use crate::proxy_capnp::{thread, thread_map};

/// A server thread's count of calls queued or running on it from one
/// connection. Shared with the jobs on that thread, which give their place
/// back when they have run or are dropped unrun; the connection bounds it.
pub(crate) type QueueCount = Arc<ThreadQueue>;

/// The count behind a [`QueueCount`], mirrored on the thread's
/// `mp_ipc_server_thread_queued_calls` gauge.
#[derive(Debug)]
pub(crate) struct ThreadQueue {
    calls: AtomicUsize,
    gauge: metrics::Gauge,
}

impl ThreadQueue {
    /// An empty queue whose count is also kept on `gauge`.
    pub(crate) fn new(gauge: metrics::Gauge) -> QueueCount {
        Arc::new(ThreadQueue {
            calls: AtomicUsize::new(0),
            gauge,
        })
    }

    /// Takes a place if fewer than `max` are taken; returns how many were.
    pub(crate) fn take(&self, max: usize) -> Option<usize> {
        let before = self
            .calls
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.gauge.increment(1.0);
        Some(before)
    }

    /// Gives a place back.
    pub(crate) fn release(&self) {
        self.calls.fetch_sub(1, Ordering::AcqRel);
        self.gauge.decrement(1.0);
    }

    /// Places taken now.
    pub(crate) fn len(&self) -> usize {
        self.calls.load(Ordering::Acquire)
    }
}

/// What a `ThreadMap` served to a peer asks of its connection (the
/// loop-side connection implements it; this module sits below it).
pub(crate) trait ThreadMaker {
    /// The longest thread name the peer may ask for, in bytes.
    fn max_name_bytes(&self) -> usize;
    /// A server thread called `name`, as a `Thread` capability.
    fn make_thread(&self, name: &str) -> Result<thread::Client, capnp::Error>;
    /// `count` pool threads for the peer's calls.
    fn make_pool(&self, count: u32) -> Result<(), capnp::Error>;
}

/// The connection behind a served `ThreadMap`, or the disconnect error.
fn maker(weak: &Weak<dyn ThreadMaker>) -> Result<Rc<dyn ThreadMaker>, capnp::Error> {
    weak.upgrade()
        .ok_or_else(|| capnp::Error::disconnected("connection closed".into()))
}

/// One `Thread` capability's server: a mailbox and, for threads this side
/// started, the worker handle that keeps the thread alive.
pub(crate) struct ThreadServer {
    name: String,
    waiter: Waiter,
    /// Present for workers made by `makeThread`: dropping the last reference
    /// to the capability drops the worker, which closes its mailbox; the
    /// reaper joins it. (The thread counts against the limits until it has
    /// stopped: the worker holds its ticket.)
    _worker: Option<Worker>,
    /// The `callbackThread` of the last call run here, and how many calls
    /// have reused it. Holding it keeps capnp-rpc's import alive, so a
    /// client that calls again does not cost a `Release` message per call.
    last_callback: RefCell<Option<(thread::Client, u32)>>,
    /// Calls queued or running on this thread from its connection, shared
    /// with every other handle of the connection naming the same thread.
    queued: QueueCount,
}

/// After this many reuses the cached callback capability is replaced, so
/// capnp-rpc's 32-bit per-import reference count can never overflow.
const CALLBACK_REUSE_LIMIT: u32 = 1 << 16;

impl ThreadServer {
    pub(crate) fn for_worker(worker: Worker, queued: QueueCount) -> Self {
        ThreadServer {
            name: worker.name().to_string(),
            waiter: worker.waiter().clone(),
            _worker: Some(worker),
            last_callback: RefCell::new(None),
            queued,
        }
    }

    pub(crate) fn for_waiter(name: String, waiter: Waiter, queued: QueueCount) -> Self {
        ThreadServer {
            name,
            waiter,
            _worker: None,
            last_callback: RefCell::new(None),
            queued,
        }
    }

    /// Keeps the callback capability of a call to this thread; see
    /// `last_callback`.
    pub(crate) fn remember_callback(&self, callback: &thread::Client) {
        let mut slot = self.last_callback.borrow_mut();
        if let Some((cached, uses)) = slot.as_mut() {
            if cached.client.hook.get_ptr() == callback.client.hook.get_ptr()
                && *uses < CALLBACK_REUSE_LIMIT
            {
                *uses += 1;
                return;
            }
        }
        *slot = Some((callback.clone(), 1));
    }

    /// Calls queued or running on this thread.
    pub(crate) fn queued(&self) -> &QueueCount {
        &self.queued
    }

    pub(crate) fn waiter(&self) -> &Waiter {
        &self.waiter
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl thread::Server for ThreadServer {
    fn get_name(
        self: Rc<Self>,
        _params: thread::GetNameParams,
        mut results: thread::GetNameResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        results.get().set_result(self.name.as_str());
        Promise::ok(())
    }
}

/// The `ThreadMap` a connection offers its peer.
pub(crate) struct ThreadMapServer {
    pub(crate) conn: Weak<dyn ThreadMaker>,
}

impl thread_map::Server for ThreadMapServer {
    fn make_thread(
        self: Rc<Self>,
        params: thread_map::MakeThreadParams,
        mut results: thread_map::MakeThreadResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let result = (|| {
            let conn = maker(&self.conn)?;
            let name = params.get()?.get_name()?.to_string().map_err(|e| {
                bad_request(format!(
                    "ThreadMap.makeThread: thread name is not UTF-8: {e}"
                ))
            })?;
            // The name becomes an OS thread name, and std panics on one with
            // a NUL byte: refuse it here instead of panicking on the loop.
            if name.contains('\0') {
                return Err(bad_request(
                    "ThreadMap.makeThread: thread name contains a NUL byte",
                ));
            }
            // Stored and echoed by `Thread.getName`: a long one would let
            // the peer multiply its bytes in our replies.
            let max = conn.max_name_bytes();
            if name.len() > max {
                return Err(bad_request(format!(
                    "ThreadMap.makeThread: thread name of {} bytes is longer than {max} (Limits::max_name_bytes)",
                    name.len()
                )));
            }
            let thread = conn.make_thread(&name)?;
            results.get().set_result(thread);
            Ok(())
        })();
        Promise::from_future(std::future::ready(result))
    }

    fn make_pool(
        self: Rc<Self>,
        params: thread_map::MakePoolParams,
        _results: thread_map::MakePoolResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let result = (|| {
            let conn = maker(&self.conn)?;
            let count = params.get()?.get_count();
            conn.make_pool(count)
        })();
        Promise::from_future(std::future::ready(result))
    }
}

/// What a server thread is doing for a connection: the `callbackThread` of
/// the call it runs. Loop-bound capability, so it travels as a `ThreadBound`.
pub(crate) type CallbackThread = Arc<ThreadBound<thread::Client>>;

/// One incoming call a thread is serving.
struct Served {
    conn_id: u64,
    callback: Option<CallbackThread>,
    /// The id the caller gave the call, if it gave one.
    call_id: Option<CallId>,
}

/// The calls this thread is serving, innermost last: its slot of the
/// thread's context (`mp_thread::context`).
#[derive(Default)]
struct Serving(RefCell<Vec<Served>>);

/// Marks the calling (server) thread as serving a call from connection
/// `conn_id` until the guard drops.
pub(crate) struct ServingGuard(cancel::Serving);

pub(crate) fn serving(
    conn_id: u64,
    callback: Option<CallbackThread>,
    call_id: Option<CallId>,
    token: CancelToken,
) -> ServingGuard {
    // At thread exit (a call made from a `Drop` there) nothing is recorded;
    // the guard then pops nothing either.
    mp_thread::context::with(|s: &Serving| {
        s.0.borrow_mut().push(Served {
            conn_id,
            callback,
            call_id,
        })
    });
    ServingGuard(cancel::serving(token))
}

impl Drop for ServingGuard {
    fn drop(&mut self) {
        // Dropped after the borrow ends: its drop may reach the context.
        let popped = mp_thread::context::with(|s: &Serving| s.0.borrow_mut().pop());
        drop(popped);
    }
}

/// How many incoming calls this thread is running, nested, from every
/// connection: the depth `Limits::max_nesting` bounds.
pub(crate) fn serving_depth() -> usize {
    mp_thread::context::with(|s: &Serving| s.0.borrow().len()).unwrap_or(0)
}

/// The id of the innermost call this thread is serving, if its caller gave
/// one: the parent of a call made from inside it.
pub(crate) fn serving_call_id() -> Option<CallId> {
    mp_thread::context::with(|s: &Serving| s.0.borrow().last().and_then(|served| served.call_id))
        .flatten()
}

/// If this thread is serving a call from `conn_id`, the caller's thread to
/// send calls back to (innermost call first).
pub(crate) fn callback_target(conn_id: u64) -> Option<CallbackThread> {
    mp_thread::context::with(|s: &Serving| {
        s.0.borrow()
            .iter()
            .rev()
            .find(|served| served.conn_id == conn_id)
            .and_then(|served| served.callback.clone())
    })
    .flatten()
}

#[cfg(test)]
mod queue_tests {
    use super::ThreadQueue;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn a_thread_queue_is_bounded_and_its_gauge_follows_it() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let queue =
            metrics::with_local_recorder(&recorder, || ThreadQueue::new(metrics::gauge!("queue")));
        assert_eq!(queue.take(2), Some(0));
        assert_eq!(queue.take(2), Some(1));
        assert_eq!(queue.take(2), None, "full at the bound");
        queue.release();
        assert_eq!(queue.len(), 1);
        let gauge =
            snapshotter.snapshot().into_vec().into_iter().find_map(
                |(key, _, _, value)| match value {
                    DebugValue::Gauge(g) if key.key().name() == "queue" => Some(g.into_inner()),
                    _ => None,
                },
            );
        assert_eq!(gauge, Some(1.0));
    }
}
