//! Message limits: each overflow reaction (drop, redirect, transform,
//! abort — the last in a child process), slots given back as messages are
//! handled, and every message — queued, refused or overflowed — dropped
//! by the time its cooperation is gone.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{launch, Agent, Context, Define, DeregReason, DirectMbox, Error, LimitOverflow};
use parking_lot::Mutex;

/// A message that counts its drops.
struct Job {
    n: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Blocks the agent until the sender is dropped or sends.
struct Hold {
    started: mpsc::Sender<()>,
    gate: mpsc::Receiver<()>,
}

/// Replies with what the agent handled.
struct Report(mpsc::Sender<Vec<u32>>);

/// What a transform makes of an overflowing job.
struct Overflowed(u32);

struct Limited {
    overflow: Option<LimitOverflow<Job>>,
    handled: Vec<u32>,
}

impl Agent for Limited {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        if let Some(overflow) = self.overflow.take() {
            def.limit::<Job>(2, overflow);
        }
        def.subscribe_self(|me: &mut Limited, _: &Context<'_>, job: Job| me.handled.push(job.n))
            .subscribe_self(|_: &mut Limited, _: &Context<'_>, hold: Hold| {
                let _ = hold.started.send(());
                let _ = hold.gate.recv();
            })
            .subscribe_self(|me: &mut Limited, _: &Context<'_>, Report(tx)| {
                let _ = tx.send(std::mem::take(&mut me.handled));
            });
    }
}

/// Collects what is redirected or transformed to it.
struct Sink {
    got: Arc<Mutex<Vec<String>>>,
}

impl Agent for Sink {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Sink, _: &Context<'_>, job: Job| {
            me.got.lock().push(format!("job {}", job.n))
        })
        .subscribe_self(|me: &mut Sink, _: &Context<'_>, Overflowed(n)| {
            me.got.lock().push(format!("overflowed {n}"))
        })
        .subscribe_self(|me: &mut Sink, _: &Context<'_>, Report(tx)| {
            let n = me.got.lock().len() as u32;
            let _ = tx.send(vec![n]);
        });
    }
}

fn ask(mbox: &DirectMbox) -> Vec<u32> {
    let (tx, rx) = mpsc::channel();
    mbox.send(Report(tx));
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// Blocks `mbox`'s agent in a handler; returns the gate to open.
fn block(mbox: &DirectMbox) -> mpsc::Sender<()> {
    let (started_tx, started) = mpsc::channel();
    let (gate_tx, gate) = mpsc::channel();
    mbox.send(Hold {
        started: started_tx,
        gate,
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    gate_tx
}

/// Sends jobs 1..=5 to a blocked agent with a limit of 2, then lets it go.
/// Returns what it handled.
fn five_jobs_to_a_blocked_agent(mbox: &DirectMbox, drops: &Arc<AtomicUsize>) -> Vec<u32> {
    let gate = block(mbox);
    for n in 1..=5 {
        mbox.send(Job {
            n,
            drops: drops.clone(),
        });
    }
    drop(gate);
    ask(mbox)
}

#[test]
fn drop_keeps_the_limit_and_slots_come_back() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Limited {
                overflow: Some(LimitOverflow::Drop),
                handled: Vec::new(),
            });
            env.register_coop(coop).unwrap();
            assert_eq!(five_jobs_to_a_blocked_agent(&mbox, &drops), [1, 2]);
            assert_eq!(drops.load(Ordering::SeqCst), 5, "3 dropped, 2 handled");
            // Handled: their slots are free again.
            assert_eq!(five_jobs_to_a_blocked_agent(&mbox, &drops), [1, 2]);
            assert_eq!(drops.load(Ordering::SeqCst), 10);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn without_a_limit_nothing_is_dropped() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Limited {
                overflow: None,
                handled: Vec::new(),
            });
            env.register_coop(coop).unwrap();
            assert_eq!(five_jobs_to_a_blocked_agent(&mbox, &drops), [1, 2, 3, 4, 5]);
            env.stop();
        })
        .unwrap();
    });
}

fn with_sink(make: impl FnOnce(DirectMbox) -> LimitOverflow<Job> + Send + 'static) -> Vec<String> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    launch(move |env| {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut coop = env.make_coop();
        let sink = coop.add_agent(Sink { got: g });
        let mbox = coop.add_agent(Limited {
            overflow: Some(make(sink.clone())),
            handled: Vec::new(),
        });
        env.register_coop(coop).unwrap();
        assert_eq!(five_jobs_to_a_blocked_agent(&mbox, &drops), [1, 2]);
        assert_eq!(ask(&sink), [3]);
        env.stop();
    })
    .unwrap();
    let got = got.lock().clone();
    got
}

#[test]
fn redirect_sends_the_overflow_elsewhere() {
    watchdog(Duration::from_secs(30), || {
        let got = with_sink(LimitOverflow::redirect);
        assert_eq!(got, ["job 3", "job 4", "job 5"]);
    });
}

#[test]
fn transform_sends_something_else_elsewhere() {
    watchdog(Duration::from_secs(30), || {
        let got = with_sink(|sink| LimitOverflow::transform(sink, |job: Job| Overflowed(job.n)));
        assert_eq!(got, ["overflowed 3", "overflowed 4", "overflowed 5"]);
    });
}

