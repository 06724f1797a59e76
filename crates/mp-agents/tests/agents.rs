//! Agent basics: hooks in order, messages buffered before registration,
//! panics in handlers contained, weak cooperation handles, and a
//! dispatcher shutting down (its thread joined by the reaper) with its
//! last user.

mod common;

use std::sync::{mpsc, Arc};

use parking_lot::Mutex;
use std::time::Duration;

use common::watchdog;
use mp_agents::{launch, Agent, Context, Define, DeregReason, OneThreadDispatcher, PanicReaction};

#[derive(Clone, Copy, Debug, PartialEq)]
struct Note(u32);

struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent for Recorder {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Recorder, _: &Context<'_>, Note(n)| {
            if n == 13 {
                panic!("unlucky");
            }
            me.log.lock().push(format!("note {n}"));
        });
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        self.log.lock().push("start".into());
    }

    /// Goes on after a panic (the default would deregister the
    /// cooperation; panics.rs tests that).
    fn panic_reaction(&self) -> PanicReaction {
        PanicReaction::Ignore
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.log.lock().push("finish".into());
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.lock().push("drop".into());
    }
}

#[test]
fn hooks_run_in_order_and_a_panicking_handler_is_contained() {
    watchdog(Duration::from_secs(30), || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        launch(move |env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Recorder { log: l.clone() });
            // Sent before registration: delivered after `start`.
            mbox.send(Note(1));
            let (tx, rx) = mpsc::channel();
            coop.on_deregistered(move |_, _, reason| {
                let _ = tx.send(reason);
            });
            let handle = env.register_coop(coop).unwrap();
            mbox.send(Note(13));
            mbox.send(Note(2));
            handle.deregister(DeregReason::User(1));
            handle.deregister(DeregReason::User(2)); // no effect
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(10)).unwrap(),
                DeregReason::User(1)
            );
            assert!(
                !handle.is_alive(),
                "a handle must not keep its cooperation alive"
            );
            // The agent is gone: its mbox refuses quietly.
            mbox.send(Note(3));
            env.stop();
        })
        .unwrap();
        let log = log.lock().clone();
        assert_eq!(log, ["start", "note 1", "note 2", "finish", "drop"]);
    });
}

struct Idle;
impl Agent for Idle {}

#[test]
fn a_dispatcher_stops_with_its_last_user() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let disp = OneThreadDispatcher::new(env, "private").unwrap();
            let thread = disp.thread_handle();
            let mut coop = env.make_coop();
            coop.set_binder(disp.binder());
            coop.add_agent(Idle);
            coop.add_agent(Idle);
            drop(disp);
            let (tx, rx) = mpsc::channel();
            coop.on_deregistered(move |_, _, _| {
                let _ = tx.send(());
            });
            let handle = env.register_coop(coop).unwrap();
            assert!(!thread.is_joined());
            handle.deregister(DeregReason::Normal);
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            // The cooperation was the dispatcher's last user: its thread is
            // joined by the reaper while the environment runs on.
            let status = thread.wait_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(status.joined_on, env.reaper_thread_id());
            assert!(!env.is_stopping());
            env.stop();
        })
        .unwrap();
    });
}

#[test]
fn stop_from_init_with_nothing_registered() {
    watchdog(Duration::from_secs(30), || {
        let report = launch(|env| env.stop()).unwrap();
        assert_eq!(
            report.threads.len(),
            2,
            "only the deregistration and timer threads"
        );
    });
}

#[test]
fn a_panic_in_init_stops_the_environment_and_is_passed_on() {
    watchdog(Duration::from_secs(30), || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            launch(move |env| {
                let mut coop = env.make_coop();
                coop.add_agent(Recorder { log: l });
                env.register_coop(coop).unwrap();
                panic!("init failed");
            })
        }));
        assert!(outcome.is_err());
        let log = log.lock().clone();
        assert_eq!(log, ["start", "finish", "drop"]);
    });
}

struct WhereAmI {
    group: &'static str,
    seen: Arc<Mutex<Vec<(&'static str, std::thread::ThreadId)>>>,
}

impl Agent for WhereAmI {
    fn start(&mut self, _ctx: &Context<'_>) {
        self.seen
            .lock()
            .push((self.group, std::thread::current().id()));
    }
}

#[test]
fn active_groups_share_a_thread_per_group() {
    watchdog(Duration::from_secs(30), || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        launch(move |env| {
            let disp = mp_agents::ActiveGroupDispatcher::new(env, "grp");
            let (tx, rx) = mpsc::channel();
            let mut first = env.make_coop();
            for _ in 0..3 {
                first.add_agent_with_binder(
                    WhereAmI {
                        group: "a",
                        seen: s.clone(),
                    },
                    disp.binder("a"),
                );
            }
            first.add_agent_with_binder(
                WhereAmI {
                    group: "b",
                    seen: s.clone(),
                },
                disp.binder("b"),
            );
            first.on_deregistered(move |_, _, _| {
                let _ = tx.send(());
            });
            let mut second = env.make_coop();
            second.add_agent_with_binder(
                WhereAmI {
                    group: "b",
                    seen: s.clone(),
                },
                disp.binder("b"),
            );
            let first = env.register_coop(first).unwrap();
            env.register_coop(second).unwrap();
            assert_eq!(disp.group_count(), 2);
            while s.lock().len() < 5 {
                std::thread::sleep(Duration::from_millis(1));
            }
            first.deregister(DeregReason::Normal);
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            // Group "a" had no agent left: its thread is gone; "b" stays.
            assert_eq!(disp.group_count(), 1);
            env.stop();
        })
        .unwrap();
        let seen = seen.lock().clone();
        let thread_of = |g: &str| -> Vec<_> {
            seen.iter()
                .filter(|(x, _)| *x == g)
                .map(|(_, t)| *t)
                .collect()
        };
        let a = thread_of("a");
        let b = thread_of("b");
        assert_eq!(a.len(), 3);
        assert_eq!(b.len(), 2);
        assert!(a.iter().all(|t| *t == a[0]));
        assert!(b.iter().all(|t| *t == b[0]));
        assert_ne!(a[0], b[0]);
    });
}

/// Named, or not.
struct Named(Option<&'static str>);

impl Agent for Named {
    fn name(&self) -> Option<String> {
        self.0.map(str::to_string)
    }

    fn define(&mut self, def: &mut mp_agents::Define<'_, Self>) {
        def.subscribe_self(
            |_: &mut Named, ctx: &Context<'_>, req: mp_agents::Request<(), String>| {
                req.reply(ctx.agent_name().into_owned());
            },
        );
    }
}

#[test]
fn an_agent_is_named_by_itself_or_by_its_type_and_id() {
    watchdog(Duration::from_secs(30), || {
        launch(|env| {
            let mut coop = env.make_coop();
            let pinger = coop.add_agent(Named(Some("pinger")));
            let anonymous = coop.add_agent(Named(None));
            env.register_coop(coop).unwrap();
            let long = Duration::from_secs(10);
            assert_eq!(
                mp_agents::ask::<_, String, _>(&pinger, (), long).unwrap(),
                "pinger"
            );
            assert_eq!(pinger.agent_name(), "pinger");
            let expected = format!("Named#{}", anonymous.agent().0);
            assert_eq!(
                mp_agents::ask::<_, String, _>(&anonymous, (), long).unwrap(),
                expected
            );
            assert_eq!(anonymous.agent_name(), expected);
            env.stop();
        })
        .unwrap();
    });
}
