//! Agent states: hierarchy (a parent's handler applies in its substates
//! unless overridden or suppressed), on-enter/exit order, transfer_to_state
//! and just_switch_to, shallow and deep history, time limits firing and
//! cancelled (by leaving the state, by deregistration).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{launch, Agent, Context, Define, DeregReason, Error, History, State};
use parking_lot::Mutex;

type Log = Arc<Mutex<Vec<String>>>;

/// Switch to the named state.
struct Go(&'static str);
/// Replies with the agent's log and current state name.
struct Report(mpsc::Sender<(Vec<String>, String)>);
#[derive(Clone)]
struct Ping;
#[derive(Clone)]
struct Pong;

/// Defines `name` (under `parent`, initial or not) with logging hooks.
fn logged<A: Agent + Logs>(
    def: &mut Define<'_, A>,
    states: &mut HashMap<&'static str, State>,
    name: &'static str,
    parent: Option<(&'static str, bool)>,
) -> State {
    let state = match parent {
        None => def.state(name),
        Some((p, true)) => def.initial_substate(&states[p], name),
        Some((p, false)) => def.substate(&states[p], name),
    };
    def.in_state(&state)
        .on_enter(move |me: &mut A, _| me.log().lock().push(format!("+{name}")))
        .on_exit(move |me: &mut A, _| me.log().lock().push(format!("-{name}")));
    states.insert(name, state);
    state
}

trait Logs {
    fn log(&self) -> &Log;
}

fn report(log: &Log, ctx: &Context<'_>, tx: mpsc::Sender<(Vec<String>, String)>) {
    let entries = std::mem::take(&mut *log.lock());
    let _ = tx.send((entries, ctx.state_name(&ctx.current_state()).to_string()));
}

/// root ⊃ { a ⊃ { a1*, a2 ⊃ { a2x* } }, b }; `*` = initial.
struct Tree {
    log: Log,
    states: HashMap<&'static str, State>,
}

impl Logs for Tree {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Tree {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let root = logged(def, &mut s, "root", None);
        let a = logged(def, &mut s, "a", Some(("root", true)));
        logged(def, &mut s, "a1", Some(("a", true)));
        let a2 = logged(def, &mut s, "a2", Some(("a", false)));
        logged(def, &mut s, "a2x", Some(("a2", true)));
        let b = logged(def, &mut s, "b", Some(("root", false)));
        def.start_in(&root);
        def.in_state(&root)
            .subscribe_self(|me: &mut Tree, ctx: &Context<'_>, Go(to)| {
                ctx.change_state(&me.states[to]);
            })
            .subscribe_self(|me: &mut Tree, ctx: &Context<'_>, Report(tx)| report(&me.log, ctx, tx))
            .subscribe_self(|me: &mut Tree, _: &Context<'_>, Pong| {
                me.log.lock().push("pong@root".into())
            });
        def.in_state(&a)
            .subscribe_self(|me: &mut Tree, _: &Context<'_>, Ping| {
                me.log.lock().push("ping@a".into())
            });
        def.in_state(&a2)
            .subscribe_self(|me: &mut Tree, _: &Context<'_>, Ping| {
                me.log.lock().push("ping@a2".into())
            });
        def.in_state(&b).suppress::<Pong>();
        self.states = s;
    }

    fn start(&mut self, ctx: &Context<'_>) {
        assert!(ctx.is_in_state(&self.states["root"]));
        assert!(ctx.is_in_state(&self.states["a"]));
        assert!(!ctx.is_in_state(&self.states["b"]));
        self.log.lock().push("start".into());
    }
}

