//! The single-threaded dispatchers' demand queue (`WorkerQueue`): demands
//! pushed from many threads arrive once each and in order per sender,
//! whatever `Params::busy_wait` is; and a push that lands just as a drain
//! gives up polling is never stranded (the race window between "nothing
//! came while polling" and "no drain scheduled" is opened on purpose by a
//! sender that waits about as long as the poll before each message).
//!
//! Every test has a watchdog: a stranded demand shows as a hang.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::watchdog;
use mp_agents::{
    launch_with, ActiveGroupDispatcher, ActiveObjDispatcher, Agent, Binder, Context, Define,
    DirectMbox, Environment, OneThreadDispatcher, Params, PrioDedicatedThreadsDispatcher,
};

const SENDERS: usize = 4;
const PER_SENDER: u64 = 20_000;

#[derive(Clone, Copy)]
struct Seq {
    sender: usize,
    n: u64,
}

/// Counts messages, checking each sender's sequence has no gap or repeat.
struct Counter {
    next: [u64; SENDERS],
    total: Arc<AtomicU64>,
    out_of_order: Arc<AtomicU64>,
}

impl Agent for Counter {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Counter, _ctx: &Context<'_>, seq: Seq| {
            if me.next[seq.sender] != seq.n {
                me.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            me.next[seq.sender] = seq.n + 1;
            me.total.fetch_add(1, Ordering::Release);
        });
    }
}

fn params(busy_wait: Duration) -> Params {
    Params {
        busy_wait: Some(busy_wait),
        ..Params::default()
    }
}

/// Registers a `Counter` on the binder `make` gives, returns its mbox.
fn counter(
    env: &Environment,
    make: MakeBinder,
    total: &Arc<AtomicU64>,
    out_of_order: &Arc<AtomicU64>,
) -> DirectMbox {
    let mut coop = env.make_coop();
    coop.set_binder(make(env));
    let mbox = coop.add_agent(Counter {
        next: [0; SENDERS],
        total: total.clone(),
        out_of_order: out_of_order.clone(),
    });
    env.register_coop(coop).unwrap();
    mbox
}

fn one_thread(env: &Environment) -> Arc<dyn Binder> {
    OneThreadDispatcher::new(env, "wq").unwrap().binder()
}

fn active_obj(env: &Environment) -> Arc<dyn Binder> {
    ActiveObjDispatcher::new(env, "wq").binder()
}

fn active_group(env: &Environment) -> Arc<dyn Binder> {
    ActiveGroupDispatcher::new(env, "wq").binder("g")
}

fn prio_dedicated(env: &Environment) -> Arc<dyn Binder> {
    PrioDedicatedThreadsDispatcher::new(env, "wq").binder()
}

/// Makes a binder of one dispatcher kind.
type MakeBinder = fn(&Environment) -> Arc<dyn Binder>;

const KINDS: [(&str, MakeBinder); 4] = [
    ("one_thread", one_thread),
    ("active_obj", active_obj),
    ("active_group", active_group),
    ("prio_dedicated_threads", prio_dedicated),
];

