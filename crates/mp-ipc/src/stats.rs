//! `ConnectionStats`: what one connection holds and has moved, read from
//! the counters that enforce its [`Limits`](crate::Limits) — the same
//! numbers the limits are checked against, so a figure here is what the
//! next limit check will see.

/// A snapshot of one connection's counters ([`Connection::stats`](crate::Connection::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Bytes of the peer's messages held now: the message being read and
    /// every received message still in use.
    pub incoming_bytes: usize,
    /// The most `incoming_bytes` has been.
    pub peak_incoming_bytes: usize,
    /// Memory allocated for the message being read: it grows as the
    /// message's bytes arrive, whatever size the message announced.
    pub frame_buffer_bytes: usize,
    /// Bytes queued for the peer and not yet written.
    pub unwritten_bytes: usize,
    /// The most `unwritten_bytes` has been.
    pub peak_unwritten_bytes: usize,
    /// True while this side has stopped reading the peer (backpressure:
    /// too much unwritten, or too much held).
    pub reading_paused: bool,
    /// Messages received.
    pub messages_in: u64,
    /// Messages queued for the peer.
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes of the messages queued for the peer.
    pub bytes_out: u64,
    /// Calls from the peer being served (resolving, queued, running).
    pub calls_in_flight: usize,
    /// Calls from the peer waiting in server threads' queues, or running
    /// there (a call holds its place until its job has run or been
    /// dropped unrun).
    pub queued_calls: usize,
    /// `makeThread` server threads alive (a released one counts until its
    /// thread has stopped).
    pub server_threads: usize,
    /// Objects handed to the peer and not yet released.
    pub exported_objects: usize,
}
