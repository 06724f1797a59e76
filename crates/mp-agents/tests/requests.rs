//! Request/reply: a blocking `ask` from a plain thread, a `request` from a
//! handler whose answer comes back as a message (the handler's thread is
//! not blocked meanwhile), each way a request can fail — timeout, no
//! handler, receiver gone, a limit, dropped unanswered — and dead-letter
//! handlers for what no state handles.

mod common;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    ask, launch, Agent, Answer, AskError, Context, Define, DirectMbox, LimitOverflow, MchainParams,
    Replier, Request, State,
};
use parking_lot::Mutex;

const LONG: Duration = Duration::from_secs(10);
/// The limit on a whole test body.
const WATCHDOG: Duration = Duration::from_secs(60);

/// `Add(a, b)` answered with `a + b`; `Keep` requests are kept unanswered
/// (to answer later on `Release`); `Forget` requests are dropped.
struct Adder {
    kept: Vec<Replier<i64>>,
}

struct Add(i64, i64);
struct Keep;
struct Forget;
struct Release(i64);

impl Agent for Adder {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Adder, _: &Context<'_>, req: Request<Add, i64>| {
            let sum = req.0 + req.1;
            assert!(req.reply(sum));
        });
        def.subscribe_self(|me: &mut Adder, _: &Context<'_>, req: Request<Keep, i64>| {
            me.kept.push(req.into_parts().1);
        });
        def.subscribe_self(
            |_: &mut Adder, _: &Context<'_>, req: Request<Forget, i64>| {
                drop(req);
            },
        );
        def.subscribe_self(|me: &mut Adder, _: &Context<'_>, Release(v)| {
            for replier in me.kept.drain(..) {
                // Each asker timed out long ago.
                assert!(!replier.is_awaited());
                assert!(!replier.reply(v));
            }
        });
    }
}

fn adder(env: &mp_agents::Environment) -> DirectMbox {
    let mut coop = env.make_coop();
    let mbox = coop.add_agent(Adder { kept: Vec::new() });
    env.register_coop(coop).unwrap();
    mbox
}

#[test]
fn a_blocking_ask_gets_the_reply() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let adder = adder(env);
            assert_eq!(ask::<_, i64, _>(&adder, Add(2, 3), LONG), Ok(5));
            // From other threads at once.
            let askers: Vec<_> = (0..4)
                .map(|i| {
                    let adder = adder.clone();
                    std::thread::spawn(move || ask::<_, i64, _>(&adder, Add(i, 100), LONG))
                })
                .collect();
            for (i, asker) in askers.into_iter().enumerate() {
                assert_eq!(asker.join().unwrap(), Ok(i as i64 + 100));
            }
            // No deadline at all.
            assert_eq!(ask::<_, i64, _>(&adder, Add(1, 1), Duration::MAX), Ok(2));
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn each_failure_of_a_request_is_told_apart() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let adder = adder(env);
            let short = Duration::from_millis(20);
            let err = ask::<_, i64, _>(&adder, Keep, short).unwrap_err();
            assert!(
                matches!(err, AskError::Timeout { after, .. } if after == short),
                "{err}"
            );
            assert!(err.to_string().contains("Keep"), "{err}");
            // The late replies go nowhere (asserted by the agent).
            adder.send(Release(1));
            assert_eq!(
                ask::<_, i64, _>(&adder, Forget, LONG),
                Err(AskError::Unanswered {
                    request: std::any::type_name::<Forget>()
                })
            );
            // A request type the agent has no handler for.
            let err = ask::<_, String, _>(&adder, Add(1, 2), LONG).unwrap_err();
            assert!(matches!(err, AskError::NoHandler { .. }), "{err}");
            // An agent whose cooperation is gone.
            let mut coop = env.make_coop();
            let gone = coop.add_agent(Adder { kept: Vec::new() });
            let handle = env.register_coop(coop).unwrap();
            handle.deregister(mp_agents::DeregReason::Normal);
            while handle.is_alive() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let err = ask::<_, i64, _>(&gone, Add(1, 2), LONG).unwrap_err();
            assert!(matches!(err, AskError::ReceiverGone { .. }), "{err}");
            env.stop();
        })
        .unwrap();
    });
}

/// Blocks its thread on `Hold` until the test lets it go; takes one
/// queued `Request<Add, i64>` at most.
struct Busy {
    gate: Arc<Mutex<()>>,
}

struct Hold(mpsc::Sender<()>);

impl Agent for Busy {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.limit::<Request<Add, i64>>(1, LimitOverflow::Drop);
        def.subscribe_self(|me: &mut Busy, _: &Context<'_>, Hold(started)| {
            let _ = started.send(());
            drop(me.gate.lock());
        });
        def.subscribe_self(|_: &mut Busy, _: &Context<'_>, req: Request<Add, i64>| {
            let sum = req.0 + req.1;
            req.reply(sum);
        });
    }
}

