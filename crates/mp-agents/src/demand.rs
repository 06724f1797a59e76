//! Demands and where they go: [`ExecDemand`] (one unit of work for one
//! agent: its start, a message, its finish), the [`EventQueue`] a
//! dispatcher takes them in, and the cache-line padding the hot fields
//! use. At the bottom of the crate's stack with the ids: a demand reaches
//! its agent through [`DemandTarget`], which the agent's core implements.
//!
//! Invariant 3: a demand owns its payload (the sender kept no copy);
//! [`ExecDemand::run`] consumes it, and dropping it unrun drops the
//! message, never having been visible to the agent.

use std::sync::Arc;

use crate::ids::{AgentId, AgentInfo, CoopId, MboxId, Priority};
use crate::limits::Ticket;
use crate::payload::Payload;

/// Keeps a field on cache lines of its own (two: the adjacent-line
/// prefetcher pulls pairs). The agent's queue lock is taken by its senders;
/// sharing a line with the `Arc` counts, which the receiving thread changes
/// for every demand, made the line bounce twice more per message between
/// two threads (+10% two-thread ping-pong once apart).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One unit of work for an agent.
pub(crate) enum Demand {
    Start,
    Message {
        mbox: MboxId,
        /// The message (its type is the payload's: not kept twice, as
        /// every word of a demand is copied on its way).
        payload: Payload,
        /// Its slot under the agent's limit for `ty`, if it has one.
        ticket: Option<Ticket>,
    },
    Finish,
}

/// What a demand runs on: an agent's core.
pub(crate) trait DemandTarget: Send + Sync + 'static {
    /// Runs `demand` on the calling thread.
    fn run(self: Arc<Self>, demand: Demand, thread_safe: bool);
    /// Which agent this is.
    fn info(&self) -> AgentInfo;
}

/// One demand for one agent, ready to run: what a dispatcher queues and
/// runs ([`EventQueue::push`] hands it over).
///
/// It owns the demand's payload (invariant 3: the sender kept no copy) and
/// a handle to the agent's runtime core (behind a trait object, so
/// demands and queues sit below the agents in the crate's stack). [`run`](Self::run) consumes it on
/// the calling thread; dropping it unrun drops the message, never having
/// been visible to the agent.
pub struct ExecDemand {
    pub(crate) target: Arc<dyn DemandTarget>,
    pub(crate) demand: Demand,
    pub(crate) thread_safe: bool,
}

impl std::fmt::Debug for ExecDemand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.demand {
            Demand::Start => "start",
            Demand::Message { .. } => "message",
            Demand::Finish => "finish",
        };
        f.debug_struct("ExecDemand")
            .field("agent", &self.target.info().id)
            .field("kind", &kind)
            .field("thread_safe", &self.thread_safe)
            .finish()
    }
}

impl ExecDemand {
    /// The agent the demand is for.
    pub fn agent(&self) -> AgentId {
        self.target.info().id
    }

    /// The agent's cooperation.
    pub fn coop(&self) -> CoopId {
        self.target.info().coop
    }

    /// The agent's priority.
    pub fn priority(&self) -> Priority {
        self.target.info().priority
    }

    /// True if the demand goes to a handler subscribed as thread-safe: it
    /// may run in parallel with other thread-safe demands of the same
    /// agent. Start, finish and every other handler must run alone.
    pub fn is_thread_safe(&self) -> bool {
        self.thread_safe
    }

    /// Runs the demand on the calling thread: the agent's hook or handler,
    /// with panics caught and answered by the agent's panic reaction.
    pub fn run(self) {
        let ExecDemand {
            target,
            demand,
            thread_safe,
        } = self;
        target.run(demand, thread_safe);
    }
}

/// Where a bound agent's demands go (SObjectizer's `event_queue_t`): the
/// agent's core pushes each demand — start, every message, finish, in that
/// order — and the dispatcher runs it with [`ExecDemand::run`] on one of
/// its threads, the demands of one agent in the order pushed (only
/// [thread-safe](ExecDemand::is_thread_safe) ones may overlap).
///
/// The core holds the queue from `bind` until its cooperation's final step
/// drops it on the deregistration thread; a queue must not block in `push`
/// (it is called with the agent's queue lock held) nor run the demand
/// there.
pub trait EventQueue: Send + Sync + 'static {
    /// Queues `demand`; hands it back if the dispatcher no longer takes
    /// work (the caller drops it).
    fn push(&self, demand: ExecDemand) -> Result<(), ExecDemand>;

    /// mp-agents' own single-threaded queues name themselves here so a
    /// handler sending to an agent of the queue its thread is running can
    /// skip the agent's lock; any other queue keeps the default and gets
    /// every demand through [`push`](Self::push).
    #[doc(hidden)]
    fn same_thread_key(&self) -> Option<usize> {
        None
    }
}

/// Each demand becomes a job in the worker's mailbox, run in FIFO order.
impl EventQueue for mp_thread::Worker {
    fn push(&self, demand: ExecDemand) -> Result<(), ExecDemand> {
        // The demand is moved into the job and consumed by `run` there; a
        // closed mailbox gives it back untouched.
        self.post_with(demand, ExecDemand::run)
    }
}
