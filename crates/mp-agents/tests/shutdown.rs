//! Stopping an environment under load: 1,000 cooperations × 10 agents on
//! shared one-thread dispatchers and a shared active-object dispatcher,
//! every agent with a message in flight. Shutdown completes, every finish
//! hook runs exactly once, every agent's state is dropped before `launch`
//! returns (none after), and every thread is joined by the reaper.
//! Also: children are deregistered (and finished) before their parent.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use common::{watchdog, DropLog};
use mp_agents::{
    launch, ActiveObjDispatcher, Agent, Context, Define, DeregReason, Mbox, OneThreadDispatcher,
};

const COOPS: usize = 1_000;
const AGENTS: usize = 10;
/// "Forever": one-thread agents keep a message in flight until stopped.
const UNTIL_STOPPED: usize = 100_000_000;

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    finished: AtomicUsize,
    twice: AtomicUsize,
    dropped: AtomicUsize,
    handled: AtomicUsize,
    cut_short: AtomicUsize,
    /// Where agents were dropped: every one on the deregistration thread.
    drops: DropLog,
}

#[derive(Clone, Copy)]
struct Tick;

#[derive(Clone, Copy)]
struct Broadcast;

struct Busy {
    counts: Arc<Counts>,
    finished: AtomicBool,
    hops: usize,
    limit: usize,
    news: Option<Mbox>,
}

impl Agent for Busy {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Busy, ctx: &Context<'_>, Tick| {
            me.counts.handled.fetch_add(1, Ordering::Relaxed);
            // Keep a message in flight for a while (bounded, so that 1,000
            // active objects do not starve the machine).
            if me.hops < me.limit {
                me.hops += 1;
                ctx.direct_mbox().send(Tick);
            }
        });
        if let Some(news) = self.news.clone() {
            def.subscribe(&news, |me: &mut Busy, _ctx: &Context<'_>, Broadcast| {
                me.counts.handled.fetch_add(1, Ordering::Relaxed);
            });
        }
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
        ctx.direct_mbox().send(Tick);
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        if self.hops < self.limit {
            self.counts.cut_short.fetch_add(1, Ordering::SeqCst);
        }
        if self.finished.swap(true, Ordering::SeqCst) {
            self.counts.twice.fetch_add(1, Ordering::SeqCst);
        }
        self.counts.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.counts.drops.record();
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn stop_with_a_thousand_busy_cooperations() {
    watchdog(Duration::from_secs(120), || {
        let counts = Arc::new(Counts::default());
        let theirs = counts.clone();
        let report = launch(move |env| {
            theirs.drops.dereg.set(env.dereg_thread_id()).unwrap();
            let one_threads: Vec<OneThreadDispatcher> = (0..4)
                .map(|i| OneThreadDispatcher::new(env, &format!("shared-1t-{i}")).unwrap())
                .collect();
            let active = ActiveObjDispatcher::new(env, "shared-ao");
            let news = env.named_mbox("news");
            for c in 0..COOPS {
                let mut coop = env.make_coop();
                for a in 0..AGENTS {
                    let agent = Busy {
                        counts: theirs.clone(),
                        finished: AtomicBool::new(false),
                        hops: 0,
                        // Active objects hop a little (1,000 busy threads
                        // would starve the machine); the others until stopped.
                        limit: if a == 0 { 100 } else { UNTIL_STOPPED },
                        news: (a % 3 == 0).then(|| news.clone()),
                    };
                    if a == 0 {
                        coop.add_agent_with_binder(agent, active.binder());
                    } else {
                        coop.add_agent_with_binder(agent, one_threads[(c + a) % 4].binder());
                    }
                }
                env.register_coop(coop).unwrap();
                if c % 100 == 0 {
                    news.send(Broadcast);
                }
            }
            news.send(Broadcast);
            env.stop();
            // The dispatcher handles held here go with this closure; the
            // cooperations keep the dispatchers alive until their final step.
        })
        .unwrap();
        let total = COOPS * AGENTS;
        assert_eq!(
            counts.dropped.load(Ordering::SeqCst),
            total,
            "state not dropped before launch returned"
        );
        assert_eq!(counts.drops.on_dereg.load(Ordering::SeqCst), total);
        assert_eq!(counts.started.load(Ordering::SeqCst), total);
        assert_eq!(counts.finished.load(Ordering::SeqCst), total);
        assert_eq!(counts.twice.load(Ordering::SeqCst), 0);
        assert!(counts.handled.load(Ordering::SeqCst) >= total);
        // Every one-thread agent (and maybe an active object or two) still
        // had a message in flight when stopped.
        assert!(counts.cut_short.load(Ordering::SeqCst) >= COOPS * (AGENTS - 1));
        // 4 one-thread dispatchers, 1,000 active objects, the deregistration
        // and timer threads.
        assert_eq!(report.threads.len(), 4 + COOPS + 2);
        for status in &report.threads {
            assert_eq!(status.joined_on, report.reaper_thread);
            assert!(status.panic.is_none());
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            counts.dropped.load(Ordering::SeqCst),
            total,
            "a drop ran after launch returned"
        );
    });
}

