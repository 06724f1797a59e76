//! The [`Agent`] trait, the [`Define`] step that subscribes handlers, and
//! the [`Context`] handlers get.
//!
//! An agent's state and its handlers live together in one box owned by the
//! agent's core; handlers get `&mut` state because an agent only ever runs
//! on one worker at a time (single-threaded dispatchers). The box is used
//! on that worker and dropped in the cooperation's final step on the
//! deregistration thread (invariant 1: never on a worker). The handlers
//! are kept per state by the `state` module; message limits (`limits`)
//! and delivery filters (`filter`) are declared through [`Define`] too.
//!
//! Handlers subscribed as *thread-safe* get no access to the state (they
//! are `Fn(&Context, M)`, sharing whatever they captured behind their own
//! synchronisation); they live beside it, outside the agent's states (one
//! for an mbox and type takes precedence over the state handlers for them,
//! and its [`Context`] neither sees nor changes the agent's state), may
//! run in parallel on the advanced thread pool, and are dropped with the
//! state in the final step.

use std::any::TypeId;
use std::sync::Arc;
use std::time::Duration;

use crate::binder::Binder;
use crate::coop::{CoopBuilder, CoopHandle};
use crate::core::{AgentCore, ErasedAgent, NewAgent, SharedHandler, SharedHandlers};

use crate::env::Environment;
use crate::filter::{erase, Filter};
use crate::ids::{AgentId, CoopId, DeregReason, MboxId, PanicReaction, Priority};
use crate::limits::{Limit, LimitOverflow};
use crate::mbox::{DirectMbox, Mbox};
use crate::payload::Payload;
use crate::request::{Request, RequestId};
use crate::state::{Context, InState, Machine, State};
use crate::target::Target;

/// An agent: state plus handlers, run on the worker of its dispatcher.
///
/// Every hook has an empty default. `define` runs on the registering thread
/// before the agent is bound; `start` is the agent's first demand, `finish`
/// its last (it runs exactly once, when the cooperation is deregistered,
/// after every message already queued).
pub trait Agent: Send + Sized + 'static {
    /// Subscribes handlers (SObjectizer's `so_define_agent`).
    fn define(&mut self, _def: &mut Define<'_, Self>) {}

    /// Runs first on the agent's worker (`so_evt_start`).
    fn start(&mut self, _ctx: &Context<'_>) {}

    /// Runs last on the agent's worker (`so_evt_finish`).
    fn finish(&mut self, _ctx: &Context<'_>) {}

    /// What to do when one of this agent's handlers or hooks panics;
    /// [`PanicReaction::Inherit`] (the default) asks its cooperation.
    fn panic_reaction(&self) -> PanicReaction {
        PanicReaction::Inherit
    }

    /// The agent's name in logs, errors and stats, read once when it is
    /// added to a cooperation. `None` (the default) names it by its type
    /// and id (`Pinger#12`).
    fn name(&self) -> Option<String> {
        None
    }

    /// The agent's priority, read once when it is added to a cooperation;
    /// the priority dispatchers order demands by it
    /// ([`PrioOneThreadDispatcher`](crate::PrioOneThreadDispatcher),
    /// [`PrioDedicatedThreadsDispatcher`](crate::PrioDedicatedThreadsDispatcher)),
    /// the others ignore it. [`Priority::P0`] (the lowest) by default.
    fn priority(&self) -> Priority {
        Priority::P0
    }
}

impl Context<'_> {
    /// The agent's id.
    pub fn agent_id(&self) -> AgentId {
        self.core.id
    }

    /// The agent's name ([`Agent::name`], or its type and id).
    pub fn agent_name(&self) -> std::borrow::Cow<'_, str> {
        self.core.name()
    }

    /// The environment the agent lives in.
    pub fn env(&self) -> Environment {
        Environment::of_core(self.core).expect("an agent runs only while its environment is alive")
    }

    /// The agent's own mbox.
    pub fn direct_mbox(&self) -> DirectMbox {
        DirectMbox {
            core: self.core.clone(),
        }
    }

    /// A (weak) handle to the agent's cooperation.
    pub fn coop(&self) -> CoopHandle {
        CoopHandle {
            id: self.core.coop_id,
            alive: self.core.coop_alive.clone(),
            coop: self.core.coop.clone(),
            dereg: self.core.dereg.clone(),
        }
    }

    /// The id of the agent's cooperation.
    pub fn coop_id(&self) -> CoopId {
        self.core.coop_id
    }

    /// Asks for the agent's cooperation to be deregistered (asynchronous).
    pub fn deregister_coop(&self, reason: DeregReason) {
        self.core.deregister_coop(reason);
    }

    /// Sends `query` to `to` as a [`Request`](crate::Request) without
    /// waiting: its outcome comes back to this agent's direct mbox as an
    /// [`Answer<R>`](crate::Answer) carrying the returned id — the reply,
    /// or why there is none (after `timeout` at the latest). Subscribe a
    /// handler for `Answer<R>`.
    pub fn request<Q, R, To>(&self, to: &To, query: Q, timeout: Duration) -> RequestId
    where
        Q: Send + 'static,
        R: Send + 'static,
        To: Target<Request<Q, R>>,
    {
        self.env()
            .request::<Q, R, To, DirectMbox>(to, query, timeout, &self.direct_mbox())
    }
}

