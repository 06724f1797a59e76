//! Delayed and periodic messages: delivery, cancellation (including
//! cancellation racing delivery), and timers still armed at shutdown.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use common::watchdog;
use mp_agents::{launch, Agent, Context, Define, TimerHandle};

#[derive(Clone)]
struct Tick(usize);

struct Collector {
    seen: Arc<Mutex<HashSet<usize>>>,
    tx: Option<mpsc::Sender<Instant>>,
}

impl Agent for Collector {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Collector, _: &Context<'_>, Tick(n)| {
            me.seen.lock().insert(n);
            if let Some(tx) = &me.tx {
                let _ = tx.send(Instant::now());
            }
        });
    }
}

#[test]
fn a_delayed_message_arrives_after_its_delay() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Collector {
                seen: Arc::default(),
                tx: Some(tx),
            });
            env.register_coop(coop).unwrap();
            let sent = Instant::now();
            env.send_delayed(&mbox, Tick(1), Duration::from_millis(20));
            let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(got - sent >= Duration::from_millis(20));
            env.stop();
        })
        .unwrap();
    });
}

struct Periodic {
    ticks: Arc<AtomicUsize>,
    timer: Option<TimerHandle>,
    cancelled: Option<mpsc::Sender<usize>>,
}

/// Asks an agent for its tick count; handled after everything queued.
struct Count(mpsc::Sender<usize>);

impl Agent for Periodic {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Periodic, _: &Context<'_>, Count(tx)| {
            let _ = tx.send(me.ticks.load(Ordering::SeqCst));
        });
        def.subscribe_self(|me: &mut Periodic, _: &Context<'_>, Tick(_)| {
            let n = me.ticks.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                assert!(me.timer.as_ref().unwrap().cancel());
                let _ = me.cancelled.take().unwrap().send(n);
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.timer = Some(ctx.env().send_periodic(
            &ctx.direct_mbox(),
            Tick(0),
            Duration::ZERO,
            Duration::from_millis(2),
        ));
    }
}

#[test]
fn a_periodic_message_stops_when_cancelled() {
    watchdog(Duration::from_secs(30), || {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        launch(move |env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Periodic {
                ticks: t.clone(),
                timer: None,
                cancelled: Some(tx),
            });
            env.register_coop(coop).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 3);
            // Once what was queued (or being fired) at the cancel has been
            // handled, the count stays put: nothing is fired any more.
            let count = || {
                let (tx, rx) = mpsc::channel();
                mbox.send(Count(tx));
                rx.recv_timeout(Duration::from_secs(10)).unwrap()
            };
            std::thread::sleep(Duration::from_millis(20));
            let settled = count();
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(count(), settled);
            assert!(t.load(Ordering::SeqCst) >= 3);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn cancel_racing_delivery_is_exact() {
    const ROUNDS: usize = 2_000;
    watchdog(Duration::from_secs(60), || {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let s = seen.clone();
        launch(move |env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Collector {
                seen: s.clone(),
                tx: None,
            });
            env.register_coop(coop).unwrap();
            let mut cancelled = Vec::new();
            let mut delivered = 0;
            for n in 0..ROUNDS {
                let timer =
                    env.send_delayed(&mbox, Tick(n), Duration::from_micros((n % 40) as u64));
                // Cancel at varying moments around the delivery.
                let wait = Instant::now() + Duration::from_micros((n % 120) as u64);
                while Instant::now() < wait {
                    std::hint::spin_loop();
                }
                if timer.cancel() {
                    cancelled.push(n);
                } else {
                    delivered += 1;
                }
            }
            eprintln!("{delivered} delivered, {} cancelled", cancelled.len());
            let deadline = Instant::now() + Duration::from_secs(10);
            while s.lock().len() < delivered && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(20));
            let seen = s.lock();
            assert_eq!(
                seen.len(),
                delivered,
                "cancel said 'too late' but nothing arrived, or the reverse"
            );
            for n in &cancelled {
                assert!(!seen.contains(n), "tick {n} was cancelled yet delivered");
            }
            drop(seen);
            env.stop();
        })
        .unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Sink;
impl Agent for Sink {}

#[test]
fn timers_armed_at_shutdown_are_dropped_before_launch_returns() {
    watchdog(Duration::from_secs(30), || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        launch(move |env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Sink);
            env.register_coop(coop).unwrap();
            env.send_delayed(&mbox, Counted(d.clone()), Duration::from_secs(3600));
            let news = env.create_mbox();
            env.send_delayed(
                &news,
                Arc::new(Counted(d.clone())),
                Duration::from_secs(3600),
            );
            env.stop();
        })
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}
