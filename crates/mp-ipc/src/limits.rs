//! Every bound on what a peer can make this process hold or do, in one
//! place: [`Limits`] (per connection) and [`ProcessLimits`] (across all
//! connections of the process), with the counters that enforce the
//! process-wide ones.
//!
//! Each limit, its default, and what the peer sees when it meets it is
//! listed on its field and in `docs/security.md`. The defaults are chosen so
//! that a well-behaved peer (libmultiprocess, Bitcoin Core) never meets them.
//!
//! Keeps one rule of the security model: a resource is counted from the
//! moment the peer makes us take it until the moment it is truly given back
//! — a server thread until the OS thread has stopped (not when the peer
//! drops its handle), a queued call until its job has run or been removed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::budget::Budget;
use crate::transport::TransportLimits;

/// Bounds a connection enforces on what its peer can ask of this side.
/// Every field has a default ([`Limits::default`]) that a well-behaved peer
/// never meets; each says what the peer sees when it does.
///
/// ```
/// use mp_ipc::Limits;
///
/// let strict = Limits {
///     max_threads: 8,
///     max_nesting: 16,
///     ..Limits::default()
/// };
/// assert_eq!(strict.max_queued_calls, Limits::default().max_queued_calls);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most `ThreadMap.makeThread` server threads alive at once for one
    /// connection (default 64). A thread counts until its OS thread has
    /// stopped, so one still blocked in a long call after the peer released
    /// it (or closed the connection) still counts. Past it, `makeThread` is
    /// answered with a limit error naming this limit.
    pub max_threads: usize,
    /// Most pool workers one connection may ask for with `makePool`
    /// (default 16); past it, `makePool` gets a limit error.
    pub max_pool: u32,
    /// Most calls queued or running on one server thread at once, counted
    /// per thread whichever `Thread` handle names it (default 1024). A call
    /// counts until its job has run or been removed; a call the peer
    /// cancels before it starts has its parameters dropped at once but keeps
    /// its place until the thread reaches it. Past it, the call is answered
    /// with a limit error.
    pub max_queued_calls: usize,
    /// Most calls from one connection being served at once, whatever their
    /// state: waiting for their `Context.thread` to resolve, queued, or
    /// running (default 4096). Past it, new calls get a limit error.
    pub max_calls_in_flight: usize,
    /// Most calls nested on one OS thread (default 64): a server thread
    /// running a call that called back into the peer, which called into
    /// this thread again, and so on; callbacks on a waiting client thread
    /// count the same way. Counted per OS thread across every connection and
    /// every `Thread` handle naming it. The call past it is answered with a
    /// limit error and the thread goes on serving. Server threads and the
    /// threads that run async calls' callbacks get a stack sized for this
    /// depth ([`stack_size_for_nesting`]); a user thread that makes
    /// synchronous calls nests on its own stack, where std's 2 MiB holds the
    /// default depth with a wide margin.
    pub max_nesting: usize,
    /// How long a call whose `Context.thread` is a promise may wait for the
    /// peer to resolve it (default 30 s). While it waits it counts in
    /// `max_calls_in_flight`; past the time it is answered with a limit
    /// error.
    pub context_timeout: Duration,
    /// Most objects this side serves to the peer at once through returned
    /// or passed capabilities (objects returned by methods, callbacks
    /// passed in calls), counted until the peer releases them (default
    /// 65,536). Past it, the method that would hand out one more fails
    /// with a limit error; the peer frees places by releasing objects.
    pub max_exported_objects: usize,
    /// Largest single message the peer may send (default 64 MiB; Bitcoin
    /// Core's largest, blocks and mining templates, are a few MB). A larger
    /// one ends the session with an error naming both sizes, before its
    /// body is read.
    pub max_message_bytes: usize,
    /// Bytes of the peer's messages this side holds at once (default
    /// 128 MiB): the message being read plus every received message still
    /// in use (a call's parameters stay held until its reply is sent).
    /// Past it, this side stops reading the peer until some are released
    /// (backpressure: the peer's writes block, nothing is refused). Never
    /// less than `max_message_bytes` (a lower value is raised to it: one
    /// message must always fit).
    pub max_incoming_bytes: usize,
    /// Of `max_incoming_bytes`, how many are the connection's own (default
    /// 1 MiB); the rest come from the process-wide
    /// [`ProcessLimits::max_buffered_bytes`], so a connection with small
    /// messages is served even while others have used that budget up.
    pub reserved_incoming_bytes: usize,
    /// Bytes queued for the peer but not yet written to the socket (default
    /// 16 MiB). Past it, this side stops reading the peer until the queue
    /// has drained to half of it: a peer that sends calls but does not read
    /// the replies stops being read (backpressure, not an error).
    pub max_unwritten_bytes: usize,
    /// How long a new connection may take to send its first complete
    /// message (default 20 s; every capnp peer sends one at once). Past it,
    /// the connection is closed: a socket that sends nothing cannot hold a
    /// connection slot. `None`: no limit.
    pub handshake_timeout: Option<Duration>,
    /// How long a message may take to arrive once its first byte has
    /// (default 30 s). Past it, the connection is closed: half a message
    /// cannot hold memory or a slot. `None`: no limit.
    pub frame_timeout: Option<Duration>,
    /// How long the peer may leave what this side sends unread while there
    /// is something to send (default 60 s). Past it, the connection is
    /// closed: a peer that never reads cannot pin the session, its slot or
    /// its queued replies. `None`: no limit.
    pub write_timeout: Option<Duration>,
    /// Longest thread name a peer may give `makeThread` (default 256
    /// bytes; libmultiprocess names threads `exe-pid/thread-tid`, under 64
    /// bytes): this side stores it and echoes it in `Thread.getName`. A
    /// longer one is a bad request.
    pub max_name_bytes: usize,
}

