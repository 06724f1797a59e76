//! `AgentCore`: the runtime side of one agent — its demand queue (on its
//! dispatcher's [`Worker`]), its state, its subscriptions.
//!
//! Invariants kept here:
//! - 1: the core holds a `Worker` handle only until the cooperation's final
//!   step takes it out on the deregistration thread; jobs on the worker keep
//!   the core alive, but by then it is an empty shell, so whichever thread
//!   drops the last `Arc<AgentCore>` drops nothing that joins or blocks.
//! - 3: a demand (and its payload) is moved into the worker's job and
//!   consumed there; the agent's finish is reported to the deregistration
//!   thread with a `Weak` to the cooperation, never a strong reference, so a
//!   worker never holds (let alone drops) a cooperation.
//! - the finish hook runs once: `begin_finish` queues it behind every
//!   accepted demand and refuses all later ones.
//!
//! - a message admitted under a limit carries its `Ticket` in the demand,
//!   so the slot is given back however the demand ends (see `limits`).
//!
//! Lock order: `queue` before the worker's mailbox; `agent` is taken only by
//! the worker running a demand and by the final step (after the finish ran).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use mp_thread::{Waiter, Worker};
use parking_lot::Mutex;

use crate::agent::{Context, ErasedAgent, PanicReaction};
use crate::coop::CoopInner;
use crate::coop::DeregReason;
use crate::env::EnvInner;
use crate::filter::Filter;
use crate::limits::{Admit, Limit, Ticket};
use crate::mbox::{Mbox, MboxId};
use crate::{AgentId, CoopId};
use mp_thread::panic_message;

/// A message on its way to an agent.
pub(crate) type Payload = Box<dyn Any + Send>;

/// One unit of work for an agent.
pub(crate) enum Demand {
    Start,
    Message {
        mbox: MboxId,
        ty: TypeId,
        payload: Payload,
        /// Its slot under the agent's limit for `ty`, if it has one.
        ticket: Option<Ticket>,
    },
    Finish,
}

struct Queue {
    /// Set by `bind`; taken by the final step.
    worker: Option<Worker>,
    /// Demands that arrived before the agent was bound.
    pending: Vec<Demand>,
    bound: bool,
    accepting: bool,
    finishing: bool,
    /// Message limits by type (set in `define`, taken by the final step).
    limits: HashMap<TypeId, Limit>,
}

/// What `begin_finish` did.
pub(crate) enum FinishQueued {
    /// The finish demand is queued; the agent reports when it has run.
    Queued,
    /// It was already finishing.
    Already,
    /// The worker refused the demand: count the agent as finished now.
    Refused,
}

pub(crate) struct AgentCore {
    pub(crate) id: AgentId,
    pub(crate) direct_id: MboxId,
    pub(crate) env: Weak<EnvInner>,
    pub(crate) coop: Weak<CoopInner>,
    pub(crate) coop_id: CoopId,
    pub(crate) coop_alive: Arc<AtomicBool>,
    /// The cooperation's panic reaction, resolved when it is linked.
    pub(crate) coop_reaction: Mutex<PanicReaction>,
    /// The deregistration thread's mailbox (a `Waiter` never keeps it open).
    pub(crate) dereg: Waiter,
    queue: Mutex<Queue>,
    pub(crate) agent: Mutex<Option<Box<dyn ErasedAgent>>>,
    pub(crate) subscriptions: Mutex<Vec<(Mbox, TypeId)>>,
    /// Delivery filters by (MPMC mbox, type), from `define`.
    pub(crate) filters: Mutex<HashMap<(MboxId, TypeId), Filter>>,
}

impl AgentCore {
    pub(crate) fn new(
        env: Weak<EnvInner>,
        coop: Weak<CoopInner>,
        coop_id: CoopId,
        coop_alive: Arc<AtomicBool>,
        dereg: Waiter,
        agent: Box<dyn ErasedAgent>,
    ) -> AgentCore {
        AgentCore {
            id: AgentId::fresh(),
            direct_id: MboxId::fresh(),
            env,
            coop,
            coop_id,
            coop_alive,
            coop_reaction: Mutex::new(PanicReaction::Ignore),
            dereg,
            queue: Mutex::new(Queue {
                worker: None,
                pending: Vec::new(),
                bound: false,
                accepting: true,
                finishing: false,
                limits: HashMap::new(),
            }),
            agent: Mutex::new(Some(agent)),
            subscriptions: Mutex::default(),
            filters: Mutex::default(),
        }
    }

    /// Queues a message unless the agent has started finishing; over the
    /// agent's limit for its type, the limit's reaction takes it instead.
    pub(crate) fn push_message(self: &Arc<Self>, mbox: MboxId, ty: TypeId, payload: Payload) {
        let refused = {
            let mut q = self.queue.lock();
            if !q.accepting {
                Some(payload)
            } else {
                let ticket = match q.limits.get(&ty).map(Limit::admit) {
                    None => None,
                    Some(Admit::Counted(ticket)) => Some(ticket),
                    Some(Admit::Overflow(reaction)) => {
                        drop(q);
                        // No lock held: the reaction may send on.
                        reaction.overflow(self.id, payload);
                        return;
                    }
                };
                let demand = Demand::Message {
                    mbox,
                    ty,
                    payload,
                    ticket,
                };
                if q.bound {
                    self.post(&q, demand);
                } else {
                    q.pending.push(demand);
                }
                None
            }
        };
        // Dropped outside the lock, never having reached the agent.
        drop(refused);
    }

