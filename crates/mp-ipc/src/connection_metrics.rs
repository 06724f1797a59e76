//! Connection metrics, through the [`metrics`] facade: what each connection
//! moves and holds, labelled `connection` with the name it was opened with
//! ([`ConnectionBuilder::name`](crate::ConnectionBuilder::name)).
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `mp_ipc_connection_bytes_in_total` | counter | bytes read from the peer |
//! | `mp_ipc_connection_bytes_out_total` | counter | bytes of messages queued for the peer |
//! | `mp_ipc_connection_messages_in_total` | counter | messages received |
//! | `mp_ipc_connection_messages_out_total` | counter | messages queued for the peer |
//! | `mp_ipc_connection_server_threads` | gauge | `makeThread` server threads alive |
//! | `mp_ipc_server_thread_queue_depth` | histogram | calls already queued on the server thread each call arrived at |
//! | `mp_ipc_server_thread_queued_calls` | gauge, also labelled `thread` | the peer's calls queued or running on one server thread (their sum over `thread` is the connection's) |
//!
//! The handles are registered once, when the connection opens, so the hot
//! path only adds to them; a recorder installed later does not see
//! connections opened before it. Gauges move up and down rather than being
//! set, so connections that share a name add up, and a closed connection's
//! share returns to zero.
//!
//! No label comes from the peer. Server threads are named by the peer, so a
//! thread's queue gauge is labelled with its *slot* instead: the lowest
//! number no live thread of the connection holds, at most
//! `Limits::max_threads` of them. A peer that makes and drops threads under
//! fresh names would otherwise grow the recorder without bound (invariant
//! 8: a peer's reach is bounded).

use metrics::{Counter, Gauge, Histogram, Label};

/// Bytes read from the peer (counter).
pub const BYTES_IN: &str = "mp_ipc_connection_bytes_in_total";
/// Bytes of the messages queued for the peer (counter).
pub const BYTES_OUT: &str = "mp_ipc_connection_bytes_out_total";
/// Messages received (counter).
pub const MESSAGES_IN: &str = "mp_ipc_connection_messages_in_total";
/// Messages queued for the peer (counter).
pub const MESSAGES_OUT: &str = "mp_ipc_connection_messages_out_total";
/// `makeThread` server threads alive (gauge).
pub const SERVER_THREADS: &str = "mp_ipc_connection_server_threads";
/// How many calls were already queued on the server thread each call
/// arrived at (histogram).
pub const QUEUE_DEPTH: &str = "mp_ipc_server_thread_queue_depth";

/// The peer's calls queued or running on one server thread (gauge,
/// labelled `connection` and `thread`).
pub const THREAD_QUEUED_CALLS: &str = "mp_ipc_server_thread_queued_calls";

/// One connection's metric handles; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionMeters {
    /// The connection's name, the `connection` label.
    name: String,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) messages_in: Counter,
    pub(crate) messages_out: Counter,
    pub(crate) server_threads: Gauge,
    pub(crate) queue_depth: Histogram,
}

impl ConnectionMeters {
    /// Registers the handles of a connection named `name` with the
    /// recorder installed now (none: they record nothing).
    pub(crate) fn register(name: &str) -> ConnectionMeters {
        let labels = || vec![Label::new("connection", name.to_string())];
        ConnectionMeters {
            name: name.to_string(),
            bytes_in: metrics::counter!(BYTES_IN, labels()),
            bytes_out: metrics::counter!(BYTES_OUT, labels()),
            messages_in: metrics::counter!(MESSAGES_IN, labels()),
            messages_out: metrics::counter!(MESSAGES_OUT, labels()),
            server_threads: metrics::gauge!(SERVER_THREADS, labels()),
            queue_depth: metrics::histogram!(QUEUE_DEPTH, labels()),
        }
    }
}

impl ConnectionMeters {
    /// The queue gauge of one server thread, labelled `thread`: a
    /// `makeThread` thread's slot (`0`, `1`, …: the lowest free when it
    /// started, so at most `Limits::max_threads` of them), `pool-N`, or
    /// `callbacks` for this side's own threads serving callbacks.
    pub(crate) fn thread_queue(&self, thread: &str) -> Gauge {
        metrics::gauge!(
            THREAD_QUEUED_CALLS,
            vec![
                Label::new("connection", self.name.clone()),
                Label::new("thread", thread.to_string()),
            ]
        )
    }
}

impl Default for ConnectionMeters {
    /// Handles that record nothing.
    fn default() -> Self {
        ConnectionMeters {
            name: String::new(),
            bytes_in: Counter::noop(),
            bytes_out: Counter::noop(),
            messages_in: Counter::noop(),
            messages_out: Counter::noop(),
            server_threads: Gauge::noop(),
            queue_depth: Histogram::noop(),
        }
    }
}
