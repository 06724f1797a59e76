//! The pool and priority dispatchers: ordering and parallelism.
//!
//! - thread_pool: FIFO per cooperation (one at a time, in send order) and
//!   per agent (agents of one cooperation in parallel), the exact
//!   interleaving "max demands at once" gives, parallelism across queues;
//! - adv_thread_pool: thread-safe handlers of one agent observed running
//!   together (a rendezvous that times out otherwise), exclusive handlers,
//!   start and finish never overlapping anything;
//! - prio_one_thread: strict order, quoted round-robin proportions;
//! - prio_dedicated_threads: a thread per priority.
//!
//! Parallelism is shown with rendezvous that time out (so a dispatcher
//! that serialises fails instead of hanging); every test has a watchdog.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use common::watchdog;
use mp_agents::{
    launch, AdvThreadPoolDispatcher, Agent, Binder, Context, Define, DirectMbox, Environment, Fifo,
    PoolParams, PrioDedicatedThreadsDispatcher, PrioOneThreadDispatcher, Priority, Quotas,
    ThreadPoolDispatcher,
};

const MEET_TIMEOUT: Duration = Duration::from_secs(10);

/// `n` parties meet; each learns whether all came within the timeout.
struct Rendezvous {
    arrived: Mutex<usize>,
    cv: Condvar,
    n: usize,
}

impl Rendezvous {
    fn new(n: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            cv: Condvar::new(),
            n,
        })
    }

    fn meet(&self) -> bool {
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.cv.notify_all();
        let deadline = Instant::now() + MEET_TIMEOUT;
        while *arrived < self.n {
            if self.cv.wait_until(&mut arrived, deadline).timed_out() {
                return *arrived >= self.n;
            }
        }
        true
    }
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------
// thread_pool: FIFO per cooperation

#[derive(Clone, Copy)]
struct Seq(u64);

#[derive(Default)]
struct CoopLog {
    order: Mutex<Vec<u64>>,
    in_flight: AtomicUsize,
    overlaps: AtomicUsize,
}

struct Member {
    log: Arc<CoopLog>,
}

impl Agent for Member {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Member, _: &Context<'_>, Seq(n)| {
            if me.log.in_flight.fetch_add(1, Ordering::SeqCst) != 0 {
                me.log.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            me.log.order.lock().push(n);
            for _ in 0..200 {
                std::hint::spin_loop();
            }
            me.log.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

#[test]
fn thread_pool_keeps_fifo_per_cooperation() {
    const COOPS: usize = 8;
    const PER_COOP: u64 = 300;
    watchdog(Duration::from_secs(60), || {
        let logs: Vec<Arc<CoopLog>> = (0..COOPS).map(|_| Arc::default()).collect();
        let theirs = logs.clone();
        launch(move |env| {
            let pool = ThreadPoolDispatcher::new(
                env,
                "fifo-coop",
                PoolParams::with_threads(4).max_demands_at_once(3),
            )
            .unwrap();
            let mut mboxes: Vec<Vec<DirectMbox>> = Vec::new();
            for log in &theirs {
                let mut coop = env.make_coop();
                coop.set_binder(pool.binder());
                mboxes.push(
                    (0..3)
                        .map(|_| coop.add_agent(Member { log: log.clone() }))
                        .collect(),
                );
                env.register_coop(coop).unwrap();
            }
            for n in 0..PER_COOP {
                for agents in &mboxes {
                    agents[n as usize % 3].send(Seq(n));
                }
            }
            eventually("every message handled", || {
                theirs
                    .iter()
                    .all(|l| l.order.lock().len() == PER_COOP as usize)
            });
            env.stop();
        })
        .unwrap();
        for log in &logs {
            assert_eq!(
                log.overlaps.load(Ordering::SeqCst),
                0,
                "a coop ran twice at once"
            );
            assert_eq!(*log.order.lock(), (0..PER_COOP).collect::<Vec<_>>());
        }
    });
}

// ---------------------------------------------------------------------
// thread_pool: parallelism across queues

#[derive(Clone, Copy)]
struct Meet;

struct Meeter {
    rendezvous: Arc<Rendezvous>,
    met: Arc<Mutex<Vec<bool>>>,
}

impl Agent for Meeter {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Meeter, _: &Context<'_>, Meet| {
            let met = me.rendezvous.meet();
            me.met.lock().push(met);
        });
    }
}