struct Named {
    name: &'static str,
    order: Arc<Mutex<Vec<String>>>,
}

impl Agent for Named {
    fn finish(&mut self, _ctx: &Context<'_>) {
        self.order.lock().push(format!("finish {}", self.name));
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.order.lock().push(format!("drop {}", self.name));
    }
}

#[test]
fn children_go_before_their_parent() {
    watchdog(Duration::from_secs(30), || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let (o, r) = (order.clone(), reasons.clone());
        launch(move |env| {
            let mut parent = env.make_coop();
            parent.add_agent(Named {
                name: "parent",
                order: o.clone(),
            });
            let r1 = r.clone();
            parent.on_deregistered(move |_, _, reason| r1.lock().push(("parent", reason)));
            let parent = env.register_coop(parent).unwrap();
            let mut child = env.make_child_coop(&parent);
            child.add_agent(Named {
                name: "child",
                order: o.clone(),
            });
            let r2 = r.clone();
            child.on_deregistered(move |_, _, reason| r2.lock().push(("child", reason)));
            let child_handle = env.register_coop(child).unwrap();
            let mut grandchild = env.make_child_coop(&child_handle);
            grandchild.add_agent(Named {
                name: "grandchild",
                order: o.clone(),
            });
            env.register_coop(grandchild).unwrap();
            assert_eq!(env.coop_count(), 3);
            let (tx, rx) = std::sync::mpsc::channel();
            let mut watcher = env.make_coop();
            watcher.on_deregistered(move |_, _, _| {
                let _ = tx.send(());
            });
            let watcher = env.register_coop(watcher).unwrap();
            parent.deregister(DeregReason::User(7));
            while parent.is_alive() {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(!child_handle.is_alive());
            // A child of a gone parent is refused.
            let mut late = env.make_child_coop(&parent);
            late.add_agent(Named {
                name: "late",
                order: o.clone(),
            });
            assert!(matches!(
                env.register_coop(late),
                Err(mp_agents::Error::ParentGone)
            ));
            watcher.deregister(DeregReason::Normal);
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            env.stop();
        })
        .unwrap();
        let order = order.lock().clone();
        let pos = |s: &str| order.iter().position(|x| x == s).unwrap();
        assert!(pos("finish grandchild") < pos("finish child"));
        assert!(pos("drop grandchild") < pos("finish child"));
        assert!(pos("finish child") < pos("finish parent"));
        assert!(pos("drop child") < pos("finish parent"));
        let reasons = reasons.lock().clone();
        assert_eq!(
            reasons,
            vec![
                ("child", DeregReason::ParentDeregistration),
                ("parent", DeregReason::User(7))
            ]
        );
    });
}

struct Plain {
    counts: Arc<Counts>,
}

