//! [`OneThreadDispatcher`]: all its agents on one worker thread; and the
//! environment's default dispatcher, one of these.

use super::shared::{add_source, report};
use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::Environment;
use crate::error::Error;
use crate::ids::AgentInfo;
use crate::stats::{Quantity, StatsSource};
use crate::worker_queue::WorkerQueue;
use mp_thread::ThreadHandle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
            queue: env.spawn_worker_queue(name, &format!("disp/ot/{name}"))?,
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
        let figures = [
            ("agent.count", self.bound.load(Ordering::Relaxed)),
            ("demands.count", self.queue.pending()),
        ];
        report(out, &format!("disp/ot/{}", self.name), &figures);
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
