//! [`PrioDedicatedThreadsDispatcher`]: a thread per priority.
//!
//! Invariant 1: a priority's `Worker` is held only by the dispatcher and
//! the event queues of its bound agents; it closes when the last agent of
//! that priority is unbound (in a final step, on the deregistration
//! thread), and the environment's reaper joins it.

use super::shared::{add_source, report_parts};
use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::{EnvInner, Environment};
use crate::error::Error;
use crate::ids::{AgentInfo, Priority};
use crate::stats::{Quantity, StatsSource};
use crate::worker_queue::WorkerQueue;
use mp_thread::ThreadHandle;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// A thread per priority: agents of one priority share a thread
/// (started with the first such agent, stopped with the last), agents of
/// different priorities never do (SObjectizer's `prio_dedicated_threads`).
#[derive(Clone)]
pub struct PrioDedicatedThreadsDispatcher {
    inner: Arc<DedicatedInner>,
}

/// One priority's thread (its queue) and the agents preallocated or bound
/// on it.
type Dedicated = (Arc<WorkerQueue>, usize);

struct DedicatedInner {
    env: Weak<EnvInner>,
    name: String,
    /// Per priority: its worker and the agents preallocated or bound on it.
    slots: Mutex<[Option<Dedicated>; Priority::COUNT]>,
}

impl std::fmt::Debug for PrioDedicatedThreadsDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrioDedicatedThreadsDispatcher")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl PrioDedicatedThreadsDispatcher {
    /// A dispatcher whose threads are called `name-p<priority>`.
    pub fn new(env: &Environment, name: &str) -> PrioDedicatedThreadsDispatcher {
        let inner = Arc::new(DedicatedInner {
            env: Arc::downgrade(&env.inner),
            name: name.to_string(),
            slots: Mutex::default(),
        });
        add_source(env, &inner);
        PrioDedicatedThreadsDispatcher { inner }
    }

    /// A binder that puts each agent on the thread of its priority.
    pub fn binder(&self) -> Arc<dyn Binder> {
        self.inner.clone()
    }

    /// The thread serving `priority`, if an agent of it is bound.
    pub fn thread_handle(&self, priority: Priority) -> Option<ThreadHandle> {
        self.inner.slots.lock()[priority.index()]
            .as_ref()
            .map(|(queue, _)| queue.thread_handle())
    }

    /// Priorities that currently have a thread.
    pub fn thread_count(&self) -> usize {
        self.inner.slots.lock().iter().flatten().count()
    }
}

impl DedicatedInner {
    /// One agent fewer on `priority`'s thread; its worker handle comes
    /// back when it was the last, for the caller to drop outside the lock.
    fn leave(&self, priority: Priority) -> Option<Arc<WorkerQueue>> {
        let mut slots = self.slots.lock();
        let slot = &mut slots[priority.index()];
        let (_, count) = slot.as_mut()?;
        *count -= 1;
        if *count == 0 {
            slot.take().map(|(queue, _)| queue)
        } else {
            None
        }
    }
}

impl StatsSource for DedicatedInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let slots = self
            .slots
            .lock()
            .iter()
            .enumerate()
            .filter_map(|(p, slot)| slot.as_ref().map(|(q, n)| (format!("p{p}"), q.clone(), *n)))
            .collect();
        report_parts(out, &format!("disp/prio_dt/{}", self.name), slots);
    }
}

impl Binder for DedicatedInner {
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error> {
        let mut slots = self.slots.lock();
        let slot = &mut slots[agent.priority.index()];
        if let Some((_, count)) = slot.as_mut() {
            *count += 1;
            return Ok(());
        }
        let env = Environment::from_weak(&self.env).ok_or(Error::Stopped)?;
        let queue = env.spawn_worker_queue(
            &format!("{}-p{}", self.name, agent.priority.index()),
            &format!("disp/prio_dt/{}", self.name),
        )?;
        drop(env);
        *slot = Some((queue, 1));
        Ok(())
    }

    fn undo_preallocation(&self, agent: AgentInfo) {
        drop(self.leave(agent.priority));
    }

    fn bind(&self, agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.slots.lock()[agent.priority.index()]
            .as_ref()
            .map(|(queue, _)| queue.clone())
            .expect("bind follows a successful preallocate")
    }

    fn unbind(&self, agent: AgentInfo) {
        drop(self.leave(agent.priority));
    }
}
