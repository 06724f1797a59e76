//! `Waiter`: a thread blocked waiting for a reply still runs the closures
//! posted to it (callbacks, nested), and every wait ends: a reply sender
//! dropped unsent, a closed mailbox, an exited thread.
#![cfg(not(loom))] // loom builds have no Worker, Reaper or ThreadBound

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::{self, ThreadId};

use common::watchdog;
use mp_thread::{Error, Waiter, Worker};

/// A client call to `server` that the server answers only after calling back
/// into the (blocked) client; each callback makes the next, deeper call.
/// Runs on the client thread; returns how many levels answered.
fn call_with_callbacks(
    depth: usize,
    client: Waiter,
    server: Worker,
    log: Arc<Mutex<Vec<(usize, ThreadId)>>>,
) -> usize {
    let (tx, rx) = client.reply_channel::<usize>();
    let (client2, server2) = (client.clone(), server.clone());
    server
        .post(move || {
            // On the server: call back into the client and wait for it,
            // running the server's own mailbox meanwhile.
            let me = Waiter::current();
            let (ctx, crx) = me.reply_channel::<usize>();
            let c = client2.clone();
            client2
                .post(move || {
                    // On the client, inside its `wait`.
                    log.lock().push((depth, thread::current().id()));
                    let below = if depth > 0 {
                        call_with_callbacks(depth - 1, c, server2, log)
                    } else {
                        0
                    };
                    ctx.send(below);
                })
                .unwrap();
            let below = me.wait(crx).unwrap();
            tx.send(below + 1);
        })
        .unwrap();
    client.wait(rx).unwrap()
}

#[test]
fn a_waiting_thread_runs_callbacks_posted_to_it_nested_several_levels() {
    watchdog("waiter_callbacks", || {
        let client = Waiter::current();
        assert!(client.is_current());
        assert!(client.same_as(&Waiter::current()));
        let server = Worker::spawn("callback-server").unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let answered = call_with_callbacks(6, client, server, log.clone());
        assert_eq!(answered, 7);
        let log = log.lock();
        assert_eq!(
            log.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            [6, 5, 4, 3, 2, 1, 0]
        );
        let me = thread::current().id();
        assert!(
            log.iter().all(|(_, id)| *id == me),
            "a callback ran off the client thread"
        );
    });
}

#[test]
fn callbacks_posted_from_a_plain_thread_run_in_order_while_waiting() {
    watchdog("waiter_plain_callbacks", || {
        let me = Waiter::current();
        let (tx, rx) = me.reply_channel::<Vec<u32>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (me2, seen2) = (me.clone(), seen.clone());
        let poster = thread::spawn(move || {
            for i in 0..100 {
                let s = seen2.clone();
                me2.post(move || s.lock().push(i)).unwrap();
            }
            // The reply is sent after the posts, but `wait` may return as
            // soon as it is there; callbacks not yet run run on the next wait.
            tx.send((0..100).collect());
        });
        let expected = me.wait(rx).unwrap();
        poster.join().unwrap();
        // Whatever did not run during the wait runs on the next one.
        let (tx, rx) = me.reply_channel::<()>();
        me.post(move || tx.send(())).unwrap();
        me.wait(rx).unwrap();
        assert_eq!(*seen.lock(), expected);
    });
}

#[test]
fn a_reply_sender_dropped_unsent_wakes_the_waiter_with_reply_dropped() {
    watchdog("waiter_reply_dropped", || {
        let me = Waiter::current();
        // Dropped on another thread while we wait.
        for _ in 0..200 {
            let (tx, rx) = me.reply_channel::<u64>();
            let t = thread::spawn(move || drop(tx));
            let err = me.wait(rx).unwrap_err();
            assert!(
                matches!(err, Error::ReplyDropped(ref n) if n == me.name()),
                "{err:?}"
            );
            t.join().unwrap();
        }
        // Dropped before we even wait.
        let (tx, rx) = me.reply_channel::<u64>();
        drop(tx);
        assert!(matches!(me.wait(rx), Err(Error::ReplyDropped(_))));
        // Sent from another thread: the value arrives.
        let (tx, rx) = me.reply_channel::<String>();
        thread::spawn(move || tx.send("hello".into()));
        assert_eq!(me.wait(rx).unwrap(), "hello");
    });
}

