//! # mp-agents
//!
//! SObjectizer-style agents on [`mp_thread`]: an [`Environment`] started by
//! [`launch`], [`Agent`]s grouped in cooperations, bound to dispatchers
//! that own [`mp_thread::Worker`] threads, talking through mboxes.
//!
//! The modules form a one-way stack (a test, `tests/layers.rs`, fails on
//! any import circle); each uses only modules on the rows above it. A lower
//! module reaches an upper one only through a trait it defines itself
//! (the core's `ErasedAgent`, `EnvLink`, `CoopLink`, `MpmcSubscription`;
//! [`Binder`], [`EventQueue`], [`Target`], [`StatsSource`]).
//!
//! | module | owns | invariant |
//! |---|---|---|
//! | `ids` | [`AgentId`], [`CoopId`], [`MboxId`], [`Priority`], [`AgentInfo`], [`DeregReason`], [`PanicReaction`] | — |
//! | `push_order` | how a same-thread send is numbered against other threads' pushes (an agent's gate, a queue's push count) | 6 |
//! | `payload` | a message on its way, its type erased, kept inline up to two words | 3 |
//! | `contain` | user code on the environment's threads: a panic is logged, the thread goes on | 1 |
//! | `dropped` | why an undelivered message is dropped, for a request's [`Replier`] | 3 |
//! | `error` | [`Error`] | — |
//! | `target` | [`Target`]: where a timer, a sink or a request delivers | — |
//! | `stats` | run-time stats: [`Quantity`], the distribution markers, the [`StatsSource`] contract, the registry of sources (held weakly) | 1 |
//! | `filter` | the delivery filter type | 1 |
//! | `trace` | delivery tracing through `tracing`, selected by a [`DeliveryFilter`]; off at one atomic load | — |
//! | `timer` | delayed and periodic messages, the timer thread | 1, 3 |
//! | `limits` | message limits per agent and type, [`LimitOverflow`] reactions | 3 |
//! | `request` | request/reply: [`Request`], [`ask`], [`Answer`], [`AskError`] | 3 |
//! | `mchain` | [`Mchain`]s (CSP channels): overflow reactions, close, [`receive`], [`select`] | 3, 6, 7 |
//! | `demand` | [`ExecDemand`] (reaching its agent through a trait object), [`EventQueue`] | 3 |
//! | `binder` | the [`Binder`] contract | — |
//! | `worker_queue` | the single-threaded dispatchers' demand queue: batches, same-thread sends, busy-waiting | 1, 3, 7 |
//! | `core` | an agent's runtime core: its queue, its state's lock, its subscriptions | 1, 3 |
//! | `mbox` | [`Mbox`] (MPMC) and [`DirectMbox`] (MPSC) | 3 |
//! | `sink` | [`SinkBinding`]: an mbox's messages bound to another mbox or an mchain, filtered or transformed | 3 |
//! | `state` | agent [`State`]s: hierarchy, hooks, time limits, history, per-state dispatch; the [`Context`] handlers run with | 1 |
//! | `stats_controller` | [`StatsController`]: snapshots and periodic distribution to the stats mbox | 1 |
//! | `env` | [`launch`], the environment, its reaper and deregistration thread, stop guards | 1 |
//! | `wrapped` | [`WrappedEnv`]: an environment on a thread of its own | 1 |
//! | `disp` | the dispatchers, a file or folder per kind: [`OneThreadDispatcher`] (and the default one), [`ActiveObjDispatcher`], [`ActiveGroupDispatcher`], [`ThreadPoolDispatcher`], [`AdvThreadPoolDispatcher`], [`PrioOneThreadDispatcher`], [`PrioDedicatedThreadsDispatcher`] | 1, 3 |
//! | `coop` | cooperations: registration, staged deregistration, final step | 1, 3 |
//! | `agent` | the [`Agent`] trait, [`Define`], what a [`Context`] can do | — |
//! | `subscriptions` | run-time subscribe, unsubscribe and deactivate from an agent's handlers | 3 |
//! | `unique_mbox` | [`UniqueMbox`]: one subscriber per type, messages moved (not cloned) | 3 |
//!
//! ## Invariants
//!
//! The numbers in the table above and in each module's comment are the
//! framework's design invariants; those mp-agents keeps are:
//!
//! 1. **No thread joins itself, and no `Drop` blocks on the thread running
//!    it.** Every thread an environment starts is joined by its private
//!    reaper; dropping the last handle of a worker anywhere — on that
//!    worker included — only closes its mailbox. A cooperation's final
//!    step (dropping its agents, binders and the dispatchers they were the
//!    last users of) runs on the environment's deregistration thread.
//! 3. **A payload's last owner is its receiver.** A send moves the message
//!    into the receiver's queue and keeps no copy; a message never
//!    delivered is dropped where it was queued (an agent's queue, a timer,
//!    a chain), never by a sender that still borrows it.
//! 5. **No thread-local state is reachable from another thread.** What a
//!    thread keeps for itself (the queue its drain runs, the agent whose
//!    handler runs, a limit's recursion depth) is read and written by that
//!    thread only.
//! 6. **A written lock order, and as few locks as can serve.** See "Lock
//!    order" below; the same-thread ordering, the mchains' wake-ups and
//!    the thread pools' scheduler have loom models, which compile the
//!    shipped files over mp-thread's sync facade.
//! 7. **Every blocking wait ends.** A receive, a select, a blocked send to
//!    a full chain, an `ask`: each has a timeout or ends when the
//!    environment shuts down; busy-waiting is bounded by
//!    [`Params::busy_wait`].
//!
//! ## Threads of an environment
//!
//! A private [`mp_thread::Reaper`] (joins everything below), the
//! deregistration worker (every step of deregistration and every final
//! drop), the timer thread, and the dispatchers' workers. `launch` stops
//! them in SObjectizer's order — stop guards, cooperations (count reaches
//! zero), deregistration thread, timer thread, default dispatcher — and
//! waits on each thread's handle before it returns. User code run on the
//! deregistration and timer threads (an agent's or a message's `Drop`, a
//! binder's `unbind`, a notificator, a timer's delivery) is contained: a
//! panic in it is logged through `tracing` and the thread goes on, so no
//! panic keeps a cooperation counted or `launch` from returning. Any
//! `Duration` is a valid delay or period (see
//! [`Environment::send_periodic`]).
//!
//! The threads of the single-threaded dispatchers (one thread, active
//! object and group, a priority's dedicated thread) and the
//! deregistration thread poll for more work for up to
//! [`Params::busy_wait`] (50 µs by default) before they sleep (the pools'
//! idle workers do not):
//! waking a sleeping thread costs far more than a message, so request and
//! reply between threads stay fast, at the price of that much CPU after
//! each burst. An agent whose handler panics, with no reaction set by it,
//! its cooperations or [`Params::panic_reaction`], has its cooperation
//! deregistered ([`DeregReason::Panic`]).
//!
//! ## Lock order (invariant 6)
//!
//! agent queue → dispatcher queue → worker mailbox; mbox subscribers → agent filters (at
//! subscription only: a send holds an mbox's lock just to copy out its
//! list); cooperation state → environment state; the default-dispatcher
//! slot → environment state; an mchain's lock → a select's waker (nothing
//! else under a chain's lock; the environment's list of chains is locked
//! alone). Two cooperations' locks are never held together, an agent's
//! state lock is held only by the worker running it (or by the final step,
//! after its finish), and no lock is held while a handler, a hook, a
//! notificator, a timer's delivery, a delivery filter, a limit's overflow
//! reaction or an mchain's receive handler runs — except the agent's own
//! state lock around its handlers and state hooks (a shared guard of its
//! thread-safe handler table around a thread-safe handler).
//!
//! ## States, limits, filters
//!
//! An agent defines [`State`]s in `define` and subscribes per state with
//! [`Define::in_state`]; handlers get the [`Context`], whose
//! [`change_state`](Context::change_state) switches once the handler
//! returns. Subscriptions made without a state belong to the default
//! state. [`Define::limit`] bounds the messages of a type waiting for the
//! agent ([`LimitOverflow`]); [`Define::set_delivery_filter`] picks which
//! messages of an MPMC mbox it gets.
//!
//! ```
//! use std::time::Duration;
//! use mp_agents::{launch, Agent, Context, Define, LimitOverflow};
//!
//! struct Bell;
//! struct Blinker;
//! impl Agent for Blinker {
//!     fn define(&mut self, def: &mut Define<'_, Self>) {
//!         let on = def.state("on");
//!         let off = def.state("off");
//!         def.start_in(&on);
//!         def.limit::<Bell>(8, LimitOverflow::Drop);
//!         // After 5 ms in `on`, the agent goes to `off` by itself.
//!         def.in_state(&on).time_limit(Duration::from_millis(5), &off);
//!         def.in_state(&off).on_enter(|_: &mut Blinker, ctx: &Context<'_>| ctx.env().stop());
//!         def.in_state(&on).subscribe_self(|_: &mut Blinker, _: &Context<'_>, Bell| {});
//!     }
//! }
//!
//! launch(|env| {
//!     let mut coop = env.make_coop();
//!     coop.add_agent(Blinker).send(Bell);
//!     env.register_coop(coop).unwrap();
//! })
//! .unwrap();
//! ```
//!
//! The lesson of SObjectizer's self-joining worker (a sender's temporary
//! reference made a worker thread drop the last one and join itself;
//! `tests/self_join.rs` replays it) is kept by construction: a cooperation's final
//! step — dropping agents, binders and the dispatchers whose last user they
//! were — runs on the environment's deregistration thread and takes each
//! of them out explicitly; workers hand over only weak references.
//!
//! ```
//! use mp_agents::{launch, Agent, Context, Define};
//!
//! struct Hello;
//! impl Agent for Hello {
//!     fn start(&mut self, ctx: &Context<'_>) {
//!         ctx.env().stop();
//!     }
//! }
//!
//! let report = launch(|env| {
//!     let mut coop = env.make_coop();
//!     coop.add_agent(Hello);
//!     env.register_coop(coop).unwrap();
//! })
//! .unwrap();
//! assert!(report.threads.iter().all(|t| t.joined_on == report.reaper_thread));
//! ```

