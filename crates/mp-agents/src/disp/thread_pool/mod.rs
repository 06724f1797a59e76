//! The thread pools: [`ThreadPoolDispatcher`] and
//! [`AdvThreadPoolDispatcher`].
//!
//! Owns: N [`mp_thread::Worker`]s started through the environment (so its
//! reaper joins them) and the pool's demand queues — one per cooperation
//! or per agent ([`Fifo`]) — with the list of queues ready to run (the
//! state machine is in `sched`, model-checked by `tests/loom_pool.rs`).
//!
//! Scheduling is push-based and needs no thread of its own: a queue that
//! gets a demand it can start goes on the ready list, and an idle worker
//! gets a job in its mailbox; a worker runs demands until the ready list is
//! empty, then goes idle (back to its mailbox, which it serves between
//! jobs). It keeps to one queue for at most `max_demands_at_once` demands
//! in a row before giving the queue back to the end of the ready list.
//! On the advanced pool a queue whose head is thread-safe can be taken by
//! several workers at once; any other demand starts only when nothing of
//! its queue runs, and nothing of its queue starts while it runs.
//!
//! Invariant 1: the `Worker` handles live in `PoolInner`, held only by the
//! dispatcher's users (handles, binders, the event queues of bound agents);
//! the jobs on the workers hold `Shared` (queues and mailboxes, no
//! `Worker`), so a pool's workers close when its last user goes — in a
//! cooperation's final step, on the deregistration thread — and the
//! reaper joins them. No worker ever holds, let alone drops, the last
//! `Worker` handle of its pool.
//!
//! Invariant 3: a demand is moved into its queue and out to the worker
//! that runs it.
//!
//! Lock order: an agent's queue lock, then the scheduler's lock, then a
//! worker's mailbox. No lock of the pool is held while a demand runs.

mod sched;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mp_thread::{ThreadHandle, Waiter, Worker};

use self::sched::{Sched, Task};

use super::shared::{add_source, report, CountsBound, SharedQueueBinder};
use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::demand::ExecDemand;
use crate::env::Environment;
use crate::error::Error;
use crate::ids::{AgentId, CoopId};
use crate::stats::{Quantity, StatsSource};

/// Which demands of a pool keep their order (SObjectizer's `fifo_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fifo {
    /// One queue per cooperation: the demands of all its agents bound to
    /// the pool run one at a time, in the order they were sent (on the
    /// advanced pool, thread-safe ones may overlap).
    #[default]
    Cooperation,
    /// One queue per agent: each agent's demands keep their order; agents
    /// of one cooperation may run in parallel.
    Individual,
}

/// How to make a [`ThreadPoolDispatcher`] or an [`AdvThreadPoolDispatcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    /// Worker threads (at least one). Default: the available parallelism.
    pub threads: usize,
    /// The unit of ordering. Default: [`Fifo::Cooperation`].
    pub fifo: Fifo,
    /// How many demands of one queue a worker runs in a row before giving
    /// the queue back to the end of the ready list (at least one).
    /// Default: 4, as in SObjectizer.
    pub max_demands_at_once: usize,
}

impl Default for PoolParams {
    fn default() -> Self {
        PoolParams {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            fifo: Fifo::Cooperation,
            max_demands_at_once: 4,
        }
    }
}

impl PoolParams {
    /// Default parameters with `threads` workers.
    pub fn with_threads(threads: usize) -> PoolParams {
        PoolParams {
            threads,
            ..PoolParams::default()
        }
    }

    /// Sets the unit of ordering.
    pub fn fifo(mut self, fifo: Fifo) -> PoolParams {
        self.fifo = fifo;
        self
    }

    /// Sets how many demands of one queue run in a row.
    pub fn max_demands_at_once(mut self, n: usize) -> PoolParams {
        self.max_demands_at_once = n;
        self
    }
}

/// N worker threads sharing the demands of their agents; the demands of
/// one cooperation (or one agent, see [`Fifo`]) run one at a time and in
/// order (SObjectizer's `thread_pool`).
#[derive(Clone)]
pub struct ThreadPoolDispatcher {
    inner: Arc<PoolInner>,
}

/// Like [`ThreadPoolDispatcher`], but handlers subscribed as thread-safe
/// ([`Define::subscribe_self_thread_safe`](crate::Define::subscribe_self_thread_safe))
/// of one queue may run in parallel; every other demand (start, finish,
/// ordinary handlers) runs alone (SObjectizer's `adv_thread_pool`).
#[derive(Clone)]
pub struct AdvThreadPoolDispatcher {
    inner: Arc<PoolInner>,
}

