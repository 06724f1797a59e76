//! Dispatchers and the [`Binder`] contract.
//!
//! A dispatcher owns worker threads ([`mp_thread::Worker`]); a binder puts
//! an agent on one of them. Cooperations hold binders, binders hold their
//! dispatcher, so a dispatcher shuts down with its last user: dropping it
//! drops its last `Worker` handles, which only closes their mailboxes — the
//! environment's reaper joins the threads (invariant 1). Because the final
//! step of a cooperation runs on the deregistration thread, that last drop
//! happens there, never on one of the dispatcher's own workers.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use mp_thread::{ThreadHandle, Worker};
use parking_lot::Mutex;

use crate::env::{EnvInner, Environment};
use crate::error::Error;
use crate::AgentId;

/// How a cooperation puts its agents on threads (SObjectizer's
/// `disp_binder`). Registration calls `preallocate` for every agent first
/// (may fail; then `undo_preallocation` for those done), then `bind` for
/// each (cannot fail); the final step calls `unbind`.
pub trait Binder: Send + Sync + 'static {
    /// Reserves what `agent` needs (a thread, a slot).
    fn preallocate(&self, agent: AgentId) -> Result<(), Error>;
    /// Gives back what `preallocate` reserved; registration failed.
    fn undo_preallocation(&self, agent: AgentId);
    /// The worker `agent` runs on (after a successful `preallocate`).
    fn bind(&self, agent: AgentId) -> Worker;
    /// Forgets `agent` (final step, on the deregistration thread).
    fn unbind(&self, agent: AgentId);
}

/// All its agents on one worker thread.
#[derive(Clone)]
pub struct OneThreadDispatcher {
    inner: Arc<OneThreadInner>,
}

struct OneThreadInner {
    worker: Worker,
}

impl std::fmt::Debug for OneThreadDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneThreadDispatcher")
            .field("worker", &self.inner.worker)
            .finish()
    }
}

impl OneThreadDispatcher {
    /// Starts the dispatcher's thread, called `name`.
    pub fn new(env: &Environment, name: &str) -> Result<OneThreadDispatcher, Error> {
        Ok(OneThreadDispatcher {
            inner: Arc::new(OneThreadInner {
                worker: env.spawn_worker(name)?,
            }),
        })
    }

    /// A binder that puts agents on this dispatcher's thread.
    pub fn binder(&self) -> Arc<dyn Binder> {
        self.inner.clone()
    }

    /// The dispatcher's thread, to see it joined.
    pub fn thread_handle(&self) -> ThreadHandle {
        self.inner.worker.thread_handle()
    }
}

impl Binder for OneThreadInner {
    fn preallocate(&self, _agent: AgentId) -> Result<(), Error> {
        Ok(())
    }

    fn undo_preallocation(&self, _agent: AgentId) {}

    fn bind(&self, _agent: AgentId) -> Worker {
        self.worker.clone()
    }

    fn unbind(&self, _agent: AgentId) {}
}

/// A worker thread per agent ("active object").
#[derive(Clone)]
pub struct ActiveObjDispatcher {
    inner: Arc<ActiveObjInner>,
}

struct ActiveObjInner {
    env: Weak<EnvInner>,
    name: String,
    workers: Mutex<HashMap<AgentId, Worker>>,
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
        ActiveObjDispatcher {
            inner: Arc::new(ActiveObjInner {
                env: Arc::downgrade(&env.inner),
                name: name.to_string(),
                workers: Mutex::default(),
            }),
        }
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
    fn preallocate(&self, agent: AgentId) -> Result<(), Error> {
        let env = Environment::from_weak(&self.env).ok_or(Error::Stopped)?;
        let worker = env.spawn_worker(&format!("{}-{}", self.name, agent.0))?;
        drop(env);
        self.workers.lock().insert(agent, worker);
        Ok(())
    }

    fn undo_preallocation(&self, agent: AgentId) {
        let worker = self.workers.lock().remove(&agent);
        drop(worker);
    }

    fn bind(&self, agent: AgentId) -> Worker {
        self.workers
            .lock()
            .get(&agent)
            .cloned()
            .expect("bind follows a successful preallocate")
    }

    fn unbind(&self, agent: AgentId) {
        let worker = self.workers.lock().remove(&agent);
        drop(worker);
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
    groups: Mutex<HashMap<String, (Worker, usize)>>,
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
        ActiveGroupDispatcher {
            inner: Arc::new(ActiveGroupInner {
                env: Arc::downgrade(&env.inner),
                name: name.to_string(),
                groups: Mutex::default(),
                members: Mutex::default(),
            }),
        }
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
    fn leave(&self, agent: AgentId) -> Option<Worker> {
        let group = self.members.lock().remove(&agent)?;
        let mut groups = self.groups.lock();
        let (_, count) = groups.get_mut(&group)?;
        *count -= 1;
        if *count == 0 {
            groups.remove(&group).map(|(worker, _)| worker)
        } else {
            None
        }
    }
}

struct GroupBinder {
    disp: Arc<ActiveGroupInner>,
    group: String,
}

impl Binder for GroupBinder {
    fn preallocate(&self, agent: AgentId) -> Result<(), Error> {
        let disp = &self.disp;
        let mut groups = disp.groups.lock();
        if let Some((_, count)) = groups.get_mut(&self.group) {
            *count += 1;
        } else {
            let env = Environment::from_weak(&disp.env).ok_or(Error::Stopped)?;
            let worker = env.spawn_worker(&format!("{}-{}", disp.name, self.group))?;
            drop(env);
            groups.insert(self.group.clone(), (worker, 1));
        }
        drop(groups);
        disp.members.lock().insert(agent, self.group.clone());
        Ok(())
    }

    fn undo_preallocation(&self, agent: AgentId) {
        drop(self.disp.leave(agent));
    }

    fn bind(&self, _agent: AgentId) -> Worker {
        self.disp
            .groups
            .lock()
            .get(&self.group)
            .map(|(worker, _)| worker.clone())
            .expect("bind follows a successful preallocate")
    }

    fn unbind(&self, agent: AgentId) {
        drop(self.disp.leave(agent));
    }
}
