//! The bounded two-party vat network: what carries one session's Cap'n Proto
//! messages between this process and its peer.
//!
//! It replaces capnp-rpc's `twoparty::VatNetwork`, which this crate used
//! before, because that one lets a peer make us hold unbounded memory and
//! offers no hooks to stop it: its reader allocates a whole frame's declared
//! size (up to the traversal limit) as soon as the segment table is in, its
//! write queue grows without bound when the peer does not read our replies,
//! and nothing ever times out. The structure here follows twoparty's
//! (a [`capnp_rpc::VatNetwork`] handing out one [`capnp_rpc::Connection`],
//! a write queue driven by `drive_until_shutdown`, a disconnect signal fired
//! when the connection is dropped); what it adds is the bounds, each kept by
//! one part:
//!
//! - The frame reader ([`FrameReader`]) parses the segment table itself and
//!   refuses a frame larger than [`TransportLimits::max_message_bytes`]
//!   before reading its body. It reserves the frame's bytes first (from the
//!   connection's own allowance, then from the process-wide [`Budget`],
//!   waiting for room) and then reads the body into a buffer that grows only
//!   as bytes arrive, so a peer that announces a large frame and stalls makes
//!   us allocate only about what it sent (capacity at most twice that, or
//!   one 64 KiB chunk ahead), though the reservation counts the whole frame.
//! - Every received message ([`Incoming`]) carries the charges for its
//!   bytes until capnp-rpc drops it, so "held" means held: a call's params
//!   count until the call is done with them. The reader does not start a
//!   frame that would take the connection past
//!   [`TransportLimits::max_incoming_bytes`]; it waits (backpressure).
//! - Every queued outgoing message ([`Queued`]) carries a charge for its bytes
//!   until the write queue has written it. While more than
//!   [`TransportLimits::max_unwritten_bytes`] are queued, the reader starts
//!   no new frame until the queue has drained to half of that: a peer that
//!   sends calls but does not read the replies stops being read.
//! - Timeouts ([`TransportLimits::handshake_timeout`],
//!   [`TransportLimits::frame_timeout`]) end a session whose peer sends
//!   nothing, or starts a frame and does not finish it. Time the reader
//!   spends waiting on this side's own bounds does not count against them.
//!
//! Everything here except the [`Budget`] lives on the event-loop thread
//! (`Rc`, `Cell`): one session is driven by one thread.
//!
//! - [`StallTimeout`] fails the write side when the peer has taken nothing
//!   of what we queued for `Limits::write_timeout`: a peer that stops
//!   reading keeps the reader paused (with bounded memory) only until then,
//!   and `shutdown`, which waits, as twoparty's does, until everything
//!   queued before it is written, cannot wait longer either.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use capnp::capability::Promise;
use capnp::message::{Builder, HeapAllocator, ReaderOptions, ReaderSegments};
use capnp::{Error, Word};
use capnp_futures::serialize::AsOutputSegments;
use capnp_rpc::rpc_twoparty_capnp::Side;
use futures::channel::oneshot;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, FutureExt, TryFutureExt};
use tokio::time::Instant;

use crate::budget::{Budget, Charge};
use crate::connection_metrics::ConnectionMeters;
use crate::error::{bad_request, limit_reached};

/// Most segments a frame may have. Cap'n Proto's own readers refuse 512 or
/// more ([`capnp::serialize::SEGMENTS_COUNT_LIMIT`]).
const MAX_SEGMENTS: usize = capnp::serialize::SEGMENTS_COUNT_LIMIT - 1;

/// How much of a frame's body is made room for at a time (64 KiB): the most
/// memory a frame holds beyond what the peer has actually sent.
const CHUNK_WORDS: usize = 64 * 1024 / 8;

/// Bounds one session's transport keeps; see the module documentation for
/// which part keeps each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransportLimits {
    /// Largest single incoming message (frame incl. segment table); bigger is
    /// a protocol error that ends the session. The traversal limit of each
    /// message is this, in words.
    pub max_message_bytes: usize,
    /// Bytes of incoming messages this connection may hold at once: the
    /// frame being read plus every received message capnp-rpc still holds (a
    /// call's params stay held until its reply). Past it, reading pauses
    /// until some are released (backpressure); a single message larger than
    /// this can never fit: error.
    pub max_incoming_bytes: usize,
    /// Of those, how many are this connection's own and never wait for the
    /// process-wide budget.
    pub reserved_incoming_bytes: usize,
    /// Replies and requests queued for the peer but not yet written to the
    /// socket. Past it, this side stops reading the peer's messages until
    /// the queue drains to half of it (backpressure, not an error).
    pub max_unwritten_bytes: usize,
    /// The first complete message must arrive within this, counted from
    /// [`new_network`] (None: no limit). Time spent waiting on this side's
    /// own bounds does not count.
    pub handshake_timeout: Option<Duration>,
    /// Once the first byte of a frame has arrived, the rest of it must arrive
    /// within this (None: no limit). Time spent paused by our own
    /// backpressure does not count: the pauses between frames, and the wait
    /// for room for a frame once its header has told its size (the clock
    /// stops while the reader waits, and the peer is blocked meanwhile).
    pub frame_timeout: Option<Duration>,
}

/// What one session's transport holds and has moved, for tests, logs and
/// metrics. Read on the event-loop thread; it stays readable after the
/// session has ended.
#[derive(Debug, Default)]
pub(crate) struct TransportStats {
    /// Bytes of incoming messages held now (see
    /// [`TransportLimits::max_incoming_bytes`]).
    incoming: Cell<usize>,
    /// The most `incoming` has been.
    peak_incoming: Cell<usize>,
    /// Bytes allocated for the body of the frame being read now.
    frame_buffer: Cell<usize>,
    /// Bytes queued for the peer and not yet written.
    unwritten: Cell<usize>,
    /// The most `unwritten` has been.
    peak_unwritten: Cell<usize>,
    /// Whether the reader is waiting on one of this side's bounds.
    paused: Cell<bool>,
    /// Complete messages received.
    messages_in: Cell<u64>,
    /// Messages handed to the write queue.
    messages_out: Cell<u64>,
    /// Bytes read from the peer.
    bytes_in: Cell<u64>,
    /// Bytes of the messages handed to the write queue (frames incl. tables).
    bytes_out: Cell<u64>,
    /// The connection's metric handles, which the byte and message counts
    /// are added to as well.
    pub(crate) meters: ConnectionMeters,
}

impl TransportStats {
    /// Bytes of incoming messages held now: the frame being read (its whole
    /// declared size, reserved) plus every received message not yet dropped.
    pub(crate) fn incoming_bytes(&self) -> usize {
        self.incoming.get()
    }

    /// The most [`incoming_bytes`](Self::incoming_bytes) has been.
    pub(crate) fn peak_incoming_bytes(&self) -> usize {
        self.peak_incoming.get()
    }

    /// Bytes actually allocated for the frame being read (0 between frames):
    /// grows with what the peer has sent, never past the frame's size.
    pub(crate) fn frame_buffer_bytes(&self) -> usize {
        self.frame_buffer.get()
    }

    /// Bytes of messages queued for the peer and not yet written.
    pub(crate) fn unwritten_bytes(&self) -> usize {
        self.unwritten.get()
    }

    /// The most [`unwritten_bytes`](Self::unwritten_bytes) has been.
    pub(crate) fn peak_unwritten_bytes(&self) -> usize {
        self.peak_unwritten.get()
    }

    /// Whether the reader is waiting for this side's own bounds (held
    /// incoming bytes, unwritten bytes, the process budget) instead of
    /// reading.
    pub(crate) fn paused(&self) -> bool {
        self.paused.get()
    }

    /// Complete messages received from the peer.
    pub(crate) fn messages_in(&self) -> u64 {
        self.messages_in.get()
    }

    /// Messages sent: handed to the write queue.
    pub(crate) fn messages_out(&self) -> u64 {
        self.messages_out.get()
    }

    /// Bytes read from the peer.
    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes_in.get()
    }

    /// Bytes of the messages handed to the write queue.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.get()
    }
}

