//! [`ActiveObjDispatcher`]: a worker thread per agent ("active object"),
//! started as it is registered and stopped as it is deregistered.

use super::shared::{add_source, report};
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
        let queue = env.spawn_worker_queue(
            &format!("{}-{}", self.name, agent.id.0),
            &format!("disp/ao/{}", self.name),
        )?;
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
        let demands = queues.iter().map(|q| q.pending()).sum();
        let figures = [
            ("agent.count", queues.len()),
            ("thread.count", queues.len()),
            ("demands.count", demands),
        ];
        report(out, &format!("disp/ao/{}", self.name), &figures);
    }
}
