//! `ThreadBound<T>`: usable only on its home thread, dropped only there —
//! sent home when dropped elsewhere, leaked if home is gone, never dropped on
//! the wrong thread.
#![cfg(not(loom))] // loom builds have no Worker, Reaper or ThreadBound

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::{self, ThreadId};

use common::{watchdog, DropProbe, LIMIT};
use mp_thread::{Error, Executor, Job, ThreadBound, Waiter, Worker};

/// The worker's own mailbox as the executor of values bound to it.
fn executor_of(worker: &Worker) -> Arc<dyn Executor> {
    Arc::new(worker.waiter().clone())
}

/// A `!Send` value: an `Rc` shared with a clone kept on the home thread, and
/// a probe that records where it is dropped.
struct HomeOnly {
    shared: Rc<RefCell<Vec<u32>>>,
    _probe: DropProbe,
}

/// Binds a `HomeOnly` on `worker`; returns it and the log of the threads its
/// drops happen on.
fn bind_on(worker: &Worker) -> (ThreadBound<HomeOnly>, Arc<Mutex<Vec<ThreadId>>>) {
    let executor = executor_of(worker);
    worker
        .sync(move || {
            let (probe, drops) = DropProbe::new();
            let value = HomeOnly {
                shared: Rc::new(RefCell::new(vec![1, 2, 3])),
                _probe: probe,
            };
            (ThreadBound::new(value, executor), drops)
        })
        .unwrap()
}

#[test]
fn get_works_on_home_and_fails_with_wrong_thread_elsewhere() {
    watchdog("tb_get", || {
        let worker = Worker::spawn("tb-home").unwrap();
        let (bound, drops) = bind_on(&worker);
        assert_eq!(bound.home(), worker.thread_id());
        assert!(!bound.is_home());
        let me = thread::current().id();
        match bound.get() {
            Err(Error::WrongThread { home, current }) => {
                assert_eq!(home, worker.thread_id());
                assert_eq!(current, me);
            }
            Err(other) => panic!("expected WrongThread, got {other:?}"),
            Ok(_) => panic!("get() worked off the home thread"),
        }
        // On home: read and mutate, the `Rc` included.
        let (bound, sum) = worker
            .sync(move || {
                let mut bound = bound;
                assert!(bound.is_home());
                bound.get_mut().unwrap().shared.borrow_mut().push(4);
                let rc2 = Rc::clone(&bound.get().unwrap().shared);
                assert_eq!(Rc::strong_count(&rc2), 2);
                drop(rc2);
                let sum: u32 = bound.get().unwrap().shared.borrow().iter().sum();
                (bound, sum)
            })
            .unwrap();
        assert_eq!(sum, 10);
        // `&ThreadBound` from a third thread: still refused.
        let bound = Arc::new(bound);
        let b2 = bound.clone();
        let err = thread::spawn(move || b2.get().err().map(|e| e.to_string()))
            .join()
            .unwrap();
        assert!(err.is_some_and(|e| e.contains("was used on thread")));
        // into_inner off home hands it back.
        let bound = Arc::try_unwrap(bound).ok().unwrap();
        let bound = bound
            .into_inner()
            .err()
            .expect("into_inner worked off home");
        drop(bound);
        worker.sync(|| ()).unwrap();
        assert_eq!(*drops.lock(), [worker.thread_id()]);
    });
}

#[test]
fn dropping_it_elsewhere_runs_the_drop_on_the_home_thread() {
    watchdog("tb_drop_home", || {
        let worker = Worker::spawn("tb-drop-home").unwrap();
        for _ in 0..100 {
            let (bound, drops) = bind_on(&worker);
            // Dropped here, on another thread than home.
            drop(bound);
            // The drop job is queued on the worker ahead of this sync.
            worker.sync(|| ()).unwrap();
            assert_eq!(*drops.lock(), [worker.thread_id()]);

            // Dropped on a third, short-lived thread.
            let (bound, drops) = bind_on(&worker);
            thread::spawn(move || drop(bound)).join().unwrap();
            worker.sync(|| ()).unwrap();
            assert_eq!(*drops.lock(), [worker.thread_id()]);
        }
    });
}

