//! Delivery filters: a predicate an agent sets on its subscription to a
//! message type at an MPMC [`Mbox`]; a message failing it is not delivered
//! to that agent (others still get it).
//!
//! Owns the filters: kept in the agent's core from `define` until the
//! final step takes them out (on the deregistration thread), and copied
//! into the agent's subscription at the mbox. A filter runs on the
//! sender's thread, inside [`Mbox::send`], with no lock of ours held.
//! Invariant 1 caveat: a send in flight during the final step may hold the
//! last copy of a subscription list, so a filter should capture plain data
//! — nothing whose drop blocks or joins.

use std::any::{Any, TypeId};
use std::sync::Arc;

use crate::agent::{Agent, Define};
use crate::mbox::Mbox;

/// A type-erased delivery filter: true lets the message through.
pub(crate) type Filter = Arc<dyn Fn(&dyn Any) -> bool + Send + Sync>;

impl<A: Agent> Define<'_, A> {
    /// Delivers a message of type `M` sent to `mbox` to this agent only if
    /// `filter` returns true for it. The filter runs on the sender's thread
    /// (inside [`Mbox::send`]; a panic there is the sender's), before the
    /// message is cloned for this agent; it applies in every state. A
    /// second filter for the same mbox and type replaces the first.
    pub fn set_delivery_filter<M, F>(&mut self, mbox: &Mbox, filter: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: Fn(&M) -> bool + Send + Sync + 'static,
    {
        let erased: Filter =
            Arc::new(move |msg: &dyn Any| msg.downcast_ref::<M>().is_some_and(&filter));
        let old = self
            .core
            .filters
            .lock()
            .insert((mbox.id(), TypeId::of::<M>()), erased);
        drop(old);
        self
    }
}
