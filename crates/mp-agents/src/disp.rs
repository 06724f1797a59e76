//! Dispatchers, the [`Binder`] contract and the [`EventQueue`] an agent's
//! demands are pushed to; the single-threaded dispatchers (one thread,
//! active object, active group). The pools are in `pool`, the priority
//! dispatchers in `prio`.
//!
//! A dispatcher owns worker threads ([`mp_thread::Worker`]); a binder puts
//! an agent on them by handing its core an [`EventQueue`] (here a
//! `WorkerQueue`: demands by value in a FIFO the worker drains in
//! batches; a bare `Worker` is one too, a job per demand). Cooperations hold
//! binders and agents hold event queues, both hold their dispatcher, so a
//! dispatcher shuts down with its last user: dropping it drops its last
//! `Worker` handles, which only closes their mailboxes — the environment's
//! reaper joins the threads (invariant 1). Because the final step of a
//! cooperation runs on the deregistration thread, that last drop happens
//! there, never on one of the dispatcher's own workers.
//!
//! Every dispatcher is a [`StatsSource`] of its environment (held weakly:
//! being observed never keeps it alive), named `disp/<kind>/<name>`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use mp_thread::ThreadHandle;
use parking_lot::Mutex;

use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::{EnvInner, Environment};
use crate::error::Error;
use crate::ids::{AgentId, AgentInfo};
use crate::stats::{Quantity, StatsSource};
use crate::worker_queue::WorkerQueue;

/// All its agents on one worker thread.
#[derive(Clone)]
pub struct OneThreadDispatcher {
    inner: Arc<OneThreadInner>,
}

struct OneThreadInner {
    queue: Arc<WorkerQueue>,
    name: String,
    /// Agents bound (for the stats).
    bound: AtomicUsize,
}

/// Makes `source` one of `env`'s stats sources.
pub(crate) fn add_source<S: StatsSource>(env: &Environment, source: &Arc<S>) {
    let weak: Weak<S> = Arc::downgrade(source);
    env.inner.stats.registry.add(weak);
}

/// A queue whose [`SharedQueueBinder`] counts the agents bound to it.
pub(crate) trait CountsBound: EventQueue {
    /// Agents bound now.
    fn bound(&self) -> &AtomicUsize;
}

impl std::fmt::Debug for OneThreadDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneThreadDispatcher")
            .field("worker", self.inner.queue.worker())
            .finish()
    }
}

impl OneThreadDispatcher {
    /// Starts the dispatcher's thread, called `name`.
    pub fn new(env: &Environment, name: &str) -> Result<OneThreadDispatcher, Error> {
        let inner = Arc::new(OneThreadInner {
            queue: env.spawn_worker_queue(name)?,
            name: name.to_string(),
            bound: AtomicUsize::new(0),
        });
        add_source(env, &inner);
        Ok(OneThreadDispatcher { inner })
    }

    /// A binder that puts agents on this dispatcher's thread.
    pub fn binder(&self) -> Arc<dyn Binder> {
        self.inner.clone()
    }

    /// The dispatcher's thread, to see it joined.
    pub fn thread_handle(&self) -> ThreadHandle {
        self.inner.queue.thread_handle()
    }
}

impl Binder for OneThreadInner {
    fn preallocate(&self, _agent: AgentInfo) -> Result<(), Error> {
        Ok(())
    }

    fn undo_preallocation(&self, _agent: AgentInfo) {}

    fn bind(&self, _agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.bound.fetch_add(1, Ordering::Relaxed);
        self.queue.clone()
    }

    fn unbind(&self, _agent: AgentInfo) {
        self.bound.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StatsSource for OneThreadInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let prefix = format!("disp/ot/{}", self.name);
        out.push(Quantity::new(
            prefix.clone(),
            "agent.count",
            self.bound.load(Ordering::Relaxed),
        ));
        out.push(Quantity::new(prefix, "demands.count", self.queue.pending()));
    }
}

