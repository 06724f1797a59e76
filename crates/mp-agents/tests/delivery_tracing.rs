//! Delivery tracing: with a filter set, the selected deliveries show as
//! `tracing` events (queued, handled, dropped and why, who sent them);
//! deliveries the filter does not select, and everything once tracing is
//! off again, show nothing.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::watchdog;
use mp_agents::{ask, launch, Agent, Context, Define, DeliveryFilter, DirectMbox, Request};
use parking_lot::Mutex;

/// Everything the subscriber writes (behind parking_lot's lock, which the
/// ThreadSanitizer pass sees; std's is not instrumented there).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

struct Ping;
struct Stray;

struct Ponger;

impl Agent for Ponger {
    fn name(&self) -> Option<String> {
        Some("ponger".into())
    }
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, Ping| {});
        def.subscribe_self(|_: &mut Ponger, _: &Context<'_>, req: Request<(), ()>| {
            req.reply(());
        });
    }
}

/// Sends a `Ping` to the ponger from its handler.
struct Pinger(DirectMbox);
struct Go;

impl Agent for Pinger {
    fn name(&self) -> Option<String> {
        Some("pinger".into())
    }
    fn define(&mut self, def: &mut Define<'_, Self>) {
        def.subscribe_self(|me: &mut Pinger, _: &Context<'_>, Go| me.0.send(Ping));
        def.subscribe_self(|_: &mut Pinger, _: &Context<'_>, req: Request<(), ()>| {
            req.reply(());
        });
    }
}

fn has(lines: &[String], parts: &[&str]) -> bool {
    lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
}

#[test]
fn selected_deliveries_are_traced_and_nothing_once_off() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    watchdog(Duration::from_secs(60), move || {
        launch(move |env| {
            let mut coop = env.make_coop();
            let ponger = coop.add_agent(Ponger);
            let pinger = coop.add_agent(Pinger(ponger.clone()));
            env.register_coop(coop).unwrap();
            env.set_delivery_tracing(Some(DeliveryFilter::all().agent("ponger")));
            pinger.send(Go);
            // Answered after `Go`: the `Ping` is in the ponger's queue.
            ask::<(), (), _>(&pinger, (), Duration::from_secs(10)).unwrap();
            ponger.send(Stray);
            // Queued behind both: once answered, both were traced.
            ask::<(), (), _>(&ponger, (), Duration::from_secs(10)).unwrap();
            let lines = captured.lines();
            let ping = "msg_type=\"delivery_tracing::Ping\"";
            assert!(
                has(
                    &lines,
                    &["what=\"queued\"", ping, "to=\"ponger\"", "from=\"pinger\""]
                ),
                "{lines:#?}"
            );
            assert!(has(&lines, &["what=\"handled\"", ping]), "{lines:#?}");
            assert!(
                has(
                    &lines,
                    &[
                        "what=\"dropped: no handler in the current state\"",
                        "msg_type=\"delivery_tracing::Stray\""
                    ]
                ),
                "{lines:#?}"
            );
            // The pinger is not selected.
            assert!(
                !lines.iter().any(|l| l.contains("to=\"pinger\"")),
                "{lines:#?}"
            );
            env.set_delivery_tracing(None);
            let before = captured.lines().len();
            pinger.send(Go);
            ask::<(), (), _>(&pinger, (), Duration::from_secs(10)).unwrap();
            ask::<(), (), _>(&ponger, (), Duration::from_secs(10)).unwrap();
            let after: Vec<_> = captured
                .lines()
                .into_iter()
                .skip(before)
                .filter(|l| l.contains("mp_agents::delivery"))
                .collect();
            assert!(after.is_empty(), "{after:#?}");
            env.stop();
        })
        .unwrap();
    });
}
