//! mp-agents fixtures: an environment launched on a thread of its own and
//! kept running across iterations; ping-pong between two agents, a burst
//! into one agent, and cooperations of 10 agents registered and
//! deregistered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use mp_agents::{
    launch_with, ActiveObjDispatcher, Agent, Binder, Context, Define, DeregReason, DirectMbox,
    Environment, OneThreadDispatcher, Params,
};

use crate::Threads;

/// A running environment; dropping it stops it and waits for `launch`.
struct Env {
    env: Environment,
    thread: Option<JoinHandle<()>>,
}

impl Env {
    /// Launches an environment on a new thread and runs `init` in it;
    /// returns once `init` has.
    fn start<T, F>(init: F) -> (Env, T)
    where
        T: Send + 'static,
        F: FnOnce(&Environment) -> T + Send + 'static,
    {
        let (tx, rx) = bounded(1);
        let thread = std::thread::spawn(move || {
            // Driven from outside (cooperations registered after `init`
            // returns): it runs, even empty, until dropped.
            let params = Params {
                autoshutdown: false,
                ..Params::default()
            };
            launch_with(params, move |env| {
                let made = init(env);
                tx.send((env.clone(), made)).unwrap();
            })
            .expect("launch");
        });
        let (env, made) = rx.recv().expect("environment started");
        (
            Env {
                env,
                thread: Some(thread),
            },
            made,
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.env.stop();
        if let Some(t) = self.thread.take() {
            t.join().expect("launch thread");
        }
    }
}

/// Asks the pinger for `rounds` round trips; it answers on `done` with
/// the number of pongs it got.
struct Go {
    rounds: u64,
    done: Sender<u64>,
}

struct Ping {
    reply_to: DirectMbox,
    n: u64,
}

struct Pong(u64);

struct Pinger {
    ponger: DirectMbox,
    rounds: u64,
    pongs: u64,
    done: Option<Sender<u64>>,
}

impl Agent for Pinger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Pinger, ctx: &Context<'_>, go: Go| {
            me.rounds = go.rounds;
            me.pongs = 0;
            me.done = Some(go.done);
            me.ponger.send(Ping {
                reply_to: ctx.direct_mbox(),
                n: 1,
            });
        });
        def.subscribe_self(|me: &mut Pinger, ctx: &Context<'_>, Pong(n)| {
            me.pongs += 1;
            if n == me.rounds {
                if let Some(done) = me.done.take() {
                    let _ = done.send(me.pongs);
                }
            } else {
                me.ponger.send(Ping {
                    reply_to: ctx.direct_mbox(),
                    n: n + 1,
                });
            }
        });
    }
}

struct Ponger;

impl Agent for Ponger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, ping: Ping| {
            ping.reply_to.send(Pong(ping.n));
        });
    }
}

/// Two agents in one cooperation, on a one_thread dispatcher
/// ([`Threads::One`]) or an active_obj one ([`Threads::Two`]).
pub struct PingPong {
    pinger: DirectMbox,
    _env: Env,
}

impl PingPong {
    /// Registers the pair.
    pub fn new(threads: Threads) -> PingPong {
        let (env, pinger) = Env::start(move |env| {
            let binder: Arc<dyn Binder> = match threads {
                Threads::One => OneThreadDispatcher::new(env, "pp").unwrap().binder(),
                Threads::Two => ActiveObjDispatcher::new(env, "pp").binder(),
            };
            let mut coop = env.make_coop();
            coop.set_binder(binder);
            let ponger = coop.add_agent(Ponger);
            let pinger = coop.add_agent(Pinger {
                ponger,
                rounds: 0,
                pongs: 0,
                done: None,
            });
            env.register_coop(coop).unwrap();
            pinger
        });
        PingPong { pinger, _env: env }
    }

    /// `rounds` (≥ 1) round trips; returns the pongs the pinger got.
    pub fn run(&mut self, rounds: u64) -> u64 {
        let (done, wait) = bounded(1);
        self.pinger.send(Go { rounds, done });
        wait.recv().expect("pinger answers")
    }
}