/// Binds every agent to one queue the dispatcher shares among them (it
/// keeps nothing per agent): the pools and prio_one_thread.
pub(crate) struct SharedQueueBinder<Q: CountsBound>(pub(crate) Arc<Q>);

impl<Q: CountsBound> Binder for SharedQueueBinder<Q> {
    fn preallocate(&self, _agent: AgentInfo) -> Result<(), Error> {
        Ok(())
    }

    fn undo_preallocation(&self, _agent: AgentInfo) {}

    fn bind(&self, _agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.0.bound().fetch_add(1, Ordering::Relaxed);
        self.0.clone()
    }

    fn unbind(&self, _agent: AgentInfo) {
        self.0.bound().fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker thread per agent ("active object").
#[derive(Clone)]
pub struct ActiveObjDispatcher {
    inner: Arc<ActiveObjInner>,
}

struct ActiveObjInner {
    env: Weak<EnvInner>,
    name: String,
    workers: Mutex<HashMap<AgentId, Arc<WorkerQueue>>>,
}

impl std::fmt::Debug for ActiveObjDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveObjDispatcher")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl ActiveObjDispatcher {
    /// A dispatcher whose threads are called `name-<agent>`; they start as
    /// agents are registered and stop as they are deregistered.
    pub fn new(env: &Environment, name: &str) -> ActiveObjDispatcher {
        let inner = Arc::new(ActiveObjInner {
            env: Arc::downgrade(&env.inner),
            name: name.to_string(),
            workers: Mutex::default(),
        });
        add_source(env, &inner);
        ActiveObjDispatcher { inner }
    }

    /// A binder that gives each agent its own thread.
    pub fn binder(&self) -> Arc<dyn Binder> {
        self.inner.clone()
    }

    /// Threads currently running for agents.
    pub fn thread_count(&self) -> usize {
        self.inner.workers.lock().len()
    }
}

impl Binder for ActiveObjInner {
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error> {
        let env = Environment::from_weak(&self.env).ok_or(Error::Stopped)?;
        let queue = env.spawn_worker_queue(&format!("{}-{}", self.name, agent.id.0))?;
        drop(env);
        self.workers.lock().insert(agent.id, queue);
        Ok(())
    }

    fn undo_preallocation(&self, agent: AgentInfo) {
        let worker = self.workers.lock().remove(&agent.id);
        drop(worker);
    }

    fn bind(&self, agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.workers
            .lock()
            .get(&agent.id)
            .cloned()
            .expect("bind follows a successful preallocate")
    }

    fn unbind(&self, agent: AgentInfo) {
        let worker = self.workers.lock().remove(&agent.id);
        drop(worker);
    }
}

impl StatsSource for ActiveObjInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let queues: Vec<Arc<WorkerQueue>> = self.workers.lock().values().cloned().collect();
        let prefix = format!("disp/ao/{}", self.name);
        let demands = queues.iter().map(|q| q.pending()).sum();
        out.push(Quantity::new(prefix.clone(), "agent.count", queues.len()));
        out.push(Quantity::new(prefix.clone(), "thread.count", queues.len()));
        out.push(Quantity::new(prefix, "demands.count", demands));
    }
}

/// A worker thread per named group of agents ("active group"): agents
/// bound with the same group name share a thread, which starts with the
/// group's first agent and stops when its last agent is unbound.
#[derive(Clone)]
pub struct ActiveGroupDispatcher {
    inner: Arc<ActiveGroupInner>,
}

struct ActiveGroupInner {
    env: Weak<EnvInner>,
    name: String,
    /// Group name → (its worker, agents preallocated or bound on it).
    groups: Mutex<HashMap<String, (Arc<WorkerQueue>, usize)>>,
    /// Which group each agent is in.
    members: Mutex<HashMap<AgentId, String>>,
}

