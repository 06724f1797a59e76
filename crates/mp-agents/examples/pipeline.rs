//! A pipeline with message limits: a fast source feeds a slow analyzer
//! that keeps at most four samples queued; what does not fit is turned
//! into an `Overflowed` notice for a tally agent (on the sender's thread,
//! at once), so the analyzer never falls behind without bound and no
//! sample is lost silently. A sink on the results mbox turns large results
//! into alarms in an mchain that the main thread reads at the end.
//!
//! Run with `cargo run -p mp-agents --example pipeline [samples]`.

use std::time::Duration;

use mp_agents::{
    from, launch, receive, ActiveObjDispatcher, Agent, Context, Define, DirectMbox, Handlers,
    LimitOverflow, Mbox, MchainParams, SinkBinding,
};

struct Sample(u64);
#[derive(Clone)]
struct Squared(u64);
struct Overflowed;
/// Sent after the last sample: the analyzer reports what it did.
struct Flush;
struct Analyzed(u64);
struct Alarm(u64);

/// The slow stage: at most 4 samples queued; the rest become notices.
struct Analyzer {
    tally: DirectMbox,
    results: Mbox,
    analyzed: u64,
}

impl Agent for Analyzer {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.limit::<Sample>(
            4,
            LimitOverflow::transform(self.tally.clone(), |_| Overflowed),
        );
        def.subscribe_self(|me: &mut Analyzer, _: &Context<'_>, Sample(n)| {
            std::thread::sleep(Duration::from_micros(100));
            me.analyzed += 1;
            me.results.send(Squared(n * n));
        });
        // Queued behind every sample it took (the limit is on `Sample` only).
        def.subscribe_self(|me: &mut Analyzer, _: &Context<'_>, Flush| {
            me.tally.send(Analyzed(me.analyzed));
        });
    }
}

/// Counts the overflow notices; checks the books when the analyzer reports.
struct Tally {
    samples: u64,
    overflowed: u64,
    _alarm_sink: SinkBinding,
}

impl Agent for Tally {
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Tally, _: &Context<'_>, Overflowed| me.overflowed += 1);
        def.subscribe_self(|me: &mut Tally, ctx: &Context<'_>, Analyzed(n)| {
            println!(
                "{} samples: {n} analyzed, {} refused by the analyzer's limit",
                me.samples, me.overflowed
            );
            assert_eq!(n + me.overflowed, me.samples, "every sample accounted for");
            ctx.env().stop();
        });
    }
}

fn main() {
    let samples: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let alarms = std::sync::Arc::new(std::sync::Mutex::new(None));
    let keep = alarms.clone();
    launch(move |env| {
        let threads = ActiveObjDispatcher::new(env, "pipeline");
        let results = env.create_mbox();
        let chain = env.create_mchain(MchainParams::unbounded());
        // Large results also go, as alarms, to the chain, for as long as
        // the tally (which keeps the binding) lives.
        let alarm_sink = results
            .transform_then_redirect(&chain, |Squared(v)| (v > 1_000_000).then_some(Alarm(v)));
        *keep.lock().unwrap() = Some(chain);
        let mut coop = env.make_coop();
        coop.set_binder(threads.binder());
        let tally = coop.add_agent(Tally {
            samples,
            overflowed: 0,
            _alarm_sink: alarm_sink,
        });
        let analyzer = coop.add_agent(Analyzer {
            tally,
            results,
            analyzed: 0,
        });
        env.register_coop(coop).expect("register");
        for n in 0..samples {
            analyzer.send(Sample(n));
        }
        analyzer.send(Flush);
    })
    .expect("launch");
    let chain = alarms.lock().unwrap().take().expect("the alarm chain");
    let mut count = 0;
    let mut largest = 0;
    receive(
        from(&chain).no_wait_on_empty(),
        Handlers::new().on(|Alarm(v)| {
            count += 1;
            largest = largest.max(v);
        }),
    );
    println!("{count} alarms, the largest {largest}");
}