/// Two agents meet, in one cooperation or in two; returns how many saw
/// the other.
fn meet_on_pool(fifo: Fifo, same_coop: bool) -> usize {
    let met = Arc::new(Mutex::new(Vec::new()));
    let theirs = met.clone();
    launch(move |env| {
        let pool =
            ThreadPoolDispatcher::new(env, "meet", PoolParams::with_threads(2).fifo(fifo)).unwrap();
        let rendezvous = Rendezvous::new(2);
        let mut mboxes = Vec::new();
        let mut coops = vec![env.make_coop()];
        if !same_coop {
            coops.push(env.make_coop());
        }
        for i in 0..2 {
            let n = coops.len();
            let coop = &mut coops[i % n];
            coop.set_binder(pool.binder());
            mboxes.push(coop.add_agent(Meeter {
                rendezvous: rendezvous.clone(),
                met: theirs.clone(),
            }));
        }
        for coop in coops {
            env.register_coop(coop).unwrap();
        }
        for mbox in &mboxes {
            mbox.send(Meet);
        }
        eventually("both meetings over", || theirs.lock().len() == 2);
        env.stop();
    })
    .unwrap();
    let met = met.lock();
    met.iter().filter(|m| **m).count()
}

#[test]
fn thread_pool_runs_queues_in_parallel() {
    watchdog(Duration::from_secs(60), || {
        // Per agent: two agents of one cooperation run at once.
        assert_eq!(meet_on_pool(Fifo::Individual, true), 2);
        // Per cooperation: two cooperations run at once.
        assert_eq!(meet_on_pool(Fifo::Cooperation, false), 2);
    });
}

// ---------------------------------------------------------------------
// thread_pool: max demands at once

#[derive(Clone, Copy)]
struct Hold;

struct Gate {
    entered: mpsc::Sender<()>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Agent for Gate {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Gate, _: &Context<'_>, Hold| {
            me.entered.send(()).unwrap();
            me.release
                .lock()
                .recv_timeout(Duration::from_secs(20))
                .unwrap();
        });
    }
}

/// A gate holding a one-thread dispatcher's thread until released.
struct GateHandle {
    mbox: DirectMbox,
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl GateHandle {
    fn add(coop: &mut mp_agents::CoopBuilder, binder: Arc<dyn Binder>) -> GateHandle {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let mbox = coop.add_agent_with_binder(
            Gate {
                entered: entered_tx,
                release: Arc::new(Mutex::new(release_rx)),
            },
            binder,
        );
        GateHandle {
            mbox,
            entered,
            release,
        }
    }

    fn close(&self) {
        self.mbox.send(Hold);
        self.entered.recv_timeout(Duration::from_secs(20)).unwrap();
    }

    fn open(&self) {
        self.release.send(()).unwrap();
    }
}

#[derive(Clone, Copy)]
struct Mark(u32);

struct Marker {
    name: &'static str,
    priority: Priority,
    log: Arc<Mutex<Vec<String>>>,
    started: Arc<AtomicUsize>,
}

impl Agent for Marker {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Marker, _: &Context<'_>, Mark(n)| {
            me.log.lock().push(format!("{}{n}", me.name));
        });
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    fn priority(&self) -> Priority {
        self.priority
    }
}

