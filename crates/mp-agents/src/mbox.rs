//! Mboxes: each agent's direct MPSC mbox ([`DirectMbox`]) and MPMC mboxes
//! ([`Mbox`], named or anonymous).
//!
//! Invariant 3 (a payload's last owner is its receiver): `send` takes the
//! message by value and moves it, boxed, into the receiver's queue; the
//! sender keeps no copy. An MPMC mbox with several subscribers clones the
//! message for all but the last, which gets the original moved.
//!
//! Lock order: an mbox's subscriber lock is held only to copy out (or
//! replace) the list of subscribers to a type — an `Arc<[..]>`, copied on
//! write — so a send runs with no mbox lock held and may send on (a limit's
//! redirect, a filter) to any mbox, this one included. Then an agent's
//! queue lock, then the worker's mailbox lock. Subscriptions are added
//! during registration and removed in the cooperation's final step (on the
//! deregistration thread); a send in flight may still deliver to a
//! subscriber removed meanwhile, whose queue refuses it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::core::{AgentCore, MpmcSubscription};
use crate::filter::Filter;
use crate::ids::{AgentId, MboxId};
use crate::payload::Payload;
use crate::target::Target;

type Subscribers = Arc<Vec<Subscriber>>;

/// One subscription to one type here — an agent's, or a sink's (see the
/// `sink` module) — with its delivery filter.
#[derive(Clone)]
pub(crate) struct Subscriber {
    receiver: Receiver,
    filter: Option<Filter>,
}

#[derive(Clone)]
enum Receiver {
    Agent(Arc<AgentCore>),
    Sink { id: u64, sink: Arc<dyn ErasedSink> },
}

/// Where a sink binding delivers: takes each message of its type sent to
/// the mbox, on the sender's thread, with no mbox lock held.
pub(crate) trait ErasedSink: Send + Sync {
    /// Takes one message (of the bound type).
    fn accept(&self, payload: Payload);
}

impl Subscriber {
    fn deliver(&self, mbox: MboxId, ty: TypeId, payload: Payload) {
        match &self.receiver {
            Receiver::Agent(core) => core.push_message(mbox, ty, payload),
            Receiver::Sink { sink, .. } => sink.accept(payload),
        }
    }

    fn trace(&self, mbox: MboxId, ty: TypeId, what: &'static str) {
        if let Receiver::Agent(core) = &self.receiver {
            core.trace(crate::trace::Step::Send, mbox, ty, what);
        }
    }

    fn is_agent(&self, agent: AgentId) -> bool {
        matches!(&self.receiver, Receiver::Agent(core) if core.id == agent)
    }

    fn is_sink(&self, id: u64) -> bool {
        matches!(&self.receiver, Receiver::Sink { id: i, .. } if *i == id)
    }
}

static NEXT_SINK: AtomicU64 = AtomicU64::new(1);

/// A multi-producer multi-consumer mbox: every agent subscribed to a
/// message type gets each message of that type sent here.
#[derive(Clone)]
pub struct Mbox {
    inner: Arc<MboxInner>,
}

struct MboxInner {
    id: MboxId,
    name: Option<String>,
    /// At most one agent subscriber per type (a
    /// [`UniqueMbox`](crate::UniqueMbox)'s).
    unique: bool,
    /// Per type, a list that a send copies out (an `Arc`) and a change
    /// copies only while a send holds it (`Arc::make_mut`).
    subscribers: RwLock<HashMap<TypeId, Subscribers>>,
}

