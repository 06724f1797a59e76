//! Subscriptions changed at run time from an agent's handlers and hooks:
//! to its own mbox and to MPMC mboxes, per state, removed again, and the
//! agent deactivated; and the errors for changes made where they cannot be.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    ask, launch, Agent, AskError, Context, Define, DirectMbox, Error, Mbox, Request, State,
};

const LONG: Duration = Duration::from_secs(10);
/// The limit on a whole test body.
const WATCHDOG: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct News(u32);
struct Listen;
struct Mute;
struct Asleep;
struct Deactivate;
struct Probe;
/// Replies with what the agent saw, and clears it.
struct Seen;

/// Starts with no handler for `News`; subscribes on `Listen`, drops the
/// subscriptions on `Mute`, and (from `asleep`'s on-enter hook) handles
/// `News` differently there.
struct Listener {
    news: Mbox,
    seen: Vec<String>,
    asleep: Option<State>,
    finished: Arc<AtomicBool>,
}

impl Agent for Listener {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let asleep = def.state("asleep");
        let awake = def.default_state();
        def.in_state(&asleep).on_enter(|me: &mut Listener, ctx| {
            ctx.subscribe_in(
                me.asleep.as_ref().unwrap(),
                &me.news,
                |me: &mut Listener, _: &Context<'_>, News(n)| me.seen.push(format!("dreamt {n}")),
            )
            .unwrap();
        });
        self.asleep = Some(asleep);
        // The controls, in both states.
        for state in [awake, asleep] {
            def.in_state(&state)
                .subscribe_self(|me: &mut Listener, ctx: &Context<'_>, Listen| {
                    ctx.subscribe(&me.news, |me: &mut Listener, _: &Context<'_>, News(n)| {
                        me.seen.push(format!("news {n}"))
                    })
                    .unwrap();
                    ctx.subscribe_self(|me: &mut Listener, _: &Context<'_>, News(n)| {
                        me.seen.push(format!("direct {n}"))
                    })
                    .unwrap();
                })
                .subscribe_self(move |me: &mut Listener, ctx: &Context<'_>, Mute| {
                    ctx.unsubscribe::<News>(&me.news).unwrap();
                    ctx.unsubscribe_self::<News>().unwrap();
                    ctx.change_state(&awake);
                })
                .subscribe_self(|me: &mut Listener, ctx: &Context<'_>, Asleep| {
                    ctx.change_state(me.asleep.as_ref().unwrap());
                })
                .subscribe_self(|_: &mut Listener, ctx: &Context<'_>, Deactivate| {
                    ctx.deactivate().unwrap();
                })
                .subscribe_self(
                    |me: &mut Listener, _: &Context<'_>, req: Request<Seen, Vec<String>>| {
                        req.reply(std::mem::take(&mut me.seen));
                    },
                )
                .subscribe_self(
                    |_: &mut Listener, ctx: &Context<'_>, req: Request<Probe, String>| {
                        // Not this agent's type: refused, naming both.
                        let wrong =
                            ctx.subscribe_self(|_: &mut Other, _: &Context<'_>, News(_)| {});
                        req.reply(format!("{}", wrong.unwrap_err()));
                    },
                );
        }
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished.store(true, Ordering::SeqCst);
    }
}

struct Other;
impl Agent for Other {}

fn seen(listener: &DirectMbox) -> Vec<String> {
    ask::<_, Vec<String>, _>(listener, Seen, LONG).unwrap()
}

#[test]
fn subscriptions_made_and_dropped_at_run_time() {
    watchdog(WATCHDOG, || {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        launch(move |env| {
            let news = env.create_mbox();
            let mut coop = env.make_coop();
            let listener = coop.add_agent(Listener {
                news: news.clone(),
                seen: Vec::new(),
                asleep: None,
                finished: f,
            });
            env.register_coop(coop).unwrap();

            news.send(News(0));
            listener.send(News(0));
            assert!(seen(&listener).is_empty(), "nothing subscribed yet");
            assert_eq!(news.subscriber_count(), 0);

            listener.send(Listen);
            // Queued behind `Listen`: meets the new table.
            listener.send(News(1));
            assert_eq!(seen(&listener), ["direct 1"]);
            assert_eq!(news.subscriber_count(), 1);
            news.send(News(2));
            assert_eq!(seen(&listener), ["news 2"]);

            // Subscribed from an on-enter hook, in that state only.
            listener.send(Asleep);
            news.send(News(3));
            assert_eq!(seen(&listener), ["dreamt 3"]);

            listener.send(Mute);
            news.send(News(4));
            listener.send(News(4));
            assert!(seen(&listener).is_empty());
            assert_eq!(
                news.subscriber_count(),
                0,
                "the last handler took the subscription"
            );

            assert_eq!(
                ask::<_, String, _>(&listener, Probe, LONG).unwrap(),
                Error::WrongAgentType {
                    given: std::any::type_name::<Other>(),
                    actual: std::any::type_name::<Listener>(),
                }
                .to_string()
            );

            listener.send(Listen);
            listener.send(Deactivate);
            assert_eq!(
                ask::<_, Vec<String>, _>(&listener, Seen, LONG),
                Err(AskError::ReceiverGone {
                    request: std::any::type_name::<Seen>()
                })
            );
            assert_eq!(news.subscriber_count(), 0);
            env.stop();
        })
        .unwrap();
        assert!(
            finished.load(Ordering::SeqCst),
            "a deactivated agent still finishes"
        );
    });
}

/// Tries to subscribe from a thread-safe handler.
struct Shared(mpsc::Sender<Error>);

impl Agent for Shared {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let tx = self.0.clone();
        def.subscribe_self_thread_safe(move |ctx: &Context<'_>, Listen| {
            let err = ctx
                .subscribe_self(|_: &mut Shared, _: &Context<'_>, News(_)| {})
                .unwrap_err();
            let _ = tx.send(err);
        });
    }
}

#[test]
fn a_thread_safe_handler_cannot_change_subscriptions() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let shared = coop.add_agent(Shared(tx));
            env.register_coop(coop).unwrap();
            shared.send(Listen);
            let err = rx.recv_timeout(LONG).unwrap();
            assert!(matches!(err, Error::NotInAgentHandler), "{err}");
            env.stop();
        })
        .unwrap();
    });
}
