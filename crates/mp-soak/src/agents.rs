//! The agents half of the soak: a thread that launches mp-agents
//! environments and, in each, registers and deregisters cooperations in a
//! loop — agents on every kind of dispatcher, relaying tokens to each other
//! so that messages are in flight when their cooperation is deregistered,
//! sometimes with a child cooperation that goes down with its parent — and
//! every so often stops the environment and launches a new one.
//!
//! Owns that thread and its counters. Invariant it keeps for the main
//! loop's thread and fd checks: when [`AgentsSoak::pause`] returns `true`,
//! the loop is parked with one environment up (its own threads and its
//! default dispatcher, started before the first pause) and every
//! cooperation it registered deregistered, so the process's threads and
//! fds are what they were at every earlier pause once the reaper has
//! joined the dispatchers that went away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mp_agents::{
    launch, ActiveGroupDispatcher, ActiveObjDispatcher, AdvThreadPoolDispatcher, Agent, Binder,
    Context, Define, DeregReason, DirectMbox, Environment, Fifo, OneThreadDispatcher, PoolParams,
    PrioDedicatedThreadsDispatcher, PrioOneThreadDispatcher, Quotas, ThreadPoolDispatcher,
};

use crate::Rng;

/// How long a cooperation may take to finish its deregistration before the
/// soak counts a hang.
const PATIENCE: Duration = Duration::from_secs(30);
/// Most cooperations whose deregistration may be under way at once.
const MAX_IN_FLIGHT: u64 = 16;
/// Cooperations per environment, on average.
const COOPS_PER_ENVIRONMENT: u64 = 400;

/// What the agents loop did.
#[derive(Debug, Default)]
pub struct AgentCounters {
    /// Environments launched.
    pub environments: AtomicU64,
    /// Cooperations registered (children included).
    pub registered: AtomicU64,
    /// Cooperations whose deregistration completed (their notificator ran
    /// on the deregistration thread).
    pub deregistered: AtomicU64,
    /// Messages handled by agents.
    pub delivered: AtomicU64,
    /// Registrations or launches that failed.
    pub errors: AtomicU64,
    /// Deregistrations that did not complete within [`PATIENCE`].
    pub hangs: AtomicU64,
}

/// A token passed around a ring of agents `n` more times.
struct Token(u32);

/// One agent of a ring: counts what it gets and passes it on.
struct Relay {
    index: usize,
    ring: Arc<OnceLock<Vec<DirectMbox>>>,
    counters: Arc<AgentCounters>,
}

impl Agent for Relay {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Relay, _: &Context<'_>, Token(n)| {
            me.counters.delivered.fetch_add(1, Ordering::Relaxed);
            if n > 0 {
                if let Some(ring) = me.ring.get() {
                    ring[(me.index + 1) % ring.len()].send(Token(n - 1));
                }
            }
        });
    }
}

#[derive(Default)]
struct Control {
    pause: bool,
    paused: bool,
    stop: bool,
}

/// The agents soak thread and the handshake that parks it for checks.
pub struct AgentsSoak {
    control: Arc<(Mutex<Control>, Condvar)>,
    counters: Arc<AgentCounters>,
    thread: Option<JoinHandle<()>>,
}

