//! `AgentCore`: the runtime side of one agent — its demand queue (pushed to
//! its dispatcher's [`EventQueue`]), its state, its subscriptions — and
//! [`ExecDemand`], the unit of work a dispatcher runs.
//!
//! The core sits below the mboxes, agents, cooperations and the
//! environment in the crate's stack: it reaches them only through the
//! traits it defines ([`ErasedAgent`], `EnvLink`, `CoopLink`,
//! `MpmcSubscription`), which they implement.
//!
//! Invariants kept here:
//! - 1: the core holds its dispatcher's event queue (and through it the
//!   dispatcher's `Worker` handles) only until the cooperation's final step
//!   takes it out on the deregistration thread; demands queued on a
//!   dispatcher keep the core alive, but by then it is an empty shell, so
//!   whichever thread drops the last `Arc<AgentCore>` drops nothing that
//!   joins or blocks.
//! - 3: a demand (and its payload) is moved into an [`ExecDemand`] and
//!   consumed by [`ExecDemand::run`]; the agent's finish is reported to the
//!   deregistration thread with a `Weak` to the cooperation, never a strong
//!   reference, so a worker never holds (let alone drops) a cooperation.
//! - the finish hook runs once: `begin_finish` queues it behind every
//!   accepted demand and refuses all later ones.
//!
//! - a message admitted under a limit carries its `Ticket` in the demand,
//!   so the slot is given back however the demand ends (see `limits`).
//!
//! Thread-safe handlers (see [`Define::subscribe_self_thread_safe`]) live
//! apart from the agent's state, in `thread_safe`, and run under a shared
//! (read) guard of it, never under the `agent` lock; dispatchers that run
//! demands of one agent in parallel (the advanced thread pool) run only
//! thread-safe ones together and every other demand alone.
//!
//! - a send from the thread draining the agent's `WorkerQueue` skips the
//!   `queue` lock while `same_thread` is set; `begin_finish` clears it
//!   before it pushes the finish demand, and `worker_queue::push_local`
//!   reads it after the queue's sequence number, so such a send is either
//!   numbered before the finish or refused the shortcut (and then refused
//!   by `accepting`, under the lock).
//!
//! Lock order: `queue` before the dispatcher's queue lock before a worker's
//! mailbox; `agent` is taken only by the thread running a demand and by the
//! final step (after the finish ran); `thread_safe` is read (recursively)
//! around a thread-safe handler and written only by `define` and the final
//! step.
//!
//! [`Define::subscribe_self_thread_safe`]: crate::Define::subscribe_self_thread_safe

use std::any::{Any, TypeId};
use std::borrow::Cow;
// Keys are our own ids and `TypeId`s (already hashes), never peer input:
// Fx hashing is safe and much cheaper than SipHash on the per-message lookup.
use rustc_hash::FxHashMap as HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use mp_thread::Waiter;
use parking_lot::{Mutex, RwLock};

use crate::demand::{Demand, DemandTarget, EventQueue, ExecDemand, Padded};
use crate::dropped::{drop_as, DropReason};
use crate::filter::Filter;
use crate::limits::{Admit, Limit};
use crate::payload::Payload;
use crate::push_order::Gate;
use crate::timer::Timers;
use crate::trace;

use crate::ids::{AgentId, AgentInfo, CoopId, DeregReason, MboxId, PanicReaction, Priority};
use mp_thread::panic_message;

/// The lock around an agent's state. Every demand takes it on the thread
/// running the demand; otherwise only registration (before the agent is
/// bound) and the final step (after its finish ran) do, and neither can
/// overlap a demand, so it is all but never contended. A spin lock
/// (yielding if it ever is contended) releases with a plain store where a
/// parking mutex needs a second read-modify-write: 10% of the cost of a
/// message in one-thread ping-pong.
pub(crate) type AgentSlotLock =
    spin::mutex::SpinMutex<Option<Box<dyn ErasedAgent>>, spin::relax::Yield>;