fn ask(mbox: &mp_agents::DirectMbox) -> (Vec<String>, String) {
    let (tx, rx) = mpsc::channel();
    mbox.send(Report(tx));
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

#[test]
fn hierarchy_overrides_suppression_and_hook_order() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Tree {
                log: Log::default(),
                states: HashMap::new(),
            });
            env.register_coop(coop).unwrap();
            mbox.send(Ping);
            mbox.send(Pong);
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["+root", "+a", "+a1", "start", "ping@a", "pong@root"]);
            assert_eq!(now, "a1");

            mbox.send(Go("a2"));
            mbox.send(Ping);
            mbox.send(Pong);
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["-a1", "+a2", "+a2x", "ping@a2", "pong@root"]);
            assert_eq!(now, "a2x");

            mbox.send(Go("b"));
            mbox.send(Ping); // nobody handles it in b
            mbox.send(Pong); // suppressed in b
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["-a2x", "-a2", "-a", "+b"]);
            assert_eq!(now, "b");

            mbox.send(Go("b")); // already there: nothing
            mbox.send(Go("a")); // composite: its initial substate
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["-b", "+a", "+a1"]);
            assert_eq!(now, "a1");
            env.stop();
        })
        .unwrap();
    });
}

struct Job(u32);
struct Kick;

/// idle: Job is transferred to busy, Kick just switches to busy.
/// busy: handles Job (then back to idle) and Kick.
struct Worker {
    log: Log,
    idle: Option<State>,
}

impl Logs for Worker {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Worker {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let idle = logged(def, &mut s, "idle", None);
        let busy = logged(def, &mut s, "busy", None);
        self.idle = Some(idle);
        def.start_in(&idle);
        def.in_state(&idle)
            .transfer_to_state::<Job>(&busy)
            .just_switch_to::<Kick>(&busy)
            .subscribe_self(|me: &mut Worker, ctx: &Context<'_>, Report(tx)| {
                report(&me.log, ctx, tx)
            });
        def.in_state(&busy)
            .subscribe_self(|me: &mut Worker, ctx: &Context<'_>, Job(n)| {
                let here = ctx.state_name(&ctx.current_state()).to_string();
                me.log.lock().push(format!("job {n} in {here}"));
                ctx.change_state(me.idle.as_ref().unwrap());
                // The switch happens when the handler returns.
                assert_eq!(ctx.state_name(&ctx.current_state()), "busy");
            })
            .subscribe_self(|me: &mut Worker, _: &Context<'_>, Kick| {
                me.log.lock().push("kick in busy".into())
            })
            .subscribe_self(|me: &mut Worker, ctx: &Context<'_>, Report(tx)| {
                report(&me.log, ctx, tx)
            });
    }
}

#[test]
fn transfer_to_state_and_just_switch_to() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Worker {
                log: Log::default(),
                idle: None,
            });
            env.register_coop(coop).unwrap();
            mbox.send(Job(1));
            let (log, now) = ask(&mbox);
            assert_eq!(
                log,
                ["+idle", "-idle", "+busy", "job 1 in busy", "-busy", "+idle"]
            );
            assert_eq!(now, "idle");
            mbox.send(Kick); // switches, not handled
            mbox.send(Kick); // handled in busy
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["-idle", "+busy", "kick in busy"]);
            assert_eq!(now, "busy");
            env.stop();
        })
        .unwrap();
    });
}

/// work ⊃ { w1* ⊃ { w1a*, w1b }, w2 }, away; `work` has the history given.
struct Remembers {
    log: Log,
    history: History,
    states: HashMap<&'static str, State>,
}

impl Logs for Remembers {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Remembers {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let work = logged(def, &mut s, "work", None);
        logged(def, &mut s, "w1", Some(("work", true)));
        logged(def, &mut s, "w1a", Some(("w1", true)));
        logged(def, &mut s, "w1b", Some(("w1", false)));
        logged(def, &mut s, "w2", Some(("work", false)));
        let away = logged(def, &mut s, "away", None);
        def.start_in(&away);
        def.in_state(&work).history(self.history);
        for state in [work, away] {
            def.in_state(&state)
                .subscribe_self(|me: &mut Remembers, ctx: &Context<'_>, Go(to)| {
                    ctx.change_state(&me.states[to]);
                })
                .subscribe_self(|me: &mut Remembers, ctx: &Context<'_>, Report(tx)| {
                    report(&me.log, ctx, tx)
                });
        }
        self.states = s;
    }
}

