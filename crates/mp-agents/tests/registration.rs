//! Transactional registration: a cooperation whose registration fails half
//! way is undone — preallocations given back (threads of an active-object
//! dispatcher stopped), MPMC subscriptions removed, no agent started, every
//! agent dropped, nothing counted as registered.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{watchdog, DropLog};
use mp_agents::{
    launch, ActiveObjDispatcher, Agent, AgentInfo, Binder, Context, Define, DeregReason, Error,
    EventQueue, Mbox,
};

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    dropped: AtomicUsize,
    /// Where the agents were dropped.
    drop_log: DropLog,
    preallocated: AtomicUsize,
    undone: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Ping;

struct Probe {
    counts: Arc<Counts>,
    news: Mbox,
    panic_in_define: bool,
}

impl Agent for Probe {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe(&self.news, |_: &mut Probe, _: &Context<'_>, Ping| {});
        if self.panic_in_define {
            panic!("refusing to define");
        }
    }

    fn start(&mut self, _ctx: &Context<'_>) {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
        self.counts.drop_log.record();
    }
}

/// Counts preallocations and undos; refuses once `fail_at` were accepted.
struct Flaky {
    inner: Arc<dyn Binder>,
    counts: Arc<Counts>,
    fail_at: usize,
}

impl Binder for Flaky {
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error> {
        if self.counts.preallocated.load(Ordering::SeqCst) == self.fail_at {
            return Err(Error::Refused("no room".into()));
        }
        self.inner.preallocate(agent)?;
        self.counts.preallocated.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn undo_preallocation(&self, agent: AgentInfo) {
        self.counts.undone.fetch_add(1, Ordering::SeqCst);
        self.inner.undo_preallocation(agent)
    }
    fn bind(&self, agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.inner.bind(agent)
    }
    fn unbind(&self, agent: AgentInfo) {
        self.inner.unbind(agent)
    }
}

#[test]
fn a_binder_failing_half_way_undoes_the_rest() {
    watchdog(Duration::from_secs(30), || {
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        launch(move |env| {
            c.drop_log.dereg.set(env.dereg_thread_id()).unwrap();
            let active = ActiveObjDispatcher::new(env, "half");
            let news = env.named_mbox("news");
            let binder: Arc<dyn Binder> = Arc::new(Flaky {
                inner: active.binder(),
                counts: c.clone(),
                fail_at: 3,
            });
            let mut coop = env.make_coop();
            coop.set_binder(binder);
            let mut mboxes = Vec::new();
            for _ in 0..5 {
                mboxes.push(coop.add_agent(Probe {
                    counts: c.clone(),
                    news: news.clone(),
                    panic_in_define: false,
                }));
            }
            // Sent before registration: waits in the agent's buffer, and
            // goes with it.
            mboxes[0].send(Ping);
            let err = env.register_coop(coop).unwrap_err();
            assert!(matches!(err, Error::Refused(_)), "{err}");
            assert_eq!(c.preallocated.load(Ordering::SeqCst), 3);
            assert_eq!(c.undone.load(Ordering::SeqCst), 3);
            assert_eq!(
                active.thread_count(),
                0,
                "threads of the undone agents still there"
            );
            assert_eq!(c.dropped.load(Ordering::SeqCst), 5);
            // On the deregistration thread, as in a final step, before
            // `register_coop` returned.
            assert_eq!(c.drop_log.on_dereg.load(Ordering::SeqCst), 5);
            assert_eq!(c.drop_log.elsewhere.load(Ordering::SeqCst), 0);
            assert_eq!(c.started.load(Ordering::SeqCst), 0);
            assert_eq!(news.subscriber_count(), 0);
            assert_eq!(env.coop_count(), 0);
            // Sending to an agent that never registered does nothing.
            mboxes[1].send(Ping);
            drop(mboxes);
            env.stop();
        })
        .unwrap();
        assert_eq!(counts.started.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_define_panic_undoes_everything() {
    watchdog(Duration::from_secs(30), || {
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        launch(move |env| {
            let active = ActiveObjDispatcher::new(env, "define");
            let news = env.create_mbox();
            let binder: Arc<dyn Binder> = Arc::new(Flaky {
                inner: active.binder(),
                counts: c.clone(),
                fail_at: usize::MAX,
            });
            let mut coop = env.make_coop();
            coop.set_binder(binder);
            for i in 0..4 {
                coop.add_agent(Probe {
                    counts: c.clone(),
                    news: news.clone(),
                    panic_in_define: i == 2,
                });
            }
            let err = env.register_coop(coop).unwrap_err();
            assert!(matches!(err, Error::DefinePanicked(_)), "{err}");
            assert_eq!(c.preallocated.load(Ordering::SeqCst), 4);
            assert_eq!(c.undone.load(Ordering::SeqCst), 4);
            assert_eq!(active.thread_count(), 0);
            assert_eq!(c.dropped.load(Ordering::SeqCst), 4);
            assert_eq!(news.subscriber_count(), 0);
            assert_eq!(env.coop_count(), 0);
            env.stop();
        })
        .unwrap();
        assert_eq!(counts.started.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn linking_refused_undoes_subscriptions_and_threads() {
    watchdog(Duration::from_secs(30), || {
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        launch(move |env| {
            let active = ActiveObjDispatcher::new(env, "late");
            let news = env.create_mbox();
            // A parent that is gone by the time the child links.
            let parent = env.register_coop(env.make_coop()).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let mut child = env.make_child_coop(&parent);
            child.set_binder(active.binder());
            for _ in 0..3 {
                child.add_agent(Probe {
                    counts: c.clone(),
                    news: news.clone(),
                    panic_in_define: false,
                });
            }
            let mut watcher = env.make_coop();
            watcher.on_deregistered(move |_, _, _| {
                let _ = tx.send(());
            });
            let watcher = env.register_coop(watcher).unwrap();
            parent.deregister(DeregReason::Normal);
            watcher.deregister(DeregReason::Normal);
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(!parent.is_alive());
            let err = env.register_coop(child).unwrap_err();
            assert!(matches!(err, Error::ParentGone), "{err}");
            assert_eq!(active.thread_count(), 0);
            assert_eq!(news.subscriber_count(), 0);
            assert_eq!(c.dropped.load(Ordering::SeqCst), 3);
            env.stop();
            // After stop, nothing new registers.
            let mut after = env.make_coop();
            after.add_agent(Probe {
                counts: c.clone(),
                news: news.clone(),
                panic_in_define: false,
            });
            assert!(matches!(env.register_coop(after), Err(Error::Stopped)));
            assert_eq!(news.subscriber_count(), 0);
        })
        .unwrap();
        assert_eq!(counts.started.load(Ordering::SeqCst), 0);
        assert_eq!(counts.dropped.load(Ordering::SeqCst), 4);
    });
}