impl Agent for Plain {
    fn start(&mut self, _ctx: &Context<'_>) {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.counts.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn stop_while_threads_register() {
    const THREADS: usize = 4;
    watchdog(Duration::from_secs(60), || {
        for round in 0..20 {
            let counts = Arc::new(Counts::default());
            let refused = Arc::new(AtomicUsize::new(0));
            let made = Arc::new(AtomicUsize::new(0));
            let (c, r, m) = (counts.clone(), refused.clone(), made.clone());
            launch(move |env| {
                let active = ActiveObjDispatcher::new(env, "racing");
                let registrars: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let (env, c, r, m, active) =
                            (env.clone(), c.clone(), r.clone(), m.clone(), active.clone());
                        std::thread::spawn(move || loop {
                            let mut coop = env.make_coop();
                            for a in 0..3 {
                                let agent = Plain { counts: c.clone() };
                                m.fetch_add(1, Ordering::SeqCst);
                                if (t + a) % 2 == 0 {
                                    coop.add_agent_with_binder(agent, active.binder());
                                } else {
                                    coop.add_agent(agent);
                                }
                            }
                            if let Err(e) = env.register_coop(coop) {
                                assert!(matches!(e, mp_agents::Error::Stopped), "{e}");
                                r.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        })
                    })
                    .collect();
                std::thread::sleep(Duration::from_millis(1 + round % 5));
                env.stop();
                for registrar in registrars {
                    registrar.join().unwrap();
                }
            })
            .unwrap();
            let made = made.load(Ordering::SeqCst);
            assert_eq!(refused.load(Ordering::SeqCst), THREADS);
            // Every agent made was dropped; every one that started finished.
            assert_eq!(counts.dropped.load(Ordering::SeqCst), made);
            assert_eq!(
                counts.started.load(Ordering::SeqCst),
                counts.finished.load(Ordering::SeqCst)
            );
            assert_eq!(counts.started.load(Ordering::SeqCst), made - 3 * THREADS);
        }
    });
}

/// Sends itself a few messages on top of those it gets; counts what ran
/// after its finish (nothing may).
struct Spinner {
    counts: Arc<Counts>,
    finished: Arc<AtomicBool>,
    late: Arc<AtomicUsize>,
    priority: mp_agents::Priority,
    thread_safe: bool,
    hops: Arc<AtomicUsize>,
}

/// Messages each agent sends itself.
const HOPS: usize = 50;

