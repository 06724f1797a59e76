//! The scheduling state machine of the thread pools, apart from demands,
//! threads and mailboxes (so that `tests/loom_pool.rs` can model-check
//! this very file: its lock is mp-thread's sync facade, loom's under
//! `--cfg loom`).
//!
//! Owns: the queues (one per key: a cooperation or an agent), the list of
//! queues ready to run, the list of idle workers — all under one lock
//! (`mp_thread::sync::Mutex`), which is never held while a demand runs.
//!
//! A queue is on the ready list iff its head can start and no worker keeps
//! to it. Every change that can make a head startable — a push, a demand
//! taken (the next one may start beside it), a demand done — is followed,
//! under the lock, by putting the queue on the ready list (and waking an
//! idle worker) or by the worker that made it keeping to the queue; and a
//! worker goes idle only when the ready list is empty. So no demand waits
//! while a worker idles (invariant 7: no lost wake-up).
//!
//! Lock order: the scheduler's lock, then a worker's mailbox (`wake`).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use mp_thread::sync::Mutex;

/// A worker that has run this many demands in one job posts itself a new
/// job and returns to its mailbox, so jobs posted there wait at most this
/// long.
const YIELD_EVERY: usize = 256;

/// What the scheduler needs to know of a demand.
pub(crate) trait Task {
    /// May run beside other thread-safe tasks of its queue (advanced pool).
    fn thread_safe(&self) -> bool;
}

/// One FIFO of tasks. It exists while it has tasks or something of it
/// runs; the next task for it makes a new one.
struct Queue<D> {
    tasks: VecDeque<D>,
    /// A task that must run alone is running.
    exclusive: bool,
    /// Thread-safe tasks running (advanced pool only).
    shared: usize,
    /// On the ready list (then its head can start, and no worker keeps
    /// to it).
    ready: bool,
}

impl<D> Default for Queue<D> {
    fn default() -> Self {
        Queue {
            tasks: VecDeque::new(),
            exclusive: false,
            shared: 0,
            ready: false,
        }
    }
}

impl<D: Task> Queue<D> {
    /// Can its head start now?
    fn can_start(&self, adv: bool) -> bool {
        let Some(head) = self.tasks.front() else {
            return false;
        };
        if adv && head.thread_safe() {
            !self.exclusive
        } else {
            !self.exclusive && self.shared == 0
        }
    }

    fn is_unused(&self) -> bool {
        self.tasks.is_empty() && !self.exclusive && self.shared == 0 && !self.ready
    }
}

struct State<K, D> {
    queues: HashMap<K, Queue<D>>,
    /// Queues whose head can start and that no worker keeps to.
    ready: VecDeque<K>,
    /// Workers with no job.
    idle: Vec<usize>,
}

/// The scheduler of one pool.
pub(crate) struct Sched<K, D> {
    /// Thread-safe tasks of a queue may run together.
    adv: bool,
    /// Tasks of one queue a worker runs in a row before giving it back.
    max: usize,
    state: Mutex<State<K, D>>,
}

impl<K: Copy + Eq + Hash, D: Task> Sched<K, D> {
    /// A scheduler for `workers` workers (all idle).
    pub(crate) fn new(adv: bool, max: usize, workers: usize) -> Self {
        Sched {
            adv,
            max: max.max(1),
            state: Mutex::new(State {
                queues: HashMap::new(),
                ready: VecDeque::new(),
                idle: (0..workers).rev().collect(),
            }),
        }
    }

    /// Tasks queued and not started, over every queue (for the stats).
    pub(crate) fn queued(&self) -> usize {
        self.state
            .lock()
            .queues
            .values()
            .map(|q| q.tasks.len())
            .sum()
    }

    /// Queues `task` on `key`'s queue; `wake(w)` gives idle worker `w` a
    /// job that calls [`work`](Self::work) (false if it cannot: the
    /// worker is then forgotten; a busy worker drains the ready list
    /// before it goes idle, so nothing is stranded).
    pub(crate) fn push(&self, key: K, task: D, wake: &mut dyn FnMut(usize) -> bool) {
        let mut st = self.state.lock();
        let queue = st.queues.entry(key).or_default();
        queue.tasks.push_back(task);
        if !queue.ready && queue.can_start(self.adv) {
            queue.ready = true;
            st.ready.push_back(key);
            Self::wake_one(&mut st, wake);
        }
    }

    fn wake_one(st: &mut State<K, D>, wake: &mut dyn FnMut(usize) -> bool) {
        if let Some(w) = st.idle.pop() {
            // On failure `w` stays out of `idle`: its mailbox is closed.
            let _ = wake(w);
        }
    }

    /// Chooses the queue to run next: the one the worker kept to, unless
    /// it ran `max` tasks of it in a row (then it goes to the end of the
    /// ready list), else the head of the ready list.
    fn pick(&self, st: &mut State<K, D>, kept: Option<(K, usize)>) -> Option<(K, usize)> {
        if let Some((key, streak)) = kept {
            if let Some(queue) = st.queues.get_mut(&key) {
                if !queue.ready && queue.can_start(self.adv) {
                    if streak < self.max {
                        return Some((key, streak));
                    }
                    queue.ready = true;
                    st.ready.push_back(key);
                }
            }
        }
        let key = st.ready.pop_front()?;
        if let Some(queue) = st.queues.get_mut(&key) {
            queue.ready = false;
        }
        Some((key, 0))
    }

    /// Worker `w`'s job: runs tasks (with `run`, no lock held) until none
    /// is ready, then marks `w` idle. Every `YIELD_EVERY` tasks it calls
    /// `repost` (post this job anew to `w`'s mailbox, true if done) and
    /// returns, so the mailbox gets a turn.
    pub(crate) fn work(
        &self,
        w: usize,
        run: &mut dyn FnMut(D),
        wake: &mut dyn FnMut(usize) -> bool,
        repost: &mut dyn FnMut() -> bool,
    ) {
        let mut st = self.state.lock();
        let mut kept: Option<(K, usize)> = None;
        let mut ran = 0;
        loop {
            if ran >= YIELD_EVERY {
                // Keep our place by giving the queue back (if it can go
                // on) and coming back as a new job.
                if let Some((key, _)) = kept.take() {
                    if let Some(queue) = st.queues.get_mut(&key) {
                        if !queue.ready && queue.can_start(self.adv) {
                            queue.ready = true;
                            st.ready.push_back(key);
                        }
                    }
                }
                if st.ready.is_empty() {
                    st.idle.push(w);
                    return;
                }
                if repost() {
                    return;
                }
                ran = 0;
            }
            let Some((key, streak)) = self.pick(&mut st, kept.take()) else {
                st.idle.push(w);
                return;
            };
            let queue = st
                .queues
                .get_mut(&key)
                .expect("a queue that can start exists");
            let task = queue
                .tasks
                .pop_front()
                .expect("a queue that can start has a head");
            let alone = !(self.adv && task.thread_safe());
            if alone {
                queue.exclusive = true;
            } else {
                queue.shared += 1;
                // The next thread-safe task may start beside this one.
                if !queue.ready && queue.can_start(self.adv) {
                    queue.ready = true;
                    st.ready.push_back(key);
                    Self::wake_one(&mut st, wake);
                }
            }
            drop(st);
            run(task);
            ran += 1;
            st = self.state.lock();
            let queue = st
                .queues
                .get_mut(&key)
                .expect("a queue with a running task exists");
            if alone {
                queue.exclusive = false;
            } else {
                queue.shared -= 1;
            }
            if queue.is_unused() {
                st.queues.remove(&key);
            }
            kept = Some((key, streak + 1));
        }
    }
}
