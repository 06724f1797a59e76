//! Cooperations: registration (transactional), deregistration (staged) and
//! the final step.
//!
//! Ownership: a cooperation is owned by its parent's child map, or by the
//! environment's root map. Users and agents hold only [`CoopHandle`]s
//! (weak). Every step of deregistration — the walk over children, the
//! count of what the final step waits for, the final step — runs on the
//! environment's deregistration thread; workers only count their agents'
//! finishes down on a shared atomic, and the last one posts to it, handing
//! over a `Weak`.
//!
//! Invariant 1 (final destruction on a designated thread): the final step
//! takes every agent's state, worker handle and binder out of the
//! cooperation explicitly and drops them on the deregistration thread, so a
//! dispatcher whose last user was this cooperation closes its worker there.
//! A registering thread hands its temporary references back before it
//! releases its *registration guard*: until then the final step cannot run,
//! so the registering thread never holds the last reference either (a
//! sender-side temporary outliving the hand-off made a SObjectizer worker
//! join itself).
//!
//! Stages of deregistration: (1) the cooperation stops taking children and
//! asks its children to deregister; (2) once the last child's final step
//! has run, every agent stops taking messages and gets its finish demand
//! behind what is queued; (3) when every agent's finish has run (and the
//! registration guard is released), the final step: drop agents, unbind,
//! drop binders, unlink from the parent, run notifications.
//!
//! Lock order: a cooperation's state, then the environment's state. Two
//! cooperations' locks are never held at once.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use mp_thread::Waiter;
use parking_lot::Mutex;

use crate::binder::Binder;
use crate::contain::contain;
use crate::core::{
    request_deregistration, AgentCore, CoopLink, ErasedAgent, FinishQueued, NewAgent,
};
use crate::dropped::{drop_as, DropReason};
use crate::env::{EnvInner, Environment};
use crate::error::Error;
use crate::ids::{CoopId, DeregReason, PanicReaction};
use crate::mbox::{DirectMbox, Mbox};
use mp_thread::panic_message;

/// The deregistration thread's role, in logs.
const DEREG: &str = "deregistration";

/// Called on the deregistration thread once a cooperation is gone.
pub type DeregNotificator = Box<dyn FnOnce(&Environment, CoopId, DeregReason) + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Being built or registered.
    Registering,
    /// Registered and working.
    Registered,
    /// Waiting for its children's final steps.
    DeregisteringChildren,
    /// Waiting for its agents' finish hooks.
    FinishingAgents,
    /// The final step has run.
    Finalized,
}

struct Entry {
    core: Arc<AgentCore>,
    binder: Arc<dyn Binder>,
}

struct CoopState {
    status: Status,
    reason: DeregReason,
    children: HashMap<CoopId, Arc<CoopInner>>,
    agents: Vec<Entry>,
    /// Agents whose finish has not run yet, plus one for the registration
    /// guard.
    pending: usize,
    notificators: Vec<DeregNotificator>,
}

pub(crate) struct CoopInner {
    pub(crate) id: CoopId,
    /// Cleared by the final step, before notifications; shared with handles
    /// so they can tell without upgrading their `Weak`.
    pub(crate) alive: Arc<AtomicBool>,
    /// Agents whose finish has not run (or been refused), shared with
    /// their cores: set at registration, counted down by each finish on
    /// its worker and by `finish_agents` for refused ones; whoever brings
    /// it to zero has `agents_finished` run on the deregistration thread.
    unfinished: Arc<AtomicUsize>,
    /// Its own panic reaction; resolved (never `Inherit`) when linked.
    reaction: Mutex<PanicReaction>,
    env: Weak<EnvInner>,
    /// Its parent (a `CoopInner`, held as the handle that made it holds it).
    parent: Option<Weak<dyn CoopLink>>,
    state: Mutex<CoopState>,
}

