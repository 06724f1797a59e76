//! The chain itself: its queue under one lock, its parameters and overflow
//! reactions, sending, closing and taking one message out. Everything
//! about receiving (handlers, limits, waiting, select) is in `receive`;
//! the environment's side (making chains, closing them at shutdown, timer
//! delivery) in the parent module.
//!
//! Only `std`, `tracing` and mp-thread's sync facade are used here (and
//! in `receive`), so the loom model test (`tests/loom_mchain.rs`) compiles
//! these two files as they are; under `--cfg loom` the facade is loom's.
//!
//! Lock order: a chain's lock, then a select waker's lock; nothing else
//! is locked, no handler runs and no message is dropped under it.

use std::any::{Any, TypeId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::receive::Waker;
use mp_thread::sync::{Condvar, Mutex};

/// A message in a chain: its type (for dispatch) and the boxed value.
pub(crate) struct Msg {
    pub(crate) ty: TypeId,
    pub(crate) payload: Box<dyn Any + Send>,
}

/// What a full bounded chain does with one more message (SObjectizer's
/// overflow reactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The new message is dropped; `send` returns [`Sent::DroppedNewest`].
    DropNewest,
    /// The oldest message in the chain is dropped to make room; `send`
    /// returns [`Sent::RemovedOldest`].
    RemoveOldest,
    /// The send fails: [`SendError::Full`] hands the message back
    /// (SObjectizer's `throw_exception`).
    Fail,
    /// The process is aborted (SObjectizer's `abort_app`).
    Abort,
}

/// How [`Mchain::close`] treats what is still in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Drop every message still in the chain (on the closing thread).
    DropContent,
    /// Keep them: receivers take them first, then see the chain closed.
    RetainContent,
}

/// The shape of a chain: its capacity, overflow reaction and how long a
/// sender may wait for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MchainParams {
    capacity: Option<usize>,
    overflow: Overflow,
    wait_on_full: Option<Duration>,
}

impl MchainParams {
    /// A chain without a limit: `send` never waits and never fails while
    /// the chain is open.
    pub fn unbounded() -> MchainParams {
        MchainParams {
            capacity: None,
            overflow: Overflow::Fail,
            wait_on_full: None,
        }
    }

    /// A chain holding at most `capacity` messages; when it is full the
    /// overflow reaction applies ([`Overflow::Fail`] unless set).
    ///
    /// # Panics
    /// If `capacity` is zero (rendezvous chains are not supported).
    pub fn bounded(capacity: usize) -> MchainParams {
        assert!(
            capacity > 0,
            "a bounded mchain needs a capacity of at least 1"
        );
        MchainParams {
            capacity: Some(capacity),
            overflow: Overflow::Fail,
            wait_on_full: None,
        }
    }

    /// Sets the overflow reaction of a bounded chain (unused when
    /// unbounded).
    pub fn overflow(mut self, reaction: Overflow) -> MchainParams {
        self.overflow = reaction;
        self
    }

    /// A sender finding the chain full first waits up to `timeout` for
    /// room, then applies the overflow reaction. The timer thread (delayed
    /// and periodic messages) never waits. A sender running on a
    /// dispatcher's worker blocks that worker (and its other agents) while
    /// it waits.
    pub fn wait_on_full(mut self, timeout: Duration) -> MchainParams {
        self.wait_on_full = Some(timeout);
        self
    }

    /// The capacity, `None` when unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// The overflow reaction.
    pub fn overflow_reaction(&self) -> Overflow {
        self.overflow
    }

    /// How long a sender waits for room, if at all.
    pub fn wait_on_full_timeout(&self) -> Option<Duration> {
        self.wait_on_full
    }
}

/// What became of a message that [`Mchain::send`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// It is in the chain.
    Stored,
    /// The chain was full ([`Overflow::DropNewest`]): it was dropped.
    DroppedNewest,
    /// The chain was full ([`Overflow::RemoveOldest`]): it is in the chain
    /// and the oldest message was dropped.
    RemovedOldest,
}

/// A message the chain refused, handed back to the sender.
pub enum SendError<M> {
    /// The chain is closed.
    Closed(M),
    /// The chain is full and its reaction is [`Overflow::Fail`] (after
    /// the wait on full, if any).
    Full(M),
}

impl<M> SendError<M> {
    /// The refused message.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Closed(m) | SendError::Full(m) => m,
        }
    }

    /// True if the chain was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl<M> std::fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl<M> std::fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("the mchain is closed"),
            SendError::Full(_) => f.write_str("the mchain is full"),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}

/// A chain's state under its lock.
pub(crate) struct ChainState {
    pub(crate) queue: VecDeque<Msg>,
    pub(crate) closed: bool,
    /// Selects waiting on this chain among others.
    pub(crate) selectors: Vec<Arc<Waker>>,
}

/// What a receiver found in a chain.
pub(crate) enum Pop {
    Msg(Msg),
    Empty,
    Closed,
}

pub(crate) struct ChainInner {
    params: MchainParams,
    pub(crate) state: Mutex<ChainState>,
    /// Receivers of this chain alone wait here.
    pub(crate) not_empty: Condvar,
    /// Senders waiting for room wait here.
    not_full: Condvar,
}

