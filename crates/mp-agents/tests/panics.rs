//! Reactions to a panicking handler: per agent, inherited from the
//! cooperation, from the parent cooperation, and from the environment; and
//! the default when nobody sets one (the cooperation is deregistered).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    launch, launch_with, Agent, Context, CoopBuilder, Define, DeregReason, PanicReaction, Params,
};

/// The counters a test shares with its agents: finish hooks run, and
/// `Fine` messages handled.
fn counters() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)))
}

/// Reports the reasons `coop` is deregistered for.
fn reasons_of(coop: &mut CoopBuilder) -> mpsc::Receiver<DeregReason> {
    let (tx, rx) = mpsc::channel();
    coop.on_deregistered(move |_, _, reason| {
        let _ = tx.send(reason);
    });
    rx
}

/// The next reason reported (bounded wait).
fn next_reason(reasons: &mpsc::Receiver<DeregReason>) -> DeregReason {
    reasons
        .recv_timeout(Duration::from_secs(10))
        .expect("the cooperation was deregistered")
}

#[derive(Clone, Copy)]
struct Boom;

#[derive(Clone, Copy)]
struct Fine;

struct Fragile {
    reaction: PanicReaction,
    finished: Arc<AtomicUsize>,
    fine: Arc<AtomicUsize>,
}

impl Fragile {
    fn new(reaction: PanicReaction, finished: &Arc<AtomicUsize>, fine: &Arc<AtomicUsize>) -> Self {
        Fragile {
            reaction,
            finished: finished.clone(),
            fine: fine.clone(),
        }
    }
}

impl Agent for Fragile {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Fragile, _: &Context<'_>, Boom| panic!("boom"));
        def.subscribe_self(|me: &mut Fragile, _: &Context<'_>, Fine| {
            me.fine.fetch_add(1, Ordering::SeqCst);
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    fn panic_reaction(&self) -> PanicReaction {
        self.reaction
    }
}

#[test]
fn agent_reaction_deregisters_its_cooperation() {
    watchdog(Duration::from_secs(30), || {
        let (finished, fine) = counters();
        let (f, g) = (finished.clone(), fine.clone());
        launch(move |env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Fragile::new(PanicReaction::DeregisterCoop, &f, &g));
            coop.add_agent(Fragile::new(PanicReaction::Inherit, &f, &g));
            let reasons = reasons_of(&mut coop);
            env.register_coop(coop).unwrap();
            mbox.send(Boom);
            assert_eq!(next_reason(&reasons), DeregReason::Panic);
            env.stop();
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn by_default_a_panic_deregisters_the_cooperation_and_the_rest_goes_on() {
    watchdog(Duration::from_secs(30), || {
        let (finished, fine) = counters();
        let (f, g) = (finished.clone(), fine.clone());
        // No reaction set anywhere: agent, cooperation, environment.
        launch(move |env| {
            let mut doomed = env.make_coop();
            let mbox = doomed.add_agent(Fragile::new(PanicReaction::Inherit, &f, &g));
            let reasons = reasons_of(&mut doomed);
            let doomed = env.register_coop(doomed).unwrap();
            let mut bystander = env.make_coop();
            let other = bystander.add_agent(Fragile::new(PanicReaction::Inherit, &f, &g));
            let bystander = env.register_coop(bystander).unwrap();
            mbox.send(Boom);
            assert_eq!(next_reason(&reasons), DeregReason::Panic);
            assert!(!doomed.is_alive());
            assert!(bystander.is_alive(), "only the panicking cooperation goes");
            other.send(Fine);
            while g.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            env.stop();
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn reactions_are_inherited_from_the_parent_and_overridden_by_the_agent() {
    watchdog(Duration::from_secs(30), || {
        let (finished, fine) = counters();
        let (f, g) = (finished.clone(), fine.clone());
        launch(move |env| {
            let mut parent = env.make_coop();
            parent.set_panic_reaction(PanicReaction::DeregisterCoop);
            let parent = env.register_coop(parent).unwrap();
            // The child inherits "deregister the cooperation" from its parent.
            let mut child = env.make_child_coop(&parent);
            let inheriting = child.add_agent(Fragile::new(PanicReaction::Inherit, &f, &g));
            let ignoring = child.add_agent(Fragile::new(PanicReaction::Ignore, &f, &g));
            let reasons = reasons_of(&mut child);
            let child = env.register_coop(child).unwrap();
            // An agent that ignores its panics keeps going.
            ignoring.send(Boom);
            ignoring.send(Fine);
            while g.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(child.is_alive());
            inheriting.send(Boom);
            assert_eq!(next_reason(&reasons), DeregReason::Panic);
            assert!(parent.is_alive(), "only the child goes");
            env.stop();
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn environment_reaction_stops_everything() {
    watchdog(Duration::from_secs(30), || {
        let (finished, fine) = counters();
        let (f, g) = (finished.clone(), fine.clone());
        let params = Params {
            panic_reaction: Some(PanicReaction::ShutdownEnvironment),
            ..Params::default()
        };
        // Nobody calls `stop`: the panic does.
        launch_with(params, move |env| {
            let mut coop = env.make_coop();
            let mbox = coop.add_agent(Fragile::new(PanicReaction::Inherit, &f, &g));
            env.register_coop(coop).unwrap();
            mbox.send(Boom);
        })
        .unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    });
}

/// An agent whose `Drop` panics (it runs in the final step, on the
/// deregistration thread); counts the drops of its neighbours.
struct DropsBadly;

impl Agent for DropsBadly {}

impl Drop for DropsBadly {
    fn drop(&mut self) {
        panic!("an agent's Drop panicked");
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Agent for Counted {}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_agent_whose_drop_panics_still_lets_its_cooperation_go_and_launch_return() {
    watchdog(Duration::from_secs(30), || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let report = launch(move |env| {
            let mut coop = env.make_coop();
            coop.add_agent(Counted(d.clone()));
            coop.add_agent(DropsBadly);
            coop.add_agent(Counted(d.clone()));
            let reasons = reasons_of(&mut coop);
            let handle = env.register_coop(coop).unwrap();
            // Deregistered on purpose: its final step runs while the
            // environment goes on.
            handle.deregister(DeregReason::Normal);
            assert_eq!(next_reason(&reasons), DeregReason::Normal);
            assert_eq!(d.load(Ordering::SeqCst), 2, "the neighbours were dropped");
            // Counted out just after its notificators ran.
            while env.coop_count() != 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // And once more at shutdown.
            let mut coop = env.make_coop();
            coop.add_agent(DropsBadly);
            env.register_coop(coop).unwrap();
            env.stop();
        })
        .unwrap();
        assert!(report.threads.iter().all(|t| t.panic.is_none()));
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    });
}
