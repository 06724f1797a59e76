//! loom models of the thread pools' scheduler (invariants 6 and 7): no
//! pushed task waits while a worker idles (a lost wake-up leaves the model
//! blocked, which loom reports), every task runs once, a queue's tasks
//! keep their order, a task that must run alone never overlaps another of
//! its queue, and thread-safe tasks of one queue may overlap.
//!
//! The scheduler's own file (`src/disp/thread_pool/sched.rs`) is compiled
//! here as it is; its lock is mp-thread's sync facade (`mp_thread::sync`),
//! loom's under `--cfg loom`, so these models check the shipped code. The
//! workers are loom threads with a mailbox each, as the pool's
//! `mp_thread::Worker`s are: a wake-up is a job in the worker's mailbox.
//!
//! Bounded (two workers, two or three tasks, a preemption bound), each
//! under a watchdog. Run them with
//! `RUSTFLAGS="--cfg loom" cargo test -p mp-agents --release --test loom_pool`.

#![cfg(loom)]
#![allow(dead_code, unreachable_pub)]

mod common;

#[path = "../src/disp/thread_pool/sched.rs"]
mod sched;

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use sched::{Sched, Task};

/// Explores the interleavings of `f` up to a preemption bound.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    common::watchdog(Duration::from_secs(300), move || {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(f);
    });
}

/// A task: its number, its queue, whether it is thread-safe.
struct T {
    id: usize,
    queue: usize,
    thread_safe: bool,
}

impl Task for T {
    fn thread_safe(&self) -> bool {
        self.thread_safe
    }
}

/// A worker's mailbox: jobs waiting (each one a call of `work`), closed.
#[derive(Default)]
struct Mailbox {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

const QUEUES: usize = 2;

struct Pool {
    sched: Sched<usize, T>,
    mailboxes: Vec<Mailbox>,
    exclusive: [AtomicUsize; QUEUES],
    shared: [AtomicUsize; QUEUES],
    /// Most thread-safe tasks of one queue seen running at once.
    most_shared: AtomicUsize,
    violations: AtomicUsize,
    /// Tasks in the order they started.
    order: Mutex<Vec<usize>>,
    done: Mutex<usize>,
    all_done: Condvar,
}

impl Pool {
    fn new(adv: bool, max: usize, workers: usize) -> Arc<Pool> {
        Arc::new(Pool {
            sched: Sched::new(adv, max, workers),
            mailboxes: (0..workers).map(|_| Mailbox::default()).collect(),
            exclusive: Default::default(),
            shared: Default::default(),
            most_shared: AtomicUsize::new(0),
            violations: AtomicUsize::new(0),
            order: Mutex::new(Vec::new()),
            done: Mutex::new(0),
            all_done: Condvar::new(),
        })
    }

    /// Posts a job to worker `w` (under the scheduler's lock, as the pool
    /// does).
    fn wake(&self, w: usize) -> bool {
        let mailbox = &self.mailboxes[w];
        let mut st = mailbox.state.lock().unwrap();
        if st.1 {
            return false;
        }
        st.0 += 1;
        drop(st);
        mailbox.cv.notify_one();
        true
    }

    fn push(&self, task: T) {
        self.sched.push(task.queue, task, &mut |w| self.wake(w));
    }

    fn run(&self, task: T) {
        let q = task.queue;
        self.order.lock().unwrap().push(task.id);
        if task.thread_safe {
            let now = self.shared[q].fetch_add(1, Ordering::SeqCst) + 1;
            self.most_shared.fetch_max(now, Ordering::SeqCst);
            if self.exclusive[q].load(Ordering::SeqCst) != 0 {
                self.violations.fetch_add(1, Ordering::SeqCst);
            }
            thread::yield_now();
            self.shared[q].fetch_sub(1, Ordering::SeqCst);
        } else {
            if self.exclusive[q].swap(1, Ordering::SeqCst) != 0
                || self.shared[q].load(Ordering::SeqCst) != 0
            {
                self.violations.fetch_add(1, Ordering::SeqCst);
            }
            thread::yield_now();
            self.exclusive[q].store(0, Ordering::SeqCst);
        }
        *self.done.lock().unwrap() += 1;
        self.all_done.notify_all();
    }

