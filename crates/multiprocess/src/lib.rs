//! # multiprocess
//!
//! A Rust framework for programs whose objects live on threads and in
//! processes: the Rust counterpart of libmultiprocess (typed cross-process
//! calls over Cap'n Proto, the IPC layer of Bitcoin Core, wire compatible
//! with it) and of SObjectizer (agents, cooperations, dispatchers, mboxes,
//! timers, states, mchains).
//!
//! Call an object in another process as if it were local, from any thread:
//! each calling thread gets its own server thread on the other side, and
//! callbacks from the server run on the thread that is waiting for the
//! call. Run agents on the dispatchers you choose. Tear it all down, on
//! purpose or because a peer died, without a race, a hang, a leak, or a
//! thread that joins itself.
//!
//! ## Layers
//!
//! - [`thread`] (`mp-thread`): [`Worker`](thread::Worker),
//!   [`Reaper`](thread::Reaper), [`Waiter`](thread::Waiter),
//!   [`ThreadBound`](thread::ThreadBound), and the [`sync`](thread::sync)
//!   facade the loom models compile through.
//! - [`ipc`] (`mp-ipc`): [`EventLoop`], [`Connection`], [`Remote`],
//!   processes, listeners, [`Limits`](ipc::Limits), and libmultiprocess's
//!   `proxy.capnp`.
//! - [`agents`] (`mp-agents`): agents, cooperations, dispatchers, mboxes,
//!   timers, states, mchains, request/reply, with every cooperation's final
//!   step on a thread of its own.
//!
//! Interfaces come from annotated `.capnp` schemas through `mp-codegen`,
//! which generates a trait to implement, a client with sync and async
//! methods, and the server adapter.
//!
//! ## A call with a callback
//!
//! The `mp-calc` test interface, served and called over a socketpair. The
//! two event loops stand for two processes; across processes the code is
//! the same, with the server in a child (`mp_calc::spawn_and_connect`, or
//! `cargo run --release -p mp-demo` for the tour). The server's
//! `countdown(n, callback)` calls `callback.step(n)` and answers with its
//! result; the callback runs on the thread that made the call, while that
//! thread waits for the reply.
//!
//! ```
//! use std::sync::Arc;
//!
//! use mp_calc::{thread_name, Callback};
//! use multiprocess::EventLoop;
//!
//! struct Report;
//!
//! impl Callback for Report {
//!     fn step(&self, n: u32) -> Result<u32, multiprocess::Error> {
//!         // The caller's own thread, blocked in `countdown`, runs this.
//!         assert_eq!(thread_name(), "caller");
//!         Ok(n * 10)
//!     }
//! }
//!
//! let (server_end, client_end) = std::os::unix::net::UnixStream::pair()?;
//! let server_loop = EventLoop::new("server-loop")?;
//! let _server = mp_calc::serve(&server_loop, server_end)?;
//! let client_loop = EventLoop::new("client-loop")?;
//! let calc = mp_calc::connect(&client_loop, client_end)?.make_calculator()?;
//!
//! let caller = std::thread::Builder::new().name("caller".into());
//! let answer = caller
//!     .spawn(move || calc.countdown(3, Arc::new(Report)))?
//!     .join()
//!     .expect("the caller thread")?;
//! assert_eq!(answer, 30); // the callback's answer, through the server
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Agents on a dispatcher
//!
//! Two agents on one thread of their own: a pinger and a ponger exchange
//! messages through their direct mboxes. When the pinger deregisters its
//! cooperation, the environment, with no cooperation left, shuts down and
//! `launch` returns once every thread is joined.
//!
//! ```
//! use multiprocess::agents::{
//!     launch, Agent, Binder, Context, Define, DeregReason, DirectMbox, OneThreadDispatcher,
//! };
//!
//! struct Ping(DirectMbox, u32);
//! struct Pong(u32);
//!
//! struct Pinger {
//!     ponger: DirectMbox,
//! }
//!
//! impl Agent for Pinger {
//!     fn define(&mut self, def: &mut Define<'_, Self>) {
//!         def.subscribe_self(|me: &mut Pinger, ctx: &Context<'_>, Pong(n)| {
//!             if n == 3 {
//!                 ctx.deregister_coop(DeregReason::Normal);
//!             } else {
//!                 me.ponger.send(Ping(ctx.direct_mbox(), n + 1));
//!             }
//!         });
//!     }
//!
//!     fn start(&mut self, ctx: &Context<'_>) {
//!         self.ponger.send(Ping(ctx.direct_mbox(), 1));
//!     }
//! }
//!
//! struct Ponger;
//!
//! impl Agent for Ponger {
//!     fn define(&mut self, def: &mut Define<'_, Self>) {
//!         def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, Ping(reply_to, n)| {
//!             reply_to.send(Pong(n));
//!         });
//!     }
//! }
//!
//! let report = launch(|env| {
//!     let mut coop = env.make_coop();
//!     coop.set_binder(OneThreadDispatcher::new(env, "ping-pong").unwrap().binder());
//!     let ponger = coop.add_agent(Ponger);
//!     coop.add_agent(Pinger { ponger });
//!     env.register_coop(coop).unwrap();
//! })
//! .unwrap();
//! assert!(!report.threads.is_empty());
//! ```
//!
//! ## The invariants
//!
//! 1. No thread ever joins itself, and no `Drop` blocks on the thread running it.
//! 2. A value tied to a thread is used and dropped on that thread.
//! 3. A payload's last owner is its receiver.
//! 4. One owner for every registry of callbacks.
//! 5. No thread-local state is reachable from another thread.
//! 6. A lock order that is written down, and as few locks as can serve.
//! 7. Every blocking wait ends.
//! 8. A peer's reach is bounded.
//!
//! The repository's `docs/` states each one with the tests that show it,
//! and describes the architecture, the security model and the terms.

pub use mp_agents as agents;
pub use mp_ipc as ipc;
pub use mp_thread as thread;

pub use mp_ipc::{Connection, Error, EventLoop, Remote};