impl Limits {
    /// The part of these limits the transport keeps.
    pub(crate) fn transport(&self) -> TransportLimits {
        TransportLimits {
            max_message_bytes: self.max_message_bytes,
            max_incoming_bytes: self.max_incoming_bytes.max(self.max_message_bytes),
            reserved_incoming_bytes: self.reserved_incoming_bytes,
            max_unwritten_bytes: self.max_unwritten_bytes,
            handshake_timeout: self.handshake_timeout,
            frame_timeout: self.frame_timeout,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_threads: 64,
            max_pool: 16,
            max_queued_calls: 1024,
            max_calls_in_flight: 4096,
            max_nesting: 64,
            context_timeout: Duration::from_secs(30),
            max_exported_objects: 65_536,
            max_message_bytes: 64 << 20,
            max_incoming_bytes: 128 << 20,
            reserved_incoming_bytes: 1 << 20,
            max_unwritten_bytes: 16 << 20,
            handshake_timeout: Some(Duration::from_secs(20)),
            frame_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(60)),
            max_name_bytes: 256,
        }
    }
}

/// Bounds across every connection of the process. Read when a thread is
/// started or a message is buffered, so a change applies from then on.
///
/// ```
/// use mp_ipc::ProcessLimits;
///
/// let before = ProcessLimits::current();
/// ProcessLimits {
///     max_server_threads: 256,
///     ..before
/// }
/// .apply();
/// assert_eq!(ProcessLimits::current().max_server_threads, 256);
/// before.apply();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Most server threads (`makeThread` workers of every connection) alive
    /// in the process at once (default 1024). Threads of closed connections
    /// still blocked in a call count until they return. Past it,
    /// `makeThread` is answered with a limit error naming this limit.
    pub max_server_threads: usize,
    /// Message bytes all connections together may hold beyond their
    /// reserved parts (default 1 GiB): received messages still in use,
    /// and messages queued for writing. Past it, connections stop reading
    /// their peers until bytes are released (backpressure); a connection
    /// whose messages fit its `Limits::reserved_incoming_bytes` is still
    /// read.
    pub max_buffered_bytes: usize,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            max_server_threads: 1024,
            max_buffered_bytes: DEFAULT_BUFFERED_BYTES,
        }
    }
}

const DEFAULT_BUFFERED_BYTES: usize = 1 << 30;
static MAX_SERVER_THREADS: AtomicUsize = AtomicUsize::new(1024);
static SERVER_THREADS: AtomicUsize = AtomicUsize::new(0);
static BUFFERED: OnceLock<Arc<Budget>> = OnceLock::new();

/// The process-wide budget of message bytes every connection draws on.
pub(crate) fn buffered_budget() -> Arc<Budget> {
    BUFFERED
        .get_or_init(|| Budget::new(DEFAULT_BUFFERED_BYTES))
        .clone()
}

impl ProcessLimits {
    /// The limits in force.
    pub fn current() -> ProcessLimits {
        ProcessLimits {
            max_server_threads: MAX_SERVER_THREADS.load(Ordering::Relaxed),
            max_buffered_bytes: buffered_budget().limit(),
        }
    }

    /// Puts these limits in force for the whole process. What is already
    /// held above a lowered limit is not taken back; new requests wait or
    /// are refused until it is given back.
    pub fn apply(self) {
        MAX_SERVER_THREADS.store(self.max_server_threads, Ordering::Relaxed);
        buffered_budget().set_limit(self.max_buffered_bytes);
    }

    /// Message bytes held now across every connection of the process
    /// (beyond each connection's reserved part): received messages still in
    /// use and messages queued for writing.
    pub fn buffered_bytes() -> usize {
        buffered_budget().used()
    }

    /// Server threads alive in the process now (every connection, closed
    /// ones' threads still returning from a call included).
    pub fn server_threads() -> usize {
        SERVER_THREADS.load(Ordering::Acquire)
    }
}