#[test]
fn many_senders_every_demand_once_in_order() {
    watchdog(Duration::from_secs(120), || {
        for busy_wait in [
            Duration::ZERO,
            Duration::from_micros(20),
            Duration::from_millis(2),
        ] {
            for (kind, make) in KINDS {
                let total = Arc::new(AtomicU64::new(0));
                let out_of_order = Arc::new(AtomicU64::new(0));
                let (t, o) = (total.clone(), out_of_order.clone());
                launch_with(params(busy_wait), move |env| {
                    let mbox = counter(env, make, &t, &o);
                    let senders: Vec<_> = (0..SENDERS)
                        .map(|sender| {
                            let mbox = mbox.clone();
                            std::thread::spawn(move || {
                                for n in 0..PER_SENDER {
                                    mbox.send(Seq { sender, n });
                                }
                            })
                        })
                        .collect();
                    for s in senders {
                        s.join().unwrap();
                    }
                    let want = SENDERS as u64 * PER_SENDER;
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while t.load(Ordering::Acquire) < want {
                        assert!(
                            Instant::now() < deadline,
                            "{kind}, busy_wait {busy_wait:?}: stuck at {} of {want}",
                            t.load(Ordering::Acquire)
                        );
                        std::thread::yield_now();
                    }
                    env.stop();
                })
                .unwrap();
                assert_eq!(
                    total.load(Ordering::Acquire),
                    SENDERS as u64 * PER_SENDER,
                    "{kind}, busy_wait {busy_wait:?}"
                );
                assert_eq!(
                    out_of_order.load(Ordering::Relaxed),
                    0,
                    "{kind}, busy_wait {busy_wait:?}: a sender's messages came out of order"
                );
            }
        }
    });
}

/// Replies to every `Seq` on a std channel, so the sender can time the
/// next one from the moment the agent went idle.
struct Echo {
    done: mpsc::Sender<u64>,
}

impl Agent for Echo {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Echo, _ctx: &Context<'_>, seq: Seq| {
            let _ = me.done.send(seq.n);
        });
    }
}

#[test]
fn a_push_as_polling_gives_up_is_not_stranded() {
    const BUSY_WAIT: Duration = Duration::from_micros(30);
    const ROUNDS: u64 = 3_000;
    watchdog(Duration::from_secs(120), || {
        launch_with(params(BUSY_WAIT), |env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            coop.set_binder(one_thread(env));
            let echo = coop.add_agent(Echo { done: tx });
            env.register_coop(coop).unwrap();
            for n in 0..ROUNDS {
                // The agent's drain starts polling when it has replied;
                // wait a sweep of delays around the poll's length, so
                // some pushes land just before it gives up, some just
                // after, and some while it clears `scheduled`.
                let delay = BUSY_WAIT * (n % 16) as u32 / 8;
                let start = Instant::now();
                while start.elapsed() < delay {
                    std::hint::spin_loop();
                }
                echo.send(Seq { sender: 0, n });
                let got = rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("message {n} was stranded"));
                assert_eq!(got, n);
            }
            env.stop();
        })
        .unwrap();
    });
}

/// Records what reached it, in order.
struct Target {
    log: Arc<parking_lot::Mutex<Vec<&'static str>>>,
}

#[derive(Clone, Copy)]
struct Last;

impl Agent for Target {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Target, _ctx: &Context<'_>, Last| {
            me.log.lock().push("message");
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.log.lock().push("finish");
    }
}

/// Sends `Last` to the target, asks for the target's cooperation to go,
/// and holds the thread until the deregistration thread has queued the
/// target's finish behind it.
struct Sender {
    target: DirectMbox,
    target_coop: Option<mp_agents::CoopHandle>,
}

#[derive(Clone, Copy)]
struct Go;

impl Agent for Sender {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Sender, _ctx: &Context<'_>, Go| {
            me.target.send(Last);
            if let Some(coop) = me.target_coop.take() {
                coop.deregister(mp_agents::DeregReason::Normal);
            }
            // Opens the window: the finish lands while `Last` waits.
            std::thread::sleep(Duration::from_millis(5));
        });
    }
}