fn comes_back_to(history: History) -> [String; 2] {
    let mut seen = [String::new(), String::new()];
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    launch(move |env| {
        let mut coop = env.make_coop();
        let mbox = coop.add_agent(Remembers {
            log: Log::default(),
            history,
            states: HashMap::new(),
        });
        env.register_coop(coop).unwrap();
        for inner in ["w1b", "w2"] {
            mbox.send(Go(inner));
            mbox.send(Go("away"));
            mbox.send(Go("work"));
            o.lock().push(ask(&mbox).1);
        }
        env.stop();
    })
    .unwrap();
    let out = out.lock();
    seen[0].clone_from(&out[0]);
    seen[1].clone_from(&out[1]);
    seen
}

#[test]
fn shallow_and_deep_history() {
    watchdog(Duration::from_secs(30), || {
        assert_eq!(comes_back_to(History::None), ["w1a", "w1a"]);
        assert_eq!(comes_back_to(History::Shallow), ["w1a", "w2"]);
        assert_eq!(comes_back_to(History::Deep), ["w1b", "w2"]);
    });
}

/// open → (time limit) → closed; `closed` reports when entered.
struct Door {
    log: Log,
    limit: Duration,
    closed_tx: mpsc::Sender<()>,
    states: HashMap<&'static str, State>,
    deregister_at_start: bool,
}

impl Logs for Door {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Door {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let open = logged(def, &mut s, "open", None);
        let closed = logged(def, &mut s, "closed", None);
        let held = logged(def, &mut s, "held", None);
        def.start_in(&open);
        def.in_state(&open).time_limit(self.limit, &closed);
        def.in_state(&closed).on_enter(|me: &mut Door, _| {
            me.log.lock().push("+closed".into());
            let _ = me.closed_tx.send(());
        });
        for state in [open, closed, held] {
            def.in_state(&state)
                .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Go(to)| {
                    ctx.change_state(&me.states[to]);
                })
                .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Report(tx)| {
                    report(&me.log, ctx, tx)
                });
        }
        self.states = s;
    }

    fn start(&mut self, ctx: &Context<'_>) {
        if self.deregister_at_start {
            ctx.deregister_coop(DeregReason::Normal);
        }
    }
}

fn door(limit: Duration, tx: mpsc::Sender<()>, deregister_at_start: bool) -> Door {
    Door {
        log: Log::default(),
        limit,
        closed_tx: tx,
        states: HashMap::new(),
        deregister_at_start,
    }
}

#[test]
fn a_time_limit_switches_state() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(door(Duration::from_millis(5), tx, false));
            env.register_coop(coop).unwrap();
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["+open", "-open", "+closed"]);
            assert_eq!(now, "closed");
            assert_eq!(env.timer_count(), 0);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn leaving_a_state_cancels_its_time_limit() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(door(Duration::from_secs(3600), tx, false));
            env.register_coop(coop).unwrap();
            let (_, now) = ask(&mbox);
            assert_eq!(now, "open");
            assert_eq!(env.timer_count(), 1);
            mbox.send(Go("held"));
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["-open", "+held"]);
            assert_eq!(now, "held");
            assert_eq!(env.timer_count(), 0);
            // Entering again arms it again.
            mbox.send(Go("open"));
            ask(&mbox);
            assert_eq!(env.timer_count(), 1);
            env.stop();
            drop(rx);
        })
        .unwrap();
    });
}

