//! The environment: [`launch`], [`Environment`], its deregistration thread
//! and the bookkeeping of every thread it starts.
//!
//! Invariant 1: the environment has a private [`Reaper`] that joins every
//! thread it starts, and one deregistration [`Worker`] on which every
//! cooperation's final step runs, and one timer thread. `launch` returns
//! only after the count of cooperations is zero (every agent's state
//! dropped), the deregistration thread, the timer thread and every
//! dispatcher thread have been joined (waited on through
//! their [`ThreadHandle`]s from the launching thread, which is none of
//! them) and the reaper itself is shut down.
//!
//! Lock order: a cooperation's state before `EnvInner::state`.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;

use mp_thread::{ExitStatus, Reaper, ThreadHandle, Waiter, Worker};
use parking_lot::{Condvar, Mutex};

use crate::binder::Binder;
use crate::core::{AgentCore, CoopLink, EnvLink};
use crate::error::Error;
use crate::ids::{CoopId, DeregReason, PanicReaction};
use crate::mbox::Mbox;
use crate::mchain::{Mchain, MchainParams, MchainRegistry};
use crate::request::{Answer, Request, RequestId};
use crate::stats::Quantity;
use crate::stats_controller::{StatsController, StatsHost, StatsState};
use crate::target::Target;
use crate::timer::{TimerHandle, Timers};
use crate::trace::DeliveryFilter;
use crate::worker_queue::WorkerQueue;
use std::time::Duration;

pub(crate) struct EnvState {
    /// Shutdown has begun: no new cooperations, every one deregistered.
    pub(crate) stopping: bool,
    /// `stop` was called; shutdown begins once no stop guard is left.
    stop_requested: bool,
    /// Stop guards not yet removed.
    guards: usize,
    /// The callbacks of guards not yet removed, by guard id, until stop is
    /// requested (then they are taken and called).
    guard_callbacks: HashMap<u64, StopCallback>,
    next_guard: u64,
    /// Stop when the count of cooperations drops to zero (after `init`).
    autoshutdown: bool,
    /// Set by `launch` when it takes the thread list: no thread may start.
    closed: bool,
    pub(crate) root: HashMap<CoopId, Arc<dyn CoopLink>>,
    pub(crate) live_coops: usize,
    /// Agents of the cooperations counted in `live_coops`.
    pub(crate) live_agents: usize,
    named: HashMap<String, Mbox>,
    /// Every thread started: its handle, and its mailbox if it is a worker.
    threads: Vec<(ThreadHandle, Option<Waiter>)>,
}

pub(crate) struct EnvInner {
    reaper: Reaper,
    /// The last level of panic reactions (never `Inherit`).
    pub(crate) panic_reaction: PanicReaction,
    /// [`Params::busy_wait`], resolved.
    pub(crate) busy_wait: Duration,
    pub(crate) timers: Arc<Timers>,
    /// Taken (and dropped, closing it) by `launch` at the very end.
    dereg: Mutex<Option<Worker>>,
    pub(crate) dereg_waiter: Waiter,
    dereg_thread: ThreadId,
    pub(crate) state: Mutex<EnvState>,
    cv: Condvar,
    /// The default dispatcher, held through its binder (`disp` makes it).
    pub(crate) default_disp: Mutex<Option<Arc<dyn Binder>>>,
    /// Chains made here; closed when the shutdown begins.
    pub(crate) mchains: Mutex<MchainRegistry>,
    /// Data sources and the periodic distribution.
    pub(crate) stats: StatsState,
}

impl EnvLink for EnvInner {
    fn stop(self: Arc<Self>) {
        Environment { inner: self }.stop();
    }

