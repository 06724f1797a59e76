//! The [`Agent`] trait, the [`Define`] step that subscribes handlers, and
//! the [`Context`] handlers get.
//!
//! An agent's state and its handlers live together in one box owned by the
//! agent's core; handlers get `&mut` state because an agent only ever runs
//! on one worker at a time (single-threaded dispatchers). The box is used
//! on that worker and dropped in the cooperation's final step on the
//! deregistration thread (invariant 1: never on a worker).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use crate::coop::{CoopHandle, DeregReason};
use crate::core::{AgentCore, Payload};
use crate::env::Environment;
use crate::mbox::{DirectMbox, Mbox, MboxId};
use crate::{AgentId, CoopId};

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
}

/// What happens when an agent's handler or hook panics. The panic itself
/// is always caught on the agent's worker; the worker goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicReaction {
    /// Abort the process.
    Abort,
    /// Stop the environment.
    ShutdownEnvironment,
    /// Deregister the agent's cooperation (reason [`DeregReason::Panic`]).
    DeregisterCoop,
    /// Log it and go on.
    Ignore,
    /// Ask the next level: agent → cooperation → parent → environment.
    Inherit,
}

type Handler<A> = Box<dyn FnMut(&mut A, &Context<'_>, Payload) + Send>;

/// What an agent can do while it runs: reach its environment, its own
/// mbox, its cooperation.
pub struct Context<'a> {
    pub(crate) core: &'a Arc<AgentCore>,
}

impl Context<'_> {
    /// The agent's id.
    pub fn agent_id(&self) -> AgentId {
        self.core.id
    }

    /// The environment the agent lives in.
    pub fn env(&self) -> Environment {
        Environment::from_weak(&self.core.env)
            .expect("an agent runs only while its environment is alive")
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
        self.coop().deregister(reason);
    }
}

/// Collects an agent's subscriptions during its `define` hook.
pub struct Define<'a, A: Agent> {
    core: &'a Arc<AgentCore>,
    handlers: &'a mut HashMap<(MboxId, TypeId), Handler<A>>,
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

    /// Handles messages of type `M` sent to the agent's direct mbox.
    /// A second subscription for the same type replaces the first.
    pub fn subscribe_self<M, F>(&mut self, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.insert(self.core.direct_id, handler);
        self
    }

    /// Handles messages of type `M` sent to `mbox`.
    /// A second subscription for the same mbox and type replaces the first.
    pub fn subscribe<M, F>(&mut self, mbox: &Mbox, handler: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        if !self.insert(mbox.id(), handler) {
            self.subscriptions.push((mbox.clone(), TypeId::of::<M>()));
        }
        self
    }

    /// Inserts a handler; true if it replaced one.
    fn insert<M, F>(&mut self, mbox: MboxId, mut handler: F) -> bool
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let erased: Handler<A> = Box::new(move |agent, ctx, payload| {
            if let Ok(msg) = payload.downcast::<M>() {
                handler(agent, ctx, *msg);
            }
        });
        self.handlers
            .insert((mbox, TypeId::of::<M>()), erased)
            .is_some()
    }
}

/// The core's view of an agent, whatever its type.
pub(crate) trait ErasedAgent: Send {
    /// Runs `define`; returns the MPMC subscriptions it asked for.
    fn define(&mut self, core: &Arc<AgentCore>, env: Environment) -> Vec<(Mbox, TypeId)>;
    fn start(&mut self, ctx: &Context<'_>);
    fn finish(&mut self, ctx: &Context<'_>);
    fn handle(&mut self, ctx: &Context<'_>, mbox: MboxId, ty: TypeId, payload: Payload);
    fn panic_reaction(&self) -> PanicReaction;
}

/// An agent's state with its handlers.
pub(crate) struct AgentSlot<A: Agent> {
    agent: A,
    handlers: HashMap<(MboxId, TypeId), Handler<A>>,
}

impl<A: Agent> AgentSlot<A> {
    pub(crate) fn new(agent: A) -> Self {
        AgentSlot {
            agent,
            handlers: HashMap::new(),
        }
    }
}

impl<A: Agent> ErasedAgent for AgentSlot<A> {
    fn define(&mut self, core: &Arc<AgentCore>, env: Environment) -> Vec<(Mbox, TypeId)> {
        let mut subscriptions = Vec::new();
        let mut def = Define {
            core,
            handlers: &mut self.handlers,
            subscriptions: &mut subscriptions,
            env,
        };
        self.agent.define(&mut def);
        subscriptions
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.agent.start(ctx);
    }

    fn finish(&mut self, ctx: &Context<'_>) {
        self.agent.finish(ctx);
    }

    fn panic_reaction(&self) -> PanicReaction {
        self.agent.panic_reaction()
    }

    fn handle(&mut self, ctx: &Context<'_>, mbox: MboxId, ty: TypeId, payload: Payload) {
        if let Some(handler) = self.handlers.get_mut(&(mbox, ty)) {
            handler(&mut self.agent, ctx, payload);
        }
        // Otherwise nobody handles it: the payload is dropped here, by its
        // receiver.
    }
}
