//! Request and reply: a converter service behind a unique-subscribers mbox
//! (one agent takes each request type; requests need not be `Clone`),
//! asked three ways.
//!
//! - From a plain thread with a blocking [`ask`] and a timeout (the
//!   environment runs in the background, a [`WrappedEnv`]).
//! - From an agent's handler with [`Context::request`]: the handler does
//!   not block; the reply comes back as an [`Answer`] message.
//! - A request the service never answers in time, and one of a type
//!   nobody serves: each error says why.
//!
//! Run with `cargo run -p mp-agents --example request_reply`.

use std::time::Duration;

use mp_agents::{
    ask, Agent, Answer, AskError, Context, Define, Replier, Request, UniqueMbox, WrappedEnv,
};

/// Celsius to convert.
struct ToFahrenheit(f64);
/// A conversion the service keeps for later (and forgets).
struct Slow;

struct Converter {
    service: UniqueMbox,
    parked: Vec<Replier<f64>>,
}

impl Agent for Converter {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        let service = self.service.clone();
        def.subscribe_unique(
            &service,
            |_: &mut Converter, _: &Context<'_>, req: Request<ToFahrenheit, f64>| {
                let c = req.0;
                req.reply(c * 9.0 / 5.0 + 32.0);
            },
        );
        def.subscribe_unique(
            &service,
            |me: &mut Converter, _: &Context<'_>, req: Request<Slow, f64>| {
                me.parked.push(req.into_parts().1);
            },
        );
    }
}

/// Asks the converter from its handler, without blocking.
struct Thermostat {
    service: UniqueMbox,
}

struct Check(f64);

impl Agent for Thermostat {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Thermostat, ctx: &Context<'_>, Check(c)| {
            let id = ctx.request::<_, f64, _>(&me.service, ToFahrenheit(c), Duration::from_secs(1));
            println!("thermostat: asked for {c} °C as request {id:?}; not waiting");
        });
        def.subscribe_self(
            |_: &mut Thermostat, ctx: &Context<'_>, answer: Answer<f64>| {
                match answer.result {
                    Ok(f) => println!("thermostat: request {:?} answered: {f} °F", answer.id),
                    Err(e) => println!("thermostat: request {:?} failed: {e}", answer.id),
                }
                ctx.env().stop();
            },
        );
    }
}

fn main() {
    let mut wrapped = WrappedEnv::start().expect("start the environment");
    let env = wrapped.env().clone();
    let service = env.create_unique_mbox();
    let mut coop = env.make_coop();
    coop.add_agent(Converter {
        service: service.clone(),
        parked: Vec::new(),
    });
    let thermostat = coop.add_agent(Thermostat {
        service: service.clone(),
    });
    env.register_coop(coop).expect("register");

    let f: f64 = ask(&service, ToFahrenheit(100.0), Duration::from_secs(1)).expect("an answer");
    println!("main: 100 °C is {f} °F");

    match ask::<_, f64, _>(&service, Slow, Duration::from_millis(50)) {
        Err(e @ AskError::Timeout { .. }) => println!("main: {e}"),
        other => println!("main: unexpected {other:?}"),
    }
    match ask::<_, String, _>(&service, ToFahrenheit(1.0), Duration::from_secs(1)) {
        Err(e @ AskError::NoHandler { .. }) => println!("main: {e}"),
        other => println!("main: unexpected {other:?}"),
    }

    thermostat.send(Check(21.5));
    let report = wrapped.join().expect("the environment ran");
    println!("environment down; {} threads joined", report.threads.len());
}