    fn timers(&self) -> &Arc<Timers> {
        &self.timers
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl StatsHost for EnvInner {
    fn stats(&self) -> &StatsState {
        &self.stats
    }

    fn own_stats(&self) -> Vec<Quantity> {
        EnvInner::own_stats(self)
    }

    fn is_stopping(&self) -> bool {
        self.state.lock().stopping
    }

    fn timers(&self) -> &Arc<Timers> {
        &self.timers
    }
}

impl EnvInner {
    /// The environment's own figures (see [`StatsController`]), each lock
    /// taken in turn, none while another is held.
    pub(crate) fn own_stats(&self) -> Vec<Quantity> {
        let (coops, agents, named) = {
            let st = self.state.lock();
            (st.live_coops, st.live_agents, st.named.len())
        };
        let (single_shot, periodic) = self.timers.counts();
        let chains = self.mchains.lock().live();
        vec![
            Quantity::new("coop_repository", "coop.reg.count", coops),
            Quantity::new("coop_repository", "agent.count", agents),
            Quantity::new("mbox_repository", "named_mbox.count", named),
            Quantity::new("timer_thread", "single_shot.count", single_shot),
            Quantity::new("timer_thread", "periodic.count", periodic),
            Quantity::new("mchain_repository", "mchain.count", chains),
        ]
    }

    /// The deregistration thread's id.
    pub(crate) fn dereg_thread(&self) -> ThreadId {
        self.dereg_thread
    }

    /// A cooperation of `agents` agents finished its final step
    /// (deregistration thread).
    pub(crate) fn coop_gone(self: &Arc<Self>, agents: usize) {
        let autostop = {
            let mut st = self.state.lock();
            st.live_coops -= 1;
            st.live_agents -= agents;
            if st.live_coops == 0 {
                self.cv.notify_all();
            }
            st.live_coops == 0 && st.autoshutdown
        };
        if autostop {
            Environment {
                inner: self.clone(),
            }
            .stop();
        }
    }

    /// Begins the shutdown if it was asked for and no guard is left.
    fn maybe_begin_shutdown(self: &Arc<Self>) {
        {
            let mut st = self.state.lock();
            if st.stopping || !st.stop_requested || st.guards > 0 {
                return;
            }
            st.stopping = true;
            self.cv.notify_all();
        }
        // Wake whoever is blocked on a chain (an agent among them) before
        // cooperations are deregistered.
        MchainRegistry::close_all(&self.mchains);
        let weak = Arc::downgrade(self);
        let _ = self.dereg_waiter.post(move || {
            if let Some(env) = weak.upgrade() {
                // Deregistration thread: every root cooperation goes.
                let roots: Vec<Arc<dyn CoopLink>> =
                    env.state.lock().root.values().cloned().collect();
                for coop in roots {
                    coop.deregister(DeregReason::Shutdown);
                }
            }
        });
    }
}

/// Options for [`launch_with`].
#[derive(Debug, Clone)]
pub struct Params {
    /// Stop the environment when its last cooperation is gone (checked
    /// first when `init` returns, so an `init` that registers nothing
    /// stops it at once). **On by default**, as in SObjectizer: an
    /// environment with no cooperation left has no agent that could ever
    /// act again, and SObjectizer programs (its hello world: an agent that
    /// deregisters its cooperation) end that way. Turn it off for an
    /// environment that waits, empty, for cooperations registered later
    /// from outside (it then runs until [`Environment::stop`]).
    pub autoshutdown: bool,
    /// The reaction to a panicking agent when the agent and its
    /// cooperations all say `Inherit`. Unset (or `Inherit`), it is
    /// [`PanicReaction::DeregisterCoop`]: the panicking agent's cooperation
    /// goes, with [`DeregReason::Panic`](crate::DeregReason::Panic) for its
    /// notifications (and a parent's supervision) to see — an agent whose
    /// handler panicked half way may hold broken state, so it does not go
    /// on by default, and one agent's bug does not abort the process
    /// either (as SObjectizer's default would). Set `Ignore` to keep such
    /// agents running, `Abort` for SObjectizer's behaviour.
    pub panic_reaction: Option<PanicReaction>,
    /// How long a single-threaded dispatcher's thread (one thread, active
    /// object, active group, a priority's dedicated thread) and the
    /// deregistration thread keep polling for more work once they run out,
    /// before they sleep.
    /// Waking a sleeping thread costs tens of microseconds on small VMs —
    /// far more than a message — so a short poll keeps request/reply
    /// between threads fast, at the price of that much CPU after each
    /// burst. `None` means [`DEFAULT_BUSY_WAIT`]; `Some(Duration::ZERO)`
    /// sleeps at once.
    pub busy_wait: Option<Duration>,
    /// Traces the deliveries this filter selects from the start (see
    /// [`Environment::set_delivery_tracing`]); `None` (the default): off.
    pub delivery_tracing: Option<DeliveryFilter>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            autoshutdown: true,
            panic_reaction: None,
            busy_wait: None,
            delivery_tracing: None,
        }
    }
}

