//! The SObjectizer defect: a worker thread joined itself because the *last*
//! `shared_ptr` to it died on the worker, kept alive by a sender-side
//! temporary until after the receiver had already finished with it.
//!
//! In mp-thread terms: (a) the last `Worker` handle may die on the worker
//! itself — that must only close the mailbox, and the reaper (never the
//! worker) joins the thread; (b) a job's captures are released *before* its
//! completion is visible, so the caller never races the job's leftovers.
#![cfg(not(loom))] // loom builds have no Worker, Reaper or ThreadBound

mod common;

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread;
use std::time::Duration;

use common::{watchdog, watchdog_for, LIMIT};
use mp_thread::{Error, Reaper, Worker};

/// Rounds of the two last-handle race loops: `MP_SEED_ROUNDS` if set (the
/// long TSan run in README's Reliability section), 1,000 otherwise.
fn rounds() -> usize {
    std::env::var("MP_SEED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// The watchdog's limit for those loops, scaled with [`rounds`].
fn scaled_limit() -> Duration {
    LIMIT * rounds().div_ceil(1_000).max(1) as u32
}

/// How the last handle reaches the worker's own thread.
#[derive(Clone, Copy, Debug)]
enum LastDrop {
    /// The job drops it explicitly.
    Explicit,
    /// The job only captures it; it dies with the job's captures, as the
    /// seed's `shared_ptr` died with the message holding it.
    WithCaptures,
    /// Like the seed: no gate, so sometimes ours dies last, sometimes the
    /// worker's. Both must be fine.
    Racing,
}

/// Spawns a worker on `reaper` and arranges for its last handle to die on
/// the worker itself; returns the worker's thread id and its exit status.
fn last_handle_dies_on_worker(
    reaper: &Reaper,
    how: LastDrop,
) -> (thread::ThreadId, mp_thread::ExitStatus) {
    let worker = Worker::spawn_with(reaper, "seed-001").unwrap();
    let handle = worker.thread_handle();
    let worker_id = worker.thread_id();
    let theirs = worker.clone();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    match how {
        LastDrop::Explicit => worker
            .post(move || {
                gate_rx.recv().unwrap();
                assert!(theirs.is_current());
                drop(theirs);
            })
            .unwrap(),
        LastDrop::WithCaptures => worker
            .post(move || {
                gate_rx.recv().unwrap();
                let _keep = &theirs;
            })
            .unwrap(),
        LastDrop::Racing => {
            drop(gate_rx);
            worker.post(move || drop(theirs)).unwrap()
        }
    }
    // Ours goes first; then the job runs and holds the last handle.
    drop(worker);
    let _ = gate_tx.send(());
    let status = handle.wait_timeout(LIMIT).unwrap_or_else(|e| {
        panic!("worker never exited after its last handle died on it ({how:?}): {e}")
    });
    (worker_id, status)
}

#[test]
fn last_handle_dropped_on_the_worker_itself_is_joined_by_the_global_reaper() {
    watchdog_for("seed001_global", scaled_limit(), || {
        let reaper = Reaper::global();
        for i in 0..rounds() {
            let how = [LastDrop::Explicit, LastDrop::WithCaptures, LastDrop::Racing][i % 3];
            let (worker_id, status) = last_handle_dies_on_worker(reaper, how);
            assert_eq!(
                status.joined_on,
                reaper.thread_id(),
                "iteration {i} ({how:?})"
            );
            assert_ne!(
                status.joined_on, worker_id,
                "iteration {i}: the worker joined itself"
            );
            assert_eq!(
                status.panic, None,
                "iteration {i}: the worker's thread panicked"
            );
            assert_eq!(status.thread, "seed-001");
        }
    });
}

#[test]
fn last_handle_dropped_on_the_worker_itself_with_a_private_reaper() {
    watchdog_for("seed001_private", scaled_limit(), || {
        let reaper = Reaper::new("seed-001-reaper").unwrap();
        assert_eq!(reaper.live_threads(), 0);
        for i in 0..rounds() {
            let how = [LastDrop::Explicit, LastDrop::WithCaptures, LastDrop::Racing][i % 3];
            let (worker_id, status) = last_handle_dies_on_worker(&reaper, how);
            assert_eq!(
                status.joined_on,
                reaper.thread_id(),
                "iteration {i} ({how:?})"
            );
            assert_ne!(status.joined_on, worker_id);
            assert_eq!(status.panic, None);
            // The count drops before the handle opens.
            assert_eq!(reaper.live_threads(), 0, "iteration {i}");
        }
        assert_eq!(reaper.live_threads(), 0);
        reaper.shutdown().unwrap();
    });
}

#[test]
fn many_workers_whose_last_handles_die_on_themselves_at_once() {
    watchdog("seed001_burst", || {
        let reaper = Reaper::new("seed-001-burst").unwrap();
        for _ in 0..20 {
            let mut handles = Vec::new();
            for _ in 0..16 {
                let worker = Worker::spawn_with(&reaper, "burst").unwrap();
                handles.push(worker.thread_handle());
                let theirs = worker.clone();
                worker.post(move || drop(theirs)).unwrap();
            }
            for h in handles {
                assert_eq!(h.wait_timeout(LIMIT).unwrap().joined_on, reaper.thread_id());
            }
        }
        assert_eq!(reaper.live_threads(), 0);
        reaper.shutdown().unwrap();
    });
}

/// A capture whose drop is slow and leaves a trace: if a reply were sent
/// before the captures were dropped, the caller would reliably see the log
/// without "dropped" and the shared `Arc` still held.
struct SlowCapture {
    log: Arc<Mutex<Vec<&'static str>>>,
    _shared: Arc<()>,
}

impl Drop for SlowCapture {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(1));
        self.log.lock().push("dropped");
    }
}