impl std::fmt::Debug for Mbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbox")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Mbox {
    pub(crate) fn new(name: Option<String>) -> Mbox {
        Mbox::with_mode(name, false)
    }

    /// The mbox inside a [`UniqueMbox`](crate::UniqueMbox).
    pub(crate) fn new_unique(name: Option<String>) -> Mbox {
        Mbox::with_mode(name, true)
    }

    fn with_mode(name: Option<String>, unique: bool) -> Mbox {
        Mbox {
            inner: Arc::new(MboxInner {
                id: MboxId::fresh(),
                name,
                unique,
                subscribers: RwLock::default(),
            }),
        }
    }

    /// Moves `msg` to the one agent subscribed to `M` (a unique-subscribers
    /// mbox's send: no clone); with none, it is dropped here (a request in
    /// it answers "no handler").
    pub(crate) fn send_unique<M: Send + 'static>(&self, msg: M) {
        crate::trace::note::<M>();
        let ty = TypeId::of::<M>();
        let list = self.inner.subscribers.read().get(&ty).cloned();
        let taker = list.as_ref().and_then(|l| {
            l.iter().find(|s| match &s.filter {
                Some(filter) => filter(&msg as &dyn Any),
                None => true,
            })
        });
        match taker {
            Some(sub) => sub.deliver(self.inner.id, ty, Payload::new(msg)),
            None => {
                self.trace_unreceived(ty);
                crate::dropped::drop_as(crate::dropped::DropReason::NoHandler, msg)
            }
        }
    }

    /// The mbox's id.
    pub fn id(&self) -> MboxId {
        self.inner.id
    }

    /// The mbox's name, if it is a named mbox.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Sends `msg` to every agent subscribed to `M` here whose delivery
    /// filter (if it set one) lets it through. The message is moved to the
    /// last such subscriber and cloned for the others; with none it is
    /// dropped here, never having been visible to anyone.
    pub fn send<M: Clone + Send + 'static>(&self, msg: M) {
        crate::trace::note::<M>();
        let list = self
            .inner
            .subscribers
            .read()
            .get(&TypeId::of::<M>())
            .cloned();
        let ty = TypeId::of::<M>();
        let Some(list) = list else {
            self.trace_unreceived(ty);
            return;
        };
        // Each taker gets a clone once the next taker is known; the last
        // one gets the original.
        let mut taker: Option<&Subscriber> = None;
        for sub in list.iter() {
            let wanted = match &sub.filter {
                Some(filter) => filter(&msg as &dyn Any),
                None => true,
            };
            if !wanted && crate::trace::on() {
                sub.trace(
                    self.inner.id,
                    ty,
                    "filtered out by the subscriber's delivery filter",
                );
            }
            if wanted {
                if let Some(prev) = taker.replace(sub) {
                    prev.deliver(self.inner.id, ty, Payload::new(msg.clone()));
                }
            }
        }
        if let Some(last) = taker {
            last.deliver(self.inner.id, ty, Payload::new(msg));
        }
    }

    /// Number of subscriptions (an agent's or a sink's, per message type)
    /// currently here.
    pub fn subscriber_count(&self) -> usize {
        self.inner
            .subscribers
            .read()
            .values()
            .map(|l| l.len())
            .sum()
    }

    /// Subscribes `core` to `ty`; refused (`false`) on a unique-subscribers
    /// mbox that has an agent subscribed to `ty` already.
    pub(crate) fn subscribe(&self, ty: TypeId, core: Arc<AgentCore>) -> bool {
        let mut subscribers = self.inner.subscribers.write();
        let list = subscribers.entry(ty).or_default();
        if self.inner.unique
            && list
                .iter()
                .any(|s| matches!(s.receiver, Receiver::Agent(_)))
        {
            return false;
        }
        let filter = core.filters.lock().get(&(self.inner.id, ty)).cloned();
        Arc::make_mut(list).push(Subscriber {
            receiver: Receiver::Agent(core),
            filter,
        });
        true
    }

    /// Delivery tracing: a message no one here takes.
    fn trace_unreceived(&self, ty: TypeId) {
        if !crate::trace::on() {
            return;
        }
        // No agent to reach the environment through: every environment
        // tracing sees it (an mbox belongs to none).
        crate::trace::emit_unreceived(self.inner.id, ty);
    }

    /// For errors: the mbox's name, or its id.
    pub(crate) fn describe(&self) -> String {
        match &self.inner.name {
            Some(name) => format!("`{name}`"),
            None => format!("#{}", self.inner.id.0),
        }
    }

    /// Adds a sink for `ty`; returns its id (to remove it).
    pub(crate) fn add_sink(
        &self,
        ty: TypeId,
        sink: Arc<dyn ErasedSink>,
        filter: Option<Filter>,
    ) -> u64 {
        let id = NEXT_SINK.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = self.inner.subscribers.write();
        Arc::make_mut(subscribers.entry(ty).or_default()).push(Subscriber {
            receiver: Receiver::Sink { id, sink },
            filter,
        });
        id
    }

    /// Removes sink `id` for `ty`; returned to be dropped outside the lock.
    pub(crate) fn remove_sink(&self, ty: TypeId, id: u64) -> Option<Subscriber> {
        self.remove_where(ty, |s| s.is_sink(id))
    }

    /// Replaces the filter of `agent`'s subscription to `ty` (if it is
    /// subscribed); the old one is returned, to be dropped outside the lock.
    pub(crate) fn replace_filter(
        &self,
        ty: TypeId,
        agent: AgentId,
        filter: Option<Filter>,
    ) -> Option<Filter> {
        let mut subscribers = self.inner.subscribers.write();
        let list = subscribers.get_mut(&ty)?;
        let at = list.iter().position(|s| s.is_agent(agent))?;
        std::mem::replace(&mut Arc::make_mut(list)[at].filter, filter)
    }

    /// Removes `agent`'s subscription to `ty`; the removed one (handle and
    /// filter) is returned so the caller drops it outside the lock.
    pub(crate) fn unsubscribe(&self, ty: TypeId, agent: AgentId) -> Option<Subscriber> {
        self.remove_where(ty, |s| s.is_agent(agent))
    }

    fn remove_where(&self, ty: TypeId, which: impl Fn(&Subscriber) -> bool) -> Option<Subscriber> {
        let mut subscribers = self.inner.subscribers.write();
        let list = subscribers.get_mut(&ty)?;
        let at = list.iter().position(which)?;
        let removed = Arc::make_mut(list).remove(at);
        if list.is_empty() {
            subscribers.remove(&ty);
        }
        Some(removed)
    }
}

