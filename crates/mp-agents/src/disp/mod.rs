//! The dispatchers, one file (or folder) per kind — this file is their
//! public face: one thread ([`OneThreadDispatcher`]), active object
//! ([`ActiveObjDispatcher`]), active group ([`ActiveGroupDispatcher`]), the
//! thread pools ([`ThreadPoolDispatcher`], [`AdvThreadPoolDispatcher`]) and
//! the priority dispatchers ([`PrioOneThreadDispatcher`],
//! [`PrioDedicatedThreadsDispatcher`]); what they share is in `shared`.
//! They implement the [`Binder`](crate::Binder) contract and push demands
//! to [`EventQueue`](crate::EventQueue)s.
//!
//! A dispatcher owns worker threads ([`mp_thread::Worker`]); a binder puts
//! an agent on them by handing its core an [`EventQueue`](crate::EventQueue) (here a
//! `WorkerQueue`: demands by value in a FIFO the worker drains in
//! batches; a bare `Worker` is one too, a job per demand). Cooperations hold
//! binders and agents hold event queues, both hold their dispatcher, so a
//! dispatcher shuts down with its last user: dropping it drops its last
//! `Worker` handles, which only closes their mailboxes — the environment's
//! reaper joins the threads (invariant 1). Because the final step of a
//! cooperation runs on the deregistration thread, that last drop happens
//! there, never on one of the dispatcher's own workers.
//!
//! Every dispatcher is a [`StatsSource`](crate::StatsSource) of its environment (held weakly:
//! being observed never keeps it alive), named `disp/<kind>/<name>`.

mod active_group;
mod active_obj;
mod one_thread;
mod prio_dedicated;
mod prio_one_thread;
mod shared;
mod thread_pool;

pub use active_group::ActiveGroupDispatcher;
pub use active_obj::ActiveObjDispatcher;
pub use one_thread::OneThreadDispatcher;
pub use prio_dedicated::PrioDedicatedThreadsDispatcher;
pub use prio_one_thread::{PrioOneThreadDispatcher, Quotas};
pub use thread_pool::{AdvThreadPoolDispatcher, Fifo, PoolParams, ThreadPoolDispatcher};