#[test]
fn a_request_over_the_receivers_limit_is_refused_at_once() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let gate = Arc::new(Mutex::new(()));
            let closed = gate.lock();
            let mut coop = env.make_coop();
            let busy = coop.add_agent(Busy { gate: gate.clone() });
            env.register_coop(coop).unwrap();
            let (started, is_busy) = mpsc::channel();
            busy.send(Hold(started));
            is_busy.recv_timeout(LONG).unwrap();
            // One queued (the limit): sent before `request` returns.
            let chain = env.create_mchain(MchainParams::unbounded());
            env.request::<_, i64, _, _>(&busy, Add(1, 2), LONG, &chain);
            // One more is refused at once.
            let err = ask::<_, i64, _>(&busy, Add(3, 4), LONG).unwrap_err();
            assert!(matches!(err, AskError::LimitReached { .. }), "{err}");
            drop(closed);
            let mut first = None;
            mp_agents::receive(
                mp_agents::from(&chain).handle_n(1).empty_timeout(LONG),
                mp_agents::Handlers::new().on(|a: Answer<i64>| first = Some(a.result)),
            );
            assert_eq!(first, Some(Ok(3)));
            env.stop();
        })
        .unwrap();
    });
}

/// Asks the adder from its handlers without blocking: counts `Tick`s
/// handled while a request is out, and reports each answer.
struct Asker {
    adder: DirectMbox,
    answers: mpsc::Sender<(Result<i64, AskError>, usize)>,
    ticks: usize,
}

struct Go(Duration);
struct Tick;

impl Agent for Asker {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Asker, ctx: &Context<'_>, Go(timeout)| {
            // Queued behind this handler, before either answer can be: it
            // runs in between, so this thread was not blocked waiting.
            ctx.direct_mbox().send(Tick);
            let sum = ctx.request::<_, i64, _>(&me.adder, Add(20, 22), timeout);
            let kept = ctx.request::<_, i64, _>(&me.adder, Keep, timeout);
            assert_ne!(sum, kept);
        });
        def.subscribe_self(|me: &mut Asker, _: &Context<'_>, Tick| me.ticks += 1);
        def.subscribe_self(|me: &mut Asker, _: &Context<'_>, answer: Answer<i64>| {
            let _ = me.answers.send((answer.result, me.ticks));
        });
    }
}

#[test]
fn a_request_from_a_handler_comes_back_as_a_message() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let adder = adder(env);
            let (tx, answers) = mpsc::channel();
            let mut coop = env.make_coop();
            let asker = coop.add_agent(Asker {
                adder,
                answers: tx,
                ticks: 0,
            });
            env.register_coop(coop).unwrap();
            asker.send(Go(Duration::from_millis(30)));
            let (sum, ticks) = answers.recv_timeout(LONG).unwrap();
            assert_eq!((sum, ticks), (Ok(42), 1));
            // The kept one times out; `Tick` was handled meanwhile.
            let (kept, ticks) = answers.recv_timeout(LONG).unwrap();
            assert!(matches!(kept, Err(AskError::Timeout { .. })), "{kept:?}");
            assert_eq!(ticks, 1);
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn a_request_from_outside_can_be_answered_into_an_mchain() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let adder = adder(env);
            let chain = env.create_mchain(MchainParams::unbounded());
            let id = env.request::<_, i64, _, _>(&adder, Add(5, 6), LONG, &chain);
            let mut got = None;
            mp_agents::receive(
                mp_agents::from(&chain).handle_n(1).empty_timeout(LONG),
                mp_agents::Handlers::new().on(|a: Answer<i64>| got = Some(a)),
            );
            let answer = got.expect("an answer");
            assert_eq!((answer.id, answer.result), (id, Ok(11)));
            env.stop();
        })
        .unwrap();
    });
}

/// Handles `Ping` in `awake` only; what it gets elsewhere goes to its
/// dead-letter handlers.
struct Sleeper {
    awake: Option<State>,
    seen: mpsc::Sender<String>,
}

#[derive(Clone)]
struct Ping(u32);
struct Wake;

impl Agent for Sleeper {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let awake = def.state("awake");
        def.in_state(&awake)
            .subscribe_self(|me: &mut Sleeper, _: &Context<'_>, Ping(n)| {
                let _ = me.seen.send(format!("ping {n}"));
            });
        self.awake = Some(awake);
        def.subscribe_self(|me: &mut Sleeper, ctx: &Context<'_>, Wake| {
            ctx.change_state(me.awake.as_ref().unwrap());
        });
        def.subscribe_dead_letter_self(|me: &mut Sleeper, _: &Context<'_>, Ping(n)| {
            let _ = me.seen.send(format!("dead ping {n}"));
        });
        // A request no state handles can still be answered here.
        def.subscribe_dead_letter_self(
            |_: &mut Sleeper, _: &Context<'_>, req: Request<Add, i64>| {
                req.reply(-1);
            },
        );
    }
}

#[test]
fn dead_letter_handlers_get_what_no_state_handles() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let (tx, seen) = mpsc::channel();
            let mut coop = env.make_coop();
            let sleeper = coop.add_agent(Sleeper {
                awake: None,
                seen: tx,
            });
            env.register_coop(coop).unwrap();
            sleeper.send(Ping(1));
            assert_eq!(ask::<_, i64, _>(&sleeper, Add(1, 1), LONG), Ok(-1));
            sleeper.send(Wake);
            sleeper.send(Ping(2));
            assert_eq!(seen.recv_timeout(LONG).unwrap(), "dead ping 1");
            assert_eq!(seen.recv_timeout(LONG).unwrap(), "ping 2");
            env.stop();
        })
        .unwrap();
    });
}
