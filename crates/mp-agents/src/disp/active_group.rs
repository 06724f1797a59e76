//! [`ActiveGroupDispatcher`]: a worker thread per named group of agents
//! ("active group").

use super::shared::{add_source, report_parts};
use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::{EnvInner, Environment};
use crate::error::Error;
use crate::ids::{AgentId, AgentInfo};
use crate::stats::{Quantity, StatsSource};
use crate::worker_queue::WorkerQueue;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
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
        let groups = self
            .groups
            .lock()
            .iter()
            .map(|(name, (queue, count))| (name.clone(), queue.clone(), *count))
            .collect();
        report_parts(out, &format!("disp/ag/{}", self.name), groups);
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
            let queue = env.spawn_worker_queue(
                &format!("{}-{}", disp.name, self.group),
                &format!("disp/ag/{}", disp.name),
            )?;
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
