//! loom models of the mchain protocols (invariants 6 and 7): a send wakes a
//! waiting receiver or select, two receivers waiting on one chain are both
//! served (one wake-up per message), a select registered on several chains
//! misses no message, a sender waiting on a full chain gets room, and a
//! close wakes every receiver, select and sender blocked on the chain.
//!
//! The chain's own files (`src/mchain/chain.rs`, `src/mchain/receive.rs`)
//! are compiled here as they are. Their locks come from mp-thread's sync
//! facade (`mp_thread::sync`), which is loom's under `--cfg loom`, so
//! these models check the shipped code, not a copy. loom does not model
//! time: a timed wait is an untimed one, so the models use no timeouts.
//!
//! They are bounded (a few threads, one or two messages, a preemption
//! bound) and each runs under a watchdog (loom itself reports a deadlock;
//! the watchdog catches a livelock). Run them with
//! `RUSTFLAGS="--cfg loom" cargo test -p mp-agents --release --test loom_mchain`.

#![cfg(loom)]
#![allow(dead_code, unreachable_pub)]

mod common;

#[path = "../src/mchain/chain.rs"]
mod chain;
#[path = "../src/mchain/receive.rs"]
mod receive;

// What `receive.rs` takes from its parent (`use super::...`).
use chain::{deadline, ChainInner, Msg, Pop};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chain::{CloseMode, Mchain, MchainParams, Overflow, SendError, Sent};
use loom::thread;
use receive::{case, from, from_all, receive, select, Handlers, ReceiveStatus};

/// Explores the interleavings of `f` up to a preemption bound.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    common::watchdog(Duration::from_secs(300), move || {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    });
}

fn unbounded() -> Mchain {
    Mchain::new(MchainParams::unbounded(), false)
}

/// Long enough never to expire (and loom does not model time anyway).
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn a_send_wakes_a_waiting_receiver() {
    model(|| {
        let ch = unbounded();
        let tx = ch.clone();
        let sender = thread::spawn(move || {
            tx.send(1u32).unwrap();
        });
        let mut got = 0;
        let r = receive(from(&ch).handle_n(1), Handlers::new().on(|n: u32| got = n));
        sender.join().unwrap();
        assert_eq!((r.status, got), (ReceiveStatus::Limit, 1));
    });
}

#[test]
fn two_waiting_receivers_are_both_served() {
    model(|| {
        let ch = unbounded();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = ch.clone();
                thread::spawn(move || {
                    receive(from(&rx).handle_n(1), Handlers::new().on(|_: u32| ()))
                })
            })
            .collect();
        ch.send(1u32).unwrap();
        ch.send(2u32).unwrap();
        for r in receivers {
            assert_eq!(r.join().unwrap().handled, 1);
        }
    });
}

#[test]
fn a_receiver_and_a_select_on_one_chain_are_both_served() {
    model(|| {
        let ch = unbounded();
        let rx = ch.clone();
        let receiver =
            thread::spawn(move || receive(from(&rx).handle_n(1), Handlers::new().on(|_: u32| ())));
        let sx = ch.clone();
        let selector = thread::spawn(move || {
            select(
                from_all().handle_n(1),
                [case(&sx, Handlers::new().on(|_: u32| ()))],
            )
        });
        ch.send(1u32).unwrap();
        ch.send(2u32).unwrap();
        assert_eq!(receiver.join().unwrap().handled, 1);
        assert_eq!(selector.join().unwrap().handled, 1);
    });
}

#[test]
fn a_select_misses_no_message_on_any_chain() {
    model(|| {
        let a = unbounded();
        let b = unbounded();
        let (ta, tb) = (a.clone(), b.clone());
        let sender_a = thread::spawn(move || {
            ta.send(1u32).unwrap();
        });
        let sender_b = thread::spawn(move || {
            tb.send(2u32).unwrap();
        });
        let sum = std::cell::Cell::new(0);
        let r = select(
            from_all().handle_n(2),
            [
                case(&a, Handlers::new().on(|n: u32| sum.set(sum.get() + n))),
                case(&b, Handlers::new().on(|n: u32| sum.set(sum.get() + n))),
            ],
        );
        sender_a.join().unwrap();
        sender_b.join().unwrap();
        assert_eq!(r.status, ReceiveStatus::Limit);
        assert_eq!(sum.get(), 3);
    });
}

#[test]
fn closing_with_retain_wakes_a_receiver_after_it_drains() {
    model(|| {
        let ch = unbounded();
        let tx = ch.clone();
        let closer = thread::spawn(move || {
            tx.send(1u32).unwrap();
            tx.close(CloseMode::RetainContent);
        });
        let r = receive(from(&ch), Handlers::new().on(|_: u32| ()));
        closer.join().unwrap();
        assert_eq!((r.status, r.handled), (ReceiveStatus::Closed, 1));
    });
}

#[test]
fn closing_with_drop_wakes_a_receiver_and_loses_nothing() {
    struct Counted(std::sync::Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    model(|| {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let ch = unbounded();
        let (tx, d) = (ch.clone(), drops.clone());
        let closer = thread::spawn(move || {
            tx.send(Counted(d)).unwrap();
            tx.close(CloseMode::DropContent);
        });
        let r = receive(from(&ch), Handlers::new().on(|_: Counted| ()));
        closer.join().unwrap();
        assert_eq!(r.status, ReceiveStatus::Closed);
        assert!(r.handled <= 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "handled or dropped, once");
    });
}

#[test]
fn closing_wakes_a_waiting_select() {
    model(|| {
        let a = unbounded();
        let b = unbounded();
        let (ca, cb) = (a.clone(), b.clone());
        let closer = thread::spawn(move || {
            ca.close(CloseMode::RetainContent);
            cb.close(CloseMode::DropContent);
        });
        let r = select(
            from_all(),
            [
                case(&a, Handlers::new().on(|_: u32| ())),
                case(&b, Handlers::new().on(|_: u32| ())),
            ],
        );
        closer.join().unwrap();
        assert_eq!((r.status, r.extracted), (ReceiveStatus::Closed, 0));
    });
}

#[test]
fn a_sender_waiting_on_full_gets_room() {
    model(|| {
        let ch = Mchain::new(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
            false,
        );
        let tx = ch.clone();
        let sender = thread::spawn(move || {
            assert_eq!(tx.send(1u32).unwrap(), Sent::Stored);
            assert_eq!(tx.send(2u32).unwrap(), Sent::Stored);
        });
        let mut got = Vec::new();
        let r = receive(
            from(&ch).handle_n(2),
            Handlers::new().on(|n: u32| got.push(n)),
        );
        sender.join().unwrap();
        assert_eq!(r.status, ReceiveStatus::Limit);
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn closing_wakes_a_sender_waiting_on_full() {
    model(|| {
        let ch = Mchain::new(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
            false,
        );
        ch.send(1u32).unwrap();
        let tx = ch.clone();
        let sender = thread::spawn(move || tx.send(2u32));
        ch.close(CloseMode::RetainContent);
        assert!(matches!(sender.join().unwrap(), Err(SendError::Closed(2))));
    });
}
