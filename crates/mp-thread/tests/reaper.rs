//! `Reaper`: final drops on its own thread, `flush`, exit statuses, joins
//! that race adoption, and the waits that must end (shutdown, self-waits,
//! a final drop that waits for a worker).
#![cfg(not(loom))] // loom builds have no Worker, Reaper or ThreadBound

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread;
use std::time::Duration;

use common::{watchdog, DropProbe, LIMIT};
use mp_thread::{Error, ExitStatus, Reaper, ThreadHandle, Worker};

#[test]
fn drop_later_runs_the_drop_on_the_reaper_thread() {
    watchdog("reaper_drop_later", || {
        for reaper in [Reaper::global().clone(), Reaper::new("drop-later").unwrap()] {
            let (probe, drops) = DropProbe::new();
            reaper.drop_later(probe);
            reaper.flush().unwrap();
            assert_eq!(*drops.lock(), [reaper.thread_id()]);
            assert_ne!(reaper.thread_id(), thread::current().id());
        }
    });
}

/// Records its drop after a pause, so a `flush` that returned early would
/// see it missing.
struct SlowDrop(Arc<Mutex<Vec<usize>>>, usize);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(2));
        self.0.lock().push(self.1);
    }
}

#[test]
fn flush_waits_for_everything_posted_before_it() {
    watchdog("reaper_flush", || {
        let reaper = Reaper::new("flush").unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..10 {
            reaper.drop_later(SlowDrop(log.clone(), i));
        }
        reaper.flush().unwrap();
        assert_eq!(*log.lock(), (0..10).collect::<Vec<_>>());
        // On the reaper itself flush returns at once (it cannot wait for its
        // own queue from inside it).
        let r2 = reaper.clone();
        let (tx, rx) = mpsc::channel();
        reaper.drop_later(OnDrop(Some(Box::new(move || tx.send(r2.flush()).unwrap()))));
        assert!(rx.recv_timeout(LIMIT).unwrap().is_ok());
        reaper.shutdown().unwrap();
    });
}

/// Runs a closure when dropped: lets a test run code on the reaper thread.
struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[test]
fn a_panicking_body_is_reported_in_its_exit_status() {
    watchdog("reaper_panic_status", || {
        let reaper = Reaper::new("panic-status").unwrap();
        let handle = reaper.spawn("doomed", || panic!("kaboom {}", 42)).unwrap();
        assert_eq!(handle.name(), "doomed");
        let status: ExitStatus = handle.wait_timeout(LIMIT).unwrap();
        assert_eq!(status.panic.as_deref(), Some("kaboom 42"));
        assert_eq!(status.thread, "doomed");
        assert_eq!(status.joined_on, reaper.thread_id());
        assert!(handle.is_joined());
        // A clean body has no panic.
        let ok = reaper
            .spawn("fine", || ())
            .unwrap()
            .wait_timeout(LIMIT)
            .unwrap();
        assert_eq!(ok.panic, None);
        assert_eq!(reaper.live_threads(), 0);
        reaper.shutdown().unwrap();
    });
}

#[test]
fn a_thread_that_finishes_before_adoption_is_still_joined() {
    watchdog("reaper_early_finish", || {
        let reaper = Reaper::new("early-finish").unwrap();
        // Empty bodies often finish before `spawn` has posted the adoption,
        // so both orders of "adopt" and "finished" occur across the loop.
        for i in 0..1_000 {
            let handle = reaper.spawn("blink", || ()).unwrap();
            let status = handle
                .wait_timeout(LIMIT)
                .unwrap_or_else(|e| panic!("iteration {i}: never joined: {e}"));
            assert_eq!(status.joined_on, reaper.thread_id());
        }
        // And in bulk, with the reaper busy so adoptions queue up.
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        reaper.drop_later(OnDrop(Some(Box::new(move || {
            let _ = gate_rx.recv();
        }))));
        let handles: Vec<ThreadHandle> = (0..64)
            .map(|_| reaper.spawn("blink-bulk", || ()).unwrap())
            .collect();
        assert_eq!(
            reaper.live_threads(),
            64,
            "the reaper is blocked: nothing joined yet"
        );
        gate_tx.send(()).unwrap();
        for h in &handles {
            h.wait_timeout(LIMIT).unwrap();
        }
        assert_eq!(reaper.live_threads(), 0);
        reaper.shutdown().unwrap();
    });
}

#[test]
fn shutdown_on_the_reapers_own_thread_is_refused() {
    watchdog("reaper_self_shutdown", || {
        let reaper = Reaper::new("self-shutdown").unwrap();
        let (tx, rx) = mpsc::channel();
        let r2 = reaper.clone();
        reaper.drop_later(OnDrop(Some(Box::new(move || {
            tx.send(r2.shutdown()).unwrap();
        }))));
        let refused = rx.recv_timeout(LIMIT).unwrap();
        assert!(
            matches!(refused, Err(Error::WouldJoinSelf(ref n)) if n == "self-shutdown"),
            "{refused:?}"
        );
        // It still works, and shuts down from elsewhere.
        let (probe, drops) = DropProbe::new();
        reaper.drop_later(probe);
        reaper.flush().unwrap();
        assert_eq!(*drops.lock(), [reaper.thread_id()]);
        reaper.shutdown().unwrap();
    });
}

#[test]
fn shutting_down_the_global_reaper_is_a_no_op() {
    watchdog("reaper_global_shutdown", || {
        Reaper::global().clone().shutdown().unwrap();
        let worker = Worker::spawn("after-global-shutdown").unwrap();
        assert_eq!(worker.sync(|| 1).unwrap(), 1);
        let handle = worker.thread_handle();
        drop(worker);
        assert_eq!(
            handle.wait_timeout(LIMIT).unwrap().joined_on,
            Reaper::global().thread_id()
        );
    });
}