/// A weak handle to a registered cooperation: it never keeps it alive.
#[derive(Clone)]
pub struct CoopHandle {
    pub(crate) id: CoopId,
    pub(crate) alive: Arc<AtomicBool>,
    pub(crate) coop: Weak<dyn CoopLink>,
    pub(crate) dereg: Waiter,
}

impl std::fmt::Debug for CoopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoopHandle").field("id", &self.id).finish()
    }
}

impl CoopHandle {
    /// The cooperation's id.
    pub fn id(&self) -> CoopId {
        self.id
    }

    /// True until the cooperation's final step has run (false already
    /// when its deregistration notifications run).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Asks for the cooperation (and its children first) to be deregistered.
    /// Asynchronous; a no-op if it is already going or gone.
    pub fn deregister(&self, reason: DeregReason) {
        request_deregistration(&self.dereg, &self.coop, reason);
    }
}

/// A cooperation being put together; hand it to
/// [`Environment::register_coop`].
pub struct CoopBuilder {
    env: Environment,
    coop: Arc<CoopInner>,
    pub(crate) binder: Option<Arc<dyn Binder>>,
    agents: Vec<Unresolved>,
    notificators: Vec<DeregNotificator>,
}

/// An agent added to a builder, with its binder if one was chosen.
/// Runs the `define` of the agent in a slot (through its concrete type,
/// which the agents layer knows); returns the MPMC subscriptions it asked
/// for.
pub(crate) type DefineFn =
    fn(&mut dyn ErasedAgent, &Arc<AgentCore>, Environment) -> Vec<(Mbox, TypeId)>;

/// An agent added, its binder if it has its own, and how to run its
/// `define`.
type Unresolved = (Arc<AgentCore>, Option<Arc<dyn Binder>>, DefineFn);

impl std::fmt::Debug for CoopBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoopBuilder")
            .field("id", &self.coop.id)
            .field("agents", &self.agents.len())
            .finish()
    }
}

impl CoopBuilder {
    pub(crate) fn new(env: Environment, parent: Option<&CoopHandle>) -> CoopBuilder {
        let coop = Arc::new(CoopInner {
            id: CoopId::fresh(),
            alive: Arc::new(AtomicBool::new(true)),
            unfinished: Arc::new(AtomicUsize::new(0)),
            reaction: Mutex::new(PanicReaction::Inherit),
            env: Arc::downgrade(&env.inner),
            parent: parent.map(|p| p.coop.clone()),
            state: Mutex::new(CoopState {
                status: Status::Registering,
                reason: DeregReason::Normal,
                children: HashMap::new(),
                agents: Vec::new(),
                pending: 0,
                notificators: Vec::new(),
            }),
        });
        CoopBuilder {
            env,
            coop,
            binder: None,
            agents: Vec::new(),
            notificators: Vec::new(),
        }
    }

    /// The id the cooperation will have.
    pub fn id(&self) -> CoopId {
        self.coop.id
    }

    /// Sets the binder used by later [`add_agent`](Self::add_agent) calls
    /// (the environment's default one-thread dispatcher otherwise).
    pub fn set_binder(&mut self, binder: Arc<dyn Binder>) -> &mut Self {
        self.binder = Some(binder);
        self
    }

    /// What to do when one of its agents panics (for agents whose own
    /// reaction is `Inherit`); `Inherit` (the default) asks the parent, or
    /// the environment's [`Params::panic_reaction`](crate::Params).
    pub fn set_panic_reaction(&mut self, reaction: PanicReaction) -> &mut Self {
        *self.coop.reaction.lock() = reaction;
        self
    }

    /// Runs `f` on the deregistration thread once the cooperation is gone.
    pub fn on_deregistered<F>(&mut self, f: F) -> &mut Self
    where
        F: FnOnce(&Environment, CoopId, DeregReason) + Send + 'static,
    {
        self.notificators.push(Box::new(f));
        self
    }

