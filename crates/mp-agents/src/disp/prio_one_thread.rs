//! [`PrioOneThreadDispatcher`]: one thread for agents of every priority,
//! strictly ordered or quoted round-robin.
//!
//! Owns: their [`mp_thread::Worker`]s (started through the environment, so
//! its reaper joins them) and, for the one-thread kind, a queue per
//! priority.
//!
//! The one-thread kind schedules by posting a *drain* job to its worker
//! when a demand arrives and none is scheduled; the job runs demands in
//! the policy's order until the queues are empty (coming back as a new job
//! every so often, so the worker's mailbox is served).
//!
//! Invariant 1: `Worker` handles are held only by the dispatcher's users
//! (handles, binders, bound agents' event queues); drain jobs hold the
//! queues, not the worker, so the worker closes when its last user goes —
//! in a cooperation's final step on the deregistration thread — and the
//! reaper joins it. Invariant 3: demands are moved in and out of the
//! queues. Lock order: an agent's queue lock, then the dispatcher's queue
//! lock (or slot lock), then the worker's mailbox (or the environment's
//! state, when a dedicated thread starts).

use super::shared::{add_source, report, CountsBound, SharedQueueBinder};
use crate::binder::Binder;
use crate::demand::EventQueue;
use crate::demand::ExecDemand;
use crate::env::Environment;
use crate::error::Error;
use crate::ids::Priority;
use crate::stats::{Quantity, StatsSource};
use mp_thread::{ThreadHandle, Worker};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Demands a drain job runs before it comes back as a new job.
const YIELD_EVERY: usize = 256;

/// How many demands of each priority the quoted round-robin policy runs
/// before it moves on to the next lower priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas([usize; Priority::COUNT]);

impl Quotas {
    /// Every priority gets `quota` (at least one).
    pub fn new(quota: usize) -> Quotas {
        Quotas([quota.max(1); Priority::COUNT])
    }

    /// Sets the quota of `priority` (at least one).
    pub fn set(mut self, priority: Priority, quota: usize) -> Quotas {
        self.0[priority.index()] = quota.max(1);
        self
    }

    /// The quota of `priority`.
    pub fn get(&self, priority: Priority) -> usize {
        self.0[priority.index()]
    }
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    Strict,
    Quoted(Quotas),
}

/// One thread for agents of every priority.
///
/// *Strictly ordered*: a demand runs only when no demand of a higher
/// priority waits; demands of one priority run in arrival order.
/// *Quoted round-robin*: the thread takes up to its quota of demands from
/// one priority, then moves to the next lower one (from the lowest back to
/// the highest), skipping empty ones, so under load priorities share the
/// thread in proportion to their quotas.
#[derive(Clone)]
pub struct PrioOneThreadDispatcher {
    inner: Arc<OneInner>,
}

struct OneInner {
    worker: Worker,
    queues: Arc<PrioQueues>,
    name: String,
    /// Agents bound (for the stats).
    bound: AtomicUsize,
}

struct PrioQueues {
    policy: Policy,
    state: Mutex<PrioState>,
    /// The dispatcher's `mp_agents_demands_handled_total`.
    handled: metrics::Counter,
}

struct PrioState {
    queues: [VecDeque<ExecDemand>; Priority::COUNT],
    /// A drain job is queued or running.
    scheduled: bool,
    /// Quoted round-robin: the priority being served and how many of its
    /// demands ran since it was reached.
    current: usize,
    taken: usize,
}

impl std::fmt::Debug for PrioOneThreadDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrioOneThreadDispatcher")
            .field("worker", &self.inner.worker)
            .field("policy", &self.inner.queues.policy)
            .finish()
    }
}

impl PrioOneThreadDispatcher {
    /// A strictly ordered dispatcher on a thread called `name`.
    pub fn strictly_ordered(env: &Environment, name: &str) -> Result<Self, Error> {
        Self::start(env, name, Policy::Strict)
    }

    /// A quoted round-robin dispatcher on a thread called `name`.
    pub fn quoted_round_robin(
        env: &Environment,
        name: &str,
        quotas: Quotas,
    ) -> Result<Self, Error> {
        Self::start(env, name, Policy::Quoted(quotas))
    }

