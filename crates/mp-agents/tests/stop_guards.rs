//! Stop guards delay the shutdown until the last is removed (removed from
//! many threads at once here), and autoshutdown stops the environment when
//! its last cooperation goes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::watchdog;
use mp_agents::{launch, launch_with, Agent, Context, DeregReason, Error, Params};

struct Counted {
    finished: Arc<AtomicUsize>,
}

impl Agent for Counted {
    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

const THREADS: usize = 8;
const GUARDS: usize = 1_000;

#[test]
fn guards_removed_in_parallel_delay_the_shutdown() {
    watchdog(Duration::from_secs(60), || {
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        launch(move |env| {
            let mut coop = env.make_coop();
            coop.add_agent(Counted {
                finished: f.clone(),
            });
            env.register_coop(coop).unwrap();
            let mut batches = Vec::new();
            for _ in 0..THREADS {
                let guards: Vec<_> = (0..GUARDS).map(|_| env.add_stop_guard().unwrap()).collect();
                batches.push(guards);
            }
            env.stop();
            std::thread::sleep(Duration::from_millis(20));
            assert!(env.is_stop_requested());
            assert!(!env.is_stopping(), "shutdown began with guards left");
            assert_eq!(f.load(Ordering::SeqCst), 0);
            // Still open for registration while guarded.
            let mut late = env.make_coop();
            late.add_agent(Counted {
                finished: f.clone(),
            });
            env.register_coop(late).unwrap();
            let start = Arc::new(Barrier::new(THREADS));
            let removers: Vec<_> = batches
                .into_iter()
                .map(|guards| {
                    let start = start.clone();
                    std::thread::spawn(move || {
                        start.wait();
                        for guard in guards {
                            guard.remove();
                        }
                    })
                })
                .collect();
            for remover in removers {
                remover.join().unwrap();
            }
            assert!(env.is_stopping());
            assert!(matches!(env.add_stop_guard(), Err(Error::Stopped)));
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 2);
    });
}

struct Quitter;

impl Agent for Quitter {
    fn start(&mut self, ctx: &Context<'_>) {
        ctx.deregister_coop(DeregReason::Normal);
    }
}

#[test]
fn autoshutdown_when_the_last_cooperation_goes() {
    watchdog(Duration::from_secs(30), || {
        let params = Params {
            autoshutdown: true,
            ..Params::default()
        };
        launch_with(params.clone(), |env| {
            for _ in 0..10 {
                let mut coop = env.make_coop();
                coop.add_agent(Quitter);
                env.register_coop(coop).unwrap();
            }
        })
        .unwrap();
        // Nothing registered at all: stops as soon as `init` returns.
        launch_with(params, |_| {}).unwrap();
    });
}

#[test]
fn by_default_the_environment_stops_when_its_last_cooperation_goes() {
    // SObjectizer's hello world: an agent that deregisters its own
    // cooperation, and nothing calls `stop`.
    watchdog(Duration::from_secs(30), || {
        let report = launch(|env| {
            let mut coop = env.make_coop();
            coop.add_agent(Quitter);
            env.register_coop(coop).unwrap();
        })
        .unwrap();
        assert!(!report.threads.is_empty());
        // An `init` that registers nothing stops it at once.
        launch(|_| {}).unwrap();
    });
}

#[test]
fn without_autoshutdown_an_empty_environment_waits_for_cooperations_from_outside() {
    watchdog(Duration::from_secs(30), || {
        let (tx, rx) = std::sync::mpsc::channel();
        let outside = std::thread::spawn(move || {
            let env: mp_agents::Environment = rx.recv().unwrap();
            // Registered after `init` returned, with nothing registered.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let mut coop = env.make_coop();
            coop.add_agent(Quitter);
            coop.on_deregistered(move |_, _, _| {
                let _ = done_tx.send(());
            });
            env.register_coop(coop).unwrap();
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(!env.is_stopping());
            env.stop();
        });
        let params = Params {
            autoshutdown: false,
            ..Params::default()
        };
        launch_with(params, move |env| tx.send(env.clone()).unwrap()).unwrap();
        outside.join().unwrap();
    });
}

/// Holds a stop guard until told the stop was asked for; logs the order.
struct Careful {
    guard: Option<mp_agents::StopGuard>,
    log: Arc<parking_lot::Mutex<Vec<&'static str>>>,
}

struct WrapUp;

impl Agent for Careful {
    fn define(&mut self, def: &mut mp_agents::Define<'_, Self>) {
        def.subscribe_self(|me: &mut Careful, _: &Context<'_>, SetGuard(guard)| {
            me.guard = Some(guard);
        });
        def.subscribe_self(|me: &mut Careful, _: &Context<'_>, WrapUp| {
            me.log.lock().push("wrapped up");
            me.guard.take();
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.log.lock().push("finish");
    }
}

#[test]
fn a_stop_guard_callback_tells_its_holder_to_finish_up() {
    watchdog(Duration::from_secs(30), || {
        let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let l = log.clone();
        let called = Arc::new(AtomicUsize::new(0));
        let c = called.clone();
        launch(move |env| {
            let mut coop = env.make_coop();
            let careful = coop.add_agent(Careful {
                guard: None,
                log: l.clone(),
            });
            env.register_coop(coop).unwrap();
            let to = careful.clone();
            let guard = env.add_stop_guard_with(move || to.send(WrapUp)).unwrap();
            careful.send(SetGuard(guard));
            // Removed before the stop: never called.
            let c2 = c.clone();
            drop(env.add_stop_guard_with(move || {
                c2.fetch_add(1, Ordering::SeqCst);
            }));
            env.stop();
            // Added while the stop waits for the first guard: called at once.
            let c3 = c.clone();
            let late = env
                .add_stop_guard_with(move || {
                    c3.fetch_add(10, Ordering::SeqCst);
                })
                .unwrap();
            assert_eq!(c.load(Ordering::SeqCst), 10);
            drop(late);
        })
        .unwrap();
        assert_eq!(*log.lock(), ["wrapped up", "finish"]);
        assert_eq!(called.load(Ordering::SeqCst), 10);
    });
}

/// Hands the agent its guard.
struct SetGuard(mp_agents::StopGuard);