#[test]
fn dropping_it_on_home_drops_it_there_at_once() {
    watchdog("tb_drop_on_home", || {
        let worker = Worker::spawn("tb-drop-at-home").unwrap();
        let executor = executor_of(&worker);
        let dropped_inline = worker
            .sync(move || {
                let (probe, drops) = DropProbe::new();
                let bound = ThreadBound::new(probe, executor);
                drop(bound);
                let d = drops.lock().clone();
                d
            })
            .unwrap();
        assert_eq!(dropped_inline, [worker.thread_id()]);
        // into_inner on home gives the value back, undropped.
        let executor = executor_of(&worker);
        let n = worker
            .sync(move || {
                let bound = ThreadBound::new(Rc::new(5u8), executor);
                let rc = bound.into_inner().ok().unwrap();
                *rc
            })
            .unwrap();
        assert_eq!(n, 5);
    });
}

#[test]
fn if_home_is_closed_the_value_is_leaked_not_dropped_on_the_wrong_thread() {
    watchdog("tb_home_closed", || {
        let worker = Worker::spawn("tb-closed-home").unwrap();
        let (bound, drops) = bind_on(&worker);
        let handle = worker.thread_handle();
        drop(worker);
        handle.wait_timeout(LIMIT).unwrap();
        drop(bound);
        assert!(
            drops.lock().is_empty(),
            "the value was dropped off its home thread: {:?}",
            drops.lock()
        );
    });
}

#[test]
fn a_drop_job_discarded_off_home_leaks_the_value() {
    watchdog("tb_discarded_off_home", || {
        // Home is a worker that is busy; its queued drop job is discarded by
        // `Waiter::close` called from this thread, which drops queued jobs
        // on the caller. The value must not be dropped here.
        for _ in 0..50 {
            let worker = Worker::spawn("tb-discard").unwrap();
            let (bound, drops) = bind_on(&worker);
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let (busy_tx, busy_rx) = mpsc::channel::<()>();
            worker
                .post(move || {
                    busy_tx.send(()).unwrap();
                    let _ = gate_rx.recv();
                })
                .unwrap();
            busy_rx.recv().unwrap();
            drop(bound); // queued behind the busy job
            worker.waiter().close(); // drops the queued drop job, here
            assert!(
                drops.lock().is_empty(),
                "the value was dropped on {:?}, home is {:?}",
                drops.lock(),
                worker.thread_id()
            );
            gate_tx.send(()).unwrap();
            worker.thread_handle().wait_timeout(LIMIT).unwrap();
            assert!(drops.lock().is_empty());
        }
    });
}

#[test]
fn a_drop_job_discarded_on_home_drops_the_value_there() {
    watchdog("tb_discarded_on_home", || {
        // Home is a plain thread that never serves its waiter: the drop job
        // stays queued until the thread exits, when its waiter closes and
        // drops it — on home, so the value is dropped, on home.
        let (made_tx, made_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let home_thread = thread::spawn(move || {
            let me = Waiter::current();
            let (probe, drops) = DropProbe::new();
            let bound = ThreadBound::new(probe, Arc::new(me) as Arc<dyn Executor>);
            made_tx
                .send((bound, drops, thread::current().id()))
                .unwrap();
            // Never serve; exit when told. The queued drop job is dropped by
            // this thread's waiter closing at exit.
            let _ = go_rx.recv();
        });
        let (bound, drops, home_id) = made_rx.recv().unwrap();
        drop(bound); // queued on home's waiter, not run
        assert!(drops.lock().is_empty());
        go_tx.send(()).unwrap();
        home_thread.join().unwrap();
        assert_eq!(*drops.lock(), [home_id]);
    });
}

/// An executor that breaks its contract: it runs jobs at once, on the
/// calling thread.
struct RunsHere;

impl Executor for RunsHere {
    fn execute(&self, job: Job) -> Result<(), Job> {
        job();
        Ok(())
    }
}

/// An executor that accepts jobs and drops them unrun, on the caller.
struct DropsHere(AtomicUsize);

impl Executor for DropsHere {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.0.fetch_add(1, Ordering::SeqCst);
        drop(job);
        Ok(())
    }
}

#[test]
fn a_wrong_executor_cannot_make_the_value_drop_off_home() {
    watchdog("tb_wrong_executor", || {
        for executor in [
            Arc::new(RunsHere) as Arc<dyn Executor>,
            Arc::new(DropsHere(AtomicUsize::new(0))),
        ] {
            let (tx, rx) = mpsc::channel();
            let ex = executor.clone();
            thread::spawn(move || {
                let (probe, drops) = DropProbe::new();
                tx.send((ThreadBound::new((Rc::new(()), probe), ex), drops))
                    .unwrap();
            })
            .join()
            .unwrap();
            let (bound, drops) = rx.recv().unwrap();
            drop(bound);
            assert!(
                drops.lock().is_empty(),
                "value dropped off home through a wrong executor"
            );
        }
    });
}