/// Announces the next `n` items; the sink answers on `done` once it has
/// counted them.
struct Expect {
    n: u64,
    done: Sender<u64>,
}

struct Item(#[allow(dead_code)] u64);

struct Sink {
    expect: u64,
    got: u64,
    done: Option<Sender<u64>>,
}

impl Agent for Sink {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Sink, _: &Context<'_>, e: Expect| {
            me.expect = e.n;
            me.got = 0;
            me.done = Some(e.done);
        });
        def.subscribe_self(|me: &mut Sink, _: &Context<'_>, _: Item| {
            me.got += 1;
            if me.got == me.expect {
                if let Some(done) = me.done.take() {
                    let _ = done.send(me.got);
                }
            }
        });
    }
}

/// One agent on a one_thread dispatcher; the bench thread sends to its
/// direct mbox.
pub struct Burst {
    sink: DirectMbox,
    _env: Env,
}

impl Burst {
    /// Registers the sink.
    pub fn new() -> Burst {
        let (env, sink) = Env::start(|env| {
            let mut coop = env.make_coop();
            coop.set_binder(OneThreadDispatcher::new(env, "sink").unwrap().binder());
            let sink = coop.add_agent(Sink {
                expect: 0,
                got: 0,
                done: None,
            });
            env.register_coop(coop).unwrap();
            sink
        });
        Burst { sink, _env: env }
    }

    /// Sends `n` (≥ 1) items; returns how many the sink counted.
    pub fn run(&mut self, n: u64) -> u64 {
        let (done, wait) = bounded(1);
        self.sink.send(Expect { n, done });
        for i in 0..n {
            self.sink.send(Item(i));
        }
        wait.recv().expect("sink answers")
    }
}

impl Default for Burst {
    fn default() -> Burst {
        Burst::new()
    }
}

/// Agents per cooperation.
pub const COOP_AGENTS: u64 = 10;

/// Counts its start and finish hooks.
struct Member {
    hooks: Arc<AtomicU64>,
}

impl Agent for Member {
    fn start(&mut self, _ctx: &Context<'_>) {
        self.hooks.fetch_add(1, Ordering::Relaxed);
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.hooks.fetch_add(1, Ordering::Relaxed);
    }
}

/// Cooperations of [`COOP_AGENTS`] agents on the environment's default
/// dispatcher, registered from the bench thread and deregistered at once.
pub struct Coops {
    env: Env,
    binder: Arc<dyn Binder>,
    hooks: Arc<AtomicU64>,
}

impl Coops {
    /// Launches the environment.
    pub fn new() -> Coops {
        let (env, binder) = Env::start(|env| env.default_binder().unwrap());
        Coops {
            env,
            binder,
            hooks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Registers and deregisters `coops` (≥ 1) cooperations, each
    /// deregistered as soon as its registration returns; returns once every
    /// one is gone, with the number of deregistration notifications seen.
    /// Every agent's start and finish hooks have run by then
    /// ([`hooks`](Coops::hooks)).
    pub fn run(&mut self, coops: u64) -> u64 {
        let gone = Arc::new(AtomicU64::new(0));
        let (done, wait) = bounded(1);
        for _ in 0..coops {
            let mut coop = self.env.env.make_coop();
            coop.set_binder(self.binder.clone());
            for _ in 0..COOP_AGENTS {
                coop.add_agent(Member {
                    hooks: self.hooks.clone(),
                });
            }
            let (gone, done) = (gone.clone(), done.clone());
            coop.on_deregistered(move |_, _, _| {
                if gone.fetch_add(1, Ordering::AcqRel) + 1 == coops {
                    let _ = done.send(coops);
                }
            });
            self.env
                .env
                .register_coop(coop)
                .unwrap()
                .deregister(DeregReason::Normal);
        }
        wait.recv().expect("every cooperation gone")
    }

    /// Start and finish hooks run so far (two per agent).
    pub fn hooks(&self) -> u64 {
        self.hooks.load(Ordering::Relaxed)
    }
}

impl Default for Coops {
    fn default() -> Coops {
        Coops::new()
    }
}
