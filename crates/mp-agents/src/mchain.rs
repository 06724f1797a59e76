//! Message chains (SObjectizer's mchains): CSP-style channels made by the
//! environment ([`Environment::create_mchain`]) that carry messages of any
//! `Send + 'static` type to whoever receives from them — agents or plain
//! threads. This module owns the chain itself: its queue, its overflow
//! reactions, sending and closing, and the environment's list of chains;
//! receiving (with handlers by type, limits and timeouts) and `select` over
//! several chains live in [`receive`](self::receive).
//!
//! ## Design
//!
//! A chain is type-erased like an mbox: one chain carries many message
//! types and a receive dispatches each message by type to a handler
//! (`receive(from(&ch).handle_n(3), Handlers::new().on(|p: Ping| ..))`),
//! mirroring SObjectizer, so one chain can carry a whole protocol.
//!
//! It is hand-written on parking_lot (`Mutex` + `Condvar`) rather than on
//! crossbeam-channel because crossbeam cannot express the semantics asked
//! for: a sender cannot atomically remove the oldest message of a full
//! channel; a channel closes only when its last sender is dropped (no
//! explicit close from any handle, no "retain" versus "drop content"); and
//! its `Select` needs one typed `Receiver` per case. The hand-written part
//! is small: one queue under one lock per chain, a condvar for receivers
//! and one for senders waiting on a full chain, and a list of select
//! wakers per chain (see [`receive`](self::receive)).
//!
//! ## Invariants
//!
//! - 3 (a payload's last owner is its receiver): `send` moves the message,
//!   boxed, into the chain; a receive moves it out and hands it by value to
//!   its handler. Nothing is cloned. A message refused by a full or closed
//!   chain is handed back to the sender (it was never visible to anyone);
//!   one displaced by [`Overflow::RemoveOldest`] or thrown away by
//!   [`CloseMode::DropContent`] is dropped, outside the chain's lock, by
//!   the thread that displaced it.
//! - 7 (every blocking wait ends): a receiver or a sender blocked on a
//!   chain wakes when the chain is closed; the environment closes every
//!   chain it made, retaining their contents, when its shutdown begins
//!   (stop requested, no stop guard left) — before cooperations are
//!   deregistered, so an agent blocked in a receive lets its cooperation
//!   finish. A sender's wait on a full chain is bounded by
//!   [`MchainParams::wait_on_full`]; the timer thread never waits.
//! - 6 (lock order): a chain's lock, then a select waker's lock. No other
//!   lock is taken under a chain's lock, no two chains' locks are held at
//!   once, and no handler, drop of a message or overflow abort runs under
//!   it. The environment's chain list is locked alone.

use std::any::{Any, TypeId};
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::env::Environment;
use crate::timer::Target;

mod receive;

pub use receive::{
    case, from, from_all, receive, select, Case, Handlers, ReceiveFrom, ReceiveResult,
    ReceiveStatus, SelectFrom,
};

use receive::Waker;

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
/// same chain. Made by [`Environment::create_mchain`].
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
    fn new(params: MchainParams, closed: bool) -> Mchain {
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
    fn send<M: Send + 'static>(&self, msg: M, may_wait: bool) -> Result<Sent, SendError<M>> {
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

/// Delayed and periodic messages to a chain. The timer thread never waits
/// on a full chain: the overflow reaction applies at once, and a message
/// refused (full with [`Overflow::Fail`], or closed) is dropped.
impl<M: Send + 'static> Target<M> for Mchain {
    fn deliver(&self, msg: M) {
        if let Err(e) = self.inner.send(msg, false) {
            tracing::debug!(error = %e, "timer message refused by an mchain");
        }
    }
}

/// The environment's chains, closed when its shutdown begins.
#[derive(Default)]
pub(crate) struct MchainRegistry {
    closed: bool,
    chains: Vec<Weak<ChainInner>>,
    /// Prune dead entries when the list reaches this length.
    prune_at: usize,
}

impl MchainRegistry {
    /// Closes every chain (retaining contents) and every later one made.
    /// Called when the environment's shutdown begins.
    pub(crate) fn close_all(registry: &Mutex<MchainRegistry>) {
        let chains = {
            let mut reg = registry.lock();
            reg.closed = true;
            std::mem::take(&mut reg.chains)
        };
        for chain in chains.iter().filter_map(Weak::upgrade) {
            Mchain { inner: chain }.close(CloseMode::RetainContent);
        }
    }
}

impl Environment {
    /// Makes a message chain. The environment closes it (retaining its
    /// contents, see [`CloseMode::RetainContent`]) when its shutdown
    /// begins, so no receiver or sender stays blocked on it; a chain made
    /// after that is closed from the start. The chain itself may outlive
    /// the environment.
    pub fn create_mchain(&self, params: MchainParams) -> Mchain {
        let mut reg = self.inner.mchains.lock();
        let chain = Mchain::new(params, reg.closed);
        if !reg.closed {
            if reg.chains.len() >= reg.prune_at {
                reg.chains.retain(|w| w.strong_count() > 0);
                reg.prune_at = (2 * reg.chains.len()).max(16);
            }
            reg.chains.push(Arc::downgrade(&chain.inner));
        }
        chain
    }
}