    fn start(env: &Environment, name: &str, policy: Policy) -> Result<Self, Error> {
        let inner = Arc::new(OneInner {
            worker: env.spawn_worker(name)?,
            name: name.to_string(),
            bound: AtomicUsize::new(0),
            queues: Arc::new(PrioQueues {
                policy,
                state: Mutex::new(PrioState {
                    queues: Default::default(),
                    scheduled: false,
                    current: Priority::COUNT - 1,
                    taken: 0,
                }),
                handled: crate::agent_metrics::demands_handled(&format!("disp/prio_ot/{name}")),
            }),
        });
        add_source(env, &inner);
        Ok(PrioOneThreadDispatcher { inner })
    }

    /// A binder that puts agents on this dispatcher's thread.
    pub fn binder(&self) -> Arc<dyn Binder> {
        Arc::new(SharedQueueBinder(self.inner.clone()))
    }

    /// The dispatcher's thread, to see it joined.
    pub fn thread_handle(&self) -> ThreadHandle {
        self.inner.worker.thread_handle()
    }
}

impl EventQueue for OneInner {
    fn push(&self, demand: ExecDemand) -> Result<(), ExecDemand> {
        let p = demand.priority().index();
        let mut st = self.queues.state.lock();
        st.queues[p].push_back(demand);
        if st.scheduled {
            return Ok(());
        }
        match self
            .worker
            .post_with(self.queues.clone(), PrioQueues::drain)
        {
            Ok(()) => {
                st.scheduled = true;
                Ok(())
            }
            Err(_) => {
                let demand = st.queues[p].pop_back().expect("just pushed");
                Err(demand)
            }
        }
    }
}

impl CountsBound for OneInner {
    fn bound(&self) -> &AtomicUsize {
        &self.bound
    }
}

impl StatsSource for OneInner {
    fn report(&self, out: &mut Vec<Quantity>) {
        let lengths: Vec<usize> = self
            .queues
            .state
            .lock()
            .queues
            .iter()
            .map(VecDeque::len)
            .collect();
        let prefix = format!("disp/prio_ot/{}", self.name);
        let figures = [
            ("agent.count", self.bound.load(Ordering::Relaxed)),
            ("demands.count", lengths.iter().sum()),
        ];
        report(out, &prefix, &figures);
        for (p, len) in lengths.into_iter().enumerate() {
            report(out, &format!("{prefix}/p{p}"), &[("demands.count", len)]);
        }
    }
}

impl PrioState {
    /// The next demand by `policy`.
    fn next(&mut self, policy: &Policy) -> Option<ExecDemand> {
        match policy {
            Policy::Strict => self.queues.iter_mut().rev().find_map(VecDeque::pop_front),
            Policy::Quoted(quotas) => {
                // The current priority, then every other once, lower first.
                for _ in 0..=Priority::COUNT {
                    if self.taken < quotas.0[self.current] {
                        if let Some(demand) = self.queues[self.current].pop_front() {
                            self.taken += 1;
                            return Some(demand);
                        }
                    }
                    self.current = self.current.checked_sub(1).unwrap_or(Priority::COUNT - 1);
                    self.taken = 0;
                }
                None
            }
        }
    }
}

impl PrioQueues {
    /// The drain job: runs demands until the queues are empty.
    fn drain(self: Arc<Self>) {
        let mut me = self;
        loop {
            for ran in 0..YIELD_EVERY {
                let demand = {
                    let mut st = me.state.lock();
                    match st.next(&me.policy) {
                        Some(demand) => demand,
                        None => {
                            st.scheduled = false;
                            drop(st);
                            me.handled.increment(ran as u64);
                            return;
                        }
                    }
                };
                demand.run();
            }
            me.handled.increment(YIELD_EVERY as u64);
            // Come back as a new job so the mailbox gets a turn; if it is
            // closed, go on here.
            match mp_thread::Waiter::current().post_with(me, PrioQueues::drain) {
                Ok(()) => return,
                Err(back) => me = back,
            }
        }
    }
}
