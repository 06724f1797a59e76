//! An environment in the background: started, used from outside, stopped
//! and joined; dropped (stops and waits); `init` panicking; and a handle
//! dropped or joined on one of the environment's own threads, which must
//! neither wait for itself nor hang.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{ask, Agent, Context, Define, Error, Params, Request, WrappedEnv};
use parking_lot::Mutex;

const LONG: Duration = Duration::from_secs(10);
/// The limit on a whole test body.
const WATCHDOG: Duration = Duration::from_secs(60);

struct Echo {
    finished: Arc<AtomicBool>,
}

impl Agent for Echo {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(
            |_: &mut Echo, _: &Context<'_>, req: Request<String, String>| {
                let back = req.query().clone();
                req.reply(back);
            },
        );
    }
    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished.store(true, Ordering::SeqCst);
    }
}

#[test]
fn started_used_from_outside_stopped_and_joined() {
    watchdog(WATCHDOG, || {
        let mut wrapped = WrappedEnv::start().unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let env = wrapped.env();
        let mut coop = env.make_coop();
        let echo = coop.add_agent(Echo {
            finished: finished.clone(),
        });
        env.register_coop(coop).unwrap();
        assert_eq!(
            ask::<_, String, _>(&echo, "hi".to_string(), LONG).unwrap(),
            "hi"
        );
        let report = wrapped.stop_then_join().unwrap();
        assert!(finished.load(Ordering::SeqCst));
        assert!(report.threads.iter().all(|t| t.panic.is_none()));
        assert!(matches!(wrapped.join(), Err(Error::Stopped)));
    });
}

#[test]
fn dropping_it_stops_the_environment_and_waits() {
    watchdog(WATCHDOG, || {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let wrapped = WrappedEnv::start_with(
            Params {
                autoshutdown: false,
                ..Params::default()
            },
            move |env| {
                let mut coop = env.make_coop();
                coop.add_agent(Echo { finished: f });
                env.register_coop(coop).unwrap();
            },
        )
        .unwrap();
        drop(wrapped);
        assert!(finished.load(Ordering::SeqCst));
    });
}

#[test]
fn a_panicking_init_is_an_error() {
    watchdog(WATCHDOG, || {
        let err =
            WrappedEnv::start_with(Params::default(), |_| panic!("no init today")).unwrap_err();
        assert!(
            matches!(&err, Error::InitPanicked(m) if m.contains("no init today")),
            "{err}"
        );
    });
}

/// Holds the handle of its own environment.
struct Holder {
    wrapped: Option<WrappedEnv>,
    joined: mpsc::Sender<String>,
}

struct Take(Arc<Mutex<Option<WrappedEnv>>>);
struct TryJoin;

impl Agent for Holder {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Holder, _: &Context<'_>, Take(slot)| {
            me.wrapped = slot.lock().take();
        });
        def.subscribe_self(|me: &mut Holder, _: &Context<'_>, TryJoin| {
            let err = me.wrapped.as_mut().unwrap().join().unwrap_err();
            let _ = me.joined.send(err.to_string());
        });
    }
}

#[test]
fn a_handle_held_by_its_own_agent_neither_waits_for_itself_nor_hangs() {
    watchdog(WATCHDOG, || {
        let wrapped = WrappedEnv::start().unwrap();
        let env = wrapped.env().clone();
        let (tx, joined) = mpsc::channel();
        let (gone_tx, gone) = mpsc::channel();
        let mut coop = env.make_coop();
        let holder = coop.add_agent(Holder {
            wrapped: None,
            joined: tx,
        });
        coop.on_deregistered(move |_, _, _| {
            let _ = gone_tx.send(());
        });
        env.register_coop(coop).unwrap();
        holder.send(Take(Arc::new(Mutex::new(Some(wrapped)))));
        holder.send(TryJoin);
        let refused = joined.recv_timeout(LONG).unwrap();
        assert!(refused.contains("own threads"), "{refused}");
        // The agent's drop (on the deregistration thread) drops the handle:
        // the environment stops without anyone waiting for it there.
        env.stop();
        gone.recv_timeout(LONG).unwrap();
    });
}
