//! Ping-pong between two agents, each on its own thread (an active-object
//! dispatcher), through their direct mboxes. The pinger stops the
//! environment after the last pong; `launch` returns once every agent is
//! dropped and every thread joined.
//!
//! Run with `cargo run -p mp-agents --example ping_pong [rounds] [one]`;
//! with `one`, both agents share a one-thread dispatcher instead.

use std::time::Instant;

use mp_agents::{
    launch, ActiveObjDispatcher, Agent, Binder, Context, Define, DirectMbox, OneThreadDispatcher,
};
use std::sync::Arc;

struct Ping {
    reply_to: DirectMbox,
    n: u64,
}

struct Pong(u64);

struct Pinger {
    ponger: DirectMbox,
    rounds: u64,
    started: Option<Instant>,
}

impl Agent for Pinger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Pinger, ctx: &Context<'_>, Pong(n)| {
            if n == me.rounds {
                let took = me.started.map(|s| s.elapsed()).unwrap_or_default();
                println!(
                    "{} round trips in {took:?} ({:.0} messages/s)",
                    me.rounds,
                    2.0 * me.rounds as f64 / took.as_secs_f64()
                );
                ctx.env().stop();
            } else {
                me.ponger.send(Ping {
                    reply_to: ctx.direct_mbox(),
                    n: n + 1,
                });
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.started = Some(Instant::now());
        self.ponger.send(Ping {
            reply_to: ctx.direct_mbox(),
            n: 1,
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        println!("pinger finished");
    }
}

struct Ponger;

impl Agent for Ponger {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, ping: Ping| {
            ping.reply_to.send(Pong(ping.n));
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        println!("ponger finished");
    }
}

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let one_thread = std::env::args().nth(2).as_deref() == Some("one");
    let report = launch(|env| {
        let binder: Arc<dyn Binder> = if one_thread {
            OneThreadDispatcher::new(env, "pp")
                .expect("dispatcher")
                .binder()
        } else {
            ActiveObjDispatcher::new(env, "pp").binder()
        };
        let mut coop = env.make_coop();
        coop.set_binder(binder);
        let ponger = coop.add_agent(Ponger);
        coop.add_agent(Pinger {
            ponger,
            rounds,
            started: None,
        });
        env.register_coop(coop).expect("registration");
    })
    .expect("launch");
    println!(
        "environment down: {} threads joined, all by the reaper: {}",
        report.threads.len(),
        report
            .threads
            .iter()
            .all(|t| t.joined_on == report.reaper_thread)
    );
}
