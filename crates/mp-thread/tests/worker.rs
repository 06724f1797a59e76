//! `Worker`: FIFO posts, `sync` (remote, inline, and re-entrant between two
//! workers), panics, and what happens once the mailbox is closed.
#![cfg(not(loom))] // loom builds have no Worker, Reaper or ThreadBound

mod common;

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread;

use common::watchdog;
use mp_thread::{Error, Reaper, Worker};

#[test]
fn post_runs_jobs_in_fifo_order_on_the_worker() {
    watchdog("post_fifo", || {
        let worker = Worker::spawn("fifo").unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..500 {
            let log = log.clone();
            worker
                .post(move || log.lock().push((i, thread::current().id())))
                .unwrap();
        }
        // `sync` is queued behind the posts, so it returns after all of them.
        worker.sync(|| ()).unwrap();
        let log = log.lock();
        let order: Vec<i32> = log.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..500).collect::<Vec<_>>());
        assert!(log.iter().all(|(_, id)| *id == worker.thread_id()));
    });
}

#[test]
fn sync_returns_the_value_computed_on_the_worker() {
    watchdog("sync_value", || {
        let worker = Worker::spawn("sync-value").unwrap();
        assert_eq!(worker.sync(|| 6 * 7).unwrap(), 42);
        let (id, name) = worker
            .sync(|| {
                let t = thread::current();
                (t.id(), t.name().map(str::to_string))
            })
            .unwrap();
        assert_eq!(id, worker.thread_id());
        assert_ne!(id, thread::current().id());
        assert_eq!(name.as_deref(), Some("sync-value"));
        assert_eq!(worker.name(), "sync-value");
        let big = worker.sync(|| vec![String::from("moved"); 3]).unwrap();
        assert_eq!(big, ["moved", "moved", "moved"]);
    });
}

#[test]
fn sync_on_the_worker_itself_runs_inline() {
    watchdog("sync_inline", || {
        let worker = Worker::spawn("inline").unwrap();
        let me = worker.clone();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let inner_id = worker
            .sync(move || {
                assert!(me.is_current());
                // A job posted before the inner sync: if the sync went through
                // the queue it would have to run after this one (or deadlock).
                let l = log2.clone();
                me.post(move || l.lock().push("posted")).unwrap();
                let l = log2.clone();
                let id = me
                    .sync(move || {
                        l.lock().push("inline");
                        thread::current().id()
                    })
                    .unwrap();
                log2.lock().push("after-inline");
                id
            })
            .unwrap();
        assert_eq!(inner_id, worker.thread_id());
        worker.sync(|| ()).unwrap();
        assert_eq!(*log.lock(), ["inline", "after-inline", "posted"]);
        // A panic inline is an error too, and the worker goes on.
        let me = worker.clone();
        let err = worker
            .sync(move || me.sync(|| -> i32 { panic!("inline boom") }))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, Error::Panicked { ref message, .. } if message == "inline boom"));
        assert_eq!(worker.sync(|| 1).unwrap(), 1);
    });
}

#[test]
fn sync_from_a_to_b_that_syncs_back_to_a_runs_on_a_while_it_waits() {
    watchdog("sync_reentrant", || {
        let a = Worker::spawn("ping-a").unwrap();
        let b = Worker::spawn("ping-b").unwrap();
        let (a2, b2) = (a.clone(), b.clone());
        let ids = a
            .sync(move || {
                let a_id = thread::current().id();
                let (a3, b3) = (a2.clone(), b2.clone());
                let (b_id, back_on_a, deeper) = b2
                    .sync(move || {
                        let b_id = thread::current().id();
                        // Back to A, which is blocked in its own sync to B:
                        // A's waiter runs this while it waits.
                        let b4 = b3.clone();
                        let (back_on_a, deeper) = a3
                            .sync(move || {
                                // ... and once more to B, which is waiting on A.
                                let deeper = b4.sync(|| thread::current().id()).unwrap();
                                (thread::current().id(), deeper)
                            })
                            .unwrap();
                        (b_id, back_on_a, deeper)
                    })
                    .unwrap();
                (a_id, b_id, back_on_a, deeper)
            })
            .unwrap();
        let (a_id, b_id, back_on_a, deeper) = ids;
        assert_eq!(a_id, a.thread_id());
        assert_eq!(b_id, b.thread_id());
        assert_eq!(back_on_a, a.thread_id());
        assert_eq!(deeper, b.thread_id());
    });
}

