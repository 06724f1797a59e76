//! Run-time stats: a snapshot counts cooperations, agents, named mboxes,
//! timers, chains and, per dispatcher, its agents, threads and waiting
//! demands; a periodic distribution sends them between its two markers to
//! the stats mbox until turned off; a dispatcher gone is no longer
//! reported (and was never kept alive by being observed).

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    launch, ActiveGroupDispatcher, Agent, Context, Define, DistributionFinished,
    DistributionStarted, Error, MchainParams, OneThreadDispatcher, PoolParams,
    PrioDedicatedThreadsDispatcher, PrioOneThreadDispatcher, Quantity, StatsSource,
    ThreadPoolDispatcher,
};

const WATCHDOG: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);

/// The value of `name` (`prefix/suffix`) in `figures`.
fn value(figures: &[Quantity], name: &str) -> Option<usize> {
    figures.iter().find(|q| q.name() == name).map(|q| q.value)
}

struct Idle;
impl Agent for Idle {}

#[test]
fn a_snapshot_counts_what_the_environment_holds() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let ot = OneThreadDispatcher::new(env, "workers").unwrap();
            let pool = ThreadPoolDispatcher::new(env, "pool", PoolParams::with_threads(2)).unwrap();
            let prio = PrioOneThreadDispatcher::strictly_ordered(env, "prio").unwrap();
            let groups = ActiveGroupDispatcher::new(env, "groups");
            let dedicated = PrioDedicatedThreadsDispatcher::new(env, "dedicated");
            let mut coop = env.make_coop();
            coop.add_agent(Idle);
            coop.add_agent(Idle);
            coop.add_agent_with_binder(Idle, ot.binder());
            coop.add_agent_with_binder(Idle, pool.binder());
            coop.add_agent_with_binder(Idle, pool.binder());
            coop.add_agent_with_binder(Idle, prio.binder());
            coop.add_agent_with_binder(Idle, groups.binder("g1"));
            coop.add_agent_with_binder(Idle, dedicated.binder());
            env.register_coop(coop).unwrap();
            let mut second = env.make_coop();
            second.add_agent(Idle);
            env.register_coop(second).unwrap();
            let _named = env.named_mbox("somewhere");
            let _chain = env.create_mchain(MchainParams::unbounded());
            let target = env.create_mbox();
            let once = env.schedule_delayed(&target, 1u8, Duration::from_secs(3600));
            let every = env.send_periodic(
                &target,
                2u8,
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            );

            // (Queue lengths depend on whether the agents have started:
            // see waiting_demands_are_counted_per_dispatcher.)
            let figures = env.stats_controller().snapshot();
            let expect = [
                ("coop_repository/coop.reg.count", 2),
                ("coop_repository/agent.count", 9),
                ("mbox_repository/named_mbox.count", 1),
                ("timer_thread/single_shot.count", 1),
                ("timer_thread/periodic.count", 1),
                ("mchain_repository/mchain.count", 1),
                ("disp/ot/mp-agents-default/agent.count", 3),
                ("disp/ot/workers/agent.count", 1),
                ("disp/tp/pool/agent.count", 2),
                ("disp/tp/pool/thread.count", 2),
                ("disp/prio_ot/prio/agent.count", 1),
                ("disp/ag/groups/agent.count", 1),
                ("disp/ag/groups/thread.count", 1),
                ("disp/ag/groups/g1/agent.count", 1),
                ("disp/prio_dt/dedicated/thread.count", 1),
                ("disp/prio_dt/dedicated/p0/agent.count", 1),
            ];
            for (name, want) in expect {
                assert_eq!(value(&figures, name), Some(want), "{name} in {figures:#?}");
            }
            drop((once, every));
            env.stop();
        })
        .unwrap();
    });
}

/// Holds its thread in its first `Block` until told to go on.
struct Blocker {
    entered: mpsc::Sender<()>,
    go_on: mpsc::Receiver<()>,
}
struct Block;

impl Agent for Blocker {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Blocker, _: &Context<'_>, Block| {
            let _ = me.entered.send(());
            let _ = me.go_on.recv_timeout(WAIT);
        });
    }
}

#[test]
fn waiting_demands_are_counted_per_dispatcher() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let disp = OneThreadDispatcher::new(env, "blocked").unwrap();
            let (entered_tx, entered) = mpsc::channel();
            let (go_on, go_on_rx) = mpsc::channel();
            let mut coop = env.make_coop();
            let blocker = coop.add_agent_with_binder(
                Blocker {
                    entered: entered_tx,
                    go_on: go_on_rx,
                },
                disp.binder(),
            );
            env.register_coop(coop).unwrap();
            blocker.send(Block);
            entered.recv_timeout(WAIT).expect("the first Block runs");
            for _ in 0..3 {
                blocker.send(Block);
            }
            let figures = env.stats_controller().snapshot();
            assert_eq!(
                value(&figures, "disp/ot/blocked/demands.count"),
                Some(3),
                "{figures:#?}"
            );
            for _ in 0..4 {
                let _ = go_on.send(());
            }
            env.stop();
        })
        .unwrap();
    });
}