/// An agent's own mbox: many senders, one receiver (the agent).
#[derive(Clone)]
pub struct DirectMbox {
    pub(crate) core: Arc<AgentCore>,
}

impl std::fmt::Debug for DirectMbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectMbox")
            .field("id", &self.core.direct_id)
            .field("agent", &self.core.id)
            .finish()
    }
}

impl DirectMbox {
    /// The mbox's id.
    pub fn id(&self) -> MboxId {
        self.core.direct_id
    }

    /// The agent this mbox belongs to.
    pub fn agent(&self) -> AgentId {
        self.core.id
    }

    /// The name of the agent this mbox belongs to ([`Agent::name`](crate::Agent::name),
    /// or its type and id).
    pub fn agent_name(&self) -> std::borrow::Cow<'_, str> {
        self.core.name()
    }

    /// Moves `msg` into the agent's queue. Before the agent is bound it
    /// waits in the agent's buffer; once the agent has started finishing it
    /// is refused and dropped here (it was never visible to the agent).
    pub fn send<M: Send + 'static>(&self, msg: M) {
        crate::trace::note::<M>();
        self.core
            .push_message(self.core.direct_id, TypeId::of::<M>(), Payload::new(msg));
    }
}

impl<M: Send + 'static> Target<M> for DirectMbox {
    fn deliver(&self, msg: M) {
        self.send(msg);
    }
}

impl<M: Clone + Send + 'static> Target<M> for Mbox {
    fn deliver(&self, msg: M) {
        self.send(msg);
    }
}

/// How a core keeps its MPMC subscriptions (it sits below the mboxes).
impl MpmcSubscription for Mbox {
    fn mbox_id(&self) -> MboxId {
        self.id()
    }

    fn unsubscribe(&self, ty: TypeId, agent: AgentId) {
        drop(Mbox::unsubscribe(self, ty, agent));
    }
}

/// Run-time subscriptions of an agent to MPMC mboxes.
impl AgentCore {
    /// Subscribes the agent to `ty` at `mbox` at run time, once (the
    /// agent's worker; deregistration unsubscribes it with the rest).
    pub(crate) fn subscribe_mpmc(self: &Arc<Self>, mbox: &Mbox, ty: TypeId) {
        {
            let mut subs = self.subscriptions.lock();
            if subs
                .iter()
                .any(|(m, t)| m.mbox_id() == mbox.id() && *t == ty)
            {
                return;
            }
            subs.push((Box::new(mbox.clone()), ty));
        }
        if !mbox.subscribe(ty, self.clone()) {
            self.subscriptions
                .lock()
                .retain(|(m, t)| !(m.mbox_id() == mbox.id() && *t == ty));
            tracing::error!(
                agent = %self.name(),
                mbox = %mbox.describe(),
                "a unique-subscribers mbox has a subscriber for this type already; not subscribed"
            );
        }
    }

    /// Removes the agent's subscription to `ty` at `mbox`, if any.
    pub(crate) fn unsubscribe_mpmc(&self, mbox: &Mbox, ty: TypeId) {
        let removed = {
            let mut subs = self.subscriptions.lock();
            let at = subs
                .iter()
                .position(|(m, t)| m.mbox_id() == mbox.id() && *t == ty);
            at.map(|at| subs.swap_remove(at))
        };
        if let Some((mbox, ty)) = removed {
            mbox.unsubscribe(ty, self.id);
        }
    }
}
