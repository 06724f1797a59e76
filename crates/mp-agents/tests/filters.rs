//! Delivery filters on MPMC subscriptions: evaluated on the sender's
//! thread, per subscriber (one agent's filter does not affect another),
//! in every state of the agent.

mod common;

use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::Duration;

use common::watchdog;
use mp_agents::{launch, Agent, Context, Define, Mbox};
use parking_lot::Mutex;

#[derive(Clone, Debug)]
struct Reading(i32);

/// Asks an agent (through its direct mbox) for what it received.
struct Report(mpsc::Sender<Vec<i32>>);

struct Gauge {
    news: Mbox,
    /// Readings above this only (no filter when `None`).
    above: Option<i32>,
    /// Where the filter ran.
    filtered_on: Arc<Mutex<Vec<ThreadId>>>,
    got: Vec<i32>,
}

impl Agent for Gauge {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        if let Some(above) = self.above {
            let on = self.filtered_on.clone();
            def.set_delivery_filter(&self.news, move |r: &Reading| {
                on.lock().push(std::thread::current().id());
                r.0 > above
            });
        }
        // Two states: the filter applies in both.
        let calm = def.state("calm");
        let alert = def.state("alert");
        def.start_in(&calm);
        def.in_state(&calm)
            .subscribe(
                &self.news,
                move |me: &mut Gauge, ctx: &Context<'_>, r: Reading| {
                    me.got.push(r.0);
                    ctx.change_state(&alert);
                },
            )
            .subscribe_self(|me: &mut Gauge, _: &Context<'_>, Report(tx)| {
                let _ = tx.send(std::mem::take(&mut me.got));
            });
        def.in_state(&alert)
            .subscribe(&self.news, |me: &mut Gauge, _: &Context<'_>, r: Reading| {
                me.got.push(-r.0)
            })
            .subscribe_self(|me: &mut Gauge, _: &Context<'_>, Report(tx)| {
                let _ = tx.send(std::mem::take(&mut me.got));
            });
    }
}

#[test]
fn a_filter_picks_what_one_subscriber_gets() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let news = env.create_mbox();
            let filtered_on = Arc::new(Mutex::new(Vec::new()));
            let mut coop = env.make_coop();
            let picky = coop.add_agent(Gauge {
                news: news.clone(),
                above: Some(10),
                filtered_on: filtered_on.clone(),
                got: Vec::new(),
            });
            let all = coop.add_agent(Gauge {
                news: news.clone(),
                above: None,
                filtered_on: filtered_on.clone(),
                got: Vec::new(),
            });
            env.register_coop(coop).unwrap();
            for r in [5, 15, 7, 20] {
                news.send(Reading(r));
            }
            let ask = |mbox: &mp_agents::DirectMbox| {
                let (tx, rx) = mpsc::channel();
                mbox.send(Report(tx));
                rx.recv_timeout(Duration::from_secs(10)).unwrap()
            };
            // The first reading switches each agent to `alert` (negated).
            assert_eq!(ask(&picky), [15, -20]);
            assert_eq!(ask(&all), [5, -15, -7, -20]);
            let on = filtered_on.lock().clone();
            assert_eq!(on.len(), 4, "once per message, for the filtered agent");
            let me = std::thread::current().id();
            assert!(on.iter().all(|t| *t == me), "on the sender's thread");
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn a_message_no_filter_wants_is_dropped_by_the_sender() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let news = env.create_mbox();
            let mut coop = env.make_coop();
            let picky = coop.add_agent(Gauge {
                news: news.clone(),
                above: Some(100),
                filtered_on: Arc::default(),
                got: Vec::new(),
            });
            env.register_coop(coop).unwrap();
            #[derive(Clone)]
            struct Tracked(#[allow(dead_code)] Arc<()>);
            // Filtered out for its only subscriber: never cloned or
            // queued, dropped by the sender before `send` returns.
            let token = Arc::new(());
            struct Counter(Mbox);
            impl Agent for Counter {
                fn define(&mut self, def: &mut Define<'_, Self>) {
                    def.set_delivery_filter(&self.0, |_: &Tracked| false);
                    def.subscribe(&self.0, |_: &mut Counter, _: &Context<'_>, _: Tracked| {
                        panic!("filtered out, yet delivered")
                    });
                }
            }
            let mut coop = env.make_coop();
            coop.add_agent(Counter(news.clone()));
            env.register_coop(coop).unwrap();
            news.send(Tracked(token.clone()));
            assert_eq!(Arc::strong_count(&token), 1);
            news.send(Reading(1));
            let (tx, rx) = mpsc::channel();
            picky.send(Report(tx));
            assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap().is_empty());
            env.stop();
        })
        .unwrap();
    });
}

/// Changes its own filter while running.
struct Tuner {
    news: Mbox,
    got: Vec<i32>,
}

/// Filter: readings above `n`.
struct Narrow(i32);
/// No filter.
struct Widen;

impl Agent for Tuner {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.set_delivery_filter(&self.news, |r: &Reading| r.0 > 100);
        def.subscribe(&self.news, |me: &mut Tuner, _: &Context<'_>, r: Reading| {
            me.got.push(r.0)
        })
        .subscribe_self(|me: &mut Tuner, ctx: &Context<'_>, Narrow(n)| {
            ctx.set_delivery_filter(&me.news, move |r: &Reading| r.0 > n);
        })
        .subscribe_self(|me: &mut Tuner, ctx: &Context<'_>, Widen| {
            ctx.drop_delivery_filter::<Reading>(&me.news);
        })
        .subscribe_self(|me: &mut Tuner, _: &Context<'_>, Report(tx)| {
            let _ = tx.send(std::mem::take(&mut me.got));
        });
    }
}

#[test]
fn an_agent_changes_its_filter_while_running() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let news = env.create_mbox();
            let mut coop = env.make_coop();
            let tuner = coop.add_agent(Tuner {
                news: news.clone(),
                got: Vec::new(),
            });
            env.register_coop(coop).unwrap();
            // Each `Report` round trip also waits for what was sent before.
            let ask = || {
                let (tx, rx) = mpsc::channel();
                tuner.send(Report(tx));
                rx.recv_timeout(Duration::from_secs(10)).unwrap()
            };
            let readings = |news: &Mbox| {
                for r in [5, 50, 500] {
                    news.send(Reading(r));
                }
            };
            readings(&news);
            assert_eq!(ask(), [500]);
            tuner.send(Narrow(10));
            ask();
            readings(&news);
            assert_eq!(ask(), [50, 500]);
            tuner.send(Widen);
            ask();
            readings(&news);
            assert_eq!(ask(), [5, 50, 500]);
            env.stop();
        })
        .unwrap();
    });
}