/// The core's view of an agent, whatever its type (an `AgentSlot` of the
/// agents layer implements it).
pub(crate) trait ErasedAgent: Send {
    /// The agent's start hook (after entering its initial state).
    fn start(&mut self, core: &Arc<AgentCore>);
    /// The agent's finish hook.
    fn finish(&mut self, core: &Arc<AgentCore>);
    /// Dispatches one message in the agent's current state.
    fn handle(&mut self, core: &Arc<AgentCore>, mbox: MboxId, ty: TypeId, payload: Payload);
    /// The agent's own panic reaction.
    fn panic_reaction(&self) -> PanicReaction;
    /// The agent as `Any` (its `define` runs through its concrete type).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A thread-safe handler, type-erased: shared by every thread that runs it.
pub(crate) type SharedHandler = Box<dyn Fn(&Arc<AgentCore>, Payload) + Send + Sync>;

/// What a core needs of its environment (the environment implements it;
/// it sits above the core in the crate's stack).
pub(crate) trait EnvLink: Send + Sync + 'static {
    /// Stops the environment (an agent's panic reaction).
    fn stop(self: Arc<Self>);
    /// The environment's timer thread (state time limits).
    fn timers(&self) -> &Arc<Timers>;
    /// The environment itself, for the layers that know its type.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// What a core needs of its cooperation (the cooperation implements it).
pub(crate) trait CoopLink: Send + Sync + 'static {
    /// Deregistration thread: the registration guard was released.
    fn release(self: Arc<Self>);
    /// Deregistration thread: every agent's finish has run (the last one
    /// to finish posted this).
    fn agents_finished(self: Arc<Self>);
    /// Deregistration thread: deregisters the cooperation.
    fn deregister(self: Arc<Self>, reason: DeregReason);
    /// The cooperation itself, for the layers that know its type.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// An MPMC mbox a core is subscribed to (the mbox layer implements it):
/// enough to take the subscription back.
pub(crate) trait MpmcSubscription: Send + Sync {
    /// The mbox's id.
    fn mbox_id(&self) -> MboxId;
    /// Removes `agent`'s subscription to `ty` (dropped outside the mbox's
    /// lock).
    fn unsubscribe(&self, ty: TypeId, agent: AgentId);
}

/// Asks the deregistration thread (`dereg`) to deregister `coop`, if it is
/// still there when the job runs (asynchronous; a no-op once it is going
/// or gone). The one way agents, handles and panic reactions ask for it.
pub(crate) fn request_deregistration(
    dereg: &Waiter,
    coop: &Weak<dyn CoopLink>,
    reason: DeregReason,
) {
    let coop = coop.clone();
    let _ = dereg.post(move || {
        if let Some(coop) = coop.upgrade() {
            coop.deregister(reason);
        }
    });
}

/// Thread-safe handlers of an agent, by (mbox, message type).
pub(crate) type SharedHandlers = HashMap<(MboxId, TypeId), SharedHandler>;

struct Queue {
    /// Set by `bind`; taken by the final step.
    worker: Option<Arc<dyn EventQueue>>,
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
    /// The name the agent gave ([`Agent::name`](crate::Agent::name)).
    given_name: Option<Box<str>>,
    /// The agent's type, for a name when it gave none.
    pub(crate) type_name: &'static str,
    /// The agent's type (run-time subscriptions check handlers against it).
    pub(crate) agent_type: TypeId,
    pub(crate) direct_id: MboxId,
    pub(crate) env: Weak<dyn EnvLink>,
    pub(crate) coop: Weak<dyn CoopLink>,
    pub(crate) coop_id: CoopId,
    pub(crate) priority: Priority,
    pub(crate) coop_alive: Arc<AtomicBool>,
    /// The cooperation's agents whose finish has not run: each finish
    /// counts itself out here, and only the last posts to the
    /// deregistration thread (one job per cooperation, not per agent).
    pub(crate) coop_unfinished: Arc<AtomicUsize>,
    /// The cooperation's panic reaction, resolved when it is linked.
    pub(crate) coop_reaction: Mutex<PanicReaction>,
    /// The deregistration thread's mailbox (a `Waiter` never keeps it open).
    pub(crate) dereg: Waiter,
    queue: Padded<Mutex<Queue>>,
    /// Set (under `queue`) once the agent is bound, with no limits, to a
    /// queue with a [`same_thread_key`](EventQueue::same_thread_key);
    /// cleared (under `queue`) before the finish demand is pushed. While
    /// set, a send from the thread draining that queue skips `queue`.
    same_thread: Gate,
    /// That key (written before `same_thread` is set).
    same_thread_key: AtomicUsize,
    /// On lines of its own too: the receiving thread takes it for every
    /// demand, while senders read the fields around it.
    pub(crate) agent: Padded<AgentSlotLock>,
    /// Set once `define` subscribed a thread-safe handler (spares the
    /// lookup in `thread_safe` for every other agent's messages).
    has_thread_safe: AtomicBool,
    thread_safe: RwLock<SharedHandlers>,
    pub(crate) subscriptions: Mutex<Vec<(Box<dyn MpmcSubscription>, TypeId)>>,
    /// Delivery filters by (MPMC mbox, type), from `define`.
    pub(crate) filters: Mutex<HashMap<(MboxId, TypeId), Filter>>,
}

/// An agent being added to a cooperation: its box, and what is read of
/// it once.
pub(crate) struct NewAgent {
    pub(crate) slot: Box<dyn ErasedAgent>,
    pub(crate) priority: Priority,
    pub(crate) name: Option<String>,
    pub(crate) type_name: &'static str,
    pub(crate) agent_type: TypeId,
}

impl AgentCore {
    pub(crate) fn new(
        env: Weak<dyn EnvLink>,
        coop: Weak<dyn CoopLink>,
        coop_id: CoopId,
        coop_alive: Arc<AtomicBool>,
        coop_unfinished: Arc<AtomicUsize>,
        dereg: Waiter,
        agent: NewAgent,
    ) -> AgentCore {
        let NewAgent {
            slot,
            priority,
            name,
            type_name,
            agent_type,
        } = agent;
        AgentCore {
            id: AgentId::fresh(),
            given_name: name.map(String::into_boxed_str),
            type_name,
            agent_type,
            direct_id: MboxId::fresh(),
            env,
            coop,
            coop_id,
            priority,
            coop_alive,
            coop_unfinished,
            coop_reaction: Mutex::new(PanicReaction::Ignore),
            dereg,
            queue: Padded(Mutex::new(Queue {
                worker: None,
                pending: Vec::new(),
                bound: false,
                accepting: true,
                finishing: false,
                limits: HashMap::default(),
            })),
            same_thread: Gate::new(),
            same_thread_key: AtomicUsize::new(0),
            agent: Padded(AgentSlotLock::new(Some(slot))),
            has_thread_safe: AtomicBool::new(false),
            thread_safe: RwLock::default(),
            subscriptions: Mutex::default(),
            filters: Mutex::default(),
        }
    }