    /// Adds an agent (made generic-free by the agents layer): its core is
    /// made here; `define` runs at registration.
    pub(crate) fn push(
        &mut self,
        new: NewAgent,
        binder: Option<Arc<dyn Binder>>,
        define: DefineFn,
    ) -> DirectMbox {
        let env: Weak<EnvInner> = Arc::downgrade(&self.env.inner);
        let coop: Weak<CoopInner> = Arc::downgrade(&self.coop);
        let core = Arc::new(AgentCore::new(
            env,
            coop,
            self.coop.id,
            self.coop.alive.clone(),
            self.coop.unfinished.clone(),
            self.env.inner.dereg_waiter.clone(),
            new,
        ));
        self.agents.push((core.clone(), binder, define));
        DirectMbox { core }
    }
}

/// Registers `builder`: every agent bound, or none. On failure every
/// agent's state (and what was buffered for it), the binders and the
/// notificators are dropped on the deregistration thread (here if this is
/// it, or if it is gone) before the error returns, and the agents' mboxes
/// refuse later messages.
pub(crate) fn register(builder: CoopBuilder) -> Result<CoopHandle, Error> {
    let env = builder.env.inner.clone();
    let mut spill = Spill::default();
    match try_register(builder, &mut spill) {
        Ok(handle) => {
            // 6. Every temporary of this thread is gone (`spill` last); now
            // release the registration guard on the deregistration thread:
            // only then can the final step run.
            drop(spill);
            let guard = handle.coop.clone();
            let released = move || {
                if let Some(coop) = guard.upgrade() {
                    coop.release();
                }
            };
            if handle.dereg.post(released).is_err() {
                tracing::error!(coop = ?handle.id, "deregistration thread is gone");
            }
            Ok(handle)
        }
        Err(e) => {
            let discarded: Vec<_> = spill.cores.iter().map(|core| core.discard()).collect();
            drop_on_dereg(&env, (discarded, spill));
            Err(e)
        }
    }
}

/// What a registration holds of its builder while it runs: clones of the
/// agents' cores and of the binders (so no drop inside it is the last),
/// and the notificators until the cooperation takes them.
#[derive(Default)]
struct Spill {
    cores: Vec<Arc<AgentCore>>,
    binders: Vec<Arc<dyn Binder>>,
    notificators: Vec<DeregNotificator>,
}

/// Drops `value` on the deregistration thread and waits until it is gone;
/// on that thread already, or once it has closed, drops it here. A panic
/// in a `Drop` is logged, not passed on.
fn drop_on_dereg<T: Send + 'static>(env: &EnvInner, value: T) {
    const WHAT: &str = "dropping the agents of a failed registration";
    let gone = |value| drop_as(DropReason::ReceiverGone, value);
    if std::thread::current().id() == env.dereg_thread() {
        contain(DEREG, WHAT, || gone(value));
        return;
    }
    let (done, dropped) = std::sync::mpsc::sync_channel::<()>(1);
    let posted = env.dereg_waiter.post_with(value, move |value| {
        contain(DEREG, WHAT, || gone(value));
        let _ = done.send(());
    });
    match posted {
        // An error means the job was dropped unrun, with the value in it.
        Ok(()) => drop(dropped.recv()),
        Err(value) => {
            contain("registering", WHAT, || gone(value));
        }
    }
}