/// The default of [`Params::busy_wait`]: about two wake-ups of a sleeping
/// thread on a 2-vCPU VM.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_micros(50);

/// Called once when the environment's stop is requested, for a guard
/// added with [`Environment::add_stop_guard_with`].
type StopCallback = Box<dyn FnOnce() + Send>;

/// Delays the shutdown of an environment until it is removed (dropped or
/// [`remove`](StopGuard::remove)d): for agents that need to finish
/// something before their cooperations are deregistered.
#[derive(Debug)]
pub struct StopGuard {
    env: Weak<EnvInner>,
    id: u64,
}

impl StopGuard {
    /// Removes the guard (as dropping it does).
    pub fn remove(self) {}
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if let Some(env) = self.env.upgrade() {
            let callback = {
                let mut st = env.state.lock();
                st.guards -= 1;
                st.guard_callbacks.remove(&self.id)
            };
            // Removed before the stop: never called.
            drop(callback);
            env.maybe_begin_shutdown();
        }
    }
}

/// A handle to a running environment. Clone it freely.
#[derive(Clone)]
pub struct Environment {
    pub(crate) inner: Arc<EnvInner>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("coops", &self.coop_count())
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

/// What `launch` saw of the threads it ran.
#[derive(Debug, Clone)]
pub struct Report {
    /// Exit status of every thread the environment started (the
    /// deregistration thread, the timer thread and every dispatcher
    /// thread), all joined.
    pub threads: Vec<ExitStatus>,
    /// The reaper thread (the only one that joined them).
    pub reaper_thread: ThreadId,
    /// The deregistration thread.
    pub dereg_thread: ThreadId,
}

/// Starts an environment, runs `init` on the calling thread, then blocks
/// until [`Environment::stop`] is called — or, with
/// [`Params::autoshutdown`] (the default), its last cooperation is gone —
/// and the shutdown has completed:
/// every cooperation deregistered, every agent's state dropped, every
/// thread the environment started joined. A panic in `init` stops the
/// environment and is resumed once it is down.
pub fn launch<F>(init: F) -> Result<Report, Error>
where
    F: FnOnce(&Environment),
{
    launch_with(Params::default(), init)
}

/// [`launch`] with options.
pub fn launch_with<F>(params: Params, init: F) -> Result<Report, Error>
where
    F: FnOnce(&Environment),
{
    let reaper = Reaper::new("mp-agents-reaper")?;
    let busy_wait = params.busy_wait.unwrap_or(DEFAULT_BUSY_WAIT);
    // Fed in bursts (a deregistration, then each agent's finish): polling
    // between them spares a wake-up per job.
    let dereg = match Worker::spawn_busy_waiting(&reaper, "mp-agents-dereg", busy_wait) {
        Ok(w) => w,
        Err(e) => {
            let _ = reaper.shutdown();
            return Err(e.into());
        }
    };
    let (timers, timer_thread) = match Timers::start(&reaper) {
        Ok(t) => t,
        Err(e) => {
            drop(dereg);
            let _ = reaper.shutdown();
            return Err(e.into());
        }
    };
    let env = Environment {
        inner: Arc::new(EnvInner {
            panic_reaction: match params.panic_reaction {
                None | Some(PanicReaction::Inherit) => PanicReaction::DeregisterCoop,
                Some(r) => r,
            },
            busy_wait,
            timers,
            reaper: reaper.clone(),
            dereg_waiter: dereg.waiter().clone(),
            dereg_thread: dereg.thread_id(),
            state: Mutex::new(EnvState {
                stopping: false,
                stop_requested: false,
                guards: 0,
                guard_callbacks: HashMap::new(),
                next_guard: 0,
                autoshutdown: false,
                closed: false,
                root: HashMap::new(),
                live_coops: 0,
                live_agents: 0,
                named: HashMap::new(),
                threads: vec![
                    (dereg.thread_handle(), Some(dereg.waiter().clone())),
                    (timer_thread, None),
                ],
            }),
            dereg: Mutex::new(Some(dereg)),
            cv: Condvar::new(),
            default_disp: Mutex::new(None),
            mchains: Mutex::default(),
            stats: StatsState::new(),
        }),
    };
    if let Some(filter) = &params.delivery_tracing {
        env.set_delivery_tracing(Some(filter.clone()));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| init(&env)));
    if outcome.is_err() {
        env.stop();
    } else if params.autoshutdown {
        let idle = {
            let mut st = env.inner.state.lock();
            st.autoshutdown = true;
            st.live_coops == 0
        };
        if idle {
            env.stop();
        }
    }
    let inner = &env.inner;
    {
        let mut st = inner.state.lock();
        while !(st.stopping && st.live_coops == 0) {
            inner.cv.wait(&mut st);
        }
    }
    // Every cooperation is gone. Close, in SObjectizer's order, the
    // deregistration thread, the timer thread (it drops the timers still
    // armed) and the default dispatcher, dropping their last handles here;
    // the waits below see them joined.
    let dereg = inner.dereg.lock().take();
    drop(dereg);
    inner.timers.close();
    let default_disp = inner.default_disp.lock().take();
    drop(default_disp);
    let threads = {
        let mut st = inner.state.lock();
        st.closed = true;
        std::mem::take(&mut st.threads)
    };
    let mut report = Report {
        threads: Vec::with_capacity(threads.len()),
        reaper_thread: reaper.thread_id(),
        dereg_thread: inner.dereg_thread,
    };
    let mut failure = None;
    for (handle, mailbox) in threads {
        if let Some(mailbox) = &mailbox {
            if !mailbox.is_closed() && !handle.is_joined() {
                // A dispatcher handle kept outside every cooperation.
                tracing::warn!(
                    thread = handle.name(),
                    "dispatcher still held at shutdown; closing it"
                );
                mailbox.close();
            }
        }
        drop(mailbox);
        match handle.wait() {
            Ok(status) => report.threads.push(status),
            Err(e) => failure = Some(e),
        }
    }
    env.set_delivery_tracing(None);
    drop(env);
    if let Err(e) = reaper.shutdown() {
        failure.get_or_insert(e);
    }
    if let Err(p) = outcome {
        resume_unwind(p);
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}

impl Environment {
    /// The environment of `core`'s agent, while it is alive.
    pub(crate) fn of_core(core: &AgentCore) -> Option<Environment> {
        let inner = core.env.upgrade()?.as_any().downcast::<EnvInner>().ok()?;
        Some(Environment { inner })
    }