/// Makes the vat network for one session over `reader` and `writer` (the
/// two halves of the socket; buffered, as for twoparty). `side` is this
/// side's role (it decides what `bootstrap` returns); `process` is the budget
/// shared by every connection of the process. Returns the network to give
/// [`capnp_rpc::RpcSystem::new`] and the session's stats.
///
/// Must be driven (as the `RpcSystem` does) on a tokio runtime with time
/// enabled when either timeout is set.
pub(crate) fn new_network<R, W>(
    reader: R,
    writer: W,
    side: Side,
    limits: TransportLimits,
    process: Arc<Budget>,
    meters: ConnectionMeters,
) -> (Box<dyn capnp_rpc::VatNetwork<Side>>, Rc<TransportStats>)
where
    R: AsyncRead + Unpin + 'static,
    W: AsyncWrite + Unpin + 'static,
{
    let stats = Rc::new(TransportStats {
        meters,
        ..TransportStats::default()
    });
    let shared = Rc::new(Shared {
        limits,
        process,
        stats: stats.clone(),
        reserved_used: Cell::new(0),
        reader_waker: Cell::new(None),
        write_failure: RefCell::new(None),
        failure_waker: Cell::new(None),
    });
    let mut options = ReaderOptions::new();
    options.traversal_limit_in_words(Some(limits.max_message_bytes / 8));
    let frames = FrameReader {
        stream: reader,
        shared: shared.clone(),
        options,
        handshake_deadline: limits.handshake_timeout.map(|t| Instant::now() + t),
        frame_deadline: None,
    };

    let (disconnected_tx, disconnected) = oneshot::channel::<()>();
    let disconnected =
        disconnected.map_err(|_| Error::disconnected("the connection was dropped".into()));
    let (sender, queue) = capnp_futures::write_queue::<W, Queued>(writer);
    // As twoparty: the session is over once the queue has stopped (written
    // everything up to `shutdown`, or failed) *and* the connection is gone,
    // and it ends with the queue's result.
    // A failed queue also ends the receive in progress (the peer may have
    // stopped reading and sending both), so the connection is dropped and
    // the session ends instead of waiting on a reader that never returns.
    let on_failure = Rc::downgrade(&shared);
    let driver = Promise::from_future(queue.then(move |written| {
        if let (Err(e), Some(shared)) = (&written, on_failure.upgrade()) {
            shared.write_failed(e.to_string());
        }
        disconnected.then(move |_| futures::future::ready(written))
    }))
    .shared();

    let inner = Rc::new(RefCell::new(ConnectionInner {
        frames: Rc::new(RefCell::new(Some(frames))),
        sender,
        side,
        shared: shared.clone(),
        on_disconnect: Some(disconnected_tx),
    }));
    let network = Network {
        weak_inner: Rc::downgrade(&inner),
        connection: Some(Connection { inner }),
        driver,
        side,
        shared,
    };
    (Box::new(network), stats)
}

/// The state one session's reader, messages and write queue share.
struct Shared {
    /// The bounds.
    limits: TransportLimits,
    /// The process-wide budget incoming bytes past the reserved part, and
    /// every unwritten byte, are charged to.
    process: Arc<Budget>,
    /// The counters, also handed to the caller.
    stats: Rc<TransportStats>,
    /// How much of [`TransportLimits::reserved_incoming_bytes`] is held now.
    reserved_used: Cell<usize>,
    /// The reader, while it waits for one of this side's bounds.
    reader_waker: Cell<Option<Waker>>,
    /// Why the write queue failed, once it has (a stalled peer, a broken
    /// socket): the reader then ends the session too, wherever it waits.
    write_failure: RefCell<Option<String>>,
    /// The receive in progress, woken when the write queue fails.
    failure_waker: Cell<Option<Waker>>,
}

impl Shared {
    /// Records that the write queue failed and wakes the receive in
    /// progress, which then ends the session with `why`.
    fn write_failed(&self, why: String) {
        *self.write_failure.borrow_mut() = Some(why);
        if let Some(waker) = self.failure_waker.take() {
            waker.wake();
        }
    }

