//! Delivery tracing (SObjectizer's message delivery tracing): who sent
//! which message to whom, which handler took it or why it was dropped,
//! as `tracing` events with target `mp_agents::delivery` at `TRACE`
//! level, for the deliveries a [`DeliveryFilter`] selects (by agent, mbox
//! and message type).
//!
//! Off by default, at the cost of one relaxed atomic load per delivery:
//! nothing else runs until an environment turns it on
//! ([`Environment::set_delivery_tracing`](crate::Environment::set_delivery_tracing),
//! [`Params::delivery_tracing`](crate::Params::delivery_tracing)). While on,
//! the send sites record each message type's name (the dispatch knows
//! only its `TypeId`) and each demand records its agent's name for the
//! `from` field of what its handler sends.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::ids::MboxId;
use parking_lot::{const_rwlock, RwLock};

/// Environments with delivery tracing on.
static TRACING: AtomicUsize = AtomicUsize::new(0);

/// A tracing environment's address and filter.
type EnvFilter = (usize, Arc<DeliveryFilter>);

/// Each tracing environment's filter, by the environment's address.
/// (Built in a const: no lazy initialiser runs on the first sender.)
static FILTERS: RwLock<Vec<EnvFilter>> = const_rwlock(Vec::new());

/// Message type names seen at send sites while tracing is on.
static NAMES: RwLock<BTreeMap<TypeId, &'static str>> = const_rwlock(BTreeMap::new());

/// The agent whose demand runs on this thread (while tracing is on): its
/// slot of the thread's context (`mp_thread::context`).
#[derive(Default)]
struct Current(RefCell<Option<String>>);

/// Which deliveries are traced: every criterion set must match (none set:
/// all of them).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    agent: Option<String>,
    mbox: Option<MboxId>,
    message: Option<TypeId>,
}

impl DeliveryFilter {
    /// Every delivery.
    pub fn all() -> DeliveryFilter {
        DeliveryFilter::default()
    }

    /// Only deliveries to (or, for an mbox without subscribers, from) the
    /// agent called `name` ([`Agent::name`](crate::Agent::name), or its
    /// type and id).
    pub fn agent(mut self, name: impl Into<String>) -> DeliveryFilter {
        self.agent = Some(name.into());
        self
    }

    /// Only deliveries through the mbox `id`.
    pub fn mbox(mut self, id: MboxId) -> DeliveryFilter {
        self.mbox = Some(id);
        self
    }

    /// Only messages of type `M`.
    pub fn message<M: 'static>(mut self) -> DeliveryFilter {
        self.message = Some(TypeId::of::<M>());
        self
    }

    fn matches(&self, agent: Option<&str>, mbox: MboxId, ty: TypeId) -> bool {
        self.agent.as_deref().is_none_or(|a| agent == Some(a))
            && self.mbox.is_none_or(|m| m == mbox)
            && self.message.is_none_or(|t| t == ty)
    }
}

/// True while any environment traces deliveries (one relaxed load).
#[inline]
pub(crate) fn on() -> bool {
    TRACING.load(Ordering::Relaxed) != 0
}

/// Sets (or, with `None`, clears) the filter of the environment at `env`
/// (its address, the key every agent of it can compute without upgrading
/// its `Weak`).
pub(crate) fn set(env: usize, filter: Option<DeliveryFilter>) {
    let mut filters = FILTERS.write();
    let had = filters.iter().position(|(e, _)| *e == env);
    match (had, filter) {
        (Some(at), Some(filter)) => filters[at].1 = Arc::new(filter),
        (Some(at), None) => {
            filters.swap_remove(at);
            TRACING.fetch_sub(1, Ordering::Relaxed);
        }
        (None, Some(filter)) => {
            filters.push((env, Arc::new(filter)));
            TRACING.fetch_add(1, Ordering::Relaxed);
        }
        (None, None) => {}
    }
}

/// The filter of the environment at `env`, if it traces.
pub(crate) fn filter_of(env: usize) -> Option<Arc<DeliveryFilter>> {
    FILTERS
        .read()
        .iter()
        .find(|(e, _)| *e == env)
        .map(|(_, f)| f.clone())
}

/// A message no one took at an MPMC mbox (which belongs to no
/// environment): traced by every environment whose filter selects it.
#[cold]
pub(crate) fn emit_unreceived(mbox: MboxId, ty: TypeId) {
    let filters: Vec<_> = FILTERS.read().iter().map(|(_, f)| f.clone()).collect();
    for filter in filters {
        emit(
            &filter,
            Step::Send,
            None,
            mbox,
            ty,
            "dropped: no subscriber takes it",
        );
    }
}

/// Records `M`'s name for the events (send sites, while tracing is on).
#[inline]
pub(crate) fn note<M: 'static>() {
    if on() {
        note_name(TypeId::of::<M>(), std::any::type_name::<M>());
    }
}

#[cold]
fn note_name(ty: TypeId, name: &'static str) {
    if !NAMES.read().contains_key(&ty) {
        NAMES.write().insert(ty, name);
    }
}

/// Runs `f` with `agent` as the sender of what it sends (while tracing is
/// on).
pub(crate) fn as_current<R>(agent: impl FnOnce() -> String, f: impl FnOnce() -> R) -> R {
    if !on() {
        return f();
    }
    /// Puts the outer agent back, also when `f` panics.
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            mp_thread::context::with(|c: &Current| *c.0.borrow_mut() = outer);
        }
    }
    let outer = mp_thread::context::with(|c: &Current| c.0.borrow_mut().replace(agent()));
    let _restore = Restore(outer.flatten());
    f()
}

/// Where in a delivery a traced step happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// On the sender's thread: the event names the sending agent, if any.
    Send,
    /// On the receiver's thread.
    Receive,
}

/// One traced delivery step: `what` happened to a message of type `ty`
/// through `mbox`, at `agent`.
#[cold]
pub(crate) fn emit(
    filter: &DeliveryFilter,
    step: Step,
    agent: Option<&str>,
    mbox: MboxId,
    ty: TypeId,
    what: &'static str,
) {
    if !filter.matches(agent, mbox, ty) {
        return;
    }
    let msg_type = NAMES
        .read()
        .get(&ty)
        .copied()
        .unwrap_or("<type not seen at a send>");
    let to = agent.unwrap_or("-");
    if step == Step::Send {
        let from = mp_thread::context::with(|c: &Current| c.0.borrow().clone()).flatten();
        let from = from.as_deref().unwrap_or("-");
        tracing::trace!(target: "mp_agents::delivery", what, msg_type, to, mbox = mbox.0, from);
    } else {
        tracing::trace!(target: "mp_agents::delivery", what, msg_type, to, mbox = mbox.0);
    }
}
