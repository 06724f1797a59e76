//! Message chains (SObjectizer's mchains): CSP-style channels made by the
//! environment ([`Environment::create_mchain`]) that carry messages of any
//! `Send + 'static` type to whoever receives from them — agents or plain
//! threads. This module owns the chain itself: its queue, its overflow
//! reactions, sending and closing, and the environment's list of chains;
//! receiving (with handlers by type, limits and timeouts) and `select` over
//! several chains live in `receive`.
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

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::target::Target;

mod chain;
mod receive;

pub(crate) use chain::{deadline, ChainInner, Msg, Pop};
pub use chain::{CloseMode, Mchain, MchainParams, Overflow, SendError, Sent};
pub use receive::{
    case, from, from_all, receive, select, Case, Handlers, ReceiveFrom, ReceiveResult,
    ReceiveStatus, SelectFrom,
};

/// Messages delivered to a chain by timers, sinks and requests. The
/// deliverer (the timer thread, a sender) never waits on a full chain: the
/// overflow reaction applies at once, and a message refused (full with
/// [`Overflow::Fail`], or closed) is dropped.
impl<M: Send + 'static> Target<M> for Mchain {
    fn deliver(&self, msg: M) {
        if let Err(e) = self.inner.send(msg, false) {
            tracing::debug!(error = %e, "message refused by an mchain");
            // A request in it answers "receiver gone".
            crate::dropped::drop_as(crate::dropped::DropReason::ReceiverGone, e);
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
    /// A new chain of this environment (closed from the start once the
    /// shutdown began), remembered so the shutdown can close it.
    pub(crate) fn make(&mut self, params: MchainParams) -> Mchain {
        let chain = Mchain::new(params, self.closed);
        if !self.closed {
            if self.chains.len() >= self.prune_at {
                self.chains.retain(|w| w.strong_count() > 0);
                self.prune_at = (2 * self.chains.len()).max(16);
            }
            self.chains.push(Arc::downgrade(&chain.inner));
        }
        chain
    }

    /// Chains made here and still alive (none once closed).
    pub(crate) fn live(&self) -> usize {
        self.chains.iter().filter(|w| w.strong_count() > 0).count()
    }

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
