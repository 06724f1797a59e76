//! A thread that would join itself (the SObjectizer defect): the last agent of a cooperation finishes its last message on
//! its own worker thread at the moment the cooperation is handed over for
//! its final step. Every final drop (agent state, binder, and the private
//! dispatcher behind it) must run on the deregistration thread, never on
//! the worker; every thread is joined by the reaper, none by itself.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{watchdog, DropLog, Recording};
use mp_agents::{
    launch, ActiveObjDispatcher, AdvThreadPoolDispatcher, Agent, Binder, Context, Define,
    DeregReason, Fifo, OneThreadDispatcher, PoolParams, PrioDedicatedThreadsDispatcher,
    PrioOneThreadDispatcher, Priority, Quotas, ThreadPoolDispatcher,
};

const ROUNDS: usize = 10_000;

#[derive(Clone, Copy)]
struct Go;

struct Last {
    log: Arc<DropLog>,
    finishes: Arc<AtomicUsize>,
    spin: usize,
}

impl Agent for Last {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Last, ctx: &Context<'_>, Go| {
            // The last message: ask for our own cooperation to go, then keep
            // the worker busy a little so the hand-off races the final step.
            ctx.deregister_coop(DeregReason::Normal);
            for _ in 0..me.spin {
                std::hint::spin_loop();
            }
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finishes.fetch_add(1, Ordering::SeqCst);
        for _ in 0..self.spin {
            std::hint::spin_loop();
        }
    }
}

impl Drop for Last {
    fn drop(&mut self) {
        self.log.record();
    }
}

#[test]
fn final_drops_never_run_on_a_worker() {
    watchdog(Duration::from_secs(120), || {
        let log = Arc::new(DropLog::default());
        let finishes = Arc::new(AtomicUsize::new(0));
        let agents = Arc::new(AtomicUsize::new(0));
        let (log2, finishes2, agents2) = (log.clone(), finishes.clone(), agents.clone());
        let report = launch(move |env| {
            log2.dereg.set(env.dereg_thread_id()).unwrap();
            let (done_tx, done_rx) = mpsc::channel();
            for round in 0..ROUNDS {
                let inner: Arc<dyn Binder> = match round % 3 {
                    0 | 2 => ActiveObjDispatcher::new(env, "seed-ao").binder(),
                    _ => OneThreadDispatcher::new(env, "seed-1t").unwrap().binder(),
                };
                // The cooperation's binder is the dispatcher's last user.
                let binder: Arc<dyn Binder> = Arc::new(Recording {
                    inner,
                    log: log2.clone(),
                });
                let mut coop = env.make_coop();
                coop.set_binder(binder);
                let count = if round % 3 == 2 { 2 } else { 1 };
                let mut mboxes = Vec::new();
                for _ in 0..count {
                    mboxes.push(coop.add_agent(Last {
                        log: log2.clone(),
                        finishes: finishes2.clone(),
                        spin: round % 7 * 50,
                    }));
                    agents2.fetch_add(1, Ordering::SeqCst);
                }
                let tx = done_tx.clone();
                coop.on_deregistered(move |_, _, reason| {
                    let _ = tx.send(reason);
                });
                env.register_coop(coop).unwrap();
                for mbox in &mboxes {
                    mbox.send(Go);
                }
                drop(mboxes);
                let reason = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(reason, DeregReason::Normal);
            }
            env.stop();
        })
        .unwrap();
        let agents = agents.load(Ordering::SeqCst);
        assert_eq!(finishes.load(Ordering::SeqCst), agents);
        assert_eq!(
            log.elsewhere.load(Ordering::SeqCst),
            0,
            "a final drop ran off the deregistration thread"
        );
        // Every agent and every binder (with its dispatcher) dropped there.
        assert_eq!(log.on_dereg.load(Ordering::SeqCst), agents + ROUNDS);
        // One thread per active-object agent, one per one-thread dispatcher,
        // plus the deregistration and timer threads: all joined by the reaper.
        let expected_threads = (0..ROUNDS)
            .map(|r| match r % 3 {
                0 | 1 => 1,
                _ => 2,
            })
            .sum::<usize>()
            + 2; // the deregistration and timer threads
        assert_eq!(report.threads.len(), expected_threads);
        for status in &report.threads {
            assert_eq!(
                status.joined_on, report.reaper_thread,
                "{} not joined by the reaper",
                status.thread
            );
            assert!(status.panic.is_none(), "{} panicked", status.thread);
        }
        assert_ne!(report.dereg_thread, report.reaper_thread);
    });
}

/// Like `Last`, but its `Go` handler is thread-safe (on the advanced pool
/// it runs outside the agent's state lock).
struct LastShared {
    log: Arc<DropLog>,
    finishes: Arc<AtomicUsize>,
    spin: usize,
}

impl Agent for LastShared {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let spin = self.spin;
        // Dropped with the handler: on the deregistration thread too.
        let witness = HandlerWitness(self.log.clone());
        def.subscribe_self_thread_safe(move |ctx: &Context<'_>, Go| {
            let _ = &witness;
            ctx.deregister_coop(DeregReason::Normal);
            for _ in 0..spin {
                std::hint::spin_loop();
            }
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finishes.fetch_add(1, Ordering::SeqCst);
        for _ in 0..self.spin {
            std::hint::spin_loop();
        }
    }