/// Collects an agent's subscriptions during its `define` hook: handlers
/// (in the default state here, per state through
/// [`in_state`](Define::in_state)), its [`State`](crate::State)s, message
/// limits ([`limit`](Define::limit)) and delivery filters
/// ([`set_delivery_filter`](Define::set_delivery_filter)).
pub struct Define<'a, A: Agent> {
    pub(crate) core: &'a Arc<AgentCore>,
    pub(crate) machine: &'a mut Machine<A>,
    thread_safe: &'a mut SharedHandlers,
    subscriptions: &'a mut Vec<(Mbox, TypeId)>,
    env: Environment,
}

impl<A: Agent> Define<'_, A> {
    /// The environment the agent is being registered in.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// The agent's own mbox.
    pub fn direct_mbox(&self) -> DirectMbox {
        DirectMbox {
            core: self.core.clone(),
        }
    }

    /// Handles messages of type `M` sent to the agent's direct mbox, in
    /// the default state. A second subscription for the same type (and
    /// state) replaces the first.
    pub fn subscribe_self<M, F>(&mut self, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine.insert_handler(0, self.core.direct_id, handler);
        self
    }

    /// Handles messages of type `M` sent to `mbox`, in the default state.
    /// A second subscription for the same mbox and type (and state)
    /// replaces the first.
    pub fn subscribe<M, F>(&mut self, mbox: &Mbox, handler: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine.insert_handler(0, mbox.id(), handler);
        self.add_subscription(mbox, TypeId::of::<M>());
        self
    }

    /// Handles messages of type `M` sent to the agent's direct mbox with a
    /// *thread-safe* handler: on the
    /// [`AdvThreadPoolDispatcher`](crate::AdvThreadPoolDispatcher) several
    /// of them may run at once for this agent (never together with its
    /// other handlers, its start or its finish); elsewhere it runs like any
    /// handler. It gets no access to the agent's state: share what it needs
    /// by capturing it (an `Arc` of something `Sync`). It is not tied to a
    /// state: it takes precedence over handlers for the same type in every
    /// state, and its [`Context`] neither sees nor changes the agent's
    /// state. A second thread-safe subscription for the type replaces the
    /// first.
    pub fn subscribe_self_thread_safe<M, F>(&mut self, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: Fn(&Context<'_>, M) + Send + Sync + 'static,
    {
        self.insert_thread_safe(self.core.direct_id, handler);
        self
    }

    /// Handles messages of type `M` sent to `mbox` with a thread-safe
    /// handler (see [`subscribe_self_thread_safe`](Self::subscribe_self_thread_safe)).
    pub fn subscribe_thread_safe<M, F>(&mut self, mbox: &Mbox, handler: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: Fn(&Context<'_>, M) + Send + Sync + 'static,
    {
        self.insert_thread_safe(mbox.id(), handler);
        self.add_subscription(mbox, TypeId::of::<M>());
        self
    }

    /// Handles messages of type `M` sent to the agent's direct mbox that no
    /// handler of its current state takes (SObjectizer's dead-letter
    /// handler): without one they are dropped. A message a state
    /// suppresses is not a dead letter. A second one for the type replaces
    /// the first.
    pub fn subscribe_dead_letter_self<M, F>(&mut self, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine
            .insert_dead_letter(self.core.direct_id, handler);
        self
    }

    /// The dead-letter handler for messages of type `M` sent to `mbox`
    /// (see [`subscribe_dead_letter_self`](Self::subscribe_dead_letter_self));
    /// it subscribes the agent to them there.
    pub fn subscribe_dead_letter<M, F>(&mut self, mbox: &Mbox, handler: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine.insert_dead_letter(mbox.id(), handler);
        self.add_subscription(mbox, TypeId::of::<M>());
        self
    }

    /// Inserts a thread-safe handler (replacing one for the same key).
    fn insert_thread_safe<M, F>(&mut self, mbox: MboxId, handler: F)
    where
        M: Send + 'static,
        F: Fn(&Context<'_>, M) + Send + Sync + 'static,
    {
        let erased: SharedHandler = Box::new(move |core, payload| {
            if let Ok(msg) = payload.take::<M>() {
                handler(&Context::new(core), msg);
            }
        });
        let old = self.thread_safe.insert((mbox, TypeId::of::<M>()), erased);
        drop(old);
    }

    /// Subscribes the agent to `ty` at `mbox` (once, whatever the states).
    pub(crate) fn add_subscription(&mut self, mbox: &Mbox, ty: TypeId) {
        crate::state::add_subscription(self.subscriptions, mbox, ty);
    }
}

/// An agent's state with its handlers.
pub(crate) struct AgentSlot<A: Agent> {
    agent: A,
    machine: Machine<A>,
}

impl<A: Agent> AgentSlot<A> {
    pub(crate) fn new(agent: A) -> Self {
        AgentSlot {
            agent,
            machine: Machine::new(),
        }
    }
}

/// The `DefineFn` of agents of type `A`: runs `define` of the agent in
/// `slot` (an `AgentSlot<A>`); returns the MPMC subscriptions it asked for.
pub(crate) fn define_slot<A: Agent>(
    slot: &mut dyn ErasedAgent,
    core: &Arc<AgentCore>,
    env: Environment,
) -> Vec<(Mbox, TypeId)> {
    let slot = slot
        .as_any_mut()
        .downcast_mut::<AgentSlot<A>>()
        .expect("a define function is paired with its own agent type");
    slot.define(core, env)
}

impl<A: Agent> AgentSlot<A> {
    fn define(&mut self, core: &Arc<AgentCore>, env: Environment) -> Vec<(Mbox, TypeId)> {
        let mut subscriptions = Vec::new();
        let mut thread_safe = SharedHandlers::default();
        self.machine.owned_by(core.id);
        let mut def = Define {
            core,
            machine: &mut self.machine,
            thread_safe: &mut thread_safe,
            subscriptions: &mut subscriptions,
            env,
        };
        self.agent.define(&mut def);
        self.machine.defined();
        core.set_thread_safe(thread_safe);
        subscriptions
    }
}

impl<A: Agent> ErasedAgent for AgentSlot<A> {
    fn start(&mut self, core: &Arc<AgentCore>) {
        self.machine.enter_initial(&mut self.agent, core);
        self.machine
            .run_hook(&mut self.agent, core, |a, ctx| a.start(ctx));
    }

    fn finish(&mut self, core: &Arc<AgentCore>) {
        self.machine.finish();
        self.machine
            .run_hook(&mut self.agent, core, |a, ctx| a.finish(ctx));
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn panic_reaction(&self) -> PanicReaction {
        self.agent.panic_reaction()
    }

    fn handle(&mut self, core: &Arc<AgentCore>, mbox: MboxId, ty: TypeId, payload: Payload) {
        self.machine
            .dispatch(&mut self.agent, core, mbox, ty, payload);
    }
}

// Message limits (see `limits`) and delivery filters (see `filter`).

impl<A: Agent> Define<'_, A> {
    /// At most `max` messages of type `M` (from any mbox) wait in this
    /// agent's queue; one more gets `overflow`, on the sender's thread. A
    /// message counts from the moment it is queued until it is taken out
    /// to be handled (or dropped unhandled). Types without a limit are not
    /// limited, whether or not others are; a second limit for a type
    /// replaces the first. Messages sent before registration are not
    /// counted.
    pub fn limit<M: Send + 'static>(
        &mut self,
        max: usize,
        overflow: LimitOverflow<M>,
    ) -> &mut Self {
        self.core
            .add_limit(TypeId::of::<M>(), Limit::new(max, overflow));
        self
    }
}

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

/// Adding agents to a cooperation (the generic part: the cooperation
/// keeps them type-erased).
impl CoopBuilder {
    /// Adds an agent bound by the cooperation's binder; returns its mbox
    /// (messages sent before registration wait in the agent's buffer).
    pub fn add_agent<A: Agent>(&mut self, agent: A) -> DirectMbox {
        let binder = self.binder.clone();
        push(self, agent, binder)
    }

    /// Adds an agent bound by `binder`.
    pub fn add_agent_with_binder<A: Agent>(
        &mut self,
        agent: A,
        binder: Arc<dyn Binder>,
    ) -> DirectMbox {
        push(self, agent, Some(binder))
    }
}

fn push<A: Agent>(coop: &mut CoopBuilder, agent: A, binder: Option<Arc<dyn Binder>>) -> DirectMbox {
    let new = NewAgent {
        priority: agent.priority(),
        name: agent.name(),
        type_name: std::any::type_name::<A>(),
        agent_type: TypeId::of::<A>(),
        slot: Box::new(AgentSlot::new(agent)),
    };
    coop.push(new, binder, define_slot::<A>)
}

/// States (see `state`).
impl<A: Agent> Define<'_, A> {
    /// A new top-level state called `name`.
    pub fn state(&mut self, name: &str) -> State {
        self.machine.new_state(name, None, false)
    }

    /// A new substate of `parent` called `name`. A state with substates
    /// needs exactly one initial substate (see
    /// [`initial_substate`](Self::initial_substate)); registration fails
    /// otherwise.
    pub fn substate(&mut self, parent: &State, name: &str) -> State {
        let parent = self.machine.index_of(parent);
        self.machine.new_state(name, Some(parent), false)
    }

    /// A new substate of `parent`, entered when the agent switches to
    /// `parent` itself (and `parent` has no history to go back to).
    pub fn initial_substate(&mut self, parent: &State, name: &str) -> State {
        let parent = self.machine.index_of(parent);
        self.machine.new_state(name, Some(parent), true)
    }

    /// The default state: the one subscriptions made without a state
    /// ([`subscribe_self`](Self::subscribe_self), [`subscribe`](Self::subscribe))
    /// belong to, and the one the agent starts in unless
    /// [`start_in`](Self::start_in) says otherwise. It is a top-level state
    /// like the others: its handlers do not apply in other states.
    pub fn default_state(&self) -> State {
        self.machine.handle(0)
    }

    /// The agent starts in `state`: it is entered (on-enter hooks run, time
    /// limits armed) on the agent's worker just before [`Agent::start`].
    pub fn start_in(&mut self, state: &State) -> &mut Self {
        self.machine.start_in(state);
        self
    }

    /// Configures `state`: its handlers, hooks, time limit and history.
    pub fn in_state<'d>(&'d mut self, state: &State) -> InState<'d, A> {
        let state = self.machine.index_of(state);
        InState {
            machine: &mut *self.machine,
            direct: self.core.direct_id,
            subscriptions: &mut *self.subscriptions,
            state,
        }
    }
}
