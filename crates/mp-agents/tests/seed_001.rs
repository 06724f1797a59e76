//! Seed 001: the last agent of a cooperation finishes its last message on
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
    launch, ActiveObjDispatcher, Agent, Binder, Context, Define, DeregReason, OneThreadDispatcher,
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
