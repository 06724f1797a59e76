//! The agents' metrics after a known sequence: each dispatcher counts the
//! demands its threads ran, and the run-time stats, recorded as gauges,
//! show the cooperations alive and each dispatcher's queue. The recorder is
//! global, so this file holds one test.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::watchdog;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use mp_agents::{
    launch, Agent, Context, Define, DeregReason, OneThreadDispatcher, PoolParams,
    ThreadPoolDispatcher,
};

const MESSAGES: u64 = 100;

struct Tick;

/// Counts `Tick`s and reports each.
struct Counter {
    seen: mpsc::Sender<()>,
}

impl Agent for Counter {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Counter, _: &Context<'_>, Tick| {
            let _ = me.seen.send(());
        });
    }
}

/// Counters and gauges by `name{k=v}`.
fn snapshot(snapshotter: &Snapshotter) -> HashMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key().clone();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(n) => Some((name, n as f64)),
                DebugValue::Gauge(g) => Some((name, g.into_inner())),
                DebugValue::Histogram(_) => None,
            }
        })
        .collect()
}

/// Polls `check` for up to 10 s; whether it held.
fn until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn dispatchers_count_the_demands_they_ran_and_stats_become_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    watchdog(Duration::from_secs(60), move || {
        let (seen_tx, seen) = mpsc::channel();
        let (gone_tx, gone) = mpsc::channel();
        launch(|env| {
            let ot = OneThreadDispatcher::new(env, "counted").unwrap();
            let pool = ThreadPoolDispatcher::new(env, "pool", PoolParams::with_threads(2)).unwrap();
            let mut coop = env.make_coop();
            let on_ot = coop.add_agent_with_binder(
                Counter {
                    seen: seen_tx.clone(),
                },
                ot.binder(),
            );
            let on_pool = coop.add_agent_with_binder(Counter { seen: seen_tx }, pool.binder());
            coop.on_deregistered(move |_, _, _| {
                let _ = gone_tx.send(());
            });
            let handle = env.register_coop(coop).unwrap();
            for _ in 0..MESSAGES {
                on_ot.send(Tick);
                on_pool.send(Tick);
            }
            for _ in 0..2 * MESSAGES {
                seen.recv_timeout(Duration::from_secs(30))
                    .expect("every tick handled");
            }
            // One cooperation alive, recorded on request.
            let figures = env.stats_controller().record_metrics();
            assert!(!figures.is_empty());
            let now = snapshot(&snapshotter);
            let gauge = |name: &str| now.get(name).copied();
            assert_eq!(
                gauge("mp_agents_coop_reg_count{source=coop_repository}"),
                Some(1.0),
                "{now:#?}"
            );
            assert_eq!(
                gauge("mp_agents_agent_count{source=disp/ot/counted}"),
                Some(1.0)
            );
            assert_eq!(
                gauge("mp_agents_demands_count{source=disp/ot/counted}"),
                Some(0.0),
                "the queue is empty once every tick was seen"
            );
            handle.deregister(DeregReason::Normal);
            gone.recv_timeout(Duration::from_secs(30))
                .expect("the cooperation is deregistered");
            // The repository lets go of the cooperation just after its
            // notificators ran.
            let coops = "mp_agents_coop_reg_count{source=coop_repository}";
            let settled = until(|| {
                env.stats_controller().record_metrics();
                snapshot(&snapshotter).get(coops) == Some(&0.0)
            });
            assert!(settled, "{coops} back to 0");
            // Each agent's ticks, plus its start and its finish demand. A
            // thread counts a demand just after running it, so the finish
            // demand may show a moment after the deregistration.
            let expected = Some((MESSAGES + 2) as f64);
            for dispatcher in ["disp/ot/counted", "disp/tp/pool"] {
                let name = format!("mp_agents_demands_handled_total{{dispatcher={dispatcher}}}");
                let handled = || snapshot(&snapshotter).get(&name).copied();
                until(|| handled() == expected);
                assert_eq!(handled(), expected, "{name}");
            }
            env.stop();
        })
        .unwrap();
    });
}
