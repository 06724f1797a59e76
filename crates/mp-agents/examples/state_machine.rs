//! A door as an agent state machine: it closes by itself 300 ms after it
//! opens (a time limit), can be locked whether open or closed, and once
//! unlocked goes back to where it was (shallow history).
//!
//! ```text
//! operational (history: shallow) ⊃ { closed (initial), open (300 ms → closed) }
//! locked
//! ```
//!
//! A script of delayed messages drives it; the last one stops the
//! environment. Run with `cargo run -p mp-agents --example state_machine`.

use std::time::{Duration, Instant};

use mp_agents::{launch, Agent, Context, Define, History, State};

struct Push;
struct Lock;
struct Unlock;
struct Stop;

struct Door {
    born: Instant,
    operational: Option<State>,
    open: Option<State>,
    locked: Option<State>,
}

impl Door {
    fn say(&self, what: &str) {
        println!("{:>5} ms  {what}", self.born.elapsed().as_millis());
    }
}

impl Agent for Door {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let operational = def.state("operational");
        let closed = def.initial_substate(&operational, "closed");
        let open = def.substate(&operational, "open");
        let locked = def.state("locked");
        (self.operational, self.open, self.locked) = (Some(operational), Some(open), Some(locked));
        def.start_in(&operational);

        def.in_state(&operational)
            .history(History::Shallow)
            .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Lock| {
                me.say("lock");
                ctx.change_state(me.locked.as_ref().unwrap());
            })
            .subscribe_self(|me: &mut Door, _: &Context<'_>, Push| me.say("push: already open"));
        def.in_state(&closed)
            .on_enter(|me: &mut Door, _| me.say("closed"))
            .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Push| {
                me.say("push");
                ctx.change_state(me.open.as_ref().unwrap());
            });
        def.in_state(&open)
            .on_enter(|me: &mut Door, _| me.say("open (closes by itself in 300 ms)"))
            .time_limit(Duration::from_millis(300), &closed);
        def.in_state(&locked)
            .on_enter(|me: &mut Door, _| me.say("locked"))
            .on_exit(|me: &mut Door, _| me.say("unlocked"))
            .subscribe_self(|me: &mut Door, _: &Context<'_>, Push| me.say("push: locked"))
            .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Unlock| {
                ctx.change_state(me.operational.as_ref().unwrap());
            });
        // Stop in any state: subscribed at both top-level states.
        for state in [operational, locked] {
            def.in_state(&state)
                .subscribe_self(|me: &mut Door, ctx: &Context<'_>, Stop| {
                    me.say("stop");
                    ctx.env().stop();
                });
        }
    }

    fn start(&mut self, ctx: &Context<'_>) {
        let env = ctx.env();
        let me = ctx.direct_mbox();
        let at = Duration::from_millis;
        env.send_delayed(&me, Push, at(50)); // opens; closes at ~350
        env.send_delayed(&me, Push, at(500)); // opens again
        env.send_delayed(&me, Push, at(550)); // already open
        env.send_delayed(&me, Lock, at(600)); // the auto-close is cancelled
        env.send_delayed(&me, Push, at(700)); // locked
        env.send_delayed(&me, Unlock, at(900)); // back to `open`; closes at ~1200
        env.send_delayed(&me, Stop, at(1400));
    }

    fn finish(&mut self, _ctx: &Context<'_>) {
        self.say("finished");
    }
}

fn main() {
    launch(|env| {
        let mut coop = env.make_coop();
        coop.add_agent(Door {
            born: Instant::now(),
            operational: None,
            open: None,
            locked: None,
        });
        env.register_coop(coop).expect("registration");
    })
    .expect("launch");
    println!("environment down");
}