    /// A worker thread: runs its mailbox's jobs until it is closed.
    fn serve(&self, w: usize) {
        loop {
            let mailbox = &self.mailboxes[w];
            let mut st = mailbox.state.lock().unwrap();
            while st.0 == 0 && !st.1 {
                st = mailbox.cv.wait(st).unwrap();
            }
            if st.0 == 0 {
                return;
            }
            st.0 -= 1;
            drop(st);
            self.sched.work(
                w,
                &mut |task| self.run(task),
                &mut |v| self.wake(v),
                &mut || self.wake(w),
            );
        }
    }

    /// Waits until `n` tasks ran, then closes every mailbox.
    fn finish(&self, n: usize) {
        let mut done = self.done.lock().unwrap();
        while *done < n {
            done = self.all_done.wait(done).unwrap();
        }
        drop(done);
        for mailbox in &self.mailboxes {
            mailbox.state.lock().unwrap().1 = true;
            mailbox.cv.notify_all();
        }
    }
}

/// Starts `workers` worker threads, runs `body` on the model's main
/// thread, waits for `tasks` tasks and stops the workers.
fn with_workers(pool: &Arc<Pool>, workers: usize, tasks: usize, body: impl FnOnce()) {
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let pool = pool.clone();
            thread::spawn(move || pool.serve(w))
        })
        .collect();
    body();
    pool.finish(tasks);
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(pool.violations.load(Ordering::SeqCst), 0);
}

fn task(id: usize, queue: usize, thread_safe: bool) -> T {
    T {
        id,
        queue,
        thread_safe,
    }
}

#[test]
fn thread_pool_runs_every_task_in_queue_order_with_no_overlap() {
    model(|| {
        let pool = Pool::new(false, 1, 2);
        with_workers(&pool, 2, 3, || {
            pool.push(task(0, 0, false));
            pool.push(task(1, 1, false));
            pool.push(task(2, 0, false));
        });
        let order = pool.order.lock().unwrap().clone();
        assert_eq!(order.len(), 3);
        let pos = |id| order.iter().position(|&x| x == id).unwrap();
        assert!(pos(0) < pos(2), "queue order broken: {order:?}");
    });
}

#[test]
fn thread_pool_treats_thread_safe_tasks_as_exclusive() {
    model(|| {
        let pool = Pool::new(false, 2, 2);
        with_workers(&pool, 2, 2, || {
            pool.push(task(0, 0, true));
            pool.push(task(1, 0, true));
        });
        assert_eq!(pool.most_shared.load(Ordering::SeqCst), 1);
        assert_eq!(*pool.order.lock().unwrap(), vec![0, 1]);
    });
}

#[test]
fn adv_pool_runs_an_exclusive_task_alone_after_thread_safe_ones() {
    model(|| {
        let pool = Pool::new(true, 1, 2);
        with_workers(&pool, 2, 3, || {
            pool.push(task(0, 0, true));
            pool.push(task(1, 0, true));
            pool.push(task(2, 0, false));
        });
        let order = pool.order.lock().unwrap().clone();
        assert_eq!(order.last(), Some(&2), "exclusive task overtook: {order:?}");
    });
}

#[test]
fn adv_pool_thread_safe_task_after_an_exclusive_one_waits_for_it() {
    model(|| {
        let pool = Pool::new(true, 4, 2);
        with_workers(&pool, 2, 3, || {
            pool.push(task(0, 0, false));
            pool.push(task(1, 0, true));
            pool.push(task(2, 0, true));
        });
        let order = pool.order.lock().unwrap().clone();
        assert_eq!(order.first(), Some(&0), "{order:?}");
    });
}

/// Without a preemption bound's help: thread-safe tasks of one queue do
/// overlap in some interleaving (the pool can run them together).
#[test]
fn adv_pool_can_overlap_thread_safe_tasks() {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let theirs = seen.clone();
    model(move || {
        let pool = Pool::new(true, 1, 2);
        with_workers(&pool, 2, 2, || {
            pool.push(task(0, 0, true));
            pool.push(task(1, 0, true));
        });
        theirs.fetch_max(
            pool.most_shared.load(Ordering::SeqCst),
            std::sync::atomic::Ordering::SeqCst,
        );
    });
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
}