    pub(crate) fn from_weak(weak: &Weak<EnvInner>) -> Option<Environment> {
        weak.upgrade().map(|inner| Environment { inner })
    }

    /// Asks the environment to stop: once no [`StopGuard`] is left, every
    /// cooperation is deregistered (reason `Shutdown`) and `launch` returns
    /// when all are gone. Its mchains are closed, retaining their contents,
    /// when the shutdown begins. Idempotent; returns at once.
    pub fn stop(&self) {
        let callbacks = {
            let mut st = self.inner.state.lock();
            st.stop_requested = true;
            std::mem::take(&mut st.guard_callbacks)
        };
        // Each guard's callback once, on this thread, outside the lock.
        for (_, callback) in callbacks {
            crate::contain::contain("stopping", "running a stop guard's callback", callback);
        }
        self.inner.maybe_begin_shutdown();
    }

    /// Traces the deliveries `filter` selects — who sent which message to
    /// whom, which handler took it, or why it was dropped — as `tracing`
    /// events (target `mp_agents::delivery`, level `TRACE`: enable them in
    /// the subscriber, e.g. `RUST_LOG=mp_agents::delivery=trace`); `None`
    /// turns it off. Off, it costs one relaxed atomic load per delivery.
    pub fn set_delivery_tracing(&self, filter: Option<DeliveryFilter>) {
        crate::trace::set(Arc::as_ptr(&self.inner) as usize, filter);
    }

    /// Adds a stop guard; refused once the shutdown has begun.
    pub fn add_stop_guard(&self) -> Result<StopGuard, Error> {
        self.add_guard(None)
    }

