//! # mp-ipc
//!
//! Typed cross-process calls over Cap'n Proto, in the libmultiprocess model
//! and wire compatible with it: one event-loop thread per process does all
//! I/O; a client thread that calls a remote method blocks while the call runs
//! on a server thread mapped to it; callbacks from the server run on the
//! waiting client thread.
//!
//! The pieces:
//! - [`EventLoop`]: the I/O thread.
//! - [`Connection`]: a session with a peer (socketpair, inherited fd, path).
//! - [`Remote`]: a thread-safe handle to an object in the peer;
//!   [`Remote::with_timeout`] bounds its calls (a call past its deadline
//!   is cancelled: the peer gets `Finish`, and the caller
//!   [`Error::DeadlineExceeded`]).
//! - Tracing: each call has an `mp.call` span where it is made and an
//!   `mp.serve` span where it is served, with one `call_id` in both
//!   processes (sent in the call's `Context`; `docs/architecture.md` says
//!   why there), and a `parent_call_id` for a call made while serving one.
//! - [`CancelToken`]: what a method serving a call sees of its caller
//!   giving up (a deadline, a dropped future, a disconnect).
//! - [`process`]: spawn a child with one end of a socketpair; serve on an
//!   inherited fd.
//! - [`proxy_capnp`]: libmultiprocess's `proxy.capnp` (`ThreadMap`,
//!   `Thread`, `Context`), same file and type ids.
//! - [`metric_names`]: the calls' and connections' metrics, recorded
//!   through the `metrics` facade for whatever recorder the program
//!   installs.
//! - [`Limits`], [`ProcessLimits`], [`ConnectionStats`]: every bound on what
//!   a peer can make this side hold or do (threads, queued calls, nesting,
//!   message bytes held and queued, objects handed out, timeouts), per
//!   connection and per process, and the counters they are checked
//!   against. A peer that reaches one gets an error naming it
//!   ([`Error::LimitReached`]) or, for the transport's bounds, is read more
//!   slowly or disconnected; `docs/security.md` in the repository lists
//!   each with its default.
//!
//! ## Locks (invariant 6)
//!
//! The loop-side state of every connection (`LoopConnection`: thread
//! mappings, the Threads it handed out, disconnect callbacks) has no lock at
//! all: only the loop thread touches it, and other threads reach it by
//! posting jobs. The few locks mp-ipc has are leaves — no code holds one while
//! taking another or while waiting: a connection's disconnected flag, a
//! listener's table of accepted connections, the slots of a connection's
//! server threads (taken by `makeThread` and by a thread as it stops). mp-thread's lock order (a
//! waiter's queue before a reply slot) is written down in its `waiter` module.
//!
//! Interfaces are adapted to Rust by `mp-codegen`. What its generated code
//! calls — the call set-up and futures, the loop-side connection
//! (`LoopConnection`, which server adapters use to run calls on the thread
//! their `Context` names) and the call contexts — lives in the
//! `codegen_support` module, plumbing kept apart from the API above and
//! hidden from these docs. The `mp-test-calc` crate shows the generated code
//! for a complete interface.

mod budget;
mod call_id;
mod call_metrics;
mod cancel;
mod client;
#[doc(hidden)]
pub mod codegen_support;
mod connection;
mod connection_metrics;
mod error;
mod event_loop;
mod idle_poll;
mod job_reply;
mod limits;
pub mod listener;
mod loop_conn;
pub mod process;
mod stats;
mod threads;
mod transport;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod proxy_capnp;

/// The names of the metrics mp-ipc records through the [`metrics`](https://docs.rs/metrics)
/// facade, and the value of their labels that is not a name. Install a
/// recorder (an exporter of the program's choice) before opening
/// connections: a connection's handles are registered when it opens.
///
/// Calls, labelled `side` (`client` or `server`), `interface` and `method`,
/// and for errors `kind` ([`Error::kind`], or [`CANCELLED`](metric_names::CANCELLED)):
/// [`CALLS`](metric_names::CALLS), [`CALL_ERRORS`](metric_names::CALL_ERRORS),
/// [`CALL_SECONDS`](metric_names::CALL_SECONDS),
/// [`CALLS_IN_FLIGHT`](metric_names::CALLS_IN_FLIGHT).
///
/// Connections, labelled `connection` with the connection's name: bytes and
/// messages each way, server threads alive, and the depth of the queue each
/// call found; each server thread's queue,
/// labelled also `thread` with its slot (the peer names its threads, so
/// the name is never a label: a peer cannot grow the recorder).
///
/// ```
/// use mp_ipc::metric_names;
/// assert_eq!(metric_names::CALLS, "mp_ipc_calls_total");
/// assert_eq!(metric_names::SERVER_THREADS, "mp_ipc_connection_server_threads");
/// ```
pub mod metric_names {
    pub use crate::call_metrics::{CALLS, CALLS_IN_FLIGHT, CALL_ERRORS, CALL_SECONDS, CANCELLED};
    pub use crate::connection_metrics::{
        BYTES_IN, BYTES_OUT, MESSAGES_IN, MESSAGES_OUT, QUEUE_DEPTH, SERVER_THREADS,
        THREAD_QUEUED_CALLS,
    };
}

pub use cancel::CancelToken;
pub use capnp_rpc::rpc_twoparty_capnp::Side;
pub use client::Remote;
pub use connection::{BootstrapFactory, Connection, ConnectionBuilder, DisconnectHook};
pub use error::{bad_request, limit_reached, CallSite, DisconnectPhase, Error};
pub use event_loop::EventLoop;
pub use limits::{stack_size_for_nesting, Limits, ProcessLimits, STACK_PER_LEVEL};
pub use stats::ConnectionStats;

/// Re-exported so adapters and generated code use the same versions.
pub use capnp;
/// Re-exported so adapters and generated code use the same versions.
pub use capnp_rpc;
/// Re-exported so adapters and generated code use the same versions.
pub use mp_thread;