#[test]
fn spawn_on_a_shut_down_reaper_fails_instead_of_leaving_an_unjoinable_handle() {
    watchdog("reaper_spawn_after_shutdown", || {
        let reaper = Reaper::new("gone").unwrap();
        reaper.clone().shutdown().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let err = reaper
            .spawn("too-late", move || r.store(true, Ordering::SeqCst))
            .unwrap_err();
        assert!(
            matches!(err, Error::Closed(ref n) if n == "gone"),
            "{err:?}"
        );
        assert!(!ran.load(Ordering::SeqCst));
        let err = Worker::spawn_with(&reaper, "too-late-worker").unwrap_err();
        assert!(matches!(err, Error::Closed(_)), "{err:?}");
        // A final drop after shutdown runs on the caller (documented).
        let (probe, drops) = DropProbe::new();
        reaper.drop_later(probe);
        assert_eq!(*drops.lock(), [thread::current().id()]);
        assert!(matches!(reaper.flush(), Err(Error::Closed(_))));
    });
}

#[test]
fn a_thread_left_running_at_shutdown_has_a_handle_whose_wait_ends() {
    watchdog("reaper_orphan_wait", || {
        let reaper = Reaper::new("orphaning").unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let handle = reaper
            .spawn("orphan", move || {
                started_tx.send(()).unwrap();
                let _ = gate_rx.recv();
            })
            .unwrap();
        started_rx.recv().unwrap();
        // Flush so the adoption has happened: the reaper holds the handle.
        reaper.flush().unwrap();
        reaper.clone().shutdown().unwrap();
        let waited = handle.wait_timeout(LIMIT);
        assert!(
            matches!(waited, Err(Error::Closed(ref n)) if n == "orphaning"),
            "{waited:?}"
        );
        assert!(matches!(handle.wait(), Err(Error::Closed(_))));
        assert!(!handle.is_joined());
        gate_tx.send(()).unwrap();
    });
}

#[test]
fn wait_timeout_gives_timeout_while_the_thread_still_runs() {
    watchdog("reaper_wait_timeout", || {
        let worker = Worker::spawn("still-running").unwrap();
        let handle = worker.thread_handle();
        for _ in 0..3 {
            let r = handle.wait_timeout(Duration::from_millis(5));
            assert!(
                matches!(r, Err(Error::Timeout(ref n)) if n == "still-running"),
                "{r:?}"
            );
        }
        assert!(!handle.is_joined());
        drop(worker);
        handle.wait_timeout(LIMIT).unwrap();
    });
}

/// Owns a worker; its drop (a final drop, run on the reaper) shuts the
/// worker down and waits until the reaper has joined it.
struct Group {
    worker: Option<Worker>,
    result: mpsc::Sender<Result<ExitStatus, Error>>,
}

impl Drop for Group {
    fn drop(&mut self) {
        let worker = self.worker.take().unwrap();
        let handle = worker.thread_handle();
        drop(worker);
        self.result.send(handle.wait_timeout(LIMIT)).unwrap();
    }
}

#[test]
fn a_final_drop_on_the_reaper_may_wait_for_a_worker_to_be_joined() {
    watchdog("reaper_final_drop_waits", || {
        for reaper in [Reaper::global().clone(), Reaper::new("final-drop").unwrap()] {
            for _ in 0..20 {
                let worker = Worker::spawn_with(&reaper, "group-worker").unwrap();
                worker
                    .post(|| thread::sleep(Duration::from_micros(200)))
                    .unwrap();
                let (tx, rx) = mpsc::channel();
                reaper.drop_later(Group {
                    worker: Some(worker),
                    result: tx,
                });
                // The join the drop waits for is itself a reaper job: the
                // reaper runs it while it waits instead of deadlocking.
                let status = rx.recv_timeout(LIMIT).unwrap().unwrap();
                assert_eq!(status.joined_on, reaper.thread_id());
            }
        }
    });
}

#[test]
fn waiting_for_a_thread_whose_last_job_calls_back_into_the_waiter() {
    watchdog("reaper_wait_serves_callbacks", || {
        for _ in 0..20 {
            let a = Worker::spawn("waits-for-b").unwrap();
            let b = Worker::spawn("calls-back-to-a").unwrap();
            let hb = b.thread_handle();
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let a2 = a.clone();
            b.post(move || {
                let _ = gate_rx.recv();
                // B's last job calls A, which is blocked waiting for B.
                assert_eq!(a2.sync(|| 7).unwrap(), 7);
            })
            .unwrap();
            let status = a
                .sync(move || {
                    drop(b);
                    gate_tx.send(()).unwrap();
                    hb.wait()
                })
                .unwrap()
                .unwrap();
            assert_eq!(status.panic, None);
        }
    });
}

#[test]
fn live_threads_counts_unjoined_threads_and_returns_to_zero() {
    watchdog("reaper_live_threads", || {
        let reaper = Reaper::new("counting").unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let g = gate_rx.clone();
                reaper
                    .spawn("counted", move || {
                        let _ = g.lock().recv();
                    })
                    .unwrap()
            })
            .collect();
        assert_eq!(reaper.live_threads(), 8);
        for _ in 0..8 {
            gate_tx.send(()).unwrap();
        }
        for h in &handles {
            h.wait_timeout(LIMIT).unwrap();
        }
        assert_eq!(reaper.live_threads(), 0);
        reaper.shutdown().unwrap();
    });
}
