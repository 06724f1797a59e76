//! Delivery filters: a predicate an agent sets on its subscription to a
//! message type at an MPMC [`Mbox`]; a message failing it is not delivered
//! to that agent (others still get it).
//!
//! Owns the filters: kept in the agent's core from `define` (or from a
//! handler, [`Context::set_delivery_filter`]) until the final step takes
//! them out (on the deregistration thread), and copied into the agent's
//! subscription at the mbox. A filter runs on the
//! sender's thread, inside [`Mbox::send`], with no lock of ours held.
//! Invariant 1 caveat: a send in flight during the final step may hold the
//! last copy of a subscription list, so a filter should capture plain data
//! — nothing whose drop blocks or joins.

use std::any::{Any, TypeId};
use std::sync::Arc;

use crate::agent::{Agent, Context, Define};
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
        let old = self
            .core
            .filters
            .lock()
            .insert((mbox.id(), TypeId::of::<M>()), erase(filter));
        drop(old);
        self
    }
}

pub(crate) fn erase<M: 'static>(filter: impl Fn(&M) -> bool + Send + Sync + 'static) -> Filter {
    Arc::new(move |msg: &dyn Any| msg.downcast_ref::<M>().is_some_and(&filter))
}

impl Context<'_> {
    /// Sets or replaces, from a running agent, its delivery filter for
    /// messages of type `M` sent to `mbox` (see
    /// [`Define::set_delivery_filter`]). Sends that begin after this
    /// returns see the new filter; one in flight may still use the old.
    pub fn set_delivery_filter<M, F>(&self, mbox: &Mbox, filter: F)
    where
        M: Clone + Send + 'static,
        F: Fn(&M) -> bool + Send + Sync + 'static,
    {
        self.replace_filter(mbox, TypeId::of::<M>(), Some(erase(filter)));
    }

    /// Removes the agent's delivery filter for `M` at `mbox`: it gets every
    /// such message again (in the states that handle it).
    pub fn drop_delivery_filter<M: 'static>(&self, mbox: &Mbox) {
        self.replace_filter(mbox, TypeId::of::<M>(), None);
    }

    fn replace_filter(&self, mbox: &Mbox, ty: TypeId, filter: Option<Filter>) {
        let key = (mbox.id(), ty);
        // Not nested: subscribing takes the mbox's lock, then this one.
        let old = match &filter {
            Some(f) => self.core.filters.lock().insert(key, f.clone()),
            None => self.core.filters.lock().remove(&key),
        };
        let replaced = mbox.replace_filter(ty, self.core.id, filter);
        // Old filters die here, on the agent's worker, outside every lock.
        drop((old, replaced));
    }
}