impl AgentsSoak {
    /// Starts the loop on a thread of its own.
    pub fn start(seed: u64) -> AgentsSoak {
        let control = Arc::new((Mutex::new(Control::default()), Condvar::new()));
        let counters = Arc::new(AgentCounters::default());
        let thread = {
            let control = control.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("soak-agents".into())
                .spawn(move || run(seed, &control, &counters))
                .expect("spawn the agents soak thread")
        };
        AgentsSoak {
            control,
            counters,
            thread: Some(thread),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> &AgentCounters {
        &self.counters
    }

    /// Parks the loop at a quiescent point (see the module comment);
    /// `false` if it did not get there within [`PATIENCE`].
    pub fn pause(&self) -> bool {
        let (lock, cv) = &*self.control;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        c.pause = true;
        let deadline = Instant::now() + PATIENCE;
        while !c.paused {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = cv
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Lets the loop go on after [`pause`](Self::pause).
    pub fn resume(&self) {
        let (lock, cv) = &*self.control;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        c.pause = false;
        cv.notify_all();
    }

    /// Stops the environment and the loop and joins its thread (bounded:
    /// `false` if it did not end within [`PATIENCE`]).
    pub fn stop(&mut self) -> bool {
        {
            let (lock, cv) = &*self.control;
            let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
            c.stop = true;
            c.pause = false;
            cv.notify_all();
        }
        let Some(thread) = self.thread.take() else {
            return true;
        };
        let deadline = Instant::now() + PATIENCE;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
            true
        } else {
            false
        }
    }
}

/// Waits (bounded) until at most `limit` deregistrations are under way.
fn drain_to(counters: &AgentCounters, limit: u64) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let registered = counters.registered.load(Ordering::Relaxed);
        let deregistered = counters.deregistered.load(Ordering::Relaxed);
        if registered - deregistered <= limit {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn run(seed: u64, control: &Arc<(Mutex<Control>, Condvar)>, counters: &Arc<AgentCounters>) {
    let mut rng = Rng(seed | 1);
    let (lock, cv) = &**control;
    loop {
        if lock.lock().unwrap_or_else(|e| e.into_inner()).stop {
            return;
        }
        counters.environments.fetch_add(1, Ordering::Relaxed);
        let launched = launch(|env| {
            // The default dispatcher's thread lives as long as the
            // environment: start it now so every pause sees it.
            if env.default_binder().is_err() {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            loop {
                {
                    let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if c.stop {
                        break;
                    }
                    if c.pause {
                        if !drain_to(counters, 0) {
                            counters.hangs.fetch_add(1, Ordering::Relaxed);
                            eprintln!("HANG: a cooperation did not finish deregistering");
                        }
                        c.paused = true;
                        cv.notify_all();
                        while c.pause && !c.stop {
                            c = cv.wait(c).unwrap_or_else(|e| e.into_inner());
                        }
                        c.paused = false;
                        if c.stop {
                            break;
                        }
                    }
                }
                if !drain_to(counters, MAX_IN_FLIGHT) {
                    counters.hangs.fetch_add(1, Ordering::Relaxed);
                    eprintln!("HANG: cooperations did not finish deregistering");
                    break;
                }
                if let Err(e) = cycle(env, &mut rng, counters) {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("agents: {e}");
                }
                if rng.below(COOPS_PER_ENVIRONMENT) == 0 {
                    break;
                }
            }
            env.stop();
        });
        if let Err(e) = launched {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("agents: launch failed: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One cooperation (sometimes with a child): a ring of relays on a random
/// dispatcher, tokens sent, deregistered at a random moment.
fn cycle(env: &Environment, rng: &mut Rng, counters: &Arc<AgentCounters>) -> Result<(), String> {
    let binder: Arc<dyn Binder> = match rng.below(8) {
        0 => OneThreadDispatcher::new(env, "soak-one")
            .map_err(|e| e.to_string())?
            .binder(),
        1 => ActiveObjDispatcher::new(env, "soak-ao").binder(),
        2 => ActiveGroupDispatcher::new(env, "soak-ag").binder("ring"),
        3 => ThreadPoolDispatcher::new(env, "soak-tp", PoolParams::with_threads(2))
            .map_err(|e| e.to_string())?
            .binder(),
        4 => AdvThreadPoolDispatcher::new(
            env,
            "soak-adv",
            PoolParams::with_threads(2).fifo(Fifo::Individual),
        )
        .map_err(|e| e.to_string())?
        .binder(),
        5 => PrioOneThreadDispatcher::quoted_round_robin(env, "soak-prio", Quotas::new(2))
            .map_err(|e| e.to_string())?
            .binder(),
        6 => PrioDedicatedThreadsDispatcher::new(env, "soak-ded").binder(),
        _ => env.default_binder().map_err(|e| e.to_string())?,
    };
    let size = 2 + rng.below(5) as usize;
    let ring = Arc::new(OnceLock::new());
    let mut coop = env.make_coop();
    coop.set_binder(binder.clone());
    let done = counters.clone();
    coop.on_deregistered(move |_, _, _| {
        done.deregistered.fetch_add(1, Ordering::Relaxed);
    });
    let mboxes: Vec<DirectMbox> = (0..size)
        .map(|index| {
            coop.add_agent(Relay {
                index,
                ring: ring.clone(),
                counters: counters.clone(),
            })
        })
        .collect();
    let _ = ring.set(mboxes.clone());
    let handle = env.register_coop(coop).map_err(|e| e.to_string())?;
    counters.registered.fetch_add(1, Ordering::Relaxed);
    if rng.below(4) == 0 {
        let mut child = env.make_child_coop(&handle);
        child.set_binder(binder);
        let done = counters.clone();
        child.on_deregistered(move |_, _, _| {
            done.deregistered.fetch_add(1, Ordering::Relaxed);
        });
        let child_ring = Arc::new(OnceLock::new());
        let only = child.add_agent(Relay {
            index: 0,
            ring: child_ring.clone(),
            counters: counters.clone(),
        });
        let _ = child_ring.set(vec![only.clone()]);
        env.register_coop(child).map_err(|e| e.to_string())?;
        counters.registered.fetch_add(1, Ordering::Relaxed);
        only.send(Token(rng.below(100) as u32));
    }
    for mbox in &mboxes {
        if rng.below(2) == 0 {
            mbox.send(Token(rng.below(200) as u32));
        }
    }
    drop(mboxes);
    if rng.below(2) == 0 {
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
    }
    handle.deregister(DeregReason::Normal);
    Ok(())
}
