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
//!   [`ThreadBound`](thread::ThreadBound), [`Backoff`](thread::Backoff) (the one
//!   poll-before-sleeping policy), and the [`sync`](thread::sync)
//!   facade the loom models compile through.
//! - [`ipc`] (`mp-ipc`): [`EventLoop`], [`Connection`], [`Remote`],
//!   processes, listeners, [`Limits`](ipc::Limits), call timeouts and
//!   [`CancelToken`](ipc::CancelToken), and libmultiprocess's
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
//! The interface of `examples/hello` (the crate to copy to start a project:
//! its own schema, `build.rs`, a server and a client process), served and
//! called over a socketpair. The two event loops stand for two processes;
//! across processes the code is the same, with the server in a child
//! (`examples/hello`'s `hello-client` spawns `hello-server`). The server's
//! `greet_all(names, audience)` calls `audience.hear(greeting)` back for
//! each name; each callback runs on the thread that made the call, while
//! that thread waits for the reply.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use hello::{thread_name, Audience, HelloInitClient, HelloInitServer, HelloService};
//! use multiprocess::ipc::{Connection, Side};
//! use multiprocess::{Error, EventLoop};
//!
//! /// Records each greeting it hears, and on which thread.
//! #[derive(Default)]
//! struct Heard(Mutex<Vec<(String, String)>>);
//!
//! impl Audience for Heard {
//!     fn hear(&self, greeting: String) -> Result<bool, Error> {
//!         self.0.lock().unwrap().push((thread_name(), greeting));
//!         Ok(true) // go on
//!     }
//! }
//!
//! // The server side: serve HelloInit on one end.
//! let (server_end, client_end) = std::os::unix::net::UnixStream::pair()?;
//! let server_loop = EventLoop::new("server-loop")?;
//! let service = Arc::new(HelloService);
//! let _server = Connection::builder(&server_loop)
//!     .serve(move |conn| HelloInitServer::bootstrap(conn, service.clone()))
//!     .open(server_end, Side::Server)?;
//!
//! // The client side: connect (exchanging thread maps), get a greeter.
//! let client_loop = EventLoop::new("client-loop")?;
//! let connection = Connection::builder(&client_loop).open(client_end, Side::Client)?;
//! let greeter = HelloInitClient::connect(&connection)?.make_greeter("en")?;
//!
//! let heard = Arc::new(Heard::default());
//! let audience = heard.clone();
//! let caller = std::thread::Builder::new().name("caller".into());
//! let greeted = caller
//!     .spawn(move || greeter.greet_all(&["Ada".into(), "Grace".into()], audience))?
//!     .join()
//!     .expect("the caller thread")?;
//! assert_eq!(greeted, 2);
//! assert_eq!(
//!     *heard.0.lock().unwrap(),
//!     [
//!         ("caller".to_string(), "Hello, Ada!".to_string()),
//!         ("caller".to_string(), "Hello, Grace!".to_string()),
//!     ]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## A call with a timeout
//!
//! `with_timeout` gives a client (or one call) a deadline. Here an audience
//! takes longer to listen than the caller will wait: the call fails with
//! an error naming the method and the timeout, and the server is sent
//! Cap'n Proto's `Finish`. A method that runs long can look at
//! `multiprocess::ipc::CancelToken::current()` to stop early.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use hello::{Audience, HelloInitClient, HelloInitServer, HelloService};
//! use multiprocess::ipc::{Connection, Side};
//! use multiprocess::{Error, EventLoop};
//!
//! /// Listens slowly.
//! struct Slow;
//!
//! impl Audience for Slow {
//!     fn hear(&self, _greeting: String) -> Result<bool, Error> {
//!         std::thread::sleep(Duration::from_millis(100));
//!         Ok(true)
//!     }
//! }
//!
//! let (server_end, client_end) = std::os::unix::net::UnixStream::pair()?;
//! let server_loop = EventLoop::new("server-loop")?;
//! let service = Arc::new(HelloService);
//! let _server = Connection::builder(&server_loop)
//!     .serve(move |conn| HelloInitServer::bootstrap(conn, service.clone()))
//!     .open(server_end, Side::Server)?;
//! let client_loop = EventLoop::new("client-loop")?;
//! let connection = Connection::builder(&client_loop).open(client_end, Side::Client)?;
//! let greeter = HelloInitClient::connect(&connection)?.make_greeter("en")?;
//!
//! let hasty = greeter.with_timeout(Some(Duration::from_millis(20)));
//! match hasty.greet_all(&["Ada".into(), "Grace".into()], Arc::new(Slow)) {
//!     Err(e @ Error::DeadlineExceeded { .. }) => {
//!         assert!(e.to_string().contains("Greeter.greetAll"), "{e}");
//!     }
//!     other => panic!("expected the deadline to pass, got {other:?}"),
//! }
//! // The greeter without a timeout is unchanged, and the session goes on.
//! assert_eq!(greeter.greet("Ada")?, "Hello, Ada!");
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
