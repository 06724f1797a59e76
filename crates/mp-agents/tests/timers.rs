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
                    env.schedule_delayed(&mbox, Tick(n), Duration::from_micros((n % 40) as u64));
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

/// Forwards each `Tick` to a channel.
struct Forward(mpsc::Sender<usize>);

impl Agent for Forward {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Forward, _: &Context<'_>, Tick(n)| {
            let _ = me.0.send(n);
        });
    }
}

/// A registered [`Forward`]'s mbox and the channel it forwards to.
fn forwarder(env: &mp_agents::Environment) -> (mp_agents::DirectMbox, mpsc::Receiver<usize>) {
    let (tx, rx) = mpsc::channel();
    let mut coop = env.make_coop();
    let mbox = coop.add_agent(Forward(tx));
    env.register_coop(coop).unwrap();
    (mbox, rx)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_period_past_the_clock_delivers_once_and_the_timer_thread_goes_on() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (mbox, rx) = forwarder(env);
            let periodic = env.send_periodic(&mbox, Tick(1), Duration::ZERO, Duration::MAX);
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1);
            // Later timers still fire: the thread survived the re-arm.
            env.send_delayed(&mbox, Tick(2), Duration::from_millis(1));
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 2);
            // Armed, never due, still cancellable.
            assert_eq!(env.timer_count(), 1);
            assert!(periodic.cancel());
            assert_eq!(env.timer_count(), 0);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn a_zero_period_is_one_shot() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (mbox, rx) = forwarder(env);
            let once = env.send_periodic(&mbox, Tick(1), Duration::ZERO, Duration::ZERO);
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1);
            // Delivered and not re-armed: nothing left to cancel, and a
            // later timer comes next.
            env.send_delayed(&mbox, Tick(2), Duration::from_millis(1));
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 2);
            assert_eq!(env.timer_count(), 0);
            assert!(!once.cancel());
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn a_delay_past_the_clock_is_armed_never_due_and_cancellable() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (mbox, rx) = forwarder(env);
            let never = env.schedule_delayed(&mbox, Tick(1), Duration::MAX);
            let far = env.schedule_delayed(&mbox, Tick(2), Duration::MAX / 2);
            env.send_delayed(&mbox, Tick(3), Duration::from_millis(1));
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 3);
            assert_eq!(env.timer_count(), 2);
            assert!(never.cancel());
            assert!(far.cancel());
            env.stop();
        })
        .unwrap();
    });
}

/// An agent whose registration fails.
struct Refuses;

impl Agent for Refuses {
    fn define(&mut self, _def: &mut Define<'_, Self>) {
        panic!("refusing to define");
    }
}

/// A message whose `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a message's Drop panicked");
    }
}

#[test]
fn a_message_drop_panicking_on_the_timer_thread_loses_no_other_timer() {
    watchdog(Duration::from_secs(30), || {
        let report = launch(|env| {
            let (mbox, rx) = forwarder(env);
            // An mbox whose agent's registration failed: a message to it is
            // dropped on delivery, on the timer thread.
            let mut refused = env.make_coop();
            let dead = refused.add_agent(Refuses);
            assert!(env.register_coop(refused).is_err());
            env.send_delayed(&dead, Bomb, Duration::ZERO);
            env.send_delayed(&mbox, Tick(1), Duration::from_millis(5));
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1);
            // One left armed at shutdown is dropped there, also contained.
            env.send_delayed(&dead, Bomb, Duration::from_secs(3600));
            env.stop();
        })
        .unwrap();
        assert!(
            report.threads.iter().all(|t| t.panic.is_none()),
            "{:?}",
            report.threads
        );
    });
}

#[test]
fn dropping_a_handle_cancels_and_a_detached_timer_fires() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (mbox, rx) = forwarder(env);
            // Dropped at once: never delivered.
            drop(env.schedule_delayed(&mbox, Tick(1), Duration::from_millis(1)));
            drop(env.send_periodic(
                &mbox,
                Tick(2),
                Duration::from_millis(1),
                Duration::from_millis(1),
            ));
            assert_eq!(env.timer_count(), 0);
            // Detached: delivered without a handle.
            env.schedule_delayed(&mbox, Tick(3), Duration::from_millis(2))
                .detach();
            env.send_delayed(&mbox, Tick(4), Duration::from_millis(3));
            let mut got = vec![
                rx.recv_timeout(WAIT).unwrap(),
                rx.recv_timeout(WAIT).unwrap(),
            ];
            got.sort();
            assert_eq!(got, [3, 4]);
            // A detached periodic timer runs until the environment stops.
            env.send_periodic(&mbox, Tick(5), Duration::ZERO, Duration::from_millis(1))
                .detach();
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 5);
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), 5);
            assert_eq!(env.timer_count(), 1);
            env.stop();
        })
        .unwrap();
    });
}
