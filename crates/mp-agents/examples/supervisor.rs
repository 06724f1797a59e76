//! A supervisor-like parent cooperation restarting a failing child.
//!
//! The parent cooperation holds a `Supervisor` agent. It registers a child
//! cooperation with one `Worker` agent whose panic reaction is
//! `DeregisterCoop`: when the worker panics, its cooperation is
//! deregistered (reason `Panic`) and the child's deregistration
//! notification — run on the environment's deregistration thread — tells
//! the supervisor, which registers a fresh child, at most `MAX_RESTARTS`
//! times. A worker that does all its jobs deregisters its cooperation
//! normally; the supervisor then stops the environment, as it does when it
//! gives up.
//!
//! Run with `cargo run -p mp-agents --example supervisor [failing]`: the
//! first `failing` incarnations crash (default 2, so the third succeeds;
//! give 5 to see the supervisor give up).

use mp_agents::{launch, Agent, Context, Define, DeregReason, DirectMbox, PanicReaction};

const MAX_RESTARTS: u32 = 3;
const JOBS: u32 = 5;

/// The worker's own job counter, sent to itself.
struct Job(u32);

/// From a child's deregistration notification to the supervisor.
struct ChildGone {
    incarnation: u32,
    reason: DeregReason,
}

struct Worker {
    incarnation: u32,
    /// Panics on this job, if any.
    crash_on: Option<u32>,
}

impl Agent for Worker {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Worker, ctx: &Context<'_>, Job(n)| {
            if me.crash_on == Some(n) {
                panic!("worker #{} failed on job {n}", me.incarnation);
            }
            println!("  worker #{}: job {n} done", me.incarnation);
            if n == JOBS {
                ctx.deregister_coop(DeregReason::Normal);
            } else {
                ctx.direct_mbox().send(Job(n + 1));
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        ctx.direct_mbox().send(Job(1));
    }

    fn panic_reaction(&self) -> PanicReaction {
        PanicReaction::DeregisterCoop
    }
}

struct Supervisor {
    failing: u32,
    incarnation: u32,
    restarts: u32,
}

impl Supervisor {
    fn start_child(&mut self, ctx: &Context<'_>) {
        self.incarnation += 1;
        let incarnation = self.incarnation;
        let env = ctx.env();
        let mut child = env.make_child_coop(&ctx.coop());
        child.add_agent(Worker {
            incarnation,
            crash_on: (incarnation <= self.failing).then_some(3),
        });
        let me: DirectMbox = ctx.direct_mbox();
        child.on_deregistered(move |_env, _id, reason| {
            me.send(ChildGone {
                incarnation,
                reason,
            });
        });
        match env.register_coop(child) {
            Ok(_) => println!("supervisor: started worker #{incarnation}"),
            Err(e) => {
                println!("supervisor: cannot start a worker ({e}); stopping");
                env.stop();
            }
        }
    }
}

impl Agent for Supervisor {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Supervisor, ctx: &Context<'_>, gone: ChildGone| {
            println!(
                "supervisor: worker #{} gone ({:?})",
                gone.incarnation, gone.reason
            );
            match gone.reason {
                DeregReason::Panic if me.restarts < MAX_RESTARTS => {
                    me.restarts += 1;
                    println!("supervisor: restart {}/{MAX_RESTARTS}", me.restarts);
                    me.start_child(ctx);
                }
                DeregReason::Panic => {
                    println!("supervisor: too many failures; giving up");
                    ctx.env().stop();
                }
                _ => {
                    println!("supervisor: work complete");
                    ctx.env().stop();
                }
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.start_child(ctx);
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        println!("supervisor: finished after {} restart(s)", self.restarts);
    }
}

fn main() {
    let failing: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    // One line per caught panic instead of the default report.
    std::panic::set_hook(Box::new(|info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("?");
        println!("  (panic caught on the worker's thread: {msg})");
    }));
    let report = launch(|env| {
        let mut parent = env.make_coop();
        parent.add_agent(Supervisor {
            failing,
            incarnation: 0,
            restarts: 0,
        });
        env.register_coop(parent).expect("registration");
    })
    .expect("launch");
    println!(
        "environment down: {} threads joined by the reaper",
        report.threads.len()
    );
}