/// Registers a gate and `markers` (name, priority) on `binder`, closes the
/// gate, sends each marker `count` messages (interleaved), opens the gate
/// and returns the order in which the markers handled them.
fn gated_order(
    env: &Environment,
    binder: Arc<dyn Binder>,
    markers: &[(&'static str, Priority)],
    count: u32,
) -> Vec<String> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let mut coop = env.make_coop();
    let gate = GateHandle::add(&mut coop, binder.clone());
    let mboxes: Vec<DirectMbox> = markers
        .iter()
        .map(|&(name, priority)| {
            coop.add_agent_with_binder(
                Marker {
                    name,
                    priority,
                    log: log.clone(),
                    started: started.clone(),
                },
                binder.clone(),
            )
        })
        .collect();
    env.register_coop(coop).unwrap();
    eventually("markers started", || {
        started.load(Ordering::SeqCst) == markers.len()
    });
    gate.close();
    for n in 0..count {
        for mbox in &mboxes {
            mbox.send(Mark(n));
        }
    }
    gate.open();
    let total = markers.len() * count as usize;
    eventually("markers done", || log.lock().len() == total);
    let order = log.lock().clone();
    order
}

fn names(pattern: &[&str]) -> Vec<String> {
    pattern.iter().map(|s| s.to_string()).collect()
}

#[test]
fn thread_pool_gives_a_queue_back_after_max_demands() {
    watchdog(Duration::from_secs(60), || {
        launch(|env| {
            let pool = ThreadPoolDispatcher::new(
                env,
                "max2",
                PoolParams::with_threads(1)
                    .fifo(Fifo::Individual)
                    .max_demands_at_once(2),
            )
            .unwrap();
            let order = gated_order(
                env,
                pool.binder(),
                &[("a", Priority::P0), ("b", Priority::P0)],
                5,
            );
            assert_eq!(
                order,
                names(&["a0", "a1", "b0", "b1", "a2", "a3", "b2", "b3", "a4", "b4"])
            );
            env.stop();
        })
        .unwrap();
    });
}

// ---------------------------------------------------------------------
// adv_thread_pool

#[derive(Clone, Copy)]
struct Par;

#[derive(Clone, Copy)]
struct Excl;

#[derive(Default)]
struct AdvCounts {
    shared: AtomicUsize,
    exclusive: AtomicUsize,
    violations: AtomicUsize,
    par_done: AtomicUsize,
    excl_done: AtomicUsize,
    met: AtomicUsize,
    /// Par messages sent before each Excl, and how many had run when it ran.
    excl_checks: Mutex<Vec<(usize, usize)>>,
    finished: AtomicUsize,
    mpmc: AtomicUsize,
}

impl AdvCounts {
    fn enter_exclusive(&self) {
        if self.shared.load(Ordering::SeqCst) != 0 || self.exclusive.swap(1, Ordering::SeqCst) != 0
        {
            self.violations.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn leave_exclusive(&self) {
        self.exclusive.store(0, Ordering::SeqCst);
    }
}

struct Adv {
    counts: Arc<AdvCounts>,
    rendezvous: Option<Arc<Rendezvous>>,
    /// Par messages sent before each Excl (filled by the test in order).
    expected: Arc<Mutex<std::collections::VecDeque<usize>>>,
    news: Option<mp_agents::Mbox>,
}

impl Agent for Adv {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let counts = self.counts.clone();
        let rendezvous = self.rendezvous.clone();
        def.subscribe_self_thread_safe(move |_: &Context<'_>, Par| {
            counts.shared.fetch_add(1, Ordering::SeqCst);
            if counts.exclusive.load(Ordering::SeqCst) != 0 {
                counts.violations.fetch_add(1, Ordering::SeqCst);
            }
            match &rendezvous {
                Some(r) => {
                    if r.meet() {
                        counts.met.fetch_add(1, Ordering::SeqCst);
                    }
                }
                None => {
                    for _ in 0..500 {
                        std::hint::spin_loop();
                    }
                }
            }
            counts.par_done.fetch_add(1, Ordering::SeqCst);
            counts.shared.fetch_sub(1, Ordering::SeqCst);
        });
        def.subscribe_self(|me: &mut Adv, _: &Context<'_>, Excl| {
            me.counts.enter_exclusive();
            let expected = me.expected.lock().pop_front().unwrap();
            let done = me.counts.par_done.load(Ordering::SeqCst);
            me.counts.excl_checks.lock().push((expected, done));
            me.counts.excl_done.fetch_add(1, Ordering::SeqCst);
            me.counts.leave_exclusive();
        });
        if let Some(news) = self.news.clone() {
            let counts = self.counts.clone();
            def.subscribe_thread_safe(&news, move |_: &Context<'_>, Par| {
                counts.mpmc.fetch_add(1, Ordering::SeqCst);
            });
        }
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        self.counts.enter_exclusive();
        self.counts.leave_exclusive();
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.counts.enter_exclusive();
        self.counts.finished.fetch_add(1, Ordering::SeqCst);
        self.counts.leave_exclusive();
    }
}