    fn priority(&self) -> Priority {
        Priority::new((self.spin % 8) as u8).unwrap()
    }
}

/// Records where a thread-safe handler (which captured it) was dropped.
struct HandlerWitness(Arc<DropLog>);

impl Drop for HandlerWitness {
    fn drop(&mut self) {
        self.0.record();
    }
}

impl Drop for LastShared {
    fn drop(&mut self) {
        self.log.record();
    }
}

/// The same scenario on the pool and priority dispatchers: each round
/// a private dispatcher whose last user is the cooperation; the last agent
/// finishes on one of the dispatcher's threads as the cooperation is
/// handed over. Every final drop runs on the deregistration thread and
/// every thread is joined by the reaper.
#[test]
fn final_drops_never_run_on_a_pool_or_priority_worker() {
    const KINDS: usize = 6;
    watchdog(Duration::from_secs(180), || {
        let log = Arc::new(DropLog::default());
        let finishes = Arc::new(AtomicUsize::new(0));
        let agents = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(AtomicUsize::new(0));
        let shared_agents = Arc::new(AtomicUsize::new(0));
        let (log2, finishes2, agents2, threads2, shared2) = (
            log.clone(),
            finishes.clone(),
            agents.clone(),
            threads.clone(),
            shared_agents.clone(),
        );
        let report = launch(move |env| {
            log2.dereg.set(env.dereg_thread_id()).unwrap();
            let (done_tx, done_rx) = mpsc::channel();
            for round in 0..ROUNDS {
                let kind = round % KINDS;
                let count = 1 + round % 2;
                let spin = round % 7 * 50;
                let (inner, n_threads): (Arc<dyn Binder>, usize) = match kind {
                    0 => (
                        ThreadPoolDispatcher::new(env, "seed-tp", PoolParams::with_threads(2))
                            .unwrap()
                            .binder(),
                        2,
                    ),
                    1 => (
                        ThreadPoolDispatcher::new(
                            env,
                            "seed-tpi",
                            PoolParams::with_threads(2).fifo(Fifo::Individual),
                        )
                        .unwrap()
                        .binder(),
                        2,
                    ),
                    2 => (
                        AdvThreadPoolDispatcher::new(
                            env,
                            "seed-adv",
                            PoolParams::with_threads(2).fifo(Fifo::Individual),
                        )
                        .unwrap()
                        .binder(),
                        2,
                    ),
                    3 => (
                        PrioOneThreadDispatcher::strictly_ordered(env, "seed-strict")
                            .unwrap()
                            .binder(),
                        1,
                    ),
                    4 => (
                        PrioOneThreadDispatcher::quoted_round_robin(
                            env,
                            "seed-quoted",
                            Quotas::new(2),
                        )
                        .unwrap()
                        .binder(),
                        1,
                    ),
                    // One thread per priority; all agents of a round share
                    // the round's priority.
                    _ => (
                        PrioDedicatedThreadsDispatcher::new(env, "seed-ded").binder(),
                        1,
                    ),
                };
                threads2.fetch_add(n_threads, Ordering::SeqCst);
                let binder: Arc<dyn Binder> = Arc::new(Recording {
                    inner,
                    log: log2.clone(),
                });
                let mut coop = env.make_coop();
                coop.set_binder(binder);
                let mut mboxes = Vec::new();
                for _ in 0..count {
                    let mbox = if kind == 2 || kind == 5 {
                        shared2.fetch_add(1, Ordering::SeqCst);
                        coop.add_agent(LastShared {
                            log: log2.clone(),
                            finishes: finishes2.clone(),
                            spin,
                        })
                    } else {
                        coop.add_agent(Last {
                            log: log2.clone(),
                            finishes: finishes2.clone(),
                            spin,
                        })
                    };
                    mboxes.push(mbox);
                    agents2.fetch_add(1, Ordering::SeqCst);
                }
                let tx = done_tx.clone();
                coop.on_deregistered(move |_, _, reason| {
                    let _ = tx.send(reason);
                });
                env.register_coop(coop).unwrap();
                for mbox in &mboxes {
                    mbox.send(Go);
                }
                drop(mboxes);
                let reason = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(reason, DeregReason::Normal);
            }
            env.stop();
        })
        .unwrap();
        let agents = agents.load(Ordering::SeqCst);
        assert_eq!(finishes.load(Ordering::SeqCst), agents);
        assert_eq!(
            log.elsewhere.load(Ordering::SeqCst),
            0,
            "a final drop ran off the deregistration thread"
        );
        // Every agent, every thread-safe handler, every binder.
        assert_eq!(
            log.on_dereg.load(Ordering::SeqCst),
            agents + shared_agents.load(Ordering::SeqCst) + ROUNDS
        );
        assert_eq!(
            report.threads.len(),
            threads.load(Ordering::SeqCst) + 2,
            "every dispatcher thread, the deregistration and timer threads"
        );
        for status in &report.threads {
            assert_eq!(
                status.joined_on, report.reaper_thread,
                "{} not joined by the reaper",
                status.thread
            );
            assert!(status.panic.is_none(), "{} panicked", status.thread);
        }
    });
}