    /// Adds a stop guard whose `on_stop` is called once, on the thread
    /// that calls [`stop`](Self::stop), when the stop is requested
    /// (SObjectizer's `stop_guard_t::stop`): tell whoever holds the guard
    /// to finish up and remove it. Called at once (on this thread) if the
    /// stop was requested already; never if the guard is removed first.
    /// Refused once the shutdown has begun.
    pub fn add_stop_guard_with<F>(&self, on_stop: F) -> Result<StopGuard, Error>
    where
        F: FnOnce() + Send + 'static,
    {
        self.add_guard(Some(Box::new(on_stop)))
    }

    fn add_guard(&self, on_stop: Option<StopCallback>) -> Result<StopGuard, Error> {
        let (guard, late) = {
            let mut st = self.inner.state.lock();
            if st.stopping {
                return Err(Error::Stopped);
            }
            st.guards += 1;
            let id = st.next_guard;
            st.next_guard += 1;
            let late = match on_stop {
                Some(callback) if st.stop_requested => Some(callback),
                Some(callback) => {
                    st.guard_callbacks.insert(id, callback);
                    None
                }
                None => None,
            };
            let guard = StopGuard {
                env: Arc::downgrade(&self.inner),
                id,
            };
            (guard, late)
        };
        if let Some(callback) = late {
            crate::contain::contain("stopping", "running a stop guard's callback", callback);
        }
        Ok(guard)
    }

    /// True once [`stop`](Self::stop) was called (the shutdown may still
    /// wait for stop guards).
    pub fn is_stop_requested(&self) -> bool {
        self.inner.state.lock().stop_requested
    }

    /// True once the shutdown has begun (stop requested, no guard left).
    pub fn is_stopping(&self) -> bool {
        self.inner.state.lock().stopping
    }

    /// Cooperations registered and not yet finally deregistered.
    pub fn coop_count(&self) -> usize {
        self.inner.state.lock().live_coops
    }

    /// True on one of the threads this environment started (its
    /// deregistration, timer and reaper threads, its dispatchers' workers).
    pub fn owns_current_thread(&self) -> bool {
        let me = std::thread::current().id();
        if me == self.inner.dereg_thread || me == self.inner.reaper.thread_id() {
            return true;
        }
        self.inner
            .state
            .lock()
            .threads
            .iter()
            .any(|(handle, _)| handle.id() == me)
    }

    /// The deregistration thread's id.
    pub fn dereg_thread_id(&self) -> ThreadId {
        self.inner.dereg_thread
    }

    /// The id of the reaper thread that joins the environment's threads.
    pub fn reaper_thread_id(&self) -> ThreadId {
        self.inner.reaper.thread_id()
    }

    /// Delivers `msg` to `to` after `delay` (on the environment's timer
    /// thread), fire and forget (SObjectizer's `send_delayed`); see
    /// [`schedule_delayed`](Self::schedule_delayed) for one that can be
    /// cancelled. The message is moved to the receiver when it fires. Any
    /// delay is accepted: one past the clock's range (`Duration::MAX`)
    /// never comes, and the message waits until the environment stops.
    pub fn send_delayed<M, T>(&self, to: &T, msg: M, delay: Duration)
    where
        M: Send + 'static,
        T: Target<M> + Clone,
    {
        self.schedule_delayed(to, msg, delay).detach();
    }

    /// [`send_delayed`](Self::send_delayed) with a handle: the message is
    /// not delivered if the handle is cancelled, or dropped, first.
    pub fn schedule_delayed<M, T>(&self, to: &T, msg: M, delay: Duration) -> TimerHandle
    where
        M: Send + 'static,
        T: Target<M> + Clone,
    {
        let to = to.clone();
        let mut msg = Some(msg);
        self.inner.timers.add(
            delay,
            None,
            Box::new(move || {
                if let Some(msg) = msg.take() {
                    to.deliver(msg);
                }
            }),
        )
    }

    /// Delivers a clone of `msg` to `to` after `delay`, then every
    /// `period`, until the handle is cancelled or dropped (or, once
    /// [`detach`](TimerHandle::detach)ed, until the environment stops). A
    /// zero `period` delivers once; a period past the clock's range
    /// delivers once and then stays armed, never due.
    pub fn send_periodic<M, T>(
        &self,
        to: &T,
        msg: M,
        delay: Duration,
        period: Duration,
    ) -> TimerHandle
    where
        M: Clone + Send + 'static,
        T: Target<M> + Clone,
    {
        let to = to.clone();
        self.inner.timers.add(
            delay,
            Some(period),
            Box::new(move || to.deliver(msg.clone())),
        )
    }

