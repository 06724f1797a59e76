//! Run-time stats: a listener agent prints every distribution the
//! environment sends to its stats mbox, while a producer keeps a slow
//! consumer's dispatcher busy (watch its `demands.count`). After three
//! distributions the listener stops the environment.
//!
//! Run with `cargo run -p mp-agents --example stats`.

use std::time::Duration;

use mp_agents::{
    launch, Agent, Context, Define, DirectMbox, DistributionFinished, DistributionStarted,
    OneThreadDispatcher, Quantity, TimerHandle,
};

/// Prints each distribution, and stops after `left` of them.
struct Listener {
    left: usize,
}

impl Agent for Listener {
    fn name(&self) -> Option<String> {
        Some("listener".into())
    }

    fn define(&mut self, def: &mut Define<'_, Self>) {
        let stats = def.env().stats_controller().mbox();
        def.subscribe(
            &stats,
            |_: &mut Listener, _: &Context<'_>, DistributionStarted| {
                println!("--- distribution");
            },
        )
        .subscribe(&stats, |_: &mut Listener, _: &Context<'_>, q: Quantity| {
            // Skip the figures that are zero, to keep the output short.
            if q.value != 0 {
                println!("{:<45} {}", q.name(), q.value);
            }
        })
        .subscribe(
            &stats,
            |me: &mut Listener, ctx: &Context<'_>, DistributionFinished| {
                me.left -= 1;
                if me.left == 0 {
                    ctx.env().stop();
                }
            },
        );
    }
}

struct Work;
#[derive(Clone)]
struct Tick;

/// Takes its time over each piece of work.
struct Consumer;

impl Agent for Consumer {
    fn name(&self) -> Option<String> {
        Some("consumer".into())
    }

    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Consumer, _: &Context<'_>, Work| {
            std::thread::sleep(Duration::from_millis(2));
        });
    }
}

/// Sends the consumer a burst of work at every tick.
struct Producer {
    consumer: DirectMbox,
    ticks: Option<TimerHandle>,
}

impl Agent for Producer {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Producer, _: &Context<'_>, Tick| {
            for _ in 0..20 {
                me.consumer.send(Work);
            }
        });
    }

    fn start(&mut self, ctx: &Context<'_>) {
        let period = Duration::from_millis(25);
        self.ticks = Some(
            ctx.env()
                .send_periodic(&ctx.direct_mbox(), Tick, period, period),
        );
    }
}

fn main() {
    launch(|env| {
        let stats = env.stats_controller();
        stats
            .set_distribution_period(Duration::from_millis(200))
            .expect("a period above zero");
        let slow = OneThreadDispatcher::new(env, "slow").expect("a thread");
        let mut coop = env.make_coop();
        coop.add_agent(Listener { left: 3 });
        let consumer = coop.add_agent_with_binder(Consumer, slow.binder());
        coop.add_agent(Producer {
            consumer,
            ticks: None,
        });
        env.register_coop(coop).expect("registered");
        stats.turn_on().expect("the environment is running");
    })
    .expect("the environment ran");
}
