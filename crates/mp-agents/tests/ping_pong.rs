//! Ping-pong between two agents through their direct mboxes, on one thread
//! (a shared one-thread dispatcher) and on two (active objects, and two
//! one-thread dispatchers), plus a round through an MPMC mbox.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    launch, ActiveObjDispatcher, Agent, Binder, Context, Define, DirectMbox, Mbox,
    OneThreadDispatcher,
};

const ROUNDS: usize = 10_000;

struct Ping {
    reply_to: DirectMbox,
    n: usize,
}

struct Pong {
    n: usize,
}

struct Pinger {
    ponger: DirectMbox,
    pongs: Arc<AtomicUsize>,
    thread: Arc<parking_lot::Mutex<Option<ThreadId>>>,
}

impl Agent for Pinger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Pinger, ctx: &Context<'_>, pong: Pong| {
            me.pongs.fetch_add(1, Ordering::Relaxed);
            if pong.n == ROUNDS {
                ctx.env().stop();
            } else {
                me.ponger.send(Ping {
                    reply_to: ctx.direct_mbox(),
                    n: pong.n + 1,
                });
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        *self.thread.lock() = Some(std::thread::current().id());
        self.ponger.send(Ping {
            reply_to: ctx.direct_mbox(),
            n: 1,
        });
    }
}

struct Ponger {
    thread: Arc<parking_lot::Mutex<Option<ThreadId>>>,
}

impl Agent for Ponger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, ping: Ping| {
            ping.reply_to.send(Pong { n: ping.n });
        });
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        *self.thread.lock() = Some(std::thread::current().id());
    }
}

/// Makes the pinger's and the ponger's binders.
type MakeBinders = fn(&mp_agents::Environment) -> (Arc<dyn Binder>, Arc<dyn Binder>);

/// Runs a ping-pong with the binders `make` gives; returns whether both
/// agents ran on the same thread.
fn ping_pong(make: MakeBinders) -> bool {
    let pongs = Arc::new(AtomicUsize::new(0));
    let ping_thread = Arc::new(parking_lot::Mutex::new(None));
    let pong_thread = Arc::new(parking_lot::Mutex::new(None));
    let (p, pt, qt) = (pongs.clone(), ping_thread.clone(), pong_thread.clone());
    launch(move |env| {
        let (a, b) = make(env);
        let mut coop = env.make_coop();
        let ponger = coop.add_agent_with_binder(Ponger { thread: qt }, b);
        coop.add_agent_with_binder(
            Pinger {
                ponger,
                pongs: p,
                thread: pt,
            },
            a,
        );
        env.register_coop(coop).unwrap();
    })
    .unwrap();
    assert_eq!(pongs.load(Ordering::SeqCst), ROUNDS);
    let a = ping_thread.lock().unwrap();
    let b = pong_thread.lock().unwrap();
    a == b
}

#[test]
fn on_one_thread() {
    watchdog(Duration::from_secs(60), || {
        let same = ping_pong(|env| {
            let disp = OneThreadDispatcher::new(env, "pp-one").unwrap();
            (disp.binder(), disp.binder())
        });
        assert!(same);
    });
}

#[test]
fn on_two_active_objects() {
    watchdog(Duration::from_secs(60), || {
        let same = ping_pong(|env| {
            let disp = ActiveObjDispatcher::new(env, "pp-ao");
            (disp.binder(), disp.binder())
        });
        assert!(!same);
    });
}

#[test]
fn on_two_one_thread_dispatchers() {
    watchdog(Duration::from_secs(60), || {
        let same = ping_pong(|env| {
            let a = OneThreadDispatcher::new(env, "pp-a").unwrap();
            let b = OneThreadDispatcher::new(env, "pp-b").unwrap();
            (a.binder(), b.binder())
        });
        assert!(!same);
    });
}

#[derive(Clone)]
struct Ball(usize);

struct Player {
    table: Mbox,
    me: usize,
    hits: Arc<AtomicUsize>,
}

impl Agent for Player {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe(
            &self.table.clone(),
            |me: &mut Player, ctx: &Context<'_>, Ball(n)| {
                // Both players see every ball; the one whose turn it is hits.
                if n % 2 == me.me {
                    me.hits.fetch_add(1, Ordering::Relaxed);
                    if n == 1_000 {
                        ctx.env().stop();
                    } else {
                        me.table.send(Ball(n + 1));
                    }
                }
            },
        );
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        if self.me == 0 {
            self.table.send(Ball(0));
        }
    }
}

#[test]
fn through_an_mpmc_mbox() {
    watchdog(Duration::from_secs(60), || {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        launch(move |env| {
            let table = env.named_mbox("table");
            let disp = ActiveObjDispatcher::new(env, "table");
            let mut coop = env.make_coop();
            coop.set_binder(disp.binder());
            for me in 0..2 {
                coop.add_agent(Player {
                    table: table.clone(),
                    me,
                    hits: h.clone(),
                });
            }
            env.register_coop(coop).unwrap();
        })
        .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1_001);
    });
}

#[test]
fn on_the_pool_and_priority_dispatchers() {
    use mp_agents::{
        AdvThreadPoolDispatcher, Fifo, PoolParams, PrioDedicatedThreadsDispatcher,
        PrioOneThreadDispatcher, Quotas, ThreadPoolDispatcher,
    };
    watchdog(Duration::from_secs(60), || {
        // A one-thread pool and a prio one-thread dispatcher: one thread.
        assert!(ping_pong(|env| {
            let pool =
                ThreadPoolDispatcher::new(env, "pp-tp", PoolParams::with_threads(1)).unwrap();
            (pool.binder(), pool.binder())
        }));
        assert!(ping_pong(|env| {
            let disp =
                PrioOneThreadDispatcher::quoted_round_robin(env, "pp-q", Quotas::new(3)).unwrap();
            (disp.binder(), disp.binder())
        }));
        assert!(ping_pong(|env| {
            let disp = PrioOneThreadDispatcher::strictly_ordered(env, "pp-s").unwrap();
            (disp.binder(), disp.binder())
        }));
        // Both agents have the default priority: one dedicated thread.
        assert!(ping_pong(|env| {
            let disp = PrioDedicatedThreadsDispatcher::new(env, "pp-d");
            (disp.binder(), disp.binder())
        }));
        // Pools with more threads: whichever threads, every pong arrives.
        ping_pong(|env| {
            let pool = ThreadPoolDispatcher::new(
                env,
                "pp-tpi",
                PoolParams::with_threads(2).fifo(Fifo::Individual),
            )
            .unwrap();
            (pool.binder(), pool.binder())
        });
        ping_pong(|env| {
            let pool =
                AdvThreadPoolDispatcher::new(env, "pp-adv", PoolParams::with_threads(2)).unwrap();
            (pool.binder(), pool.binder())
        });
    });
}