#[test]
fn deregistration_cancels_time_limits() {
    watchdog(Duration::from_secs(60), || {
        launch(|env| {
            // A long limit: armed while registered, gone with the coop.
            let (tx, _rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(door(Duration::from_secs(3600), tx, false));
            let (gone_tx, gone) = mpsc::channel();
            coop.on_deregistered(move |_, _, _| {
                let _ = gone_tx.send(());
            });
            let handle = env.register_coop(coop).unwrap();
            ask(&mbox);
            assert_eq!(env.timer_count(), 1);
            handle.deregister(DeregReason::Normal);
            gone.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(env.timer_count(), 0);

            // Many short ones, deregistered at once: none is delivered to
            // a cooperation that is gone, none is left armed.
            let closed = Arc::new(AtomicUsize::new(0));
            for _ in 0..50 {
                let (tx, rx) = mpsc::channel();
                let mut coop = env.make_coop();
                coop.add_agent(door(Duration::from_millis(200), tx, true));
                let (gone_tx, gone) = mpsc::channel();
                coop.on_deregistered(move |_, _, _| {
                    let _ = gone_tx.send(());
                });
                env.register_coop(coop).unwrap();
                gone.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(env.timer_count(), 0);
                if rx.try_recv().is_ok() {
                    closed.fetch_add(1, Ordering::SeqCst);
                }
            }
            assert_eq!(closed.load(Ordering::SeqCst), 0);
            env.stop();
        })
        .unwrap();
    });
}

struct NoInitial;

impl Agent for NoInitial {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let parent = def.state("parent");
        def.substate(&parent, "child");
    }
}

#[test]
fn a_composite_state_without_an_initial_substate_fails_registration() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            coop.add_agent(NoInitial);
            match env.register_coop(coop) {
                Err(Error::DefinePanicked(why)) => assert!(why.contains("initial"), "{why}"),
                other => panic!("expected a refused registration, got {other:?}"),
            }
            env.stop();
        })
        .unwrap();
    });
}

/// Switches from `start`, and on from the first state's on-enter hook.
struct Chained {
    log: Log,
    states: HashMap<&'static str, State>,
}

impl Logs for Chained {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Chained {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let first = logged(def, &mut s, "first", None);
        let second = logged(def, &mut s, "second", None);
        def.in_state(&first)
            .on_enter(move |me: &mut Chained, ctx: &Context<'_>| {
                me.log.lock().push("+first".into());
                ctx.change_state(&second);
            });
        def.in_state(&second)
            .subscribe_self(|me: &mut Chained, ctx: &Context<'_>, Report(tx)| {
                report(&me.log, ctx, tx)
            });
        // Only in the default state (where the agent starts): not here.
        def.subscribe_self(|_: &mut Chained, _: &Context<'_>, Report(tx)| {
            let _ = tx.send((vec!["default".into()], String::new()));
        });
        self.states = s;
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.log.lock().push("start".into());
        ctx.change_state(&self.states["first"]);
        assert!(ctx.is_in_state(&ctx.current_state()));
        assert_eq!(ctx.state_name(&ctx.current_state()), "<default>");
    }
}

#[test]
fn switches_asked_for_in_start_and_in_hooks_follow_each_other() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Chained {
                log: Log::default(),
                states: HashMap::new(),
            });
            env.register_coop(coop).unwrap();
            let (log, now) = ask(&mbox);
            assert_eq!(log, ["start", "+first", "-first", "+second"]);
            assert_eq!(now, "second");
            env.stop();
        })
        .unwrap();
    });
}

/// Keeps the agent busy for a millisecond.
struct Slow;
/// Answered at once: the sender waits for what it sent before.
struct Pace(mpsc::Sender<()>);

/// a (short time limit → late) and b; Go switches among them.
struct Racer {
    log: Log,
    states: HashMap<&'static str, State>,
    limit: Duration,
}

impl Logs for Racer {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Racer {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let mut s = HashMap::new();
        let a = logged(def, &mut s, "a", None);
        let b = logged(def, &mut s, "b", None);
        let late = logged(def, &mut s, "late", None);
        def.start_in(&b);
        def.in_state(&a).time_limit(self.limit, &late);
        for state in [a, b, late] {
            def.in_state(&state)
                .subscribe_self(|me: &mut Racer, ctx: &Context<'_>, Go(to)| {
                    ctx.change_state(&me.states[to]);
                })
                .subscribe_self(|_: &mut Racer, _: &Context<'_>, Slow| {
                    std::thread::sleep(Duration::from_millis(1))
                })
                .subscribe_self(|_: &mut Racer, _: &Context<'_>, Pace(tx)| {
                    let _ = tx.send(());
                })
                .subscribe_self(|me: &mut Racer, ctx: &Context<'_>, Report(tx)| {
                    report(&me.log, ctx, tx)
                });
        }
        self.states = s;
    }
}