#[test]
fn a_jobs_captures_are_released_before_sync_returns() {
    watchdog("seed001_captures", || {
        let worker = Worker::spawn("captures").unwrap();
        for i in 0..100 {
            let log = Arc::new(Mutex::new(Vec::new()));
            let shared = Arc::new(());
            let capture = SlowCapture {
                log: log.clone(),
                _shared: shared.clone(),
            };
            let job_log = log.clone();
            let value = worker
                .sync(move || {
                    let capture = capture;
                    job_log.lock().push("ran");
                    let _ = &capture;
                    i
                })
                .unwrap();
            log.lock().push("returned");
            assert_eq!(value, i);
            assert_eq!(*log.lock(), ["ran", "dropped", "returned"], "iteration {i}");
            assert_eq!(
                Arc::strong_count(&shared),
                1,
                "iteration {i}: the job still holds its capture"
            );
            // `job_log` was a capture too.
            assert_eq!(Arc::strong_count(&log), 1, "iteration {i}");
        }
    });
}

#[test]
fn a_jobs_captures_are_released_before_its_panic_is_reported() {
    watchdog("seed001_captures_panic", || {
        let worker = Worker::spawn("captures-panic").unwrap();
        for i in 0..30 {
            let log = Arc::new(Mutex::new(Vec::new()));
            let shared = Arc::new(());
            let capture = SlowCapture {
                log: log.clone(),
                _shared: shared.clone(),
            };
            let err = worker
                .sync(move || -> () {
                    let _keep = &capture;
                    panic!("with captures {i}")
                })
                .unwrap_err();
            assert!(matches!(err, Error::Panicked { .. }));
            assert_eq!(*log.lock(), ["dropped"], "iteration {i}");
            assert_eq!(Arc::strong_count(&shared), 1, "iteration {i}");
        }
    });
}

#[test]
fn a_jobs_captures_are_released_before_an_inline_sync_returns() {
    watchdog("seed001_captures_inline", || {
        let worker = Worker::spawn("captures-inline").unwrap();
        let me = worker.clone();
        worker
            .sync(move || {
                for _ in 0..30 {
                    let log = Arc::new(Mutex::new(Vec::new()));
                    let shared = Arc::new(());
                    let capture = SlowCapture {
                        log: log.clone(),
                        _shared: shared.clone(),
                    };
                    me.sync(move || {
                        let _keep = &capture;
                    })
                    .unwrap();
                    assert_eq!(*log.lock(), ["dropped"]);
                    assert_eq!(Arc::strong_count(&shared), 1);
                }
            })
            .unwrap();
    });
}

#[test]
fn waiting_on_ones_own_thread_handle_is_refused_not_a_hang() {
    watchdog("seed001_self_wait", || {
        let worker = Worker::spawn("self-wait").unwrap();
        let handle = worker.thread_handle();
        let (wait, wait_timeout, joined) = worker
            .sync(move || {
                (
                    handle.wait(),
                    handle.wait_timeout(Duration::from_secs(3600)),
                    handle.is_joined(),
                )
            })
            .unwrap();
        assert!(
            matches!(wait, Err(Error::WouldJoinSelf(ref n)) if n == "self-wait"),
            "{wait:?}"
        );
        assert!(
            matches!(wait_timeout, Err(Error::WouldJoinSelf(_))),
            "{wait_timeout:?}"
        );
        assert!(!joined);
        // The worker is unharmed and still serves.
        assert_eq!(worker.sync(|| 9).unwrap(), 9);
    });
}