    /// The agent's name: the one it gave, or its type's (without the
    /// module path) and its id.
    pub(crate) fn name(&self) -> Cow<'_, str> {
        match &self.given_name {
            Some(name) => Cow::Borrowed(name),
            None => {
                let short = self.type_name.rsplit("::").next().unwrap_or(self.type_name);
                Cow::Owned(format!("{short}#{}", self.id.0))
            }
        }
    }

    /// One delivery step of this agent's, for delivery tracing (call only
    /// when [`trace::on`]).
    #[cold]
    pub(crate) fn trace(&self, step: trace::Step, mbox: MboxId, ty: TypeId, what: &'static str) {
        if let Some(filter) = trace::filter_of(self.env.as_ptr() as *const () as usize) {
            trace::emit(&filter, step, Some(&self.name()), mbox, ty, what);
        }
    }

    /// What binders are told about this agent.
    pub(crate) fn info(&self) -> crate::ids::AgentInfo {
        crate::ids::AgentInfo {
            id: self.id,
            coop: self.coop_id,
            priority: self.priority,
        }
    }

    /// Stores the thread-safe handlers `define` subscribed (before binding).
    pub(crate) fn set_thread_safe(&self, handlers: SharedHandlers) {
        if handlers.is_empty() {
            return;
        }
        self.thread_safe.write().extend(handlers);
        self.has_thread_safe.store(true, Ordering::Release);
    }

