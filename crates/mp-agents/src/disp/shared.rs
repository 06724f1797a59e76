//! What the dispatchers share: registering one as a stats source, and
//! the binder of the dispatchers that keep one queue for all their agents
//! (the pools and the one-thread priority dispatcher). Internals: nothing
//! here is public.

use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::env::Environment;
use crate::error::Error;
use crate::ids::AgentInfo;
use crate::stats::{Quantity, StatsSource};
use crate::worker_queue::WorkerQueue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// Appends `figures` (suffix, value) of the source `prefix` to `out`.
pub(crate) fn report(out: &mut Vec<Quantity>, prefix: &str, figures: &[(&'static str, usize)]) {
    out.extend(
        figures
            .iter()
            .map(|&(suffix, value)| Quantity::new(prefix, suffix, value)),
    );
}

/// The figures of a dispatcher whose threads serve parts (groups,
/// priorities), each `(name, its queue, its agents)`: the totals under
/// `prefix`, then each part under `prefix/name`, in name order.
pub(crate) fn report_parts(
    out: &mut Vec<Quantity>,
    prefix: &str,
    mut parts: Vec<(String, Arc<WorkerQueue>, usize)>,
) {
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let agents = parts.iter().map(|p| p.2).sum();
    let demands = parts.iter().map(|p| p.1.pending()).sum();
    let totals = [
        ("agent.count", agents),
        ("thread.count", parts.len()),
        ("demands.count", demands),
    ];
    report(out, prefix, &totals);
    for (name, queue, count) in parts {
        let figures = [("agent.count", count), ("demands.count", queue.pending())];
        report(out, &format!("{prefix}/{name}"), &figures);
    }
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