/// One distribution as received: what came between the two markers.
#[derive(Default)]
struct Collector {
    current: Option<Vec<Quantity>>,
    done: Option<mpsc::Sender<Vec<Quantity>>>,
}

impl Agent for Collector {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let stats = def.env().stats_controller().mbox();
        def.subscribe(
            &stats,
            |me: &mut Collector, _: &Context<'_>, DistributionStarted| {
                me.current = Some(Vec::new());
            },
        )
        .subscribe(
            &stats,
            |me: &mut Collector, _: &Context<'_>, q: Quantity| {
                if let Some(current) = &mut me.current {
                    current.push(q);
                }
            },
        )
        .subscribe(
            &stats,
            |me: &mut Collector, _: &Context<'_>, DistributionFinished| {
                if let (Some(current), Some(done)) = (me.current.take(), &me.done) {
                    let _ = done.send(current);
                }
            },
        );
    }
}

#[test]
fn a_periodic_distribution_reaches_the_stats_mbox_until_turned_off() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let stats = env.stats_controller();
            assert!(!stats.is_on());
            assert!(matches!(
                stats.set_distribution_period(Duration::ZERO),
                Err(Error::ZeroDistributionPeriod)
            ));
            stats
                .set_distribution_period(Duration::from_millis(10))
                .unwrap();
            let (tx, rx) = mpsc::channel();
            let mut coop = env.make_coop();
            coop.add_agent(Collector {
                current: None,
                done: Some(tx),
            });
            env.register_coop(coop).unwrap();
            stats.turn_on().unwrap();
            assert!(stats.is_on());
            for _ in 0..2 {
                let figures = rx.recv_timeout(WAIT).expect("a distribution");
                assert_eq!(value(&figures, "coop_repository/coop.reg.count"), Some(1));
                assert_eq!(value(&figures, "coop_repository/agent.count"), Some(1));
                // The distribution's own timer.
                assert_eq!(value(&figures, "timer_thread/periodic.count"), Some(1));
                assert_eq!(
                    value(&figures, "disp/ot/mp-agents-default/agent.count"),
                    Some(1)
                );
            }
            stats.turn_off();
            assert!(!stats.is_on());
            // What was sent before (the collector may lag behind) still
            // arrives; then the stream ends. Bounded: at a 10 ms period a
            // distribution that never stops would exceed the bound.
            let mut late = 0;
            while rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                late += 1;
                assert!(late < 1000, "distribution goes on after turn_off");
            }
            assert_eq!(
                value(&stats.snapshot(), "timer_thread/periodic.count"),
                Some(0)
            );
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn a_dispatcher_gone_is_no_longer_reported_nor_kept_alive() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let disp = OneThreadDispatcher::new(env, "short-lived").unwrap();
            let thread = disp.thread_handle();
            let figures = env.stats_controller().snapshot();
            assert_eq!(value(&figures, "disp/ot/short-lived/agent.count"), Some(0));
            drop(disp);
            // Its last user let go: the thread ends (the registry holds it
            // weakly) and it is no longer a source.
            thread
                .wait_timeout(WAIT)
                .expect("the dispatcher's thread ends");
            let figures = env.stats_controller().snapshot();
            assert_eq!(value(&figures, "disp/ot/short-lived/agent.count"), None);
            env.stop();
        })
        .unwrap();
    });
}

/// A data source of the user's own.
struct Gauge(usize);

impl StatsSource for Gauge {
    fn report(&self, out: &mut Vec<Quantity>) {
        out.push(Quantity::new("my/gauge", "level", self.0));
    }
}

#[test]
fn a_source_of_ones_own_reports_while_it_is_alive() {
    watchdog(WATCHDOG, || {
        launch(|env| {
            let gauge = Arc::new(Gauge(42));
            let weak: Weak<Gauge> = Arc::downgrade(&gauge);
            env.stats_controller().add_source(weak);
            let figures = env.stats_controller().snapshot();
            assert_eq!(value(&figures, "my/gauge/level"), Some(42));
            drop(gauge);
            let figures = env.stats_controller().snapshot();
            assert_eq!(value(&figures, "my/gauge/level"), None);
            env.stop();
        })
        .unwrap();
    });
}
