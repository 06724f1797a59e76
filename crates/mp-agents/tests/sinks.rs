//! Message sinks (an mbox's messages bound to an mchain, an agent or
//! another mbox; filtered; transformed; unbound by dropping the binding;
//! a loop of sinks cut) and the unique-subscribers mbox (one subscriber
//! per type, messages moved, a second subscriber refused, requests sent to
//! it).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    ask, from, launch, receive, Agent, Context, Define, Error, Handlers, Mchain, MchainParams,
    Request, UniqueMbox,
};

const LONG: Duration = Duration::from_secs(10);
/// The limit on a whole test body.
const WATCHDOG: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq)]
struct Reading(i32);
#[derive(Debug, PartialEq)]
struct Alarm(String);

fn drain<M: Send + 'static>(chain: &Mchain) -> Vec<M> {
    let mut got = Vec::new();
    receive(
        from(chain).no_wait_on_empty(),
        Handlers::new().on(|m: M| got.push(m)),
    );
    got
}

#[test]
fn an_mbox_bound_to_chains_filtered_transformed_and_unbound() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let readings = env.create_mbox();
            let all = env.create_mchain(MchainParams::unbounded());
            let high = env.create_mchain(MchainParams::unbounded());
            let alarms = env.create_mchain(MchainParams::unbounded());
            let to_all = readings.bind_sink::<Reading, _>(&all);
            let to_high = readings.bind_sink_filtered(&high, |r: &Reading| r.0 > 10);
            let to_alarms = readings.transform_then_redirect(&alarms, |r: Reading| {
                (r.0 > 20).then(|| Alarm(format!("reading {}", r.0)))
            });
            assert_eq!(readings.subscriber_count(), 3);
            for r in [5, 15, 25] {
                readings.send(Reading(r));
            }
            assert_eq!(
                drain::<Reading>(&all),
                [Reading(5), Reading(15), Reading(25)]
            );
            assert_eq!(drain::<Reading>(&high), [Reading(15), Reading(25)]);
            assert_eq!(drain::<Alarm>(&alarms), [Alarm("reading 25".into())]);
            drop(to_all);
            to_high.unbind();
            readings.send(Reading(30));
            assert!(drain::<Reading>(&all).is_empty());
            assert!(drain::<Reading>(&high).is_empty());
            assert_eq!(drain::<Alarm>(&alarms).len(), 1);
            drop(to_alarms);
            assert_eq!(readings.subscriber_count(), 0);
            env.stop();
        })
        .unwrap();
    });
}

/// Forwards what it gets.
struct Relay(mpsc::Sender<i32>);

impl Agent for Relay {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Relay, _: &Context<'_>, Reading(n)| {
            let _ = me.0.send(n);
        });
    }
}

#[test]
fn a_sink_delivers_to_an_agent_and_a_loop_of_sinks_is_cut() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let relay = coop.add_agent(Relay(tx));
            env.register_coop(coop).unwrap();
            let a = env.create_mbox();
            let b = env.create_mbox();
            let _to_agent = a.bind_sink::<Reading, _>(&relay);
            a.send(Reading(1));
            assert_eq!(rx.recv_timeout(LONG).unwrap(), 1);
            // a → b → a: each send goes round a bounded number of times.
            let _ab = a.bind_sink::<Reading, _>(&b);
            let _ba = b.bind_sink::<Reading, _>(&a);
            a.send(Reading(2));
            let mut copies = 0;
            while let Ok(n) = rx.recv_timeout(Duration::from_millis(200)) {
                assert_eq!(n, 2);
                copies += 1;
            }
            assert!((1..=20).contains(&copies), "{copies}");
            env.stop();
        })
        .unwrap();
    });
}

/// A service on a unique-subscribers mbox: takes `Job`s (not `Clone`)
/// and requests.
struct Service {
    jobs: UniqueMbox,
    done: mpsc::Sender<Vec<u8>>,
}

struct Job(Vec<u8>);

impl Agent for Service {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let jobs = self.jobs.clone();
        def.subscribe_unique(&jobs, |me: &mut Service, _: &Context<'_>, Job(mut data)| {
            data.reverse();
            let _ = me.done.send(data);
        });
        def.subscribe_unique(
            &jobs,
            |_: &mut Service, _: &Context<'_>, req: Request<u32, u32>| {
                let n = *req.query();
                req.reply(n * 2);
            },
        );
    }
}

#[test]
fn a_unique_mbox_moves_messages_to_its_one_subscriber() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let jobs = env.create_unique_mbox();
            // Nobody yet: a request answers "no handler".
            let err = ask::<u32, u32, _>(&jobs, 1, LONG).unwrap_err();
            assert!(
                matches!(err, mp_agents::AskError::NoHandler { .. }),
                "{err}"
            );
            let (tx, done) = mpsc::channel();
            let mut coop = env.make_coop();
            coop.add_agent(Service {
                jobs: jobs.clone(),
                done: tx.clone(),
            });
            env.register_coop(coop).unwrap();
            jobs.send(Job(vec![1, 2, 3]));
            assert_eq!(done.recv_timeout(LONG).unwrap(), [3, 2, 1]);
            assert_eq!(ask::<u32, u32, _>(&jobs, 21, LONG), Ok(42));
            // A second subscriber for the same types is refused, whole.
            let mut coop = env.make_coop();
            coop.add_agent(Service {
                jobs: jobs.clone(),
                done: tx,
            });
            let err = env.register_coop(coop).unwrap_err();
            assert!(matches!(err, Error::UniqueMboxTaken { .. }), "{err}");
            assert_eq!(jobs.subscriber_count(), 2, "the first agent's two types");
            env.stop();
        })
        .unwrap();
    });
}