mod agent;
mod agent_metrics;
mod binder;
mod contain;
mod coop;
mod core;
mod demand;
mod disp;
mod dropped;
mod env;
mod error;
mod filter;
mod ids;
mod limits;
mod mbox;
mod mchain;
mod payload;
mod push_order;
mod request;
mod sink;
mod state;
mod stats;
mod stats_controller;
mod subscriptions;
mod target;
mod timer;
mod trace;
mod unique_mbox;
mod worker_queue;
mod wrapped;

pub use agent::{Agent, Define};
pub use agent_metrics::{metric_name, DEMANDS_HANDLED, STATS_PREFIX};
pub use binder::Binder;
pub use coop::{CoopBuilder, CoopHandle, DeregNotificator};
pub use demand::{EventQueue, ExecDemand};
pub use disp::{
    ActiveGroupDispatcher, ActiveObjDispatcher, AdvThreadPoolDispatcher, Fifo, OneThreadDispatcher,
    PoolParams, PrioDedicatedThreadsDispatcher, PrioOneThreadDispatcher, Quotas,
    ThreadPoolDispatcher,
};
pub use env::{launch, launch_with, Environment, Params, Report, StopGuard, DEFAULT_BUSY_WAIT};
pub use error::Error;
pub use ids::{AgentId, AgentInfo, CoopId, DeregReason, MboxId, PanicReaction, Priority};
pub use limits::LimitOverflow;
pub use mbox::{DirectMbox, Mbox};
pub use mchain::{
    case, from, from_all, receive, select, Case, CloseMode, Handlers, Mchain, MchainParams,
    Overflow, ReceiveFrom, ReceiveResult, ReceiveStatus, SelectFrom, SendError, Sent,
};
pub use request::{ask, Answer, AskError, Replier, Request, RequestId};
pub use sink::SinkBinding;
pub use state::{Context, History, InState, State};
pub use stats::{DistributionFinished, DistributionStarted, Quantity, StatsSource};
pub use stats_controller::{StatsController, DEFAULT_DISTRIBUTION_PERIOD};
pub use target::Target;
pub use timer::TimerHandle;
pub use trace::DeliveryFilter;
pub use unique_mbox::UniqueMbox;
pub use wrapped::WrappedEnv;