    /// Sends `query` to `to` (see [`ask`](crate::ask)) as a [`Request`] without
    /// waiting; its outcome is delivered to `reply_to` (an agent's mbox, an
    /// mchain) as an [`Answer<R>`](crate::Answer) carrying the returned
    /// id: the reply, or why there is none — at the latest a timeout after
    /// `timeout` (any `Duration`; one past the clock's range never comes).
    /// [`ask`](crate::ask) is the blocking form.
    pub fn request<Q, R, To, T>(
        &self,
        to: &To,
        query: Q,
        timeout: Duration,
        reply_to: &T,
    ) -> RequestId
    where
        Q: Send + 'static,
        R: Send + 'static,
        To: Target<Request<Q, R>>,
        T: Target<Answer<R>> + Clone,
    {
        crate::request::request(&self.inner.timers, to, query, timeout, reply_to)
    }

    /// Timers armed on the timer thread and not yet fired (delayed and
    /// periodic messages, agents' state time limits); one being delivered
    /// right now is not counted.
    pub fn timer_count(&self) -> usize {
        self.inner.timers.armed()
    }

    /// Makes a message chain. The environment closes it (retaining its
    /// contents, see [`CloseMode::RetainContent`](crate::CloseMode::RetainContent)) when its shutdown
    /// begins, so no receiver or sender stays blocked on it; a chain made
    /// after that is closed from the start. The chain itself may outlive
    /// the environment.
    pub fn create_mchain(&self, params: MchainParams) -> Mchain {
        self.inner.mchains.lock().make(params)
    }

    /// A new anonymous MPMC mbox.
    pub fn create_mbox(&self) -> Mbox {
        Mbox::new(None)
    }

    /// A new anonymous unique-subscribers mbox: at most one subscriber per
    /// message type, messages moved to it (no `Clone` needed).
    pub fn create_unique_mbox(&self) -> crate::UniqueMbox {
        crate::UniqueMbox {
            mbox: Mbox::new_unique(None),
        }
    }

    /// The environment's run-time stats: turn periodic distribution on,
    /// read a snapshot, add a data source.
    pub fn stats_controller(&self) -> StatsController<'_> {
        let weak: Weak<EnvInner> = Arc::downgrade(&self.inner);
        StatsController::new(&*self.inner, weak)
    }

    /// The MPMC mbox called `name`, made on first use.
    pub fn named_mbox(&self, name: &str) -> Mbox {
        self.inner
            .state
            .lock()
            .named
            .entry(name.to_string())
            .or_insert_with(|| Mbox::new(Some(name.to_string())))
            .clone()
    }

    /// [`Params::busy_wait`] of this environment, resolved.
    pub fn busy_wait(&self) -> Duration {
        self.inner.busy_wait
    }

    /// A worker (see [`spawn_worker`](Self::spawn_worker)) with the demand
    /// queue the single-threaded dispatchers bind agents to; `dispatcher`
    /// (its stats prefix) labels the count of demands it runs.
    pub(crate) fn spawn_worker_queue(
        &self,
        name: &str,
        dispatcher: &str,
    ) -> Result<Arc<WorkerQueue>, Error> {
        let worker = self.spawn_worker(name)?;
        Ok(Arc::new(WorkerQueue::new(
            worker,
            self.inner.busy_wait,
            crate::agent_metrics::demands_handled(dispatcher),
        )))
    }

    /// Starts a worker thread owned by this environment (its reaper joins
    /// it; `launch` waits for it). For dispatchers.
    pub fn spawn_worker(&self, name: &str) -> Result<Worker, Error> {
        let mut st = self.inner.state.lock();
        if st.closed {
            return Err(Error::Stopped);
        }
        let worker = Worker::spawn_with(&self.inner.reaper, name)?;
        st.threads
            .push((worker.thread_handle(), Some(worker.waiter().clone())));
        Ok(worker)
    }
}