fn try_register(builder: CoopBuilder, spill: &mut Spill) -> Result<CoopHandle, Error> {
    let CoopBuilder {
        env,
        coop,
        binder,
        agents,
        notificators,
    } = builder;
    spill.cores = agents.iter().map(|(core, _, _)| core.clone()).collect();
    spill.binders.reserve_exact(agents.len() + 1);
    spill.binders.extend(binder);
    spill.notificators = notificators;
    // Resolve binders.
    let mut resolved: Vec<(Arc<AgentCore>, Arc<dyn Binder>)> = Vec::with_capacity(agents.len());
    let mut defines: Vec<DefineFn> = Vec::with_capacity(agents.len());
    for (core, binder, define) in agents {
        defines.push(define);
        let binder = match binder {
            Some(b) => b,
            None => env.default_binder()?,
        };
        spill.binders.push(binder.clone());
        resolved.push((core, binder));
    }
    let undo_preallocation = |done: &[(Arc<AgentCore>, Arc<dyn Binder>)]| {
        for (core, binder) in done.iter().rev() {
            binder.undo_preallocation(core.info());
        }
    };
    // 1. Preallocate (may fail; undo what was done).
    for (i, (core, binder)) in resolved.iter().enumerate() {
        if let Err(e) = binder.preallocate(core.info()) {
            undo_preallocation(&resolved[..i]);
            return Err(e);
        }
    }
    // 2. Define (a panic undoes everything).
    let mut subscriptions = Vec::with_capacity(resolved.len());
    for ((core, _), define) in resolved.iter().zip(defines) {
        let defined = catch_unwind(AssertUnwindSafe(|| {
            let mut slot = core.agent.lock();
            let agent = slot.as_mut().expect("an unregistered agent has its state");
            define(&mut **agent, core, env.clone())
        }));
        match defined {
            Ok(subs) => subscriptions.push(subs),
            Err(p) => {
                undo_preallocation(&resolved);
                return Err(Error::DefinePanicked(panic_message(&*p)));
            }
        }
    }
    let unsubscribe = |resolved: &[(Arc<AgentCore>, Arc<dyn Binder>)]| {
        for (core, _) in resolved {
            let subs = std::mem::take(&mut *core.subscriptions.lock());
            for (mbox, ty) in subs {
                mbox.unsubscribe(ty, core.id);
            }
        }
    };
    // 3. Subscribe to MPMC mboxes (messages wait in each agent's buffer);
    // a unique-subscribers mbox taken already undoes the registration.
    for ((core, _), subs) in resolved.iter().zip(&subscriptions) {
        for (mbox, ty) in subs {
            if !mbox.subscribe(*ty, core.clone()) {
                unsubscribe(&resolved);
                undo_preallocation(&resolved);
                return Err(Error::UniqueMboxTaken {
                    mbox: mbox.describe(),
                    agent: core.name().into_owned(),
                });
            }
            core.subscriptions
                .lock()
                .push((Box::new(mbox.clone()), *ty));
        }
    }
    drop(subscriptions);
    // 4. Fill in and link to the parent (or the root).
    {
        let mut st = coop.state.lock();
        st.agents = resolved
            .iter()
            .map(|(core, binder)| Entry {
                core: core.clone(),
                binder: binder.clone(),
            })
            .collect();
        st.pending = resolved.len() + 1;
        // Before any agent is bound, so before any can finish.
        coop.unfinished.store(resolved.len(), Ordering::Release);
        st.notificators = std::mem::take(&mut spill.notificators);
        st.status = Status::Registered;
    }
    let id = coop.id;
    let alive = coop.alive.clone();
    let weak = Arc::downgrade(&coop);
    if let Err((e, coop)) = link(&env, coop, resolved.len()) {
        unsubscribe(&resolved);
        undo_preallocation(&resolved);
        // Take the entries and notificators back: they go with the spill.
        let (entries, notificators) = {
            let mut st = coop.state.lock();
            (
                std::mem::take(&mut st.agents),
                std::mem::take(&mut st.notificators),
            )
        };
        spill.binders.extend(entries.into_iter().map(|e| e.binder));
        spill.notificators = notificators;
        return Err(e);
    }
    // 5. Bind (cannot fail): each agent's start demand is queued.
    let reaction = match weak.upgrade() {
        // Linked, so its guard is held: this is never the last reference.
        Some(coop) => *coop.reaction.lock(),
        None => PanicReaction::Ignore,
    };
    for (core, binder) in &resolved {
        *core.coop_reaction.lock() = reaction;
        core.bind(binder.bind(core.info()));
    }
    drop(resolved);
    let dereg = env.inner.dereg_waiter.clone();
    drop(env);
    Ok(CoopHandle {
        id,
        alive,
        coop: weak,
        dereg,
    })
}

