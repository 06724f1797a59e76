//! loom models of the memory-ordering argument behind same-thread sends
//! (invariant 6): a send from the thread draining the receiver's queue
//! skips the receiver's lock, so its place before or after the receiver's
//! start and finish rests on atomics alone.
//!
//! The code spans `AgentCore` (`src/core.rs`: the `same_thread` flag, set
//! at the end of `bind`, cleared in `begin_finish` before the finish is
//! pushed) and `src/worker_queue.rs` (`WorkerQueue::push` numbers a shared
//! push under the FIFO's lock; `push_local` reads that number, then the
//! flag). Neither file compiles apart from the rest of the crate, so these
//! models restate those steps with the same orderings, line for line, and
//! check every interleaving loom allows:
//!
//! - a send that takes the shortcut is numbered before the finish;
//! - a send that takes the shortcut is numbered after the start.
//!
//! Run with the ordinary `cargo test`.

use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};

/// The queue's shared side: the FIFO's lock and the push counter.
struct Queue {
    fifo: Mutex<Vec<u64>>,
    pushes: AtomicU64,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            fifo: Mutex::new(Vec::new()),
            pushes: AtomicU64::new(0),
        }
    }

    /// `WorkerQueue::push` from another thread: numbered under the lock.
    fn push_shared(&self) -> u64 {
        let mut fifo = self.fifo.lock().unwrap();
        let seq = self.pushes.load(Ordering::Relaxed) + 1;
        fifo.push(seq);
        self.pushes.store(seq, Ordering::Release);
        seq
    }
}

/// `push_message` + `push_local` on the draining thread: the flag, then
/// the number, then the flag again; `Some(number)` if it took the shortcut.
fn send_same_thread(queue: &Queue, same_thread: &AtomicBool) -> Option<u64> {
    if !same_thread.load(Ordering::Acquire) {
        return None;
    }
    let seq = queue.pushes.load(Ordering::Acquire);
    if same_thread.load(Ordering::Acquire) {
        Some(seq)
    } else {
        None
    }
}

#[test]
fn a_shortcut_send_is_numbered_before_the_finish() {
    loom::model(|| {
        let queue = Arc::new(Queue::new());
        let same_thread = Arc::new(AtomicBool::new(true));
        let (q, flag) = (queue.clone(), same_thread.clone());
        // The deregistration thread: `begin_finish`.
        let dereg = loom::thread::spawn(move || {
            flag.store(false, Ordering::Release);
            q.push_shared()
        });
        let sent = send_same_thread(&queue, &same_thread);
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
    loom::model(|| {
        let queue = Arc::new(Queue::new());
        let same_thread = Arc::new(AtomicBool::new(false));
        let (q, flag) = (queue.clone(), same_thread.clone());
        // The registering thread: `bind` pushes the start, then opens the
        // shortcut.
        let bind = loom::thread::spawn(move || {
            let start = q.push_shared();
            flag.store(true, Ordering::Release);
            start
        });
        let sent = send_same_thread(&queue, &same_thread);
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
