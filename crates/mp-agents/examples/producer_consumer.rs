//! Producers and a consumer over a bounded mchain.
//!
//! Each producer is an agent on its own thread (an active-object
//! dispatcher) that pushes items into a bounded `data` chain: when the
//! chain is full it waits a little for room, then the newest item is
//! dropped (`Overflow::DropNewest`). When done it reports on an unbounded
//! `control` chain, which never drops. The consumer is the launching
//! thread: it `select`s over both chains, hiccups now and then (so the
//! chain fills and items are dropped), stops once every producer has
//! reported, drains what is left and checks that every item was either
//! received or counted as dropped by its producer.
//!
//! Run with `cargo run -p mp-agents --example producer_consumer [producers] [items]`.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use mp_agents::{
    case, from, from_all, launch, receive, select, ActiveObjDispatcher, Agent, Context, Handlers,
    Mchain, MchainParams, Overflow, Sent,
};

struct Item {
    producer: usize,
    seq: u64,
}

struct Done {
    producer: usize,
    stored: u64,
    dropped: u64,
}

struct Producer {
    id: usize,
    items: u64,
    data: Mchain,
    control: Mchain,
}

impl Agent for Producer {
    fn start(&mut self, _ctx: &Context<'_>) {
        // Blocking sends are fine here: this agent has a thread of its own.
        let (mut stored, mut dropped) = (0, 0);
        for seq in 0..self.items {
            match self.data.send(Item {
                producer: self.id,
                seq,
            }) {
                Ok(Sent::Stored) => stored += 1,
                Ok(Sent::DroppedNewest) => dropped += 1,
                Ok(Sent::RemovedOldest) => unreachable!("not this chain's reaction"),
                Err(e) => {
                    println!("producer {}: {e}; stopping early", self.id);
                    break;
                }
            }
        }
        let _ = self.control.send(Done {
            producer: self.id,
            stored,
            dropped,
        });
    }
}

#[derive(Default)]
struct Tally {
    /// Items received per producer (and the last sequence number seen).
    received: Vec<(u64, Option<u64>)>,
    /// Producers' own reports.
    reports: Vec<Option<(u64, u64)>>,
    done: usize,
}

impl Tally {
    fn take(&mut self, item: Item) {
        let (count, last) = &mut self.received[item.producer];
        assert!(last.is_none_or(|l| l < item.seq), "order per producer");
        *count += 1;
        *last = Some(item.seq);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let producers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let items: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let started = Instant::now();
    let report = launch(move |env| {
        let data = env.create_mchain(
            MchainParams::bounded(64)
                .overflow(Overflow::DropNewest)
                .wait_on_full(Duration::from_micros(200)),
        );
        let control = env.create_mchain(MchainParams::unbounded());

        let mut coop = env.make_coop();
        coop.set_binder(ActiveObjDispatcher::new(env, "producer").binder());
        for id in 0..producers {
            coop.add_agent(Producer {
                id,
                items,
                data: data.clone(),
                control: control.clone(),
            });
        }
        env.register_coop(coop).expect("registration");

        let tally = RefCell::new(Tally {
            received: vec![(0, None); producers],
            reports: vec![None; producers],
            done: 0,
        });
        let mut consumed = 0u64;
        let r = select(
            from_all().stop_on(|| tally.borrow().done == producers),
            [
                case(
                    &data,
                    Handlers::new().on(|item: Item| {
                        tally.borrow_mut().take(item);
                        consumed += 1;
                        if consumed % 2_000 == 0 {
                            // A slow moment: the chain fills up.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }),
                ),
                case(
                    &control,
                    Handlers::new().on(|d: Done| {
                        let mut t = tally.borrow_mut();
                        t.reports[d.producer] = Some((d.stored, d.dropped));
                        t.done += 1;
                    }),
                ),
            ],
        );
        // Items sent before a producer's report may still be in the chain.
        let rest = receive(
            from(&data).no_wait_on_empty(),
            Handlers::new().on(|item: Item| tally.borrow_mut().take(item)),
        );
        let tally = tally.into_inner();
        println!(
            "select ended with {:?} after {} messages; {} items drained after",
            r.status, r.extracted, rest.handled
        );
        let (mut stored, mut dropped, mut received) = (0, 0, 0);
        for (id, (report, (got, _))) in tally.reports.iter().zip(&tally.received).enumerate() {
            let (s, d) = report.expect("every producer reported");
            println!(
                "producer {id}: sent {items}, stored {s}, dropped when full {d}, received {got}"
            );
            assert_eq!(s, *got, "every stored item was received");
            assert_eq!(s + d, items);
            stored += s;
            dropped += d;
            received += got;
        }
        println!(
            "total: {} sent, {stored} stored, {dropped} dropped, {received} received",
            items * producers as u64
        );
        env.stop();
    })
    .expect("launch");
    println!(
        "environment down in {:?}: {} threads joined by the reaper",
        started.elapsed(),
        report.threads.len()
    );
}