impl Agent for Spinner {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        if self.thread_safe {
            let (counts, finished, late, hops) = (
                self.counts.clone(),
                self.finished.clone(),
                self.late.clone(),
                self.hops.clone(),
            );
            def.subscribe_self_thread_safe(move |ctx: &Context<'_>, Tick| {
                if finished.load(Ordering::SeqCst) {
                    late.fetch_add(1, Ordering::SeqCst);
                }
                counts.handled.fetch_add(1, Ordering::Relaxed);
                if hops.fetch_add(1, Ordering::Relaxed) < HOPS {
                    ctx.direct_mbox().send(Tick);
                }
            });
        } else {
            def.subscribe_self(|me: &mut Spinner, ctx: &Context<'_>, Tick| {
                if me.finished.load(Ordering::SeqCst) {
                    me.late.fetch_add(1, Ordering::SeqCst);
                }
                me.counts.handled.fetch_add(1, Ordering::Relaxed);
                if me.hops.fetch_add(1, Ordering::Relaxed) < HOPS {
                    ctx.direct_mbox().send(Tick);
                }
            });
        }
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
        ctx.direct_mbox().send(Tick);
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        if self.finished.swap(true, Ordering::SeqCst) {
            self.counts.twice.fetch_add(1, Ordering::SeqCst);
        }
        self.counts.finished.fetch_add(1, Ordering::SeqCst);
    }

    fn priority(&self) -> mp_agents::Priority {
        self.priority
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.counts.drops.record();
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Stop with messages in flight on the pool and priority dispatchers (a
/// burst queued for every agent, agents sending to themselves): every
/// finish runs once and last (after every message queued before it, and
/// no handler after it), every agent is
/// dropped on the deregistration thread before `launch` returns, every
/// thread is joined by the reaper.
#[test]
fn stop_with_messages_in_flight_on_pools_and_priority_dispatchers() {
    use mp_agents::{
        AdvThreadPoolDispatcher, Binder, Fifo, PoolParams, PrioDedicatedThreadsDispatcher,
        PrioOneThreadDispatcher, Priority, Quotas, ThreadPoolDispatcher,
    };
    // Small pools: this runs beside other tests on small machines, and
    // every worker here is busy until the stop.
    const COOPS: usize = 200;
    const AGENTS: usize = 6;
    const PRIOS: [Priority; 3] = [Priority::P1, Priority::P4, Priority::P7];
    const BURST: usize = 20;
    watchdog(Duration::from_secs(120), || {
        let counts = Arc::new(Counts::default());
        let late = Arc::new(AtomicUsize::new(0));
        let (theirs, late2) = (counts.clone(), late.clone());
        let report = launch(move |env| {
            theirs.drops.dereg.set(env.dereg_thread_id()).unwrap();
            let binders: Vec<Arc<dyn Binder>> = vec![
                ThreadPoolDispatcher::new(env, "stop-tp", PoolParams::with_threads(2))
                    .unwrap()
                    .binder(),
                ThreadPoolDispatcher::new(
                    env,
                    "stop-tpi",
                    PoolParams::with_threads(2).fifo(Fifo::Individual),
                )
                .unwrap()
                .binder(),
                AdvThreadPoolDispatcher::new(env, "stop-adv", PoolParams::with_threads(2))
                    .unwrap()
                    .binder(),
                PrioOneThreadDispatcher::strictly_ordered(env, "stop-strict")
                    .unwrap()
                    .binder(),
                PrioOneThreadDispatcher::quoted_round_robin(
                    env,
                    "stop-quoted",
                    Quotas::new(2).set(Priority::P7, 5),
                )
                .unwrap()
                .binder(),
                PrioDedicatedThreadsDispatcher::new(env, "stop-ded").binder(),
            ];
            let mut mboxes = Vec::new();
            for c in 0..COOPS {
                let mut coop = env.make_coop();
                for (a, binder) in binders.iter().enumerate().take(AGENTS) {
                    mboxes.push(coop.add_agent_with_binder(
                        Spinner {
                            counts: theirs.clone(),
                            finished: Arc::new(AtomicBool::new(false)),
                            late: late2.clone(),
                            priority: PRIOS[(c + a) % PRIOS.len()],
                            thread_safe: a == 2 && c % 2 == 0,
                            hops: Arc::new(AtomicUsize::new(0)),
                        },
                        binder.clone(),
                    ));
                }
                env.register_coop(coop).unwrap();
            }
            // A burst to every agent, still queued when the stop comes.
            for _ in 0..BURST {
                for mbox in &mboxes {
                    mbox.send(Tick);
                }
            }
            env.stop();
        })
        .unwrap();
        let total = COOPS * AGENTS;
        assert_eq!(counts.dropped.load(Ordering::SeqCst), total);
        assert_eq!(counts.drops.on_dereg.load(Ordering::SeqCst), total);
        assert_eq!(counts.started.load(Ordering::SeqCst), total);
        assert_eq!(counts.finished.load(Ordering::SeqCst), total);
        assert_eq!(counts.twice.load(Ordering::SeqCst), 0);
        assert_eq!(late.load(Ordering::SeqCst), 0, "a handler ran after finish");
        // Everything sent before the stop ran before the finish.
        assert!(counts.handled.load(Ordering::SeqCst) >= total * BURST);
        // 2 + 2 + 2 pool threads, 2 priority threads, 3 dedicated ones,
        // the deregistration and timer threads.
        assert_eq!(report.threads.len(), 6 + 2 + 3 + 2);
        for status in &report.threads {
            assert_eq!(status.joined_on, report.reaper_thread);
            assert!(status.panic.is_none());
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(counts.dropped.load(Ordering::SeqCst), total);
    });
}
