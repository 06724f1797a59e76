//! loom models of the ordering behind same-thread sends (invariant 6): a
//! send from the thread draining the receiver's queue skips the
//! receiver's lock, so its place before or after the receiver's start and
//! finish rests on atomics alone.
//!
//! The numbering and the gate are compiled here as they ship
//! (`src/push_order.rs`, over mp-thread's sync facade, which is loom's
//! under `--cfg loom`). The models put them together as the crate does:
//! a shared push numbers its demand under the queue's lock
//! (`WorkerQueue::push`); `bind` pushes the start, then opens the gate;
//! `begin_finish` closes the gate, then pushes the finish; a same-thread
//! send checks the gate, then takes a number only if the gate is still
//! open once the count is read (`AgentCore::push_same_thread` and
//! `worker_queue::push_local`). loom checks every interleaving:
//!
//! - a send that takes the shortcut is numbered before the finish;
//! - a send that takes the shortcut is numbered at or after the start.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mp-agents --release --test loom_same_thread`.

#![cfg(loom)]
#![allow(dead_code)]

#[path = "../src/push_order.rs"]
mod push_order;

mod common;

use std::time::Duration;

use loom::sync::{Arc, Mutex};
use push_order::{Gate, PushCount};

/// A queue's shared side: its FIFO under a lock, and the push count.
#[derive(Default)]
struct Queue {
    fifo: Mutex<Vec<u64>>,
    pushes: PushCount,
}

impl Queue {
    /// A push from another thread, as `WorkerQueue::push` makes it.
    fn push_shared(&self) -> u64 {
        let mut fifo = self.fifo.lock().unwrap();
        self.pushes.push_shared(|seq| {
            fifo.push(seq);
            seq
        })
    }
}

/// A send on the draining thread: `Some(number)` if it took the shortcut.
fn send_same_thread(queue: &Queue, gate: &Gate) -> Option<u64> {
    if !gate.is_open() {
        return None;
    }
    queue.pushes.number_local(|| gate.is_open())
}

/// Explores every interleaving of `f`, under a watchdog.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    common::watchdog(Duration::from_secs(300), move || loom::model(f));
}

#[test]
fn a_shortcut_send_is_numbered_before_the_finish() {
    model(|| {
        let queue = Arc::new(Queue::default());
        let gate = Arc::new(Gate::new());
        gate.open();
        let (q, g) = (queue.clone(), gate.clone());
        // The deregistration thread: `begin_finish`.
        let dereg = loom::thread::spawn(move || {
            g.close();
            q.push_shared()
        });
        let sent = send_same_thread(&queue, &gate);
        let finish = dereg.join().unwrap();
        if let Some(seq) = sent {
            // The drain runs a local demand first only if its number is
            // below the shared one's.
            assert!(
                seq < finish,
                "a shortcut send ({seq}) after the finish ({finish})"
            );
        }
    });
}

#[test]
fn a_shortcut_send_is_numbered_after_the_start() {
    model(|| {
        let queue = Arc::new(Queue::default());
        let gate = Arc::new(Gate::new());
        let (q, g) = (queue.clone(), gate.clone());
        // The registering thread: `bind` pushes the start, then opens the
        // gate.
        let bind = loom::thread::spawn(move || {
            let start = q.push_shared();
            g.open();
            start
        });
        let sent = send_same_thread(&queue, &gate);
        let start = bind.join().unwrap();
        if let Some(seq) = sent {
            // A shared demand numbered at or below a local one runs first.
            assert!(
                seq >= start,
                "a shortcut send ({seq}) before the start ({start})"
            );
        }
    });
}