/// Puts `coop`, of `agents` agents, into its parent's child map (or the
/// root map). On failure the cooperation comes back with the error.
#[allow(clippy::result_large_err)]
fn link(
    env: &Environment,
    coop: Arc<CoopInner>,
    agents: usize,
) -> Result<(), (Error, Arc<CoopInner>)> {
    match &coop.parent {
        None => {
            let mut st = env.inner.state.lock();
            if st.stopping {
                drop(st);
                return Err((Error::Stopped, coop));
            }
            let mut reaction = coop.reaction.lock();
            if *reaction == PanicReaction::Inherit {
                *reaction = env.inner.panic_reaction;
            }
            drop(reaction);
            st.live_coops += 1;
            st.live_agents += agents;
            st.root.insert(coop.id, coop);
            Ok(())
        }
        Some(parent) => {
            let Some(parent) = parent.upgrade().and_then(downcast) else {
                return Err((Error::ParentGone, coop));
            };
            let refused = {
                let mut pst = parent.state.lock();
                if pst.status != Status::Registered {
                    Some(coop)
                } else {
                    let mut reaction = coop.reaction.lock();
                    if *reaction == PanicReaction::Inherit {
                        *reaction = *parent.reaction.lock();
                    }
                    drop(reaction);
                    {
                        let mut st = env.inner.state.lock();
                        st.live_coops += 1;
                        st.live_agents += agents;
                    }
                    pst.children.insert(coop.id, coop);
                    None
                }
            };
            // The parent cannot be finalised while this child is in its
            // map, and this child not before its guard is released (after
            // this returns), so this is never the parent's last reference.
            drop(parent);
            match refused {
                Some(coop) => Err((Error::ParentGone, coop)),
                None => Ok(()),
            }
        }
    }
}

/// Deregistration thread: the registration guard was released.
fn release(coop: &Arc<CoopInner>) {
    let finalize = {
        let mut st = coop.state.lock();
        st.pending -= 1;
        st.status == Status::FinishingAgents && st.pending == 0
    };
    if finalize {
        final_step(coop);
    }
}

/// Deregistration thread: every agent's finish has run or was refused.
fn agents_finished(coop: &Arc<CoopInner>) {
    let finalize = {
        let mut st = coop.state.lock();
        st.pending -= st.agents.len();
        st.status == Status::FinishingAgents && st.pending == 0
    };
    if finalize {
        final_step(coop);
    }
}

impl CoopLink for CoopInner {
    fn release(self: Arc<Self>) {
        release(&self);
    }

    fn agents_finished(self: Arc<Self>) {
        agents_finished(&self);
    }