#[test]
fn adv_pool_runs_thread_safe_handlers_of_one_agent_together() {
    watchdog(Duration::from_secs(60), || {
        let counts = Arc::new(AdvCounts::default());
        let theirs = counts.clone();
        launch(move |env| {
            let pool = AdvThreadPoolDispatcher::new(
                env,
                "adv-meet",
                PoolParams::with_threads(3).fifo(Fifo::Individual),
            )
            .unwrap();
            let news = env.create_mbox();
            let mut coop = env.make_coop();
            coop.set_binder(pool.binder());
            let mbox = coop.add_agent(Adv {
                counts: theirs.clone(),
                rendezvous: Some(Rendezvous::new(3)),
                expected: Arc::default(),
                news: Some(news.clone()),
            });
            env.register_coop(coop).unwrap();
            for _ in 0..3 {
                mbox.send(Par);
            }
            news.send(Par);
            eventually("three meetings", || {
                theirs.par_done.load(Ordering::SeqCst) == 3
                    && theirs.mpmc.load(Ordering::SeqCst) == 1
            });
            env.stop();
        })
        .unwrap();
        assert_eq!(
            counts.met.load(Ordering::SeqCst),
            3,
            "handlers did not overlap"
        );
        assert_eq!(counts.violations.load(Ordering::SeqCst), 0);
        assert_eq!(counts.finished.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn adv_pool_runs_other_demands_alone_and_in_order() {
    watchdog(Duration::from_secs(60), || {
        for fifo in [Fifo::Individual, Fifo::Cooperation] {
            let counts = Arc::new(AdvCounts::default());
            let theirs = counts.clone();
            launch(move |env| {
                let pool = AdvThreadPoolDispatcher::new(
                    env,
                    "adv-excl",
                    PoolParams::with_threads(4).fifo(fifo),
                )
                .unwrap();
                let expected: Arc<Mutex<std::collections::VecDeque<usize>>> = Arc::default();
                let mut coop = env.make_coop();
                coop.set_binder(pool.binder());
                let mbox = coop.add_agent(Adv {
                    counts: theirs.clone(),
                    rendezvous: None,
                    expected: expected.clone(),
                    news: None,
                });
                env.register_coop(coop).unwrap();
                let mut pars = 0;
                for i in 0..2_000 {
                    if i % 7 == 3 {
                        expected.lock().push_back(pars);
                        mbox.send(Excl);
                    } else {
                        pars += 1;
                        mbox.send(Par);
                    }
                }
                let excls = 2_000 - pars;
                eventually("all handled", || {
                    theirs.par_done.load(Ordering::SeqCst) == pars
                        && theirs.excl_done.load(Ordering::SeqCst) == excls
                });
                env.stop();
            })
            .unwrap();
            assert_eq!(counts.violations.load(Ordering::SeqCst), 0, "{fifo:?}");
            for (expected, done) in counts.excl_checks.lock().iter() {
                assert_eq!(expected, done, "{fifo:?}: an exclusive demand overtook");
            }
            assert_eq!(counts.finished.load(Ordering::SeqCst), 1);
        }
    });
}

// ---------------------------------------------------------------------
// prio_one_thread

#[test]
fn prio_one_thread_strictly_ordered() {
    watchdog(Duration::from_secs(60), || {
        launch(|env| {
            let disp = PrioOneThreadDispatcher::strictly_ordered(env, "strict").unwrap();
            let order = gated_order(
                env,
                disp.binder(),
                &[
                    ("l", Priority::P1),
                    ("h", Priority::P5),
                    ("m", Priority::P3),
                ],
                4,
            );
            assert_eq!(
                order,
                names(&["h0", "h1", "h2", "h3", "m0", "m1", "m2", "m3", "l0", "l1", "l2", "l3"])
            );
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn prio_one_thread_quoted_round_robin() {
    watchdog(Duration::from_secs(60), || {
        launch(|env| {
            let quotas = Quotas::new(1).set(Priority::P3, 3);
            assert_eq!(quotas.get(Priority::P3), 3);
            let disp = PrioOneThreadDispatcher::quoted_round_robin(env, "quoted", quotas).unwrap();
            let order = gated_order(
                env,
                disp.binder(),
                &[("h", Priority::P3), ("l", Priority::P1)],
                12,
            );
            // Three of P3 for each one of P1 while both wait, then the rest.
            let mut expected = Vec::new();
            let (mut h, mut l) = (0, 0);
            while h < 12 {
                for _ in 0..3 {
                    expected.push(format!("h{h}"));
                    h += 1;
                }
                expected.push(format!("l{l}"));
                l += 1;
            }
            while l < 12 {
                expected.push(format!("l{l}"));
                l += 1;
            }
            assert_eq!(order, expected);
            env.stop();
        })
        .unwrap();
    });
}

// ---------------------------------------------------------------------
// prio_dedicated_threads

struct Where {
    priority: Priority,
    seen: Arc<Mutex<Vec<(Priority, ThreadId)>>>,
    rendezvous: Arc<Rendezvous>,
    met: Arc<AtomicUsize>,
}

impl Agent for Where {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Where, _: &Context<'_>, Meet| {
            me.seen
                .lock()
                .push((me.priority, std::thread::current().id()));
            if me.rendezvous.meet() {
                me.met.fetch_add(1, Ordering::SeqCst);
            }
        });
    }

    fn priority(&self) -> Priority {
        self.priority
    }
}

#[test]
fn prio_dedicated_threads_one_thread_per_priority() {
    watchdog(Duration::from_secs(60), || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let met = Arc::new(AtomicUsize::new(0));
        let (s, m) = (seen.clone(), met.clone());
        let report = launch(move |env| {
            let disp = PrioDedicatedThreadsDispatcher::new(env, "dedicated");
            // P2 and P6 meet (different threads); the two P2 agents take
            // turns on one thread, so each meets a P6 one.
            let rendezvous = Rendezvous::new(2);
            let second = Rendezvous::new(2);
            let mut coop = env.make_coop();
            coop.set_binder(disp.binder());
            let prios = [Priority::P2, Priority::P6, Priority::P2, Priority::P6];
            let mboxes: Vec<DirectMbox> = prios
                .iter()
                .enumerate()
                .map(|(i, &priority)| {
                    coop.add_agent(Where {
                        priority,
                        seen: s.clone(),
                        rendezvous: if i < 2 {
                            rendezvous.clone()
                        } else {
                            second.clone()
                        },
                        met: m.clone(),
                    })
                })
                .collect();
            env.register_coop(coop).unwrap();
            assert_eq!(disp.thread_count(), 2);
            assert!(disp.thread_handle(Priority::P2).is_some());
            assert!(disp.thread_handle(Priority::P0).is_none());
            for mbox in &mboxes {
                mbox.send(Meet);
            }
            eventually("all met", || {
                s.lock().len() == 4 && m.load(Ordering::SeqCst) == 4
            });
            env.stop();
        })
        .unwrap();
        assert_eq!(met.load(Ordering::SeqCst), 4);
        let seen = seen.lock().clone();
        let threads_of = |p: Priority| -> HashSet<ThreadId> {
            seen.iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, t)| *t)
                .collect()
        };
        let (p2, p6) = (threads_of(Priority::P2), threads_of(Priority::P6));
        assert_eq!(p2.len(), 1);
        assert_eq!(p6.len(), 1);
        assert!(p2.is_disjoint(&p6));
        // Two priority threads, the deregistration and timer threads.
        assert_eq!(report.threads.len(), 4);
        for status in &report.threads {
            assert_eq!(status.joined_on, report.reaper_thread);
        }
    });
}

// ---------------------------------------------------------------------
// a dispatcher handle kept past `launch`

#[test]
fn handles_kept_past_launch_do_not_hold_it_up() {
    watchdog(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel();
        let report = launch(move |env| {
            let pool =
                ThreadPoolDispatcher::new(env, "kept-tp", PoolParams::with_threads(2)).unwrap();
            let adv =
                AdvThreadPoolDispatcher::new(env, "kept-adv", PoolParams::with_threads(2)).unwrap();
            let prio = PrioOneThreadDispatcher::strictly_ordered(env, "kept-prio").unwrap();
            let dedicated = PrioDedicatedThreadsDispatcher::new(env, "kept-ded");
            let mut coop = env.make_coop();
            coop.add_agent_with_binder(
                Marker {
                    name: "x",
                    priority: Priority::P2,
                    log: Arc::default(),
                    started: Arc::default(),
                },
                dedicated.binder(),
            );
            env.register_coop(coop).unwrap();
            tx.send((pool.clone(), adv.clone(), prio.clone(), dedicated.clone()))
                .unwrap();
            env.stop();
        })
        .unwrap();
        let (pool, adv, prio, _dedicated) = rx.recv().unwrap();
        // Every thread joined by the reaper, the kept ones too.
        assert_eq!(report.threads.len(), 2 + 2 + 1 + 1 + 2);
        for status in &report.threads {
            assert_eq!(status.joined_on, report.reaper_thread);
        }
        for handle in pool.thread_handles().iter().chain(&adv.thread_handles()) {
            assert!(handle.is_joined());
        }
        assert!(prio.thread_handle().is_joined());
    });
}

// ---------------------------------------------------------------------
// thread-safe handlers beside states and limits

struct Stateful {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Agent for Stateful {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let on = def.state("on");
        def.start_in(&on);
        def.limit::<Par>(1_000, mp_agents::LimitOverflow::Drop);
        def.in_state(&on)
            .subscribe_self(|me: &mut Stateful, _: &Context<'_>, Par| {
                me.log.lock().push("state handler");
            });
        def.in_state(&on)
            .subscribe_self(|me: &mut Stateful, _: &Context<'_>, Excl| {
                me.log.lock().push("excl");
            });
        let log = self.log.clone();
        def.subscribe_self_thread_safe(move |_: &Context<'_>, Par| {
            log.lock().push("thread-safe");
        });
    }
}