#[test]
fn many_threads_ping_pong_between_two_workers() {
    watchdog("ping_pong_many", || {
        let a = Worker::spawn("pp-a").unwrap();
        let b = Worker::spawn("pp-b").unwrap();
        let callers: Vec<_> = (0..4)
            .map(|n| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    for i in 0..50 {
                        let (a2, b2) = (a.clone(), b.clone());
                        let got = a
                            .sync(move || {
                                b2.sync(move || a2.sync(move || n * 1000 + i).unwrap())
                                    .unwrap()
                            })
                            .unwrap();
                        assert_eq!(got, n * 1000 + i);
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    });
}

#[test]
fn a_panicking_job_gives_panicked_and_the_worker_keeps_serving() {
    watchdog("panics", || {
        let worker = Worker::spawn("panicky").unwrap();
        let err = worker.sync(|| -> u8 { panic!("boom") }).unwrap_err();
        match err {
            Error::Panicked { thread, message } => {
                assert_eq!(thread, "panicky");
                assert_eq!(message, "boom");
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
        let err = worker
            .sync(|| -> u8 { panic!("formatted {}", 7) })
            .unwrap_err();
        assert!(matches!(err, Error::Panicked { ref message, .. } if message == "formatted 7"));
        // A panicking fire-and-forget job is contained too.
        worker.post(|| panic!("posted boom")).unwrap();
        assert_eq!(worker.sync(|| 5).unwrap(), 5);
        assert!(!worker.waiter().is_closed());
    });
}

#[test]
fn post_after_shutdown_gives_closed() {
    watchdog("post_closed", || {
        let worker = Worker::spawn("closed-post").unwrap();
        let ran = Arc::new(Mutex::new(false));
        worker.shutdown();
        let r = ran.clone();
        let err = worker.post(move || *r.lock() = true).unwrap_err();
        assert!(matches!(err, Error::Closed(ref name) if name == "closed-post"));
        // `post_job` hands the job back unrun.
        let r = ran.clone();
        let job = worker
            .post_job(Box::new(move || *r.lock() = true))
            .expect_err("post_job on a closed worker must hand the job back");
        assert!(!*ran.lock());
        job();
        assert!(*ran.lock());
        // The thread exits and is joined by the reaper.
        let status = worker.thread_handle().wait_timeout(common::LIMIT).unwrap();
        assert_eq!(status.joined_on, Reaper::global().thread_id());
    });
}

#[test]
fn jobs_queued_before_shutdown_still_run() {
    watchdog("shutdown_drains", || {
        let worker = Worker::spawn("drain").unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let count = Arc::new(Mutex::new(0));
        worker.post(move || gate_rx.recv().unwrap()).unwrap();
        for _ in 0..10 {
            let c = count.clone();
            worker.post(move || *c.lock() += 1).unwrap();
        }
        worker.shutdown();
        gate_tx.send(()).unwrap();
        worker.thread_handle().wait_timeout(common::LIMIT).unwrap();
        assert_eq!(*count.lock(), 10);
    });
}

#[test]
fn sync_to_a_closed_worker_errors_instead_of_hanging() {
    watchdog("sync_closed", || {
        let worker = Worker::spawn("sync-closed").unwrap();
        worker.shutdown();
        let err = worker.sync(|| 1).unwrap_err();
        assert!(matches!(err, Error::Closed(ref name) if name == "sync-closed"));

        // From another worker too.
        let other = Worker::spawn("sync-closed-caller").unwrap();
        let w = worker.clone();
        let err = other.sync(move || w.sync(|| 1)).unwrap().unwrap_err();
        assert!(matches!(err, Error::Closed(_)));
    });
}

#[test]
fn sync_whose_queued_job_is_discarded_errors_instead_of_hanging() {
    watchdog("sync_discarded", || {
        for _ in 0..50 {
            let worker = Worker::spawn("discard").unwrap();
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = mpsc::channel::<()>();
            worker
                .post(move || {
                    started_tx.send(()).unwrap();
                    gate_rx.recv().unwrap();
                })
                .unwrap();
            started_rx.recv().unwrap();
            // The worker is busy; this caller's job waits in the queue until
            // the mailbox is closed with it still there (or closes first).
            let w = worker.clone();
            let caller = thread::spawn(move || w.sync(|| 1));
            let mailbox = worker.waiter().clone();
            let closer = thread::spawn(move || mailbox.close());
            closer.join().unwrap();
            let result = caller.join().unwrap();
            assert!(
                matches!(result, Err(Error::Closed(_))),
                "expected Closed, got {result:?}"
            );
            gate_tx.send(()).unwrap();
            worker.thread_handle().wait_timeout(common::LIMIT).unwrap();
        }
    });
}

#[test]
fn dropping_the_last_handle_lets_the_reaper_join_the_thread() {
    watchdog("last_handle", || {
        let worker = Worker::spawn("last-handle").unwrap();
        let handle = worker.thread_handle();
        assert_eq!(handle.id(), worker.thread_id());
        assert_eq!(handle.name(), "last-handle");
        let clone = worker.clone();
        drop(worker);
        assert!(
            !clone.waiter().is_closed(),
            "a clone still holds the worker"
        );
        assert_eq!(clone.sync(|| 3).unwrap(), 3);
        let mailbox = clone.waiter().clone();
        drop(clone);
        assert!(mailbox.is_closed());
        let status = handle.wait_timeout(common::LIMIT).unwrap();
        assert!(handle.is_joined());
        assert_eq!(status.thread, "last-handle");
        assert_eq!(status.panic, None);
        assert_eq!(status.joined_on, Reaper::global().thread_id());
    });
}

#[test]
fn post_with_runs_on_the_worker_or_gives_the_value_back() {
    watchdog("post_with", || {
        let worker = Worker::spawn("post-with").unwrap();
        let (tx, rx) = mpsc::channel();
        let id = worker.thread_id();
        worker
            .post_with(String::from("hello"), move |s| {
                tx.send((s, thread::current().id())).unwrap();
            })
            .unwrap();
        assert_eq!(rx.recv().unwrap(), (String::from("hello"), id));
        worker.shutdown();
        // Closed: the value comes back untouched, never run or dropped there.
        let back = worker
            .post_with(Arc::new(5), |_| unreachable!("closed mailbox ran a job"))
            .unwrap_err();
        assert_eq!(Arc::strong_count(&back), 1);
        assert_eq!(*back, 5);
    });
}