#[test]
fn a_message_sent_from_the_same_thread_before_deregistration_runs_before_finish() {
    const ROUNDS: usize = 40;
    watchdog(Duration::from_secs(120), || {
        for round in 0..ROUNDS {
            let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let l = log.clone();
            launch_with(params(Duration::from_micros(50)), move |env| {
                let disp = OneThreadDispatcher::new(env, "wq").unwrap();
                let mut target = env.make_coop();
                target.set_binder(disp.binder());
                let target_mbox = target.add_agent(Target { log: l });
                let target = env.register_coop(target).unwrap();
                let mut sender = env.make_coop();
                sender.set_binder(disp.binder());
                let go = sender.add_agent(Sender {
                    target: target_mbox,
                    target_coop: Some(target.clone()),
                });
                env.register_coop(sender).unwrap();
                go.send(Go);
                let deadline = Instant::now() + Duration::from_secs(30);
                while target.is_alive() {
                    assert!(Instant::now() < deadline, "the target never went");
                    std::thread::sleep(Duration::from_millis(1));
                }
                env.stop();
            })
            .unwrap();
            assert_eq!(
                *log.lock(),
                ["message", "finish"],
                "round {round}: a message queued before deregistration must run before finish"
            );
        }
    });
}

/// Counts messages and fails loudly on one after its finish.
struct Sink {
    finished: bool,
    after_finish: Arc<AtomicU64>,
    finishes: Arc<AtomicU64>,
}

impl Agent for Sink {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Sink, _ctx: &Context<'_>, _: Seq| {
            if me.finished {
                me.after_finish.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished = true;
        self.finishes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The sink a `Relay` currently feeds, and how many it sent there.
struct Pump {
    sink: DirectMbox,
    n: u64,
}

#[test]
fn deregistration_racing_same_thread_sends_never_runs_a_message_after_finish() {
    const ROUNDS: u64 = 300;
    watchdog(Duration::from_secs(120), || {
        let after_finish = Arc::new(AtomicU64::new(0));
        let finishes = Arc::new(AtomicU64::new(0));
        let (a, f) = (after_finish.clone(), finishes.clone());
        launch_with(params(Duration::from_micros(50)), move |env| {
            let disp = OneThreadDispatcher::new(env, "wq").unwrap();
            let mut pump = env.make_coop();
            pump.set_binder(disp.binder());
            // The pump's sink is swapped for a fresh one every round.
            let (tx, rx) = mpsc::channel::<DirectMbox>();
            let go = pump.add_agent(Relay {
                sinks: rx,
                current: None,
            });
            env.register_coop(pump).unwrap();
            go.send(Go);
            for round in 0..ROUNDS {
                let mut sink = env.make_coop();
                sink.set_binder(disp.binder());
                let mbox = sink.add_agent(Sink {
                    finished: false,
                    after_finish: a.clone(),
                    finishes: f.clone(),
                });
                let handle = env.register_coop(sink).unwrap();
                tx.send(mbox).unwrap();
                // Let the pump send a varying number of messages first.
                let start = Instant::now();
                while start.elapsed() < Duration::from_micros(20 * (round % 8)) {
                    std::hint::spin_loop();
                }
                handle.deregister(mp_agents::DeregReason::Normal);
                let deadline = Instant::now() + Duration::from_secs(30);
                while handle.is_alive() {
                    assert!(
                        Instant::now() < deadline,
                        "round {round}: the sink never went"
                    );
                    std::thread::yield_now();
                }
            }
            env.stop();
        })
        .unwrap();
        assert_eq!(finishes.load(Ordering::Relaxed), ROUNDS);
        assert_eq!(
            after_finish.load(Ordering::Relaxed),
            0,
            "a message ran after its agent's finish"
        );
    });
}

/// Sends to the current sink and to itself, forever, taking each round's
/// sink from a channel: every send to a sink comes from the thread draining
/// the sink's queue.
struct Relay {
    sinks: mpsc::Receiver<DirectMbox>,
    current: Option<Pump>,
}

impl Agent for Relay {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Relay, ctx: &Context<'_>, Go| {
            while let Ok(sink) = me.sinks.try_recv() {
                me.current = Some(Pump { sink, n: 0 });
            }
            if let Some(pump) = &mut me.current {
                pump.n += 1;
                pump.sink.send(Seq {
                    sender: 0,
                    n: pump.n,
                });
            }
            ctx.direct_mbox().send(Go);
        });
    }
}