/// A thread-safe subscription for a type takes precedence over the state
/// handlers for it, on every dispatcher; the other types still go by
/// state; a limit on the type still applies.
#[test]
fn thread_safe_handlers_beside_states_and_limits() {
    watchdog(Duration::from_secs(60), || {
        for adv in [true, false] {
            let log = Arc::new(Mutex::new(Vec::new()));
            let theirs = log.clone();
            launch(move |env| {
                let binder = if adv {
                    AdvThreadPoolDispatcher::new(env, "ts-states", PoolParams::with_threads(2))
                        .unwrap()
                        .binder()
                } else {
                    env.default_binder().unwrap()
                };
                let mut coop = env.make_coop();
                let mbox = coop.add_agent_with_binder(
                    Stateful {
                        log: theirs.clone(),
                    },
                    binder,
                );
                env.register_coop(coop).unwrap();
                for _ in 0..5 {
                    mbox.send(Par);
                }
                mbox.send(Excl);
                eventually("all handled", || theirs.lock().len() == 6);
                env.stop();
            })
            .unwrap();
            let log = log.lock().clone();
            assert_eq!(log.iter().filter(|s| **s == "thread-safe").count(), 5);
            assert_eq!(log.last(), Some(&"excl"), "adv: {adv}");
        }
    });
}