    /// Resolves with the write queue's failure, once there is one.
    fn failure(self: &Rc<Self>) -> impl Future<Output = String> {
        let shared = self.clone();
        futures::future::poll_fn(move |cx| match shared.write_failure.borrow().clone() {
            Some(why) => Poll::Ready(why),
            None => {
                shared.failure_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }

    /// Wakes the reader if it is waiting; it looks at its condition again.
    fn wake_reader(&self) {
        if let Some(waker) = self.reader_waker.take() {
            waker.wake();
        }
    }

    /// Resolves once `ready` holds, looked at again each time something
    /// this connection holds is given back.
    fn wait_until(self: &Rc<Self>, ready: impl Fn(&Shared) -> bool) -> impl Future<Output = ()> {
        let shared = self.clone();
        futures::future::poll_fn(move |cx| {
            if ready(&shared) {
                Poll::Ready(())
            } else {
                shared.reader_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }

    /// Whether the unwritten bytes are over their bound.
    fn too_much_unwritten(&self) -> bool {
        self.stats.unwritten.get() > self.limits.max_unwritten_bytes
    }

    /// Whether the unwritten bytes have drained enough to read again.
    fn unwritten_drained(&self) -> bool {
        self.stats.unwritten.get() <= self.limits.max_unwritten_bytes / 2
    }

    /// Whether the held incoming bytes leave no room for another frame.
    fn incoming_full(&self) -> bool {
        let held = self.stats.incoming.get();
        held > 0 && held >= self.limits.max_incoming_bytes
    }

    /// Whether a frame of `bytes` fits beside what is held now.
    fn incoming_fits(&self, bytes: usize) -> bool {
        let held = self.stats.incoming.get();
        held == 0 || bytes <= self.limits.max_incoming_bytes.saturating_sub(held)
    }
}

/// The connection's part of an incoming frame's bytes: counted in
/// [`TransportStats::incoming_bytes`] until dropped, and partly (up to what is
/// left of the reserved allowance) in the reserved bytes.
struct HeldIncoming {
    /// The session.
    shared: Rc<Shared>,
    /// The frame's size.
    bytes: usize,
    /// How much of it is covered by the reserved allowance.
    reserved: usize,
}

impl HeldIncoming {
    /// Counts a frame of `bytes`, covering what it can from the reserved
    /// allowance.
    fn new(shared: &Rc<Shared>, bytes: usize) -> Self {
        let left = shared
            .limits
            .reserved_incoming_bytes
            .saturating_sub(shared.reserved_used.get());
        let reserved = bytes.min(left);
        shared
            .reserved_used
            .set(shared.reserved_used.get() + reserved);
        let stats = &shared.stats;
        stats.incoming.set(stats.incoming.get() + bytes);
        stats
            .peak_incoming
            .set(stats.peak_incoming.get().max(stats.incoming.get()));
        HeldIncoming {
            shared: shared.clone(),
            bytes,
            reserved,
        }
    }

    /// The part the process-wide budget has to cover.
    fn unreserved(&self) -> usize {
        self.bytes - self.reserved
    }
}

impl Drop for HeldIncoming {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared
            .reserved_used
            .set(shared.reserved_used.get() - self.reserved);
        let stats = &shared.stats;
        stats.incoming.set(stats.incoming.get() - self.bytes);
        shared.wake_reader();
    }
}

/// An outgoing message's place in [`TransportStats::unwritten_bytes`] until it
/// has been written (or thrown away).
struct Unwritten {
    /// The session.
    shared: Rc<Shared>,
    /// The frame's size.
    bytes: usize,
}

impl Unwritten {
    /// Counts `bytes` as unwritten.
    fn new(shared: &Rc<Shared>, bytes: usize) -> Self {
        let stats = &shared.stats;
        stats.unwritten.set(stats.unwritten.get() + bytes);
        stats
            .peak_unwritten
            .set(stats.peak_unwritten.get().max(stats.unwritten.get()));
        Unwritten {
            shared: shared.clone(),
            bytes,
        }
    }
}

impl Drop for Unwritten {
    fn drop(&mut self) {
        let shared = &self.shared;
        let stats = &shared.stats;
        stats.unwritten.set(stats.unwritten.get() - self.bytes);
        if shared.unwritten_drained() {
            shared.wake_reader();
        }
    }
}

/// Marks the reader paused while alive.
struct Paused<'a>(&'a TransportStats);

impl<'a> Paused<'a> {
    /// Marks the reader paused.
    fn new(stats: &'a TransportStats) -> Self {
        stats.paused.set(true);
        Paused(stats)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.paused.set(false);
    }
}

/// Which timeout a read is racing.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// [`TransportLimits::handshake_timeout`].
    Handshake,
    /// [`TransportLimits::frame_timeout`].
    Frame,
}

/// A message's segments, read into one 8-byte aligned buffer.
struct Segments {
    /// The bodies of all segments, back to back.
    words: Vec<Word>,
    /// Each segment's (start, end) in `words`.
    bounds: Vec<(usize, usize)>,
}

impl ReaderSegments for Segments {
    fn get_segment(&self, id: u32) -> Option<&[u8]> {
        let &(start, end) = self.bounds.get(usize::try_from(id).ok()?)?;
        self.words.get(start..end).map(Word::words_to_bytes)
    }

    fn len(&self) -> usize {
        self.bounds.len()
    }
}

/// A received message, with the charges for its bytes: given back when
/// capnp-rpc drops it.
struct Incoming {
    /// The message.
    message: capnp::message::Reader<Segments>,
    /// Its bytes in this connection's count (dropped after the message).
    _held: HeldIncoming,
    /// Its bytes in the process-wide budget, past the reserved part.
    _process: Charge,
}

impl capnp_rpc::IncomingMessage for Incoming {
    fn get_body(&self) -> capnp::Result<capnp::any_pointer::Reader<'_>> {
        self.message.get_root()
    }
}

/// The error for a frame that ends early.
fn closed_mid_message() -> Error {
    Error::disconnected("peer closed the connection in the middle of a message".into())
}

/// Segment-table bytes (padded to a word) of a frame with `segments`
/// segments.
fn table_bytes(segments: usize) -> usize {
    (segments + 2) / 2 * 8
}

/// Reads frames off the peer's half of the socket, keeping the incoming
/// bounds and the timeouts.
struct FrameReader<R> {
    /// The peer's half of the socket.
    stream: R,
    /// The session.
    shared: Rc<Shared>,
    /// For each message's reader.
    options: ReaderOptions,
    /// When the first message must be complete by; None once it is.
    handshake_deadline: Option<Instant>,
    /// When the frame being read must be complete by; None between frames.
    frame_deadline: Option<Instant>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads the next message; `Ok(None)` when the peer closed the
    /// connection cleanly between frames.
    async fn next_message(&mut self) -> capnp::Result<Option<Incoming>> {
        self.wait_between_frames().await;

        let mut first = [0u8; 8];
        let n = self.read_some(&mut first).await?;
        if n == 0 {
            return Ok(None);
        }
        crate::idle_poll::note_activity();
        self.frame_deadline = self.shared.limits.frame_timeout.map(|t| Instant::now() + t);
        self.read_full(&mut first[n..]).await?;
        let [c0, c1, c2, c3, l0, l1, l2, l3] = first;
        let segments = u64::from(u32::from_le_bytes([c0, c1, c2, c3])) + 1;
        let segments = match usize::try_from(segments) {
            Ok(count) if count <= MAX_SEGMENTS => count,
            _ => {
                return Err(bad_request(format!(
                    "incoming message declares {segments} segments; \
                     at most {MAX_SEGMENTS} are allowed"
                )))
            }
        };
        let mut lengths = Vec::with_capacity(segments);
        lengths.push(u32::from_le_bytes([l0, l1, l2, l3]));
        let table = table_bytes(segments);
        if segments > 1 {
            let mut rest = vec![0u8; table - 8];
            self.read_full(&mut rest).await?;
            lengths.extend(
                rest.chunks_exact(4)
                    .take(segments - 1)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        let body_words: u64 = lengths.iter().map(|&words| u64::from(words)).sum();
        let frame = self.check_size(table as u64 + body_words * 8)?;
        let body_words = (frame - table) / 8;

        // Reserve the whole frame before reading its body. Waiting here is
        // this side's doing, so it stops the clocks.
        if !self.shared.incoming_fits(frame) {
            let room = self.shared.wait_until(move |s| s.incoming_fits(frame));
            self.own_wait(room).await;
        }
        let held = HeldIncoming::new(&self.shared, frame);
        let process = match self.shared.process.try_take(held.unreserved()) {
            Some(charge) => charge,
            None => {
                let process = self.shared.process.clone();
                let unreserved = held.unreserved();
                self.own_wait(async move { process.take(unreserved).await })
                    .await
            }
        };

        let words = self.read_body(body_words).await?;
        let mut bounds = Vec::with_capacity(segments);
        let mut start = 0usize;
        for words in lengths {
            // Each fits: their sum was checked against the frame.
            let end = start + words as usize;
            bounds.push((start, end));
            start = end;
        }
        let message = capnp::message::Reader::new(Segments { words, bounds }, self.options);
        let stats = &self.shared.stats;
        stats.messages_in.set(stats.messages_in.get() + 1);
        stats.meters.messages_in.increment(1);
        self.frame_deadline = None;
        self.handshake_deadline = None;
        Ok(Some(Incoming {
            message,
            _held: held,
            _process: process,
        }))
    }

    /// Checks a frame's declared size against the limits; returns it.
    fn check_size(&self, frame: u64) -> capnp::Result<usize> {
        let limits = &self.shared.limits;
        let frame = match usize::try_from(frame) {
            Ok(frame) if frame <= limits.max_message_bytes => frame,
            _ => {
                return Err(limit_reached(format!(
                    "incoming message of {frame} bytes exceeds the limit of {} bytes \
                     (Limits::max_message_bytes)",
                    limits.max_message_bytes
                )))
            }
        };
        if frame > limits.max_incoming_bytes {
            return Err(limit_reached(format!(
                "incoming message of {frame} bytes can never fit in this connection's \
                 incoming limit of {} bytes (Limits::max_incoming_bytes)",
                limits.max_incoming_bytes
            )));
        }
        Ok(frame)
    }

    /// Reads a body of `total` words into a buffer that grows (by at most
    /// [`CHUNK_WORDS`] of zeroes ahead of the data, capacity at most twice
    /// what has arrived) as the bytes arrive.
    async fn read_body(&mut self, total: usize) -> capnp::Result<Vec<Word>> {
        let mut words: Vec<Word> = Vec::new();
        let mut filled = 0usize;
        let result = async {
            while filled < total * 8 {
                if filled == words.len() * 8 {
                    let len = words.len();
                    let want = (len + CHUNK_WORDS).min(total);
                    if want > words.capacity() {
                        let capacity = (len * 2).max(want).min(total);
                        words.reserve_exact(capacity - len);
                    }
                    words.resize(want, capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
                    self.shared.stats.frame_buffer.set(words.capacity() * 8);
                }
                let bytes = Word::words_to_bytes_mut(&mut words);
                // `filled` never passes the zeroed part (it grows first).
                let Some(space) = bytes.get_mut(filled..) else {
                    return Err(Error::failed("frame buffer out of step".into()));
                };
                let n = self.read_some(space).await?;
                if n == 0 {
                    return Err(closed_mid_message());
                }
                filled += n;
            }
            Ok(())
        }
        .await;
        self.shared.stats.frame_buffer.set(0);
        result.map(|()| words)
    }

    /// Between frames: waits while this connection holds all the incoming
    /// bytes it may, or while too much is queued for the peer (then until
    /// the queue has drained to half).
    async fn wait_between_frames(&mut self) {
        let shared = self.shared.clone();
        if !shared.too_much_unwritten() && !shared.incoming_full() {
            return;
        }
        self.own_wait(async move {
            loop {
                if shared.too_much_unwritten() {
                    shared.wait_until(Shared::unwritten_drained).await;
                } else if shared.incoming_full() {
                    shared.wait_until(|s| !s.incoming_full()).await;
                } else {
                    break;
                }
            }
        })
        .await;
    }

    /// Runs one of this side's own waits: marks the reader paused and moves
    /// the deadlines on by the time it took.
    async fn own_wait<T>(&mut self, wait: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = {
            let _paused = Paused::new(&self.shared.stats);
            wait.await
        };
        let waited = started.elapsed();
        self.handshake_deadline = self.handshake_deadline.map(|d| d + waited);
        self.frame_deadline = self.frame_deadline.map(|d| d + waited);
        out
    }

    /// The deadline the next read races, if any: the earlier of the two.
    fn deadline(&self) -> Option<(Instant, Deadline)> {
        let handshake = self.handshake_deadline.map(|d| (d, Deadline::Handshake));
        let frame = self.frame_deadline.map(|d| (d, Deadline::Frame));
        match (handshake, frame) {
            (Some(h), Some(f)) => Some(if f.0 < h.0 { f } else { h }),
            (h, f) => h.or(f),
        }
    }

    /// The error a missed deadline ends the session with.
    fn timeout_error(&self, which: Deadline) -> Error {
        let limits = &self.shared.limits;
        let message = match which {
            Deadline::Handshake => format!(
                "no message within the handshake timeout of {:?} (Limits::handshake_timeout)",
                limits.handshake_timeout.unwrap_or_default()
            ),
            Deadline::Frame => format!(
                "a message started but was not completed within {:?} (Limits::frame_timeout)",
                limits.frame_timeout.unwrap_or_default()
            ),
        };
        limit_reached(message)
    }

    /// Reads what is there (at least one byte, or 0 at end of stream) within
    /// the current deadline.
    async fn read_some(&mut self, buf: &mut [u8]) -> capnp::Result<usize> {
        loop {
            let deadline = self.deadline();
            let read = self.stream.read(&mut *buf);
            let result = match deadline {
                None => read.await,
                Some((at, which)) => match tokio::time::timeout_at(at, read).await {
                    Ok(result) => result,
                    Err(_elapsed) => return Err(self.timeout_error(which)),
                },
            };
            match result {
                Ok(n) => {
                    let stats = &self.shared.stats;
                    stats.bytes_in.set(stats.bytes_in.get() + n as u64);
                    stats.meters.bytes_in.increment(n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Fills `buf` within the current deadline; the stream ending first is
    /// an error (we are inside a frame).
    async fn read_full(&mut self, mut buf: &mut [u8]) -> capnp::Result<()> {
        while !buf.is_empty() {
            let n = self.read_some(buf).await?;
            if n == 0 {
                return Err(closed_mid_message());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

/// A message on its way to the write queue: the frame plus the charges for
/// its bytes, given back when the queue drops it after writing it.
struct Queued {
    /// The message (capnp-rpc keeps another reference).
    message: Rc<Builder<HeapAllocator>>,
    /// Its place in this connection's unwritten bytes.
    _unwritten: Unwritten,
    /// Its bytes in the process-wide budget.
    _process: Charge,
}

impl AsOutputSegments for Queued {
    fn as_output_segments(&self) -> capnp::OutputSegments<'_> {
        self.message.get_segments_for_output()
    }
}

/// A message being built by capnp-rpc; queued for writing by `send`.
struct Outgoing {
    /// The message.
    message: Builder<HeapAllocator>,
    /// The session's write queue.
    sender: capnp_futures::Sender<Queued>,
    /// The session.
    shared: Rc<Shared>,
}

impl capnp_rpc::OutgoingMessage for Outgoing {
    fn get_body(&mut self) -> capnp::Result<capnp::any_pointer::Builder<'_>> {
        self.message.get_root()
    }

    fn get_body_as_reader(&self) -> capnp::Result<capnp::any_pointer::Reader<'_>> {
        self.message.get_root_as_reader()
    }

    fn send(self: Box<Self>) -> (Promise<(), Error>, Rc<Builder<HeapAllocator>>) {
        let Outgoing {
            message,
            mut sender,
            shared,
        } = *self;
        let message = Rc::new(message);
        let segments = message.get_segments_for_output();
        let bytes = table_bytes(segments.len()) + segments.iter().map(|s| s.len()).sum::<usize>();
        drop(segments);
        let stats = &shared.stats;
        stats.messages_out.set(stats.messages_out.get() + 1);
        stats.bytes_out.set(stats.bytes_out.get() + bytes as u64);
        stats.meters.messages_out.increment(1);
        stats.meters.bytes_out.increment(bytes as u64);
        let queued = Queued {
            message: message.clone(),
            _unwritten: Unwritten::new(&shared, bytes),
            _process: shared.process.take_unchecked(bytes),
        };
        // capnp-rpc drops the promise, so the queue drops `queued` as soon as
        // it is written; if it is kept, the frame is freed when it resolves.
        let written = sender.send(queued).map_ok(|_written| ());
        (Promise::from_future(written), message)
    }

    fn take(self: Box<Self>) -> Builder<HeapAllocator> {
        self.message
    }

    fn size_in_words(&self) -> usize {
        self.message.size_in_words()
    }
}

/// Largest first-segment hint passed on to the allocator (it asserts on
/// more than its maximum segment size).
const MAX_FIRST_SEGMENT_WORDS: u32 = 1 << 20;

/// Makes an empty outgoing message for `sender`'s queue.
fn new_outgoing(
    shared: &Rc<Shared>,
    sender: &capnp_futures::Sender<Queued>,
    first_segment_words: u32,
) -> Box<dyn capnp_rpc::OutgoingMessage> {
    let allocator =
        HeapAllocator::new().first_segment_words(first_segment_words.min(MAX_FIRST_SEGMENT_WORDS));
    Box::new(Outgoing {
        message: Builder::new(allocator),
        sender: sender.clone(),
        shared: shared.clone(),
    })
}

/// The session's connection state, shared by the handles capnp-rpc holds.
/// Dropping it (the last handle) fires the disconnect signal.
struct ConnectionInner<R> {
    /// The reader, while no `receive_incoming_message` is running (one
    /// running takes it and puts it back).
    frames: Rc<RefCell<Option<FrameReader<R>>>>,
    /// The write queue.
    sender: capnp_futures::Sender<Queued>,
    /// The peer's side (twoparty's vat id).
    side: Side,
    /// The session.
    shared: Rc<Shared>,
    /// Fired on drop: `drive_until_shutdown` waits for it.
    on_disconnect: Option<oneshot::Sender<()>>,
}

impl<R> Drop for ConnectionInner<R> {
    fn drop(&mut self) {
        if let Some(fire) = self.on_disconnect.take() {
            let _ = fire.send(());
        }
    }
}

/// A handle on the session's connection, as capnp-rpc holds it.
struct Connection<R> {
    /// The shared state.
    inner: Rc<RefCell<ConnectionInner<R>>>,
}

impl<R> capnp_rpc::Connection<Side> for Connection<R>
where
    R: AsyncRead + Unpin + 'static,
{
    fn get_peer_vat_id(&self) -> Side {
        self.inner.borrow().side
    }

    fn new_outgoing_message(
        &mut self,
        first_segment_word_size: u32,
    ) -> Box<dyn capnp_rpc::OutgoingMessage> {
        let inner = self.inner.borrow();
        new_outgoing(&inner.shared, &inner.sender, first_segment_word_size)
    }

    fn receive_incoming_message(
        &mut self,
    ) -> Promise<Option<Box<dyn capnp_rpc::IncomingMessage>>, Error> {
        let slot = self.inner.borrow().frames.clone();
        let Some(mut frames) = slot.borrow_mut().take() else {
            // capnp-rpc reads one message at a time and stops after an
            // error (which is when the reader is not put back).
            return Promise::err(Error::failed(
                "the connection's reader is in use or has failed".into(),
            ));
        };
        let shared = self.inner.borrow().shared.clone();
        Promise::from_future(async move {
            let outcome = {
                let next = frames.next_message();
                futures::pin_mut!(next);
                let failed = shared.failure();
                futures::pin_mut!(failed);
                match futures::future::select(next, failed).await {
                    futures::future::Either::Left((message, _)) => Ok(message),
                    futures::future::Either::Right((why, _)) => Err(why),
                }
            };
            let message = match outcome {
                Ok(message) => message?,
                // The session is over either way (a broken socket, a peer
                // that stopped reading): calls in flight see a disconnect.
                Err(why) => {
                    return Err(Error::disconnected(format!(
                        "writing to the peer failed: {why}"
                    )))
                }
            };
            *slot.borrow_mut() = Some(frames);
            Ok(message.map(|m| Box::new(m) as Box<dyn capnp_rpc::IncomingMessage>))
        })
    }

    // `new_stream` is capnp-rpc's default: a fixed window of its default
    // size, which is what twoparty uses unless told otherwise.

    fn shutdown(&mut self, result: capnp::Result<()>) -> Promise<(), Error> {
        Promise::from_future(self.inner.borrow_mut().sender.terminate(result))
    }
}

/// What `connect` hands out once the session's connection is gone
/// (twoparty panics there): it sends nothing and receives nothing.
struct Closed {
    /// The peer's side.
    side: Side,
    /// The session, for its charges.
    shared: Rc<Shared>,
    /// A queue that is not running: every send fails at once.
    sender: capnp_futures::Sender<Queued>,
}

impl capnp_rpc::Connection<Side> for Closed {
    fn get_peer_vat_id(&self) -> Side {
        self.side
    }

    fn new_outgoing_message(
        &mut self,
        first_segment_word_size: u32,
    ) -> Box<dyn capnp_rpc::OutgoingMessage> {
        new_outgoing(&self.shared, &self.sender, first_segment_word_size)
    }

    fn receive_incoming_message(
        &mut self,
    ) -> Promise<Option<Box<dyn capnp_rpc::IncomingMessage>>, Error> {
        Promise::err(Error::disconnected("the session has ended".into()))
    }

    fn shutdown(&mut self, _result: capnp::Result<()>) -> Promise<(), Error> {
        Promise::ok(())
    }
}

/// The session's vat network, as [`new_network`] returns it.
struct Network<R> {
    /// Handed out once, by `accept`.
    connection: Option<Connection<R>>,
    /// Handed out by `connect` while the connection lives.
    weak_inner: Weak<RefCell<ConnectionInner<R>>>,
    /// Runs the write queue, then waits for the connection to go.
    driver: futures::future::Shared<Promise<(), Error>>,
    /// This side.
    side: Side,
    /// The session.
    shared: Rc<Shared>,
}

impl<R> capnp_rpc::VatNetwork<Side> for Network<R>
where
    R: AsyncRead + Unpin + 'static,
{
    fn connect(&mut self, host_id: Side) -> Option<Box<dyn capnp_rpc::Connection<Side>>> {
        if host_id == self.side {
            return None;
        }
        Some(match self.weak_inner.upgrade() {
            Some(inner) => Box::new(Connection { inner }),
            None => {
                let (sender, _not_running) =
                    capnp_futures::write_queue::<_, Queued>(futures::io::sink());
                Box::new(Closed {
                    side: host_id,
                    shared: self.shared.clone(),
                    sender,
                })
            }
        })
    }

    fn accept(&mut self) -> Promise<Box<dyn capnp_rpc::Connection<Side>>, Error> {
        match self.connection.take() {
            Some(c) => Promise::ok(Box::new(c) as Box<dyn capnp_rpc::Connection<Side>>),
            None => Promise::from_future(futures::future::pending()),
        }
    }

    fn drive_until_shutdown(&mut self) -> Promise<(), Error> {
        Promise::from_future(self.driver.clone())
    }
}

/// The write half of a session's socket, failing with
/// [`std::io::ErrorKind::TimedOut`] once the peer has taken no byte for
/// `timeout` while this side had bytes to write. Progress of any size
/// restarts the clock. (The reader's own pause never counts: this only
/// measures the peer not reading.)
pub(crate) struct StallTimeout<W> {
    inner: W,
    timeout: Option<Duration>,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<W> StallTimeout<W> {
    /// Wraps `inner`; `None` never times out.
    pub(crate) fn new(inner: W, timeout: Option<Duration>) -> Self {
        StallTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The inner write would block: wait on the stall clock as well.
    fn stall<T>(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<T>> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer read nothing of what this side sent for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        done: Poll<std::io::Result<T>>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match done {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StallTimeout<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let done = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(done, cx)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let done = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(done, cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let done = std::pin::Pin::new(&mut self.inner).poll_close(cx);
        self.progressed(done, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;

    use capnp::traits::HasTypeId;
    use capnp_rpc::{rpc_capnp, twoparty, RpcSystem};
    use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

    use crate::proxy_capnp::{thread, thread_map};

    /// How long any one test may run before it counts as hung.
    const BOUND: Duration = Duration::from_secs(30);

    /// Generous limits that a well-behaved test peer never meets.
    fn limits() -> TransportLimits {
        TransportLimits {
            max_message_bytes: 1 << 20,
            max_incoming_bytes: 4 << 20,
            reserved_incoming_bytes: 64 << 10,
            max_unwritten_bytes: 1 << 20,
            handshake_timeout: Some(Duration::from_secs(10)),
            frame_timeout: Some(Duration::from_secs(10)),
        }
    }

    /// Runs `f` on a current-thread runtime inside a `LocalSet` (as the event
    /// loop does), failing the test if it hangs.
    fn run<F: Future>(f: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tokio::task::LocalSet::new().block_on(&runtime, async {
            tokio::time::timeout(BOUND, f).await.expect("the test hung")
        })
    }

    /// Waits (bounded by the test's timeout) until `ready` holds.
    async fn until(mut ready: impl FnMut() -> bool) {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The two buffered halves of `stream`, registered with the runtime (as
    /// `connection.rs` makes them).
    fn halves(
        stream: UnixStream,
    ) -> (
        impl AsyncRead + Unpin + 'static,
        impl AsyncWrite + Unpin + 'static,
    ) {
        stream.set_nonblocking(true).expect("non-blocking");
        let stream = tokio::net::UnixStream::from_std(stream).expect("registered");
        let (reader, writer) = stream.into_split();
        (
            futures::io::BufReader::new(reader.compat()),
            futures::io::BufWriter::new(writer.compat_write()),
        )
    }

    /// A `ThreadMap` whose threads answer `getName` with their name repeated
    /// `repeat` times; `makeThread` first waits for `gate`, if any, holding
    /// its params.
    #[derive(Default)]
    struct TestMap {
        repeat: usize,
        gate: Option<futures::future::Shared<oneshot::Receiver<()>>>,
    }

    impl thread_map::Server for TestMap {
        async fn make_thread(
            self: Rc<Self>,
            params: thread_map::MakeThreadParams,
            mut results: thread_map::MakeThreadResults,
        ) -> Result<(), Error> {
            if let Some(gate) = self.gate.clone() {
                let _ = gate.await;
            }
            let name = params.get()?.get_name()?.to_string()?;
            let name = name.repeat(self.repeat.max(1));
            results
                .get()
                .set_result(capnp_rpc::new_client(TestThread { name }));
            Ok(())
        }
    }

    /// A `Thread` that answers `getName`.
    struct TestThread {
        name: String,
    }

    impl thread::Server for TestThread {
        fn get_name(
            self: Rc<Self>,
            _params: thread::GetNameParams,
            mut results: thread::GetNameResults,
        ) -> impl Future<Output = Result<(), Error>> + 'static {
            results.get().set_result(self.name.as_str());
            Promise::ok(())
        }
    }

    /// Serves `map` over our network on `stream`; returns the session (to
    /// spawn) and its stats.
    fn serve(
        stream: UnixStream,
        limits: TransportLimits,
        process: &Arc<Budget>,
        map: TestMap,
    ) -> (RpcSystem<Side>, Rc<TransportStats>) {
        let (reader, writer) = halves(stream);
        let (network, stats) = new_network(
            reader,
            writer,
            Side::Server,
            limits,
            process.clone(),
            ConnectionMeters::default(),
        );
        let map: thread_map::Client = capnp_rpc::new_client(map);
        (RpcSystem::new(network, Some(map.client)), stats)
    }

    /// The session's error text; fails the test if it ended cleanly.
    async fn session_error(session: tokio::task::JoinHandle<Result<(), Error>>) -> String {
        session
            .await
            .expect("session task")
            .expect_err("the session should end with an error")
            .to_string()
    }

    // ---- raw peers -------------------------------------------------------

    /// One RPC message, framed.
    fn encode(build: impl FnOnce(rpc_capnp::message::Builder<'_>)) -> Vec<u8> {
        let mut message = capnp::message::Builder::new_default();
        build(message.init_root());
        capnp::serialize::write_message_to_words(&message)
    }

    /// `Bootstrap` as question `question`.
    fn bootstrap(question: u32) -> Vec<u8> {
        encode(|m| m.init_bootstrap().set_question_id(question))
    }

    /// A call, as question `question`, on the answer to `target` (or on its
    /// pointer field `field`).
    fn call(
        question: u32,
        target: u32,
        field: Option<u16>,
        interface: u64,
        params: impl FnOnce(capnp::any_pointer::Builder<'_>),
    ) -> Vec<u8> {
        encode(|m| {
            let mut call = m.init_call();
            call.set_question_id(question);
            call.set_interface_id(interface);
            call.set_method_id(0);
            let mut answer = call.reborrow().init_target().init_promised_answer();
            answer.set_question_id(target);
            if let Some(field) = field {
                answer.init_transform(1).get(0).set_get_pointer_field(field);
            }
            params(call.init_params().init_content());
        })
    }

    /// `ThreadMap.makeThread(name)` on the bootstrap (question 0).
    fn make_thread(question: u32, name: &str) -> Vec<u8> {
        call(question, 0, None, thread_map::Client::TYPE_ID, |content| {
            content
                .init_as::<thread_map::make_thread_params::Builder>()
                .set_name(name);
        })
    }

    /// `Thread.getName()` on the thread question `thread` returned.
    fn get_name(question: u32, thread: u32) -> Vec<u8> {
        call(
            question,
            thread,
            Some(0),
            thread::Client::TYPE_ID,
            |content| {
                content.init_as::<thread::get_name_params::Builder>();
            },
        )
    }

    /// A return the raw peer read: its answer id, and the text length if it
    /// was a `getName` result. A returned exception fails the peer.
    type Seen = (u32, Option<usize>);

    /// A peer on its own thread that writes `requests`, waits for `go`, then
    /// reads until it has seen `returns` returns, and closes.
    fn raw_peer(
        mut stream: UnixStream,
        requests: Vec<u8>,
        go: mpsc::Receiver<()>,
        returns: usize,
    ) -> std::thread::JoinHandle<Vec<Seen>> {
        std::thread::spawn(move || {
            stream.set_read_timeout(Some(BOUND)).expect("read timeout");
            stream.write_all(&requests).expect("requests written");
            go.recv_timeout(BOUND).expect("told to read");
            let mut options = ReaderOptions::new();
            options.traversal_limit_in_words(None);
            let mut seen = Vec::new();
            while seen.len() < returns {
                let message =
                    capnp::serialize::read_message(&mut stream, options).expect("a reply");
                let root: rpc_capnp::message::Reader<'_> = message.get_root().expect("root");
                let Ok(rpc_capnp::message::Return(ret)) = root.which() else {
                    continue;
                };
                let ret = ret.expect("return");
                let rpc_capnp::return_::Results(payload) = ret.which().expect("which") else {
                    panic!("call {} did not return results", ret.get_answer_id());
                };
                let name = payload
                    .expect("payload")
                    .get_content()
                    .get_as::<thread::get_name_results::Reader<'_>>()
                    .and_then(|r| r.get_result())
                    .map(|text| text.len())
                    .ok();
                seen.push((ret.get_answer_id(), name));
            }
            seen
        })
    }

    /// Waits for a raw peer's thread without blocking the loop.
    async fn join(peer: std::thread::JoinHandle<Vec<Seen>>) -> Vec<Seen> {
        until(|| peer.is_finished()).await;
        peer.join().expect("peer thread")
    }

    // ---- sessions --------------------------------------------------------

    /// A normal peer bootstraps, makes calls (one at a time, then 50
    /// pipelined at once, one of them 200 KB each way) and disconnects; all
    /// held bytes go back. `ours_on_both_ends`: the client runs our network too, else
    /// capnp-rpc's twoparty.
    fn normal_peer(ours_on_both_ends: bool) {
        run(async {
            let process = Budget::new(64 << 20);
            let (a, b) = UnixStream::pair().expect("socketpair");
            let (server, server_stats) = serve(a, limits(), &process, TestMap::default());
            let server = tokio::task::spawn_local(server);
            let (reader, writer) = halves(b);
            let (network, client_stats): (Box<dyn capnp_rpc::VatNetwork<Side>>, _) =
                if ours_on_both_ends {
                    let (network, stats) = new_network(
                        reader,
                        writer,
                        Side::Client,
                        limits(),
                        process.clone(),
                        ConnectionMeters::default(),
                    );
                    (network, Some(stats))
                } else {
                    let network = twoparty::VatNetwork::new(
                        reader,
                        writer,
                        Side::Client,
                        ReaderOptions::new(),
                    );
                    (Box::new(network), None)
                };
            let mut client = RpcSystem::new(network, None);
            let map: thread_map::Client = client.bootstrap(Side::Server);
            let disconnector = client.get_disconnector();
            let client = tokio::task::spawn_local(client);

            // One at a time.
            let mut request = map.make_thread_request();
            request.get().set_name("worker");
            let thread = request
                .send()
                .promise
                .await
                .expect("makeThread")
                .get()
                .expect("results")
                .get_result()
                .expect("thread");
            let reply = thread
                .get_name_request()
                .send()
                .promise
                .await
                .expect("getName");
            let name = reply.get().expect("results").get_result().expect("text");
            assert_eq!(name.to_str().expect("UTF-8"), "worker");
            drop((reply, thread));

            // Many at once, pipelined, one of them 200 KB each way.
            let names: Vec<String> = (0..50)
                .map(|i| {
                    if i == 7 {
                        "x".repeat(200_000)
                    } else {
                        format!("worker-{i}")
                    }
                })
                .collect();
            let calls = names.iter().map(|name| {
                let mut request = map.make_thread_request();
                request.get().set_name(name.as_str());
                let thread = request.send().pipeline.get_result();
                let reply = thread.get_name_request().send().promise;
                async move {
                    let reply = reply.await.expect("getName");
                    let text = reply.get().expect("results").get_result().expect("text");
                    text.to_string().expect("UTF-8")
                }
            });
            assert_eq!(futures::future::join_all(calls).await, names);
            drop(map);

            // Everything the server received has been given back once the
            // calls are done, and everything it sent has been written.
            until(|| server_stats.incoming_bytes() == 0 && server_stats.unwritten_bytes() == 0)
                .await;
            assert!(
                server_stats.messages_in() > 100,
                "calls and finishes came in"
            );
            assert!(
                server_stats.messages_out() >= 101,
                "every call was answered"
            );
            assert!(server_stats.bytes_in() > 200_000 && server_stats.bytes_out() > 200_000);
            assert!(server_stats.peak_incoming_bytes() > 200_000);
            assert!(!server_stats.paused());

            disconnector.await.expect("clean disconnect");
            client.await.expect("client task").expect("client session");
            server.await.expect("server task").expect("server session");
            if let Some(stats) = client_stats {
                assert_eq!((stats.incoming_bytes(), stats.unwritten_bytes()), (0, 0));
                assert!(stats.messages_in() > 100);
            }
            assert_eq!(server_stats.incoming_bytes(), 0);
            assert_eq!(process.used(), 0);
        });
    }

    /// capnp-rpc's own twoparty client works against our network.
    #[test]
    fn a_twoparty_peer_calls_through_our_network() {
        normal_peer(false);
    }

    /// Our network on both ends (so our client side too).
    #[test]
    fn our_network_talks_to_itself() {
        normal_peer(true);
    }

    /// A header announcing 64 MiB then silence: the whole frame is reserved
    /// (connection count and process budget), only what arrived is allocated,
    /// and the frame timeout ends the session and gives everything back.
    #[test]
    fn a_stalled_frame_holds_what_was_sent_and_times_out() {
        let frame_words: u32 = 8 << 20; // 64 MiB of body
        let frame = 8 + (64 << 20);
        let reserved = 1 << 20;
        let limits = TransportLimits {
            max_message_bytes: 128 << 20,
            max_incoming_bytes: 128 << 20,
            reserved_incoming_bytes: reserved,
            handshake_timeout: None,
            frame_timeout: Some(Duration::from_millis(300)),
            ..limits()
        };
        run(async {
            let process = Budget::new(1 << 30);
            let (ours, mut peer) = UnixStream::pair().expect("socketpair");
            let mut sent = vec![0, 0, 0, 0];
            sent.extend(frame_words.to_le_bytes());
            sent.extend([7u8; 1000]);
            peer.write_all(&sent).expect("written");
            let (session, stats) = serve(ours, limits, &process, TestMap::default());
            let session = tokio::task::spawn_local(session);

            until(|| stats.bytes_in() == sent.len() as u64).await;
            // The whole frame is reserved: in the connection's count, and
            // past the reserved part in the process budget ...
            assert_eq!(stats.incoming_bytes(), frame);
            assert_eq!(process.used(), frame - reserved);
            // ... but only what arrived (within one read chunk) is allocated.
            assert!(stats.frame_buffer_bytes() > 0);
            assert!(
                stats.frame_buffer_bytes() <= CHUNK_WORDS * 8,
                "{} bytes allocated for 1000 received",
                stats.frame_buffer_bytes()
            );

            let error = session_error(session).await;
            assert!(
                error.contains("a message started but was not completed within 300ms"),
                "{error}"
            );
            assert_eq!(stats.incoming_bytes(), 0);
            assert_eq!(stats.frame_buffer_bytes(), 0);
            assert_eq!(process.used(), 0);
            drop(peer);
        });
    }

    /// A peer that sends nothing is dropped at the handshake timeout, with an
    /// error naming it.
    #[test]
    fn silence_ends_the_session_at_the_handshake_timeout() {
        let limits = TransportLimits {
            handshake_timeout: Some(Duration::from_millis(200)),
            ..limits()
        };
        run(async {
            let process = Budget::new(1 << 20);
            let (ours, peer) = UnixStream::pair().expect("socketpair");
            let (session, stats) = serve(ours, limits, &process, TestMap::default());
            let error = session_error(tokio::task::spawn_local(session)).await;
            assert!(
                error.contains("no message within the handshake timeout of 200ms"),
                "{error}"
            );
            assert_eq!((stats.bytes_in(), process.used()), (0, 0));
            drop(peer);
        });
    }

    /// Runs a session whose peer sends `sent` and then stays connected (or,
    /// with `close`, closes); returns how it ended.
    fn session_after(sent: &[u8], limits: TransportLimits, close: bool) -> Result<(), String> {
        run(async {
            let process = Budget::new(64 << 20);
            let (ours, mut peer) = UnixStream::pair().expect("socketpair");
            peer.write_all(sent).expect("written");
            if close {
                peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
            }
            let (session, _stats) = serve(ours, limits, &process, TestMap::default());
            let result = tokio::task::spawn_local(session)
                .await
                .expect("session task");
            assert_eq!(process.used(), 0);
            drop(peer);
            result.map_err(|e| e.to_string())
        })
    }

    /// A frame over `max_message_bytes` ends the session before its body is
    /// read.
    #[test]
    fn an_oversized_message_ends_the_session_naming_both_sizes() {
        let mut header = vec![0, 0, 0, 0];
        header.extend((256u32 * 1024).to_le_bytes()); // 2 MiB of body
        let error = session_after(&header, limits(), false).expect_err("too large");
        assert!(
            error.contains("incoming message of 2097160 bytes exceeds the limit of 1048576 bytes"),
            "{error}"
        );
    }

    /// A frame within `max_message_bytes` but over `max_incoming_bytes` could
    /// never be read: error, not a wait.
    #[test]
    fn a_message_that_can_never_fit_ends_the_session() {
        let limits = TransportLimits {
            max_incoming_bytes: 512 << 10,
            ..limits()
        };
        let mut header = vec![0, 0, 0, 0];
        header.extend((80u32 * 1024).to_le_bytes()); // 640 KiB of body
        let error = session_after(&header, limits, false).expect_err("never fits");
        assert!(
            error.contains(
                "incoming message of 655368 bytes can never fit in this connection's incoming \
                 limit of 524288 bytes"
            ),
            "{error}"
        );
    }

    /// End of stream inside a frame (body or header) is a disconnect naming
    /// where it happened (calls in flight see the peer gone, as when it
    /// dies); between frames it ends the session cleanly.
    #[test]
    fn the_peer_closing_mid_frame_is_a_disconnect_and_between_frames_is_not() {
        let mut half = vec![0, 0, 0, 0, 100, 0, 0, 0];
        half.extend([0u8; 10]);
        for cut in [&half[..], &half[..5]] {
            let (mut frames, process) = reader_over(cut.to_vec(), limits_without_timeouts());
            let error = futures::executor::block_on(frames.next_message())
                .err()
                .expect("truncated");
            assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
            assert!(
                error
                    .to_string()
                    .contains("peer closed the connection in the middle of a message"),
                "{error}"
            );
            assert_eq!(process.used(), 0);
        }
        session_after(&bootstrap(0), limits(), true).expect("a clean end");
        session_after(&[], limits(), true).expect("a clean end");
    }

    /// A peer that sends many calls and reads nothing: our unwritten bytes stop
    /// near the bound and the reader pauses; once the peer reads, every call is
    /// answered and everything is given back.
    #[test]
    fn a_peer_that_does_not_read_is_not_read_either() {
        const CALLS: u32 = 200;
        let reply = 16 * 1024;
        let max_unwritten = 64 * 1024;
        let limits = TransportLimits {
            max_unwritten_bytes: max_unwritten,
            ..limits()
        };
        run(async {
            let process = Budget::new(64 << 20);
            let (ours, peer) = UnixStream::pair().expect("socketpair");
            let mut requests = bootstrap(0);
            requests.extend(make_thread(1, "t"));
            for question in 2..CALLS + 2 {
                requests.extend(get_name(question, 1));
            }
            let (go, told) = mpsc::channel();
            let peer = raw_peer(peer, requests, told, CALLS as usize + 2);
            let map = TestMap {
                repeat: reply,
                gate: None,
            };
            let (session, stats) = serve(ours, limits, &process, map);
            let session = tokio::task::spawn_local(session);

            until(|| stats.paused()).await;
            assert!(
                stats.messages_in() < u64::from(CALLS) + 2,
                "it stopped reading before the end"
            );
            assert!(stats.unwritten_bytes() > max_unwritten / 2);
            go.send(()).expect("peer alive");

            let seen = join(peer).await;
            session.await.expect("session task").expect("clean end");
            let mut answered: Vec<u32> = seen.iter().map(|&(id, _)| id).collect();
            answered.sort_unstable();
            assert_eq!(answered, (0..CALLS + 2).collect::<Vec<_>>());
            let names = seen.iter().filter(|&&(_, len)| len == Some(reply)).count();
            assert_eq!(names, CALLS as usize, "every getName got its full reply");
            // Unwritten bytes stayed within the bound plus the replies to the
            // calls read before the pause took effect (one, or two when a
            // reply is built after the next frame has started).
            let frame_of_reply = reply + 256;
            assert!(
                stats.peak_unwritten_bytes() <= max_unwritten + 2 * frame_of_reply,
                "peak {} unwritten",
                stats.peak_unwritten_bytes()
            );
            assert!(!stats.paused());
            assert_eq!((stats.unwritten_bytes(), stats.incoming_bytes()), (0, 0));
            assert_eq!(process.used(), 0);
        });
    }

    /// Calls whose params the server holds fill the incoming allowance: reading
    /// pauses, the excess over the reserved part is in the process budget, and
    /// all resumes (and is given back) once the calls finish.
    #[test]
    fn held_params_pause_reading_until_released() {
        const CALLS: u32 = 12;
        let max_incoming = 8 * 1024;
        let reserved = 4 * 1024;
        let limits = TransportLimits {
            max_message_bytes: max_incoming,
            max_incoming_bytes: max_incoming,
            reserved_incoming_bytes: reserved,
            ..limits()
        };
        run(async {
            let process = Budget::new(64 << 20);
            let (ours, peer) = UnixStream::pair().expect("socketpair");
            let name = "n".repeat(1500);
            let mut requests = bootstrap(0);
            for question in 1..=CALLS {
                requests.extend(make_thread(question, &name));
            }
            let (go, told) = mpsc::channel();
            go.send(()).expect("peer alive");
            let peer = raw_peer(peer, requests, told, CALLS as usize + 1);
            let (open, gate) = oneshot::channel();
            let map = TestMap {
                repeat: 1,
                gate: Some(gate.shared()),
            };
            let (session, stats) = serve(ours, limits, &process, map);
            let session = tokio::task::spawn_local(session);

            until(|| stats.paused()).await;
            assert!(stats.messages_in() < u64::from(CALLS) + 1);
            assert!(stats.incoming_bytes() <= max_incoming);
            // Past the reserved part, held bytes are in the process budget.
            assert!(process.used() + reserved >= stats.incoming_bytes());
            assert!(process.used() > 0);

            open.send(()).expect("gate alive");
            let seen = join(peer).await;
            session.await.expect("session task").expect("clean end");
            assert_eq!(seen.len(), CALLS as usize + 1);
            assert!(stats.peak_incoming_bytes() <= max_incoming);
            assert_eq!(stats.messages_in(), u64::from(CALLS) + 1);
            assert_eq!(stats.incoming_bytes(), 0);
            assert_eq!(process.used(), 0);
        });
    }

    /// Once the session's connection is gone, `connect` hands out a closed
    /// one (twoparty panics): it fails sends and receives, holds nothing.
    #[test]
    fn connecting_after_the_session_is_gone_gets_a_closed_connection() {
        run(async {
            let process = Budget::new(1 << 20);
            let (ours, peer) = UnixStream::pair().expect("socketpair");
            let (reader, writer) = halves(ours);
            let (mut network, _stats) = new_network(
                reader,
                writer,
                Side::Server,
                limits(),
                process.clone(),
                ConnectionMeters::default(),
            );
            assert!(network.connect(Side::Server).is_none(), "ourselves");
            let connection = network.accept().await.expect("the connection");
            drop(connection);
            let mut closed = network.connect(Side::Client).expect("a closed connection");
            assert_eq!(closed.get_peer_vat_id(), Side::Client);
            let mut message = closed.new_outgoing_message(16);
            message
                .get_body()
                .expect("body")
                .set_as("hello")
                .expect("set");
            let (sent, _message) = message.send();
            assert!(sent.await.is_err());
            assert!(closed.receive_incoming_message().await.is_err());
            closed.shutdown(Ok(())).await.expect("nothing to shut down");
            assert_eq!(process.used(), 0);
            drop(peer);
        });
    }

    // ---- the frame reader alone --------------------------------------------

    /// The test limits without their timeouts (for readers run without a
    /// clock).
    fn limits_without_timeouts() -> TransportLimits {
        TransportLimits {
            handshake_timeout: None,
            frame_timeout: None,
            ..limits()
        }
    }

    /// A frame reader over `bytes`, with no timeouts.
    fn reader_over(
        bytes: Vec<u8>,
        limits: TransportLimits,
    ) -> (FrameReader<futures::io::Cursor<Vec<u8>>>, Arc<Budget>) {
        let process = Budget::new(64 << 20);
        let shared = Rc::new(Shared {
            limits,
            process: process.clone(),
            stats: Rc::new(TransportStats::default()),
            reserved_used: Cell::new(0),
            reader_waker: Cell::new(None),
            write_failure: RefCell::new(None),
            failure_waker: Cell::new(None),
        });
        let mut options = ReaderOptions::new();
        options.traversal_limit_in_words(Some(limits.max_message_bytes / 8));
        let frames = FrameReader {
            stream: futures::io::Cursor::new(bytes),
            shared,
            options,
            handshake_deadline: None,
            frame_deadline: None,
        };
        (frames, process)
    }

    /// Frames of 1 to 300+ segments (every table padding case) are read back
    /// intact, back to back, and their bytes given back on drop.
    #[test]
    fn multi_segment_messages_are_read_whole() {
        for texts in [0u32, 1, 2, 3, 10, 300] {
            // One-word fixed-size segments: every text lands in a segment of
            // its own.
            let mut message = Builder::new(
                HeapAllocator::new()
                    .first_segment_words(1)
                    .allocation_strategy(capnp::message::AllocationStrategy::FixedSize),
            );
            let expected: Vec<String> = (0..texts).map(|i| format!("text {i}")).collect();
            {
                let root: capnp::any_pointer::Builder<'_> = message.init_root();
                let mut list = root.initn_as::<capnp::text_list::Builder<'_>>(texts);
                for (i, text) in (0..texts).zip(&expected) {
                    list.set(i, text.as_str());
                }
            }
            let segments = message.get_segments_for_output().len();
            let mut bytes = capnp::serialize::write_message_to_words(&message);
            let frame = bytes.len();
            bytes.extend(capnp::serialize::write_message_to_words(&message));
            let (mut frames, process) = reader_over(
                bytes,
                TransportLimits {
                    handshake_timeout: None,
                    frame_timeout: None,
                    ..limits()
                },
            );
            futures::executor::block_on(async {
                for _ in 0..2 {
                    let incoming = frames
                        .next_message()
                        .await
                        .expect("read")
                        .expect("a message");
                    assert_eq!(incoming.message.get_segments().len(), segments);
                    assert_eq!(frames.shared.stats.incoming_bytes(), frame);
                    let list: capnp::text_list::Reader<'_> =
                        incoming.message.get_root().expect("list");
                    let read: Vec<String> = list
                        .iter()
                        .map(|t| t.expect("text").to_string().expect("UTF-8"))
                        .collect();
                    assert_eq!(read, expected);
                }
                assert!(frames.next_message().await.expect("clean end").is_none());
            });
            assert_eq!(frames.shared.stats.incoming_bytes(), 0);
            assert_eq!(process.used(), 0);
            if texts == 300 {
                assert!(segments > 300, "{segments} segments");
            }
        }
    }

    /// Segment counts out of range, a size overflowing the limit, and a
    /// truncated table are refused, each saying what was wrong.
    #[test]
    fn bad_headers_are_refused_with_what_was_wrong() {
        let no_timeouts = limits_without_timeouts();
        let cases: [(&[u8], &str); 4] = [
            (
                &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
                "declares 4294967296 segments; at most 511 are allowed",
            ),
            (
                &[0x57, 0x02, 0, 0, 0, 0, 0, 0],
                "declares 600 segments; at most 511 are allowed",
            ),
            // Two segments, 1 + (2^32 - 1) words after a 16-byte table.
            (
                &[1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
                "incoming message of 34359738384 bytes exceeds the limit of 1048576 bytes",
            ),
            // The segment table itself cut short.
            (
                &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0],
                "peer closed the connection in the middle of a message",
            ),
        ];
        for (bytes, expected) in cases {
            let (mut frames, process) = reader_over(bytes.to_vec(), no_timeouts);
            let error = futures::executor::block_on(frames.next_message())
                .err()
                .expect("refused");
            assert!(error.to_string().contains(expected), "{error}");
            assert_eq!(process.used(), 0);
        }
    }
}