macro_rules! pool_api {
    ($ty:ident, $adv:expr) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &self.inner.shared.name)
                    .field("threads", &self.inner.workers.len())
                    .field("fifo", &self.inner.shared.fifo)
                    .finish()
            }
        }

        impl $ty {
            /// Starts `params.threads` workers called `name-<n>`. They stop
            /// when the dispatcher's last user (this handle, a binder, a
            /// bound agent) is gone.
            pub fn new(env: &Environment, name: &str, params: PoolParams) -> Result<$ty, Error> {
                Ok($ty {
                    inner: PoolInner::start(env, name, params, $adv)?,
                })
            }

            /// A binder that puts agents on this pool.
            pub fn binder(&self) -> Arc<dyn Binder> {
                Arc::new(SharedQueueBinder(self.inner.clone()))
            }

            /// The pool's threads, to see them joined.
            pub fn thread_handles(&self) -> Vec<ThreadHandle> {
                self.inner
                    .workers
                    .iter()
                    .map(Worker::thread_handle)
                    .collect()
            }
        }
    };
}

pool_api!(ThreadPoolDispatcher, false);
pool_api!(AdvThreadPoolDispatcher, true);

/// What the dispatcher's users hold: the workers, and the state the
/// workers' jobs share.
struct PoolInner {
    workers: Vec<Worker>,
    shared: Arc<Shared>,
    /// `tp` or `atp` (the stats' prefix).
    kind: &'static str,
    /// Agents bound (for the stats).
    bound: AtomicUsize,
}

impl PoolInner {
    fn start(
        env: &Environment,
        name: &str,
        params: PoolParams,
        adv: bool,
    ) -> Result<Arc<PoolInner>, Error> {
        let threads = params.threads.max(1);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            // On failure the workers started so far are dropped here:
            // their mailboxes close and the reaper joins them.
            workers.push(env.spawn_worker(&format!("{name}-{i}"))?);
        }
        let shared = Arc::new(Shared {
            name: name.to_string(),
            fifo: params.fifo,
            mailboxes: workers.iter().map(|w| w.waiter().clone()).collect(),
            sched: Sched::new(adv, params.max_demands_at_once, threads),
            handled: crate::agent_metrics::demands_handled(&format!(
                "disp/{}/{name}",
                if adv { "atp" } else { "tp" }
            )),
        });
        let inner = Arc::new(PoolInner {
            workers,
            shared,
            kind: if adv { "atp" } else { "tp" },
            bound: AtomicUsize::new(0),
        });
        add_source(env, &inner);
        Ok(inner)
    }
}

impl EventQueue for PoolInner {
    fn push(&self, demand: ExecDemand) -> Result<(), ExecDemand> {
        self.shared.push(demand);
        Ok(())
    }
}

impl CountsBound for PoolInner {
    fn bound(&self) -> &AtomicUsize {
        &self.bound
    }
}

impl StatsSource for PoolInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let figures = [
            ("agent.count", self.bound.load(Ordering::Relaxed)),
            ("thread.count", self.workers.len()),
            ("demands.count", self.shared.sched.queued()),
        ];
        report(
            out,
            &format!("disp/{}/{}", self.kind, self.shared.name),
            &figures,
        );
    }
}

/// A queue's identity: its cooperation or its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Coop(CoopId),
    Agent(AgentId),
}

impl Task for ExecDemand {
    fn thread_safe(&self) -> bool {
        self.is_thread_safe()
    }
}

/// What the workers' jobs share. No `Worker` handle in here (see the
/// module docs).
struct Shared {
    name: String,
    fifo: Fifo,
    /// The workers' mailboxes: posting to one never keeps it open.
    mailboxes: Vec<Waiter>,
    sched: Sched<Key, ExecDemand>,
    /// The pool's `mp_agents_demands_handled_total`.
    handled: metrics::Counter,
}

impl Shared {
    fn key(&self, demand: &ExecDemand) -> Key {
        match self.fifo {
            Fifo::Cooperation => Key::Coop(demand.coop()),
            Fifo::Individual => Key::Agent(demand.agent()),
        }
    }

    fn push(self: &Arc<Self>, demand: ExecDemand) {
        let key = self.key(&demand);
        self.sched.push(key, demand, &mut |w| self.wake(w));
    }

    /// Gives worker `w` a job (called under the scheduler's lock).
    fn wake(self: &Arc<Self>, w: usize) -> bool {
        let posted = self.mailboxes[w]
            .post_with(self.clone(), move |shared| shared.work(w))
            .is_ok();
        if !posted {
            // Closed: the pool is going away.
            tracing::debug!(pool = %self.name, worker = w, "pool worker closed");
        }
        posted
    }

    /// A worker's job: run demands until none is ready.
    fn work(self: Arc<Self>, w: usize) {
        // Counted once per job, not per demand: the pool's workers share
        // the counter, and a write per demand would bounce its line.
        let mut ran = 0u64;
        let mut run = |demand: ExecDemand| {
            demand.run();
            ran += 1;
        };
        self.sched
            .work(w, &mut run, &mut |v| self.wake(v), &mut || {
                self.mailboxes[w]
                    .post_with(self.clone(), move |shared| shared.work(w))
                    .is_ok()
            });
        self.handled.increment(ran);
    }
}