#[test]
fn a_redirect_loop_is_cut() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut coop = env.make_coop();
            let news = env.create_mbox();
            // Its only subscriber redirects every message back to it.
            struct Echo(mp_agents::Mbox);
            impl Agent for Echo {
                fn define(&mut self, def: &mut Define<'_, Self>) {
                    def.limit::<Arc<AtomicUsize>>(0, LimitOverflow::redirect(self.0.clone()));
                    def.subscribe(
                        &self.0,
                        |_: &mut Echo, _: &Context<'_>, _: Arc<AtomicUsize>| {},
                    );
                }
            }
            coop.add_agent(Echo(news.clone()));
            env.register_coop(coop).unwrap();
            news.send(drops.clone());
            // Cut after a bounded depth; the message is dropped.
            assert_eq!(Arc::strong_count(&drops), 1);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn every_message_is_dropped_by_the_time_its_cooperation_is_gone() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Limited {
                overflow: Some(LimitOverflow::Drop),
                handled: Vec::new(),
            });
            let (gone_tx, gone) = mpsc::channel();
            coop.on_deregistered(move |_, _, _| {
                let _ = gone_tx.send(());
            });
            let handle = env.register_coop(coop).unwrap();
            let gate = block(&mbox);
            for n in 1..=5 {
                mbox.send(Job {
                    n,
                    drops: drops.clone(),
                });
            }
            handle.deregister(DeregReason::Normal);
            // Refused: the agent is finishing (or overflowed).
            mbox.send(Job {
                n: 6,
                drops: drops.clone(),
            });
            drop(gate);
            gone.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 6);
            env.stop();
        })
        .unwrap();
    });
}

/// Sends a limited message to itself from `define`; a later agent's
/// define fails the registration.
struct Early {
    drops: Arc<AtomicUsize>,
}

impl Agent for Early {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.limit::<Job>(1, LimitOverflow::Drop);
        for n in 0..3 {
            def.direct_mbox().send(Job {
                n,
                drops: self.drops.clone(),
            });
        }
    }
}

struct Fails;

impl Agent for Fails {
    fn define(&mut self, _def: &mut Define<'_, Self>) {
        panic!("no");
    }
}

#[test]
fn a_failed_registration_drops_what_was_buffered() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Early {
                drops: drops.clone(),
            });
            coop.add_agent(Fails);
            assert!(matches!(
                env.register_coop(coop),
                Err(Error::DefinePanicked(_))
            ));
            assert_eq!(drops.load(Ordering::SeqCst), 3);
            drop(mbox);
            env.stop();
        })
        .unwrap();
    });
}

const ABORT_CHILD: &str = "MP_AGENTS_LIMIT_ABORT_CHILD";

/// Run only as the child of `abort_aborts_the_process`.
#[test]
fn abort_child() {
    if std::env::var_os(ABORT_CHILD).is_none() {
        return;
    }
    launch(|env| {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut coop = env.make_coop();
        let mbox = coop.add_agent(Limited {
            overflow: Some(LimitOverflow::Abort),
            handled: Vec::new(),
        });
        env.register_coop(coop).unwrap();
        let _gate = block(&mbox);
        for n in 1..=3 {
            mbox.send(Job {
                n,
                drops: drops.clone(),
            });
        }
        eprintln!("still alive after the overflow");
        env.stop();
    })
    .unwrap();
}

#[test]
fn abort_aborts_the_process() {
    watchdog(Duration::from_secs(60), || {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["abort_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(ABORT_CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(6), "SIGABRT; {stderr}");
        }
        assert!(stderr.contains("message limit"), "{stderr}");
        assert!(!stderr.contains("still alive"), "{stderr}");
    });
}

/// Subscribed to an MPMC mbox, with or without a limit of 0 on `Tick`.
struct Listener {
    news: mp_agents::Mbox,
    limited: bool,
    got: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Tick;

impl Agent for Listener {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        if self.limited {
            def.limit::<Tick>(0, LimitOverflow::Drop);
        }
        def.subscribe(&self.news, |me: &mut Listener, _: &Context<'_>, Tick| {
            me.got.fetch_add(1, Ordering::SeqCst);
        })
        .subscribe_self(|me: &mut Listener, _: &Context<'_>, Report(tx)| {
            let _ = tx.send(vec![me.got.load(Ordering::SeqCst) as u32]);
        });
    }
}

#[test]
fn limits_are_per_receiver_on_an_mpmc_mbox() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let news = env.create_mbox();
            let mut coop = env.make_coop();
            let limited = coop.add_agent(Listener {
                news: news.clone(),
                limited: true,
                got: Arc::default(),
            });
            let free = coop.add_agent(Listener {
                news: news.clone(),
                limited: false,
                got: Arc::default(),
            });
            env.register_coop(coop).unwrap();
            for _ in 0..3 {
                news.send(Tick);
            }
            assert_eq!(ask(&limited), [0]);
            assert_eq!(ask(&free), [3]);
            env.stop();
        })
        .unwrap();
    });
}