impl std::fmt::Debug for ActiveGroupDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveGroupDispatcher")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl ActiveGroupDispatcher {
    /// A dispatcher whose group threads are called `name-<group>`.
    pub fn new(env: &Environment, name: &str) -> ActiveGroupDispatcher {
        let inner = Arc::new(ActiveGroupInner {
            env: Arc::downgrade(&env.inner),
            name: name.to_string(),
            groups: Mutex::default(),
            members: Mutex::default(),
        });
        add_source(env, &inner);
        ActiveGroupDispatcher { inner }
    }

    /// A binder that puts agents on the thread of `group`.
    pub fn binder(&self, group: &str) -> Arc<dyn Binder> {
        Arc::new(GroupBinder {
            disp: self.inner.clone(),
            group: group.to_string(),
        })
    }

    /// Groups that currently have a thread.
    pub fn group_count(&self) -> usize {
        self.inner.groups.lock().len()
    }
}

impl ActiveGroupInner {
    /// One agent fewer in `agent`'s group; the group's worker handle comes
    /// back when it was the last, for the caller to drop outside the lock.
    fn leave(&self, agent: AgentId) -> Option<Arc<WorkerQueue>> {
        let group = self.members.lock().remove(&agent)?;
        let mut groups = self.groups.lock();
        let (_, count) = groups.get_mut(&group)?;
        *count -= 1;
        if *count == 0 {
            groups.remove(&group).map(|(queue, _)| queue)
        } else {
            None
        }
    }
}

impl StatsSource for ActiveGroupInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let mut groups: Vec<(String, Arc<WorkerQueue>, usize)> = self
            .groups
            .lock()
            .iter()
            .map(|(name, (queue, count))| (name.clone(), queue.clone(), *count))
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        let prefix = format!("disp/ag/{}", self.name);
        let agents = groups.iter().map(|g| g.2).sum();
        let demands = groups.iter().map(|g| g.1.pending()).sum();
        out.push(Quantity::new(prefix.clone(), "agent.count", agents));
        out.push(Quantity::new(prefix.clone(), "thread.count", groups.len()));
        out.push(Quantity::new(prefix.clone(), "demands.count", demands));
        for (group, queue, count) in groups {
            let prefix = format!("{prefix}/{group}");
            out.push(Quantity::new(prefix.clone(), "agent.count", count));
            out.push(Quantity::new(prefix, "demands.count", queue.pending()));
        }
    }
}

struct GroupBinder {
    disp: Arc<ActiveGroupInner>,
    group: String,
}

impl Binder for GroupBinder {
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error> {
        let agent = agent.id;
        let disp = &self.disp;
        let mut groups = disp.groups.lock();
        if let Some((_, count)) = groups.get_mut(&self.group) {
            *count += 1;
        } else {
            let env = Environment::from_weak(&disp.env).ok_or(Error::Stopped)?;
            let queue = env.spawn_worker_queue(&format!("{}-{}", disp.name, self.group))?;
            drop(env);
            groups.insert(self.group.clone(), (queue, 1));
        }
        drop(groups);
        disp.members.lock().insert(agent, self.group.clone());
        Ok(())
    }

    fn undo_preallocation(&self, agent: AgentInfo) {
        drop(self.disp.leave(agent.id));
    }

    fn bind(&self, _agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.disp
            .groups
            .lock()
            .get(&self.group)
            .map(|(queue, _)| queue.clone())
            .expect("bind follows a successful preallocate")
    }

    fn unbind(&self, agent: AgentInfo) {
        drop(self.disp.leave(agent.id));
    }
}

/// The environment's default dispatcher.
impl Environment {
    /// The binder of the environment's default one-thread dispatcher
    /// (started on first use).
    pub fn default_binder(&self) -> Result<Arc<dyn Binder>, Error> {
        let mut slot = self.inner.default_disp.lock();
        if let Some(binder) = slot.as_ref() {
            return Ok(binder.clone());
        }
        if self.is_stopping() {
            return Err(Error::Stopped);
        }
        let disp = OneThreadDispatcher::new(self, "mp-agents-default")?;
        let binder = disp.binder();
        *slot = Some(binder.clone());
        Ok(binder)
    }
}