/// A message chain: a queue of messages of any `Send + 'static` type, with
/// many senders and many receivers. Clone it freely; every clone is the
/// same chain. Made by
/// [`Environment::create_mchain`](crate::Environment::create_mchain).
#[derive(Clone)]
pub struct Mchain {
    pub(crate) inner: Arc<ChainInner>,
}

impl std::fmt::Debug for Mchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.state.lock();
        f.debug_struct("Mchain")
            .field("params", &self.inner.params)
            .field("len", &st.queue.len())
            .field("closed", &st.closed)
            .finish()
    }
}

/// `now + d`, or `None` (wait forever) if that is beyond what `Instant`
/// can hold.
pub(crate) fn deadline(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

impl Mchain {
    pub(crate) fn new(params: MchainParams, closed: bool) -> Mchain {
        // Preallocate small bounded chains; large ones grow as needed.
        let prealloc = params.capacity.map_or(0, |c| c.min(1024));
        Mchain {
            inner: Arc::new(ChainInner {
                params,
                state: Mutex::new(ChainState {
                    queue: VecDeque::with_capacity(prealloc),
                    closed,
                    selectors: Vec::new(),
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
            }),
        }
    }

    /// The chain's parameters.
    pub fn params(&self) -> MchainParams {
        self.inner.params
    }

    /// Messages in the chain now.
    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    /// True if no message is in the chain now.
    pub fn is_empty(&self) -> bool {
        self.inner.state.lock().queue.is_empty()
    }

    /// True once the chain is closed (it may still hold retained
    /// messages).
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    /// True if both handles are the same chain.
    pub fn same_chain(&self, other: &Mchain) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Moves `msg` into the chain. On a full bounded chain the sender first
    /// waits for room if [`MchainParams::wait_on_full`] says so, then the
    /// overflow reaction applies. A closed chain refuses every message.
    /// Never blocks unless the chain is bounded, full and has a wait on
    /// full.
    pub fn send<M: Send + 'static>(&self, msg: M) -> Result<Sent, SendError<M>> {
        self.inner.send(msg, true)
    }

    /// Closes the chain: later sends fail, blocked senders and receivers
    /// wake. With [`CloseMode::RetainContent`] receivers still take what is
    /// in the chain, then see it closed; with [`CloseMode::DropContent`]
    /// the contents are dropped here, on the calling thread. Closing a
    /// closed chain again only drops its contents (`DropContent`).
    pub fn close(&self, mode: CloseMode) {
        let dropped = {
            let mut st = self.inner.state.lock();
            if !st.closed {
                st.closed = true;
                self.inner.not_empty.notify_all();
                self.inner.not_full.notify_all();
                for w in &st.selectors {
                    w.wake();
                }
            }
            match mode {
                CloseMode::DropContent => std::mem::take(&mut st.queue),
                CloseMode::RetainContent => VecDeque::new(),
            }
        };
        // Outside the lock: a message's drop may do anything.
        drop(dropped);
    }
}

impl ChainInner {
    pub(crate) fn send<M: Send + 'static>(
        &self,
        msg: M,
        may_wait: bool,
    ) -> Result<Sent, SendError<M>> {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            return Err(SendError::Closed(msg));
        }
        let mut displaced = None;
        let mut outcome = Sent::Stored;
        if let Some(cap) = self.params.capacity {
            if st.queue.len() >= cap && may_wait {
                if let Some(wait) = self.params.wait_on_full {
                    let until = deadline(wait);
                    while st.queue.len() >= cap && !st.closed {
                        match until {
                            None => self.not_full.wait(&mut st),
                            Some(t) => {
                                if self.not_full.wait_until(&mut st, t).timed_out() {
                                    break;
                                }
                            }
                        }
                    }
                    if st.closed {
                        drop(st);
                        return Err(SendError::Closed(msg));
                    }
                }
            }
            if st.queue.len() >= cap {
                match self.params.overflow {
                    Overflow::DropNewest => {
                        drop(st);
                        drop(msg);
                        return Ok(Sent::DroppedNewest);
                    }
                    Overflow::RemoveOldest => {
                        displaced = st.queue.pop_front();
                        outcome = Sent::RemovedOldest;
                    }
                    Overflow::Fail => {
                        drop(st);
                        return Err(SendError::Full(msg));
                    }
                    Overflow::Abort => {
                        drop(st);
                        tracing::error!(capacity = cap, "mchain overflow: aborting the process");
                        eprintln!("mp-agents: mchain overflow (capacity {cap}): aborting");
                        std::process::abort();
                    }
                }
            }
        }
        st.queue.push_back(Msg {
            ty: TypeId::of::<M>(),
            payload: Box::new(msg),
        });
        self.not_empty.notify_one();
        for w in &st.selectors {
            w.wake();
        }
        drop(st);
        drop(displaced);
        Ok(outcome)
    }

    /// Takes the first message, if any (a receiver's step).
    pub(crate) fn pop(&self) -> Pop {
        let mut st = self.state.lock();
        self.pop_locked(&mut st)
    }

    pub(crate) fn pop_locked(&self, st: &mut ChainState) -> Pop {
        match st.queue.pop_front() {
            Some(m) => {
                if self.params.capacity.is_some() {
                    self.not_full.notify_one();
                }
                Pop::Msg(m)
            }
            None if st.closed => Pop::Closed,
            None => Pop::Empty,
        }
    }
}