    /// Declares a limit (from `define`, before the agent is bound).
    pub(crate) fn add_limit(&self, ty: TypeId, limit: Limit) {
        let old = self.queue.lock().limits.insert(ty, limit);
        drop(old);
    }

    /// Posts `demand` to the bound worker (called with the queue locked).
    fn post(self: &Arc<Self>, q: &Queue, demand: Demand) -> bool {
        let Some(worker) = &q.worker else {
            return false;
        };
        let core = self.clone();
        match worker.post_job(Box::new(move || core.run(demand))) {
            Ok(()) => true,
            Err(job) => {
                tracing::error!(agent = ?self.id, "agent's worker refused a demand");
                // The job holds only a core handle and a demand: harmless
                // to drop here (the lock guards no drop that joins).
                drop(job);
                false
            }
        }
    }

    /// Binds the agent to `worker`: its start demand goes first, then what
    /// arrived meanwhile (a finish among them, if deregistration came first).
    pub(crate) fn bind(self: &Arc<Self>, worker: Worker) {
        let mut q = self.queue.lock();
        q.worker = Some(worker);
        q.bound = true;
        self.post(&q, Demand::Start);
        let pending = std::mem::take(&mut q.pending);
        for demand in pending {
            self.post(&q, demand);
        }
    }

    /// Stops taking demands and queues the finish demand behind the rest.
    pub(crate) fn begin_finish(self: &Arc<Self>) -> FinishQueued {
        let mut q = self.queue.lock();
        if q.finishing {
            return FinishQueued::Already;
        }
        q.finishing = true;
        q.accepting = false;
        if !q.bound {
            q.pending.push(Demand::Finish);
            return FinishQueued::Queued;
        }
        if self.post(&q, Demand::Finish) {
            FinishQueued::Queued
        } else {
            FinishQueued::Refused
        }
    }

    /// Takes everything the core owns that must die on the deregistration
    /// thread: the agent's state (with its handlers) and the worker handle.
    /// The undelivered pending demands go too, and the limits (whose
    /// reactions may hold other agents' mboxes); the delivery filters are
    /// dropped here too.
    #[allow(clippy::type_complexity)]
    pub(crate) fn take_payload(
        &self,
    ) -> (
        Option<Box<dyn ErasedAgent>>,
        Option<Worker>,
        Vec<Demand>,
        HashMap<TypeId, Limit>,
    ) {
        let agent = self.agent.lock().take();
        let filters = std::mem::take(&mut *self.filters.lock());
        drop(filters);
        let (worker, pending, limits) = {
            let mut q = self.queue.lock();
            (
                q.worker.take(),
                std::mem::take(&mut q.pending),
                std::mem::take(&mut q.limits),
            )
        };
        (agent, worker, pending, limits)
    }

    /// Registration failed: refuse every later message and take the state
    /// and buffered messages out, for the caller to drop.
    #[allow(clippy::type_complexity)]
    pub(crate) fn discard(
        &self,
    ) -> (
        Option<Box<dyn ErasedAgent>>,
        Vec<Demand>,
        HashMap<TypeId, Limit>,
    ) {
        let (pending, limits) = {
            let mut q = self.queue.lock();
            q.accepting = false;
            q.finishing = true;
            (
                std::mem::take(&mut q.pending),
                std::mem::take(&mut q.limits),
            )
        };
        let filters = std::mem::take(&mut *self.filters.lock());
        drop(filters);
        (self.agent.lock().take(), pending, limits)
    }

    /// Runs one demand on the agent's worker.
    fn run(self: Arc<Self>, demand: Demand) {
        match demand {
            Demand::Start => self.with_agent("start", |a, ctx| a.start(ctx)),
            Demand::Message {
                mbox,
                ty,
                payload,
                ticket,
            } => {
                // Out of the queue: its slot is free for the next one.
                drop(ticket);
                self.with_agent("handler", move |a, ctx| a.handle(ctx, mbox, ty, payload))
            }
            Demand::Finish => {
                self.with_agent("finish", |a, ctx| a.finish(ctx));
                // Hand-off to the deregistration thread: a `Weak`, moved.
                let coop = self.coop.clone();
                if self.dereg.post(move || crate::coop::release(coop)).is_err() {
                    tracing::error!(agent = ?self.id, "deregistration thread is gone");
                }
            }
        }
        // `self` (a shell once the final step ran) is dropped here.
    }

    fn with_agent<F>(self: &Arc<Self>, what: &str, f: F)
    where
        F: FnOnce(&mut dyn ErasedAgent, &Context<'_>),
    {
        let mut slot = self.agent.lock();
        let Some(agent) = slot.as_mut() else {
            return;
        };
        let ctx = Context::new(self);
        let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&mut **agent, &ctx))) else {
            return;
        };
        let mut reaction = agent.panic_reaction();
        drop(slot);
        if reaction == PanicReaction::Inherit {
            reaction = *self.coop_reaction.lock();
        }
        let message = panic_message(&*p);
        tracing::error!(agent = ?self.id, hook = what, panic = %message, ?reaction, "agent panicked");
        match reaction {
            PanicReaction::Abort => {
                eprintln!(
                    "mp-agents: agent {:?} panicked in {what}: {message}; aborting",
                    self.id
                );
                std::process::abort();
            }
            PanicReaction::ShutdownEnvironment => ctx.env().stop(),
            PanicReaction::DeregisterCoop => ctx.deregister_coop(DeregReason::Panic),
            PanicReaction::Ignore | PanicReaction::Inherit => {}
        }
    }
}