/// Bytes of stack a server thread gets for `max_nesting` nested calls: a
/// base for the thread's own frames and the server method's, plus a
/// per-level budget. A level is one incoming call run on the thread while
/// it waits in an outgoing one (the call's job, the method, the outgoing
/// call's wait): measured at about 5.3 KiB in debug builds and 1.5 KiB in
/// release builds on x86-64 (`cargo test [--release] -p mp-test-calc --test
/// nesting -- --nocapture` prints it, and fails if a level ever outgrows
/// the budget), so the 16 KiB budget leaves a margin of 3× in debug builds
/// and 10× in release builds, for the server method's own frames. Pages are committed
/// only as they are touched: a deep stack costs address space, not memory.
pub const fn stack_size_for_nesting(max_nesting: usize) -> usize {
    STACK_BASE + max_nesting.saturating_mul(STACK_PER_LEVEL)
}

/// The stack a server thread has before any nesting (std's default).
pub(crate) const STACK_BASE: usize = 2 << 20;
/// The stack budget of one level of nesting.
pub const STACK_PER_LEVEL: usize = 16 << 10;

/// Counts the server threads of one connection; each [`ThreadTicket`] it
/// grants is also counted process-wide.
#[derive(Debug)]
pub(crate) struct ThreadSlots {
    alive: Arc<AtomicUsize>,
    /// The connection's `mp_ipc_connection_server_threads` gauge.
    gauge: metrics::Gauge,
    /// Which slots (0 up to `Limits::max_threads`) a live thread holds: a
    /// thread's slot is its label in the metrics, since its name is the
    /// peer's. A leaf lock, taken alone and briefly.
    taken: Arc<parking_lot::Mutex<Vec<bool>>>,
}

/// One server thread's place in its connection's count and the process's.
/// Dropped by the thread itself as it exits.
#[derive(Debug)]
pub(crate) struct ThreadTicket {
    conn: Arc<AtomicUsize>,
    gauge: metrics::Gauge,
    taken: Arc<parking_lot::Mutex<Vec<bool>>>,
    slot: usize,
}

impl ThreadTicket {
    /// The thread's slot: the lowest one no live thread of the connection
    /// held when it was admitted.
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }
}

impl Drop for ThreadTicket {
    fn drop(&mut self) {
        self.taken.lock()[self.slot] = false;
        self.conn.fetch_sub(1, Ordering::AcqRel);
        SERVER_THREADS.fetch_sub(1, Ordering::AcqRel);
        self.gauge.decrement(1.0);
    }
}

impl ThreadSlots {
    /// No threads yet; each one admitted is also counted on `gauge`.
    pub(crate) fn new(gauge: metrics::Gauge) -> ThreadSlots {
        ThreadSlots {
            alive: Arc::default(),
            gauge,
            taken: Arc::default(),
        }
    }

    /// Threads of this connection alive now.
    pub(crate) fn alive(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }

    /// A place for one more server thread, or the error naming the limit
    /// that refused it.
    pub(crate) fn admit(&self, limits: &Limits) -> Result<ThreadTicket, String> {
        let max = limits.max_threads;
        if self
            .alive
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(format!(
                "this connection already has {max} server threads (Limits::max_threads)"
            ));
        }
        let process_max = MAX_SERVER_THREADS.load(Ordering::Relaxed);
        if SERVER_THREADS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < process_max).then_some(n + 1)
            })
            .is_err()
        {
            self.alive.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "the process already has {process_max} server threads (ProcessLimits::max_server_threads)"
            ));
        }
        self.gauge.increment(1.0);
        let slot = {
            let mut taken = self.taken.lock();
            match taken.iter().position(|t| !t) {
                Some(free) => {
                    taken[free] = true;
                    free
                }
                None => {
                    taken.push(true);
                    taken.len() - 1
                }
            }
        };
        Ok(ThreadTicket {
            conn: self.alive.clone(),
            gauge: self.gauge.clone(),
            taken: self.taken.clone(),
            slot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Limits, ThreadSlots};

    #[test]
    fn a_thread_takes_the_lowest_free_slot_and_gives_it_back_when_it_stops() {
        let slots = ThreadSlots::new(metrics::Gauge::noop());
        let limits = Limits::default();
        let a = slots.admit(&limits).unwrap();
        let b = slots.admit(&limits).unwrap();
        let c = slots.admit(&limits).unwrap();
        assert_eq!((a.slot(), b.slot(), c.slot()), (0, 1, 2));
        drop(b);
        assert_eq!(slots.alive(), 2);
        let d = slots.admit(&limits).unwrap();
        assert_eq!(d.slot(), 1, "the freed slot is reused");
        let e = slots.admit(&limits).unwrap();
        assert_eq!(e.slot(), 3);
        drop((a, c, d, e));
        assert_eq!(slots.alive(), 0);
        assert_eq!(slots.admit(&limits).unwrap().slot(), 0);
    }
}
