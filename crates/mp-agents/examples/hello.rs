//! SObjectizer's hello world, with a delayed message: an agent sends
//! itself a greeting that arrives after a delay, prints it, and
//! deregisters its cooperation. Nothing calls `stop`: with autoshutdown
//! (on by default) the environment ends when its last cooperation is gone,
//! and `launch` returns.
//!
//! Run with `cargo run -p mp-agents --example hello`.

use std::time::{Duration, Instant};

use mp_agents::{launch, Agent, Context, Define, DeregReason};

struct Greeting(&'static str);

struct Hello {
    started: Option<Instant>,
}

impl Agent for Hello {
    fn name(&self) -> Option<String> {
        Some("hello".into())
    }

    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Hello, ctx: &Context<'_>, Greeting(text)| {
            let after = me.started.map(|s| s.elapsed()).unwrap_or_default();
            println!("{}: {text} (after {after:?})", ctx.agent_name());
            ctx.deregister_coop(DeregReason::Normal);
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        self.started = Some(Instant::now());
        ctx.env().send_delayed(
            &ctx.direct_mbox(),
            Greeting("Hello, world!"),
            Duration::from_millis(200),
        );
    }
}

fn main() {
    let report = launch(|env| {
        let mut coop = env.make_coop();
        coop.add_agent(Hello { started: None });
        env.register_coop(coop).expect("register");
    })
    .expect("launch");
    println!("environment down; {} threads joined", report.threads.len());
}
