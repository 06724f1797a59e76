//! What the dispatchers share: registering one as a stats source, and
//! the binder of the dispatchers that keep one queue for all their agents
//! (the pools and the one-thread priority dispatcher). Internals: nothing
//! here is public.

use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::Environment;
use crate::error::Error;
use crate::ids::AgentInfo;
use crate::stats::StatsSource;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

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