    /// True if a message to (`mbox`, `ty`) goes to a thread-safe handler.
    fn is_thread_safe(&self, mbox: MboxId, ty: TypeId) -> bool {
        self.has_thread_safe.load(Ordering::Acquire)
            && self.thread_safe.read_recursive().contains_key(&(mbox, ty))
    }

    /// Queues a message unless the agent has started finishing; over the
    /// agent's limit for its type, the limit's reaction takes it instead.
    pub(crate) fn push_message(self: &Arc<Self>, mbox: MboxId, ty: TypeId, payload: Payload) {
        // A send from a handler running on the thread that drains this
        // agent's queue goes to that thread's local list, without the
        // agent's lock. (Checked before the payload moves anywhere: a
        // payload handed back and forth costs more than its words.)
        if self.same_thread.is_open() {
            let key = self.same_thread_key.load(Ordering::Relaxed);
            if crate::worker_queue::is_draining(key) {
                let made = |payload| ExecDemand {
                    target: self.clone(),
                    demand: Demand::Message {
                        mbox,
                        payload,
                        ticket: None,
                    },
                    thread_safe: self.is_thread_safe(mbox, ty),
                };
                match crate::worker_queue::push_local_with(key, payload, made, || {
                    self.same_thread.is_open()
                }) {
                    Ok(()) => {
                        if trace::on() {
                            self.trace(trace::Step::Send, mbox, ty, "queued");
                        }
                    }
                    Err(payload) => self.push_shared(mbox, ty, payload),
                }
                return;
            }
        }
        self.push_shared(mbox, ty, payload);
    }

