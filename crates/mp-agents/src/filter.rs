//! Delivery filters: a predicate an agent sets on its subscription to a
//! message type at an MPMC [`Mbox`](crate::Mbox); a message failing it is not delivered
//! to that agent (others still get it).
//!
//! Owns the filter type (set through [`Define::set_delivery_filter`](crate::Define::set_delivery_filter) and
//! [`Context::set_delivery_filter`](crate::Context::set_delivery_filter)): kept in the agent's core from `define` (or from a
//! handler) until the final step takes
//! them out (on the deregistration thread), and copied into the agent's
//! subscription at the mbox. A filter runs on the
//! sender's thread, inside [`Mbox::send`](crate::Mbox::send), with no lock of ours held.
//! Invariant 1 caveat: a send in flight during the final step may hold the
//! last copy of a subscription list, so a filter should capture plain data
//! — nothing whose drop blocks or joins.

use std::any::Any;
use std::sync::Arc;

/// A type-erased delivery filter: true lets the message through.
pub(crate) type Filter = Arc<dyn Fn(&dyn Any) -> bool + Send + Sync>;

pub(crate) fn erase<M: 'static>(filter: impl Fn(&M) -> bool + Send + Sync + 'static) -> Filter {
    Arc::new(move |msg: &dyn Any| msg.downcast_ref::<M>().is_some_and(&filter))
}