/// Counts drops of a job's captures and whether the job ever ran.
struct Tracked {
    ran: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A thread that owns a waiter but does not serve it until `gate` opens;
/// then it serves until its waiter closes, and exits.
fn idle_owner() -> (Waiter, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (waiter_tx, waiter_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let owner = thread::Builder::new()
        .name("idle-owner".into())
        .spawn(move || {
            waiter_tx.send(Waiter::current()).unwrap();
            let _ = gate_rx.recv();
        })
        .unwrap();
    (waiter_rx.recv().unwrap(), gate_tx, owner)
}

#[test]
fn closing_a_waiter_drops_its_queued_jobs_and_wakes_their_callers() {
    watchdog("waiter_close_drops", || {
        let (target, gate, owner) = idle_owner();
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let me = Waiter::current();
        let mut replies = Vec::new();
        for _ in 0..5 {
            let tracked = Tracked {
                ran: ran.clone(),
                dropped: dropped.clone(),
            };
            let (tx, rx) = me.reply_channel::<u32>();
            replies.push(rx);
            target
                .post(move || {
                    tracked.ran.fetch_add(1, Ordering::SeqCst);
                    tx.send(1);
                })
                .unwrap();
        }
        assert!(!target.is_closed());
        // Close from a third thread while we are blocked on the first reply.
        let t2 = target.clone();
        let closer = thread::spawn(move || t2.close());
        for rx in replies {
            let err = me.wait(rx).unwrap_err();
            assert!(matches!(err, Error::ReplyDropped(_)), "{err:?}");
        }
        closer.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a discarded job ran");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            5,
            "a discarded job's captures were not dropped"
        );
        assert!(target.is_closed());
        let err = target.post(|| ()).unwrap_err();
        assert!(matches!(err, Error::Closed(ref n) if n == "idle-owner"));
        let job = target.post_job(Box::new(|| ())).err();
        assert!(
            job.is_some(),
            "post_job on a closed waiter must hand the job back"
        );
        gate.send(()).unwrap();
        owner.join().unwrap();
    });
}

#[test]
fn closing_a_waiter_lets_its_owner_in_run_return() {
    watchdog("waiter_close_run", || {
        let (waiter_tx, waiter_rx) = mpsc::channel();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let owner = thread::spawn(move || {
            let me = Waiter::current();
            waiter_tx.send(me.clone()).unwrap();
            me.run();
            c.load(Ordering::SeqCst)
        });
        let target: Waiter = waiter_rx.recv().unwrap();
        for _ in 0..10 {
            let c = count.clone();
            target
                .post(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        // Wait until they ran, through the target itself.
        let me = Waiter::current();
        let (tx, rx) = me.reply_channel::<()>();
        target.post(move || tx.send(())).unwrap();
        me.wait(rx).unwrap();
        target.close();
        assert_eq!(owner.join().unwrap(), 10);
    });
}

#[test]
fn a_threads_waiter_is_closed_when_the_thread_exits() {
    watchdog("waiter_thread_exit", || {
        // Posting after the owner has exited fails.
        let exited = thread::spawn(Waiter::current).join().unwrap();
        assert!(exited.is_closed());
        assert!(matches!(exited.post(|| ()), Err(Error::Closed(_))));

        // A job still queued when the owner exits is dropped, unrun, and its
        // reply sender wakes whoever waits on it.
        for _ in 0..50 {
            let (target, gate, owner) = idle_owner();
            let ran = Arc::new(AtomicUsize::new(0));
            let dropped = Arc::new(AtomicUsize::new(0));
            let tracked = Tracked {
                ran: ran.clone(),
                dropped: dropped.clone(),
            };
            let me = Waiter::current();
            let (tx, rx) = me.reply_channel::<u32>();
            target
                .post(move || {
                    tracked.ran.fetch_add(1, Ordering::SeqCst);
                    tx.send(1);
                })
                .unwrap();
            gate.send(()).unwrap();
            assert!(matches!(me.wait(rx), Err(Error::ReplyDropped(_))));
            owner.join().unwrap();
            assert!(target.is_closed());
            assert_eq!(ran.load(Ordering::SeqCst), 0);
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            assert!(matches!(target.post(|| ()), Err(Error::Closed(_))));
        }
    });
}

#[test]
fn a_panicking_callback_does_not_break_the_wait() {
    watchdog("waiter_callback_panic", || {
        let me = Waiter::current();
        let (tx, rx) = me.reply_channel::<u8>();
        let me2 = me.clone();
        thread::spawn(move || {
            me2.post(|| panic!("callback boom")).unwrap();
            me2.post(move || tx.send(4)).unwrap();
        });
        assert_eq!(me.wait(rx).unwrap(), 4);
    });
}