// ---------------------------------------------------------------------
// churn on shared pools

struct Churner {
    left: usize,
    finished: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    dereg: Arc<std::sync::OnceLock<ThreadId>>,
    off_dereg: Arc<AtomicUsize>,
}

impl Agent for Churner {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Churner, ctx: &Context<'_>, Seq(_)| {
            me.left -= 1;
            if me.left == 0 {
                ctx.deregister_coop(mp_agents::DeregReason::Normal);
            }
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Churner {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
        if self.dereg.get() != Some(&std::thread::current().id()) {
            self.off_dereg.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Cooperations come and go on shared pools (both FIFO kinds, plain and
/// advanced) and a shared priority dispatcher, each deregistering itself
/// from a handler with messages of others in flight: every one goes,
/// every finish runs, every agent is dropped on the deregistration thread.
#[test]
fn cooperations_come_and_go_on_shared_pools() {
    const COOPS: usize = 300;
    const AGENTS: usize = 3;
    const MESSAGES: usize = 10;
    watchdog(Duration::from_secs(120), || {
        let finished = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let off_dereg = Arc::new(AtomicUsize::new(0));
        let dereg = Arc::new(std::sync::OnceLock::new());
        let (f, d, o, dt) = (
            finished.clone(),
            dropped.clone(),
            off_dereg.clone(),
            dereg.clone(),
        );
        launch(move |env| {
            dt.set(env.dereg_thread_id()).unwrap();
            let binders: Vec<Arc<dyn Binder>> = vec![
                ThreadPoolDispatcher::new(env, "churn-tp", PoolParams::with_threads(2))
                    .unwrap()
                    .binder(),
                ThreadPoolDispatcher::new(
                    env,
                    "churn-tpi",
                    PoolParams::with_threads(2)
                        .fifo(Fifo::Individual)
                        .max_demands_at_once(1),
                )
                .unwrap()
                .binder(),
                AdvThreadPoolDispatcher::new(env, "churn-adv", PoolParams::with_threads(2))
                    .unwrap()
                    .binder(),
                PrioOneThreadDispatcher::quoted_round_robin(env, "churn-q", Quotas::new(2))
                    .unwrap()
                    .binder(),
            ];
            let (tx, rx) = mpsc::channel();
            for c in 0..COOPS {
                let mut coop = env.make_coop();
                coop.set_binder(binders[c % binders.len()].clone());
                let tx = tx.clone();
                coop.on_deregistered(move |_, _, _| {
                    let _ = tx.send(());
                });
                let mboxes: Vec<DirectMbox> = (0..AGENTS)
                    .map(|_| {
                        coop.add_agent(Churner {
                            left: MESSAGES,
                            finished: f.clone(),
                            dropped: d.clone(),
                            dereg: dt.clone(),
                            off_dereg: o.clone(),
                        })
                    })
                    .collect();
                env.register_coop(coop).unwrap();
                for n in 0..MESSAGES {
                    for mbox in &mboxes {
                        mbox.send(Seq(n as u64));
                    }
                }
            }
            for _ in 0..COOPS {
                rx.recv_timeout(Duration::from_secs(30)).unwrap();
            }
            // The last notification runs just before its cooperation is
            // counted out.
            eventually("every cooperation counted out", || env.coop_count() == 0);
            env.stop();
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), COOPS * AGENTS);
        assert_eq!(dropped.load(Ordering::SeqCst), COOPS * AGENTS);
        assert_eq!(off_dereg.load(Ordering::SeqCst), 0);
    });
}