#[test]
fn a_time_limit_racing_the_exit_of_its_state_never_fires_elsewhere() {
    watchdog(Duration::from_secs(60), || {
        launch(|env| {
            let mut fired = 0;
            for round in 0..40u64 {
                let mut coop = env.make_coop();
                let mbox = coop.add_agent(Racer {
                    log: Log::default(),
                    states: HashMap::new(),
                    limit: Duration::from_micros(round * 10),
                });
                let handle = env.register_coop(coop).unwrap();
                for i in 0..50u64 {
                    mbox.send(Go("a"));
                    if i % 2 == 0 {
                        // Busy past the limit with `Go("b")` queued: the
                        // limit's message arrives after the agent left `a`.
                        mbox.send(Slow);
                    } else {
                        // Leave `a` around the moment its limit fires.
                        let until = std::time::Instant::now() + Duration::from_micros(i * 4);
                        while std::time::Instant::now() < until {
                            std::hint::spin_loop();
                        }
                    }
                    mbox.send(Go("b"));
                    let (tx, rx) = mpsc::channel();
                    mbox.send(Pace(tx));
                    rx.recv_timeout(Duration::from_secs(10)).unwrap();
                }
                let (log, _) = ask(&mbox);
                // A limit fires only while its state is the current one:
                // `late` is entered from `a`, never from `b` or `late`.
                for (i, entry) in log.iter().enumerate() {
                    if entry == "+late" {
                        assert_eq!(log[i - 1], "-a", "{log:?}");
                        fired += 1;
                    }
                }
                handle.deregister(DeregReason::Normal);
            }
            eprintln!("{fired} time limits fired");
            env.stop();
        })
        .unwrap();
    });
}

struct Foreign {
    theirs: Option<State>,
    tx: mpsc::Sender<String>,
}

impl Agent for Foreign {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.state("mine");
    }

    fn start(&mut self, ctx: &Context<'_>) {
        if let Some(theirs) = self.theirs {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.change_state(&theirs)
            }));
            let _ = self.tx.send(match outcome {
                Ok(()) => "accepted".into(),
                Err(p) => mp_thread::panic_message(&*p),
            });
        }
    }
}

struct Lender(mpsc::Sender<State>);

impl Agent for Lender {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let _ = self.0.send(def.state("lent"));
    }
}

#[test]
fn a_state_of_another_agent_is_refused() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let (state_tx, state_rx) = mpsc::channel();
            let mut coop = env.make_coop();
            coop.add_agent(Lender(state_tx));
            env.register_coop(coop).unwrap();
            let theirs = state_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            coop.add_agent(Foreign {
                theirs: Some(theirs),
                tx,
            });
            env.register_coop(coop).unwrap();
            let why = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(why.contains("other than the one"), "{why}");
            env.stop();
        })
        .unwrap();
    });
}

/// `ping` and `pong` transfer `Job` to each other: a loop.
struct Looper {
    log: Log,
}

impl Logs for Looper {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl Agent for Looper {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let ping = def.state("ping");
        let pong = def.state("pong");
        def.start_in(&ping);
        def.in_state(&ping).transfer_to_state::<Job>(&pong);
        def.in_state(&pong).transfer_to_state::<Job>(&ping);
        for state in [ping, pong] {
            def.in_state(&state).subscribe_self(
                |me: &mut Looper, ctx: &Context<'_>, Report(tx)| report(&me.log, ctx, tx),
            );
        }
    }
}

#[test]
fn a_transfer_loop_is_cut_and_the_agent_goes_on() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Looper {
                log: Log::default(),
            });
            env.register_coop(coop).unwrap();
            mbox.send(Job(1));
            // Still there, in one of the two states.
            let (_, now) = ask(&mbox);
            assert!(now == "ping" || now == "pong", "{now}");
            env.stop();
        })
        .unwrap();
    });
}