    fn deregister(self: Arc<Self>, reason: DeregReason) {
        deregister(&self, reason);
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The cooperation behind a link (every `CoopLink` is a `CoopInner`).
fn downcast(link: Arc<dyn CoopLink>) -> Option<Arc<CoopInner>> {
    link.as_any().downcast::<CoopInner>().ok()
}

/// Deregistration thread: starts deregistering `coop` (children first).
pub(crate) fn deregister(coop: &Arc<CoopInner>, reason: DeregReason) {
    let children: Vec<Arc<CoopInner>> = {
        let mut st = coop.state.lock();
        if st.status != Status::Registered {
            return;
        }
        st.status = Status::DeregisteringChildren;
        st.reason = reason;
        st.children.values().cloned().collect()
    };
    if children.is_empty() {
        finish_agents(coop);
    } else {
        for child in &children {
            deregister(child, DeregReason::ParentDeregistration);
        }
    }
}

/// Deregistration thread: every child is gone; the agents finish.
fn finish_agents(coop: &Arc<CoopInner>) {
    let cores: Vec<Arc<AgentCore>> = {
        let mut st = coop.state.lock();
        st.status = Status::FinishingAgents;
        st.agents.iter().map(|e| e.core.clone()).collect()
    };
    let mut refused = 0;
    for core in &cores {
        if let FinishQueued::Refused = core.begin_finish() {
            refused += 1;
        }
    }
    drop(cores);
    // Refused agents never finish: they are counted out here, and if that
    // was the last count, every agent is done.
    if refused > 0 && coop.unfinished.fetch_sub(refused, Ordering::AcqRel) == refused {
        agents_finished(coop);
        return;
    }
    // No agents, and the guard released: nothing else will come.
    let finalize = coop.state.lock().pending == 0;
    if finalize {
        final_step(coop);
    }
}

/// Deregistration thread: the final step.
fn final_step(coop: &Arc<CoopInner>) {
    let (entries, notificators, reason) = {
        let mut st = coop.state.lock();
        st.status = Status::Finalized;
        (
            std::mem::take(&mut st.agents),
            std::mem::take(&mut st.notificators),
            st.reason,
        )
    };
    let agents = entries.len();
    // Agents first: state (with handlers), event queue (the dispatcher
    // handle behind it), undelivered demands; then unbind and drop the binders (and with them dispatchers
    // whose last user this was, closing their workers).
    // User code (an agent's or a message's `Drop`, a binder) is contained:
    // a panic in it is logged, and the final step goes on, so the
    // cooperation is always counted out.
    for entry in &entries {
        let payload = entry.core.take_payload();
        contain(DEREG, "dropping an agent in its final step", || {
            drop_as(DropReason::ReceiverGone, payload)
        });
        contain(DEREG, "unbinding an agent", || {
            entry.binder.unbind(entry.core.info())
        });
        let subs = std::mem::take(&mut *entry.core.subscriptions.lock());
        for (mbox, ty) in subs {
            mbox.unsubscribe(ty, entry.core.id);
        }
    }
    for entry in entries {
        contain(DEREG, "dropping a binder in a final step", || drop(entry));
    }
    let env = coop.env.upgrade();
    // Unlink.
    let mut parent_ready = None;
    let removed: Option<Arc<dyn CoopLink>> = match &coop.parent {
        Some(parent) => parent.upgrade().and_then(downcast).and_then(|parent| {
            let (removed, ready) = {
                let mut pst = parent.state.lock();
                let removed = pst.children.remove(&coop.id);
                let ready = pst.status == Status::DeregisteringChildren && pst.children.is_empty();
                (removed, ready)
            };
            if ready {
                parent_ready = Some(parent);
            }
            removed.map(|c| c as Arc<dyn CoopLink>)
        }),
        None => env
            .as_ref()
            .and_then(|env| env.state.lock().root.remove(&coop.id)),
    };
    coop.alive.store(false, Ordering::Release);
    // Notifications.
    if let Some(env) = &env {
        let handle = Environment { inner: env.clone() };
        for notify in notificators {
            contain(DEREG, "running a deregistration notificator", || {
                notify(&handle, coop.id, reason)
            });
        }
    }
    // Counted out only now: when the count reaches zero everything above
    // has been dropped.
    if let Some(env) = &env {
        env.coop_gone(agents);
    }
    drop(removed);
    if let Some(parent) = parent_ready {
        finish_agents(&parent);
    }
}

/// Making and registering cooperations.
impl Environment {
    /// A new root cooperation to fill and register.
    pub fn make_coop(&self) -> CoopBuilder {
        CoopBuilder::new(self.clone(), None)
    }

    /// A new child cooperation of `parent`; it is deregistered (and gone)
    /// before its parent.
    pub fn make_child_coop(&self, parent: &CoopHandle) -> CoopBuilder {
        CoopBuilder::new(self.clone(), Some(parent))
    }

    /// Registers a cooperation: all its agents bound and started, or (on
    /// error) none, with everything already done undone.
    pub fn register_coop(&self, coop: CoopBuilder) -> Result<CoopHandle, Error> {
        register(coop)
    }
}