    /// A send through the agent's queue lock.
    fn push_shared(self: &Arc<Self>, mbox: MboxId, ty: TypeId, payload: Payload) {
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
                        if trace::on() {
                            self.trace(
                                trace::Step::Send,
                                mbox,
                                ty,
                                "over its message limit: the limit's reaction applies",
                            );
                        }
                        // No lock held: the reaction may send on.
                        reaction.overflow(self.id, payload);
                        return;
                    }
                };
                let demand = Demand::Message {
                    mbox,
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
        if trace::on() {
            let what = match refused {
                Some(_) => "dropped: the receiver is gone or finishing",
                None => "queued",
            };
            self.trace(trace::Step::Send, mbox, ty, what);
        }
        // Dropped outside the lock, never having reached the agent.
        if let Some(payload) = refused {
            drop_as(DropReason::ReceiverGone, payload);
        }
    }

    /// Declares a limit (from `define`, before the agent is bound).
    pub(crate) fn add_limit(&self, ty: TypeId, limit: Limit) {
        let old = self.queue.lock().limits.insert(ty, limit);
        drop(old);
    }

    /// Asks the deregistration thread to deregister the agent's
    /// cooperation (asynchronous).
    pub(crate) fn deregister_coop(&self, reason: DeregReason) {
        request_deregistration(&self.dereg, &self.coop, reason);
    }

    /// Deactivation: every MPMC subscription and thread-safe handler goes
    /// (dropped outside the locks).
    pub(crate) fn drop_subscriptions(&self) {
        let subs = std::mem::take(&mut *self.subscriptions.lock());
        for (mbox, ty) in subs {
            mbox.unsubscribe(ty, self.id);
        }
        self.has_thread_safe.store(false, Ordering::Release);
        let table = std::mem::take(&mut *self.thread_safe.write());
        drop(table);
    }

    /// Pushes `demand` to the bound event queue (called with the queue
    /// locked).
    fn post(self: &Arc<Self>, q: &Queue, demand: Demand) -> bool {
        let Some(queue) = &q.worker else {
            return false;
        };
        let thread_safe = match &demand {
            Demand::Message { mbox, payload, .. } => {
                self.has_thread_safe.load(Ordering::Acquire)
                    && self.is_thread_safe(*mbox, payload.message_type())
            }
            Demand::Start | Demand::Finish => false,
        };
        let exec = ExecDemand {
            target: self.clone(),
            demand,
            thread_safe,
        };
        match queue.push(exec) {
            Ok(()) => true,
            Err(exec) => {
                tracing::error!(agent = %self.name(), "agent's dispatcher refused a demand");
                // It holds only a core handle and a demand: harmless to
                // drop here (the lock guards no drop that joins).
                drop(exec);
                false
            }
        }
    }

    /// Binds the agent to `queue`: its start demand goes first, then what
    /// arrived meanwhile (a finish among them, if deregistration came first).
    pub(crate) fn bind(self: &Arc<Self>, worker: Arc<dyn EventQueue>) {
        let mut q = self.queue.lock();
        q.worker = Some(worker);
        q.bound = true;
        self.post(&q, Demand::Start);
        let pending = std::mem::take(&mut q.pending);
        for demand in pending {
            self.post(&q, demand);
        }
        if let Some(key) = q.worker.as_ref().and_then(|w| w.same_thread_key()) {
            if q.limits.is_empty() && q.accepting {
                self.same_thread_key.store(key, Ordering::Relaxed);
                self.same_thread.open();
            }
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
        // Before the finish is pushed: see `worker_queue::push_local`.
        self.same_thread.close();
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
    /// thread: the agent's state (with its handlers), its thread-safe
    /// handlers and the event queue (with the dispatcher handle behind it).
    /// The undelivered pending demands go too, and the limits (whose
    /// reactions may hold other agents' mboxes); the delivery filters are
    /// dropped here too.
    pub(crate) fn take_payload(&self) -> Payloads {
        let agent = self.agent.lock().take();
        let shared = std::mem::take(&mut *self.thread_safe.write());
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
        (agent, shared, worker, pending, limits)
    }

    /// Registration failed: refuse every later message and take the state
    /// and buffered messages out, for the caller to drop.
    #[allow(clippy::type_complexity)]
    pub(crate) fn discard(
        &self,
    ) -> (
        Option<Box<dyn ErasedAgent>>,
        SharedHandlers,
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
        let shared = std::mem::take(&mut *self.thread_safe.write());
        (self.agent.lock().take(), shared, pending, limits)
    }

    /// Runs one demand on the calling thread (a dispatcher's worker).
    fn run(self: Arc<Self>, demand: Demand, thread_safe: bool) {
        match demand {
            Demand::Start => self.with_agent("start", |a, core| a.start(core)),
            Demand::Message {
                mbox,
                payload,
                ticket,
            } => {
                let ty = payload.message_type();
                // Out of the queue: its slot is free for the next one.
                drop(ticket);
                if trace::on() {
                    return self.run_traced(mbox, ty, payload, thread_safe);
                }
                if thread_safe {
                    self.run_thread_safe(mbox, ty, payload);
                    return;
                }
                self.with_agent("handler", move |a, core| a.handle(core, mbox, ty, payload))
            }
            Demand::Finish => {
                self.with_agent("finish", |a, core| a.finish(core));
                // Counted out; the cooperation's last agent to finish hands
                // it to the deregistration thread: a `Weak`, moved (never
                // upgraded here, so this thread never holds the last
                // reference). Release: this agent's finish happens before
                // the final step.
                if self.coop_unfinished.fetch_sub(1, Ordering::AcqRel) != 1 {
                    return;
                }
                let coop = self.coop.clone();
                let finished = move || {
                    if let Some(coop) = coop.upgrade() {
                        coop.agents_finished();
                    }
                };
                if self.dereg.post(finished).is_err() {
                    tracing::error!(agent = %self.name(), "deregistration thread is gone");
                }
            }
        }
        // `self` (a shell once the final step ran) is dropped here.
    }

    /// A message demand while delivery tracing is on: what the handler
    /// sends is traced as sent by this agent.
    #[cold]
    fn run_traced(self: &Arc<Self>, mbox: MboxId, ty: TypeId, payload: Payload, thread_safe: bool) {
        trace::as_current(
            || self.name().into_owned(),
            || {
                if thread_safe {
                    self.trace(
                        trace::Step::Receive,
                        mbox,
                        ty,
                        "handled by a thread-safe handler",
                    );
                    self.run_thread_safe(mbox, ty, payload);
                } else {
                    self.with_agent("handler", move |a, core| a.handle(core, mbox, ty, payload));
                }
            },
        );
    }

    fn with_agent<F>(self: &Arc<Self>, what: &str, f: F)
    where
        F: FnOnce(&mut dyn ErasedAgent, &Arc<AgentCore>),
    {
        let mut slot = self.agent.lock();
        let Some(agent) = slot.as_mut() else {
            drop(slot);
            // Its receiver is gone: what `f` carries goes with it.
            drop_as(DropReason::ReceiverGone, f);
            return;
        };
        let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&mut **agent, self))) else {
            return;
        };
        let reaction = agent.panic_reaction();
        drop(slot);
        self.react_to_panic(what, &*p, reaction);
    }

    /// Runs a thread-safe handler under a shared guard of the handler
    /// table, without the agent's state lock: several may run at once.
    fn run_thread_safe(self: &Arc<Self>, mbox: MboxId, ty: TypeId, payload: Payload) {
        let table = self.thread_safe.read_recursive();
        let Some(handler) = table.get(&(mbox, ty)) else {
            // Gone with the agent: the payload dies here, with its receiver.
            drop(table);
            drop_as(DropReason::ReceiverGone, payload);
            return;
        };
        let Err(p) = catch_unwind(AssertUnwindSafe(|| handler(self, payload))) else {
            return;
        };
        drop(table);
        let reaction = match self.agent.lock().as_ref() {
            Some(agent) => agent.panic_reaction(),
            None => PanicReaction::Inherit,
        };
        self.react_to_panic("thread-safe handler", &*p, reaction);
    }

    /// Applies the panic reaction of this agent (resolved through its
    /// cooperation if it says `Inherit`).
    fn react_to_panic(self: &Arc<Self>, what: &str, p: &(dyn Any + Send), reaction: PanicReaction) {
        let mut reaction = reaction;
        if reaction == PanicReaction::Inherit {
            reaction = *self.coop_reaction.lock();
        }
        let message = panic_message(p);
        tracing::error!(agent = %self.name(), hook = what, panic = %message, ?reaction, "agent panicked");
        match reaction {
            PanicReaction::Abort => {
                eprintln!(
                    "mp-agents: agent {:?} panicked in {what}: {message}; aborting",
                    self.id
                );
                std::process::abort();
            }
            PanicReaction::ShutdownEnvironment => {
                if let Some(env) = self.env.upgrade() {
                    env.stop();
                }
            }
            PanicReaction::DeregisterCoop => self.deregister_coop(DeregReason::Panic),
            PanicReaction::Ignore | PanicReaction::Inherit => {}
        }
    }
}

/// What `take_payload` hands the final step: the agent's state, its
/// thread-safe handlers, its event queue, undelivered demands, its limits.
pub(crate) type Payloads = (
    Option<Box<dyn ErasedAgent>>,
    SharedHandlers,
    Option<Arc<dyn EventQueue>>,
    Vec<Demand>,
    HashMap<TypeId, Limit>,
);

impl DemandTarget for AgentCore {
    fn run(self: Arc<Self>, demand: Demand, thread_safe: bool) {
        AgentCore::run(self, demand, thread_safe);
    }

    fn info(&self) -> AgentInfo {
        AgentCore::info(self)
    }
}
