//! Message limits: at most `max` messages of a type waiting in an agent's
//! queue, and what happens to one more ([`LimitOverflow`]).
//!
//! Owns the per-type counters and overflow reactions of each agent (kept
//! in the agent's queue, declared in `define`). Counting is by RAII: a
//! message admitted under a limit carries a [`Ticket`] in its demand; the
//! ticket gives the slot back when it is dropped — when the message is
//! taken out of the queue to be handled, or whenever the demand is dropped
//! unhandled (refused by a closed worker, left in the buffer of an agent
//! whose registration failed). No path can forget to release.
//!
//! Invariant 3: an overflowing message is moved into its reaction (to its
//! new receiver, or its transform) on the sender's thread; it is dropped
//! there only by `Drop`. Reactions run with no lock of ours held (the
//! agent's queue lock is released first, and MPMC sends run on a snapshot
//! of their subscribers). The final step takes an agent's reactions out,
//! so a redirect to another agent never keeps that agent's core alive.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::dropped::{drop_as, DropReason};
use crate::ids::AgentId;
use crate::payload::Payload;
use crate::target::Target;

/// Bound on overflow reactions nested on one thread (a redirect whose
/// target overflows and redirects in turn): a loop is cut, the message
/// dropped and reported.
const MAX_REDIRECTS: u32 = 16;

thread_local! {
    // Only this thread reads or writes it (invariant 5).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// What happens to a message of type `M` that arrives when `max` of them
/// already wait in the agent's queue (SObjectizer's overflow reactions).
#[non_exhaustive]
pub enum LimitOverflow<M> {
    /// Drop it (on the sender's thread).
    Drop,
    /// Abort the process.
    Abort,
    /// Send it to another mbox instead; see [`LimitOverflow::redirect`].
    Redirect(Arc<dyn Target<M>>),
    /// Turn it into something else sent elsewhere; see
    /// [`LimitOverflow::transform`].
    Transform(Arc<dyn Fn(M) + Send + Sync>),
}

impl<M> std::fmt::Debug for LimitOverflow<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitOverflow::Drop => "Drop",
            LimitOverflow::Abort => "Abort",
            LimitOverflow::Redirect(_) => "Redirect",
            LimitOverflow::Transform(_) => "Transform",
        })
    }
}

impl<M: Send + 'static> LimitOverflow<M> {
    /// Sends the message to `to` (an agent's [`DirectMbox`](crate::DirectMbox)
    /// or an MPMC [`Mbox`](crate::Mbox)) instead.
    pub fn redirect<T: Target<M>>(to: T) -> Self {
        LimitOverflow::Redirect(Arc::new(to))
    }

    /// Sends `f(message)` to `to` instead.
    pub fn transform<N, T, F>(to: T, f: F) -> Self
    where
        N: Send + 'static,
        T: Target<N>,
        F: Fn(M) -> N + Send + Sync + 'static,
    {
        LimitOverflow::Transform(Arc::new(move |msg| to.deliver(f(msg))))
    }
}

/// One slot of a limit, held by an admitted message; dropping it frees
/// the slot.
pub(crate) struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A type-erased overflow reaction.
pub(crate) trait Reaction: Send + Sync {
    fn overflow(&self, agent: AgentId, payload: Payload);
}

impl<M: Send + 'static> Reaction for LimitOverflow<M> {
    fn overflow(&self, agent: AgentId, payload: Payload) {
        let Ok(msg) = payload.take::<M>() else {
            return;
        };
        let type_name = std::any::type_name::<M>();
        match self {
            LimitOverflow::Drop => {
                tracing::debug!(?agent, message = type_name, "message limit: dropped");
                drop_as(DropReason::Limit, msg);
            }
            LimitOverflow::Abort => {
                eprintln!(
                    "mp-agents: agent {agent:?}: message limit of {type_name} exceeded; aborting"
                );
                std::process::abort();
            }
            LimitOverflow::Redirect(to) => nested(agent, type_name, || to.deliver(msg)),
            LimitOverflow::Transform(f) => nested(agent, type_name, || f(msg)),
        }
    }
}

/// Runs a reaction that sends on, unless too many are nested already.
fn nested(agent: AgentId, type_name: &str, send: impl FnOnce()) {
    let depth = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    if depth > MAX_REDIRECTS {
        tracing::error!(
            ?agent,
            message = type_name,
            "message limit: redirect loop; dropped"
        );
        drop_as(DropReason::Limit, send);
    } else {
        send();
    }
    DEPTH.with(|d| d.set(d.get() - 1));
}

/// One agent's limit on one message type.
pub(crate) struct Limit {
    max: usize,
    count: Arc<AtomicUsize>,
    reaction: Arc<dyn Reaction>,
}

/// What [`Limit::admit`] decided.
pub(crate) enum Admit {
    /// Within the limit: the message carries this ticket.
    Counted(Ticket),
    /// Over it: the reaction takes the message (outside every lock).
    Overflow(Arc<dyn Reaction>),
}

impl Limit {
    /// At most `max` messages; one more gets `overflow`.
    pub(crate) fn new<M: Send + 'static>(max: usize, overflow: LimitOverflow<M>) -> Limit {
        Limit {
            max,
            count: Arc::default(),
            reaction: Arc::new(overflow),
        }
    }

    pub(crate) fn admit(&self) -> Admit {
        if self.count.fetch_add(1, Ordering::AcqRel) < self.max {
            Admit::Counted(Ticket(self.count.clone()))
        } else {
            self.count.fetch_sub(1, Ordering::AcqRel);
            Admit::Overflow(self.reaction.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_give_their_slot_back_when_dropped() {
        let limit = Limit {
            max: 2,
            count: Arc::default(),
            reaction: Arc::new(LimitOverflow::<u32>::Drop),
        };
        let a = limit.admit();
        let b = limit.admit();
        assert!(matches!(a, Admit::Counted(_)));
        assert!(matches!(b, Admit::Counted(_)));
        assert!(matches!(limit.admit(), Admit::Overflow(_)));
        assert_eq!(limit.count.load(Ordering::SeqCst), 2);
        drop(a);
        assert_eq!(limit.count.load(Ordering::SeqCst), 1);
        let c = limit.admit();
        assert!(matches!(c, Admit::Counted(_)));
        drop((b, c));
        assert_eq!(limit.count.load(Ordering::SeqCst), 0);
    }
}
