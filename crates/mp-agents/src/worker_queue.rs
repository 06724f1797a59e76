//! `WorkerQueue`: the event queue of the single-threaded dispatchers (one
//! thread, active object, active group, a priority's dedicated thread) —
//! demands kept by value beside one worker, run by a *drain* job.
//!
//! Why not one job per demand (as `impl EventQueue for Worker` does): a
//! job is a boxed closure, so each message would cost a second allocation,
//! the mailbox lock twice and a wake-up. Here a push from another thread
//! takes one lock and appends the demand to a shared FIFO; only a push
//! that finds no drain scheduled posts one (SObjectizer keeps execution
//! demands by value the same way). The drain swaps the whole FIFO out
//! under the lock and runs the batch without it.
//!
//! A push from the thread that is draining the queue — a handler sending
//! to an agent on its own thread, as in ping-pong — goes to a thread-local
//! list instead: no lock, no wake-up, and (through `push_local`) not even
//! the receiving agent's lock. Every demand carries a sequence number so
//! the drain can merge the two lists in an order that keeps each sender's
//! order and every happens-before edge between senders: above all, a
//! message sent before an agent's deregistration began runs before its
//! finish demand.
//!
//! When the FIFO runs dry the drain polls it for up to the environment's
//! [`busy_wait`](crate::Params::busy_wait) before it ends
//! ([`mp_thread::Backoff`], the project's one poll policy, which says why): waking a sleeping thread
//! costs tens of microseconds on a VM, a request/reply between two threads
//! a fraction of one. A drain comes back as a new job every
//! `YIELD_EVERY` demands so other jobs posted to the worker get a turn.
//!
//! Invariant 1: only `WorkerQueue` (held by the dispatcher and its bound
//! agents' cores) holds the `Worker`; a drain job holds the FIFO alone, so
//! the worker closes when its last user lets go — in a cooperation's final
//! step on the deregistration thread — and the reaper joins it.
//! Invariant 3: demands are moved into the FIFO and out to `run`. If the
//! worker has stopped taking jobs, a push hands its demand back, and
//! demands left behind when the last handle goes are dropped with the FIFO.
//! Invariant 7: the poll is bounded by `busy_wait`.
//!
//! Lock order: an agent's queue lock, then the FIFO's lock, then the
//! worker's mailbox (a push that schedules a drain).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mp_thread::{ThreadHandle, Waiter, Worker};
use parking_lot::Mutex;

use crate::demand::{EventQueue, ExecDemand, Padded};
use crate::push_order::PushCount;

/// Demands a drain job runs before it comes back as a new job.
const YIELD_EVERY: usize = 256;

/// A worker and the FIFO of demands it runs.
pub(crate) struct WorkerQueue {
    worker: Worker,
    demands: Arc<Demands>,
}

struct Demands {
    state: Mutex<DemandsState>,
    /// Pushes to the shared FIFO so far: each one's sequence number. Set
    /// under the lock; a polling drain and local pushes read it without.
    pushes: PushCount,
    /// The number of the last shared demand the drain started (for the
    /// stats: `pushes - started` wait). Written by the drain alone, on a
    /// line of its own so the pushers' lines stay untouched.
    started: Padded<AtomicU64>,
    busy_wait: Duration,
    /// The dispatcher's `mp_agents_demands_handled_total`, added to once
    /// per drain (and per yield).
    handled: metrics::Counter,
}

/// A demand with its place in the queue's order (see `Demands::drain`).
type Queued = (u64, ExecDemand);

#[derive(Default)]
struct DemandsState {
    fifo: VecDeque<Queued>,
    /// A drain job is queued or running; it will see what is pushed.
    scheduled: bool,
}

impl WorkerQueue {
    /// A queue on `worker` whose drain polls for `busy_wait` when empty.
    /// Demands run are counted on `handled`.
    pub(crate) fn new(
        worker: Worker,
        busy_wait: Duration,
        handled: metrics::Counter,
    ) -> WorkerQueue {
        WorkerQueue {
            worker,
            demands: Arc::new(Demands {
                state: Mutex::default(),
                pushes: PushCount::new(),
                started: Padded(AtomicU64::new(0)),
                busy_wait,
                handled,
            }),
        }
    }

    /// The worker's thread, to see it joined.
    pub(crate) fn thread_handle(&self) -> ThreadHandle {
        self.worker.thread_handle()
    }

    pub(crate) fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Demands pushed from other threads and not started yet, those of a
    /// batch the drain has taken included (for the stats; a running
    /// handler's sends to its own thread are not counted).
    pub(crate) fn pending(&self) -> usize {
        let pushed = self.demands.pushes.seen();
        let started = self.demands.started.load(Ordering::Relaxed);
        usize::try_from(pushed.saturating_sub(started)).unwrap_or(usize::MAX)
    }
}

impl EventQueue for WorkerQueue {
    fn same_thread_key(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.demands) as usize)
    }

    fn push(&self, demand: ExecDemand) -> Result<(), ExecDemand> {
        // A handler sending to an agent of the queue its own thread is
        // draining: no other thread can see that demand, so no lock.
        let key = Arc::as_ptr(&self.demands) as usize;
        // Checked here as well as in `push_local`: on the common path (a
        // push from another thread) the demand then goes straight to the
        // FIFO instead of into `push_local` and back out, a copy of it
        // each way.
        if is_draining(key) {
            return push_local(key, demand, || true).or_else(|demand| self.push_shared(demand));
        }
        self.push_shared(demand)
    }
}

impl WorkerQueue {
    /// A push under the FIFO's lock, numbered.
    #[inline]
    fn push_shared(&self, demand: ExecDemand) -> Result<(), ExecDemand> {
        let mut st = self.demands.state.lock();
        if !st.scheduled {
            // Schedule first: a closed mailbox refuses the drain, and then
            // the demand goes back to the caller untouched.
            if self
                .worker
                .post_with(self.demands.clone(), Demands::drain)
                .is_err()
            {
                return Err(demand);
            }
            st.scheduled = true;
        }
        self.demands
            .pushes
            .push_shared(|seq| st.fifo.push_back((seq, demand)));
        Ok(())
    }
}

// The one per-thread state of the workspace kept out of the thread's
// context (`mp_thread::context`), for speed: every send reads it. A plain
// `Cell` thread-local is read in about 0.5 ns, a context slot in about 9 ns
// (a borrow, a lookup by type, a shared handle; release build, 2-vCPU
// x86-64), against some 60 ns for a whole one-thread send and handling.
// Invariant 5 holds all the same: both are private to this module and
// read and written by their own thread only.
thread_local! {
    /// The queue whose drain runs on this thread, with the demands its
    /// handlers pushed to it since.
    static DRAINING: RefCell<Option<Local>> = const { RefCell::new(None) };

    /// The key of the queue in `DRAINING` (0: none), kept apart so that a
    /// push from a thread that drains nothing — every send from outside,
    /// every send across threads — costs one plain thread-local read (no
    /// destructor, so no state check and no borrow).
    static DRAINING_KEY: Cell<usize> = const { Cell::new(0) };
}

/// True if the calling thread is draining the queue whose
/// [`same_thread_key`](EventQueue::same_thread_key) is `key` (one plain
/// thread-local read).
#[inline]
pub(crate) fn is_draining(key: usize) -> bool {
    DRAINING_KEY.with(Cell::get) == key
}

struct Local {
    /// The queue being drained (its address is the queue's key).
    queue: Arc<Demands>,
    /// Each with the count of shared pushes its sender had seen.
    demands: VecDeque<Queued>,
}

/// Pushes `demand` onto the local list of the queue keyed `key` if the
/// calling thread is draining it and `still_open()` (checked after the
/// sequence number is read) says the agent takes demands this way;
/// otherwise the demand comes back. The demand is numbered behind every
/// shared push this thread can see.
///
/// Why the order of reads makes this safe without the agent's lock: the
/// agent's finish is pushed by another thread after it closed the way in
/// (the flag `still_open` reads). If the sequence number read here counts
/// that push, the closing happened before, and `still_open` says no; if
/// not, this demand is numbered before the finish and runs first.
#[inline]
pub(crate) fn push_local(
    key: usize,
    demand: ExecDemand,
    still_open: impl FnOnce() -> bool,
) -> Result<(), ExecDemand> {
    push_local_with(key, demand, |demand| demand, still_open)
}

/// As [`push_local`], with the demand made by `make` from `item` only once
/// it is known to go on the list (one look at the thread's list, and the
/// demand built where it is pushed); otherwise `item` comes back.
#[inline]
pub(crate) fn push_local_with<T>(
    key: usize,
    item: T,
    make: impl FnOnce(T) -> ExecDemand,
    still_open: impl FnOnce() -> bool,
) -> Result<(), T> {
    if !is_draining(key) {
        return Err(item);
    }
    // A drain is installed on this thread (so its locals are alive).
    DRAINING.with(|d| {
        let mut d = d.borrow_mut();
        match d.as_mut() {
            Some(local) if Arc::as_ptr(&local.queue) as usize == key => {
                match local.queue.pushes.number_local(still_open) {
                    Some(seq) => {
                        local.demands.push_back((seq, make(item)));
                        Ok(())
                    }
                    None => Err(item),
                }
            }
            _ => Err(item),
        }
    })
}

/// What the front of this thread's local list holds for a drain.
enum LocalFront {
    /// Nothing.
    Empty,
    /// A demand numbered at or after the bound: it must wait.
    Later,
    /// A demand numbered before the bound, taken off the list (the borrow
    /// is not held while it runs: running it may push more).
    Ready(ExecDemand),
}

/// Takes the first local demand if it is numbered below `bound`.
fn pop_local_below(bound: u64) -> LocalFront {
    DRAINING.with(|d| {
        let mut d = d.borrow_mut();
        let Some(local) = d.as_mut() else {
            return LocalFront::Empty;
        };
        match local.demands.front() {
            None => LocalFront::Empty,
            Some((seq, _)) if *seq >= bound => LocalFront::Later,
            Some(_) => match local.demands.pop_front() {
                Some((_, demand)) => LocalFront::Ready(demand),
                None => LocalFront::Empty,
            },
        }
    })
}

/// Installs a drain's local list on its thread for as long as it lives.
/// On the way out it puts back whatever was there before (a drain of
/// another queue this one runs nested in); if a drain ever unwinds, what
/// its handlers pushed locally goes back to the shared FIFO, not lost.
struct Installed<'a> {
    demands: &'a Arc<Demands>,
    prev: Option<Local>,
}

impl<'a> Installed<'a> {
    fn new(demands: &'a Arc<Demands>) -> Installed<'a> {
        let local = Local {
            queue: demands.clone(),
            demands: VecDeque::new(),
        };
        let prev = DRAINING.with(|d| d.replace(Some(local)));
        DRAINING_KEY.with(|k| k.set(Arc::as_ptr(demands) as usize));
        Installed { demands, prev }
    }

    /// Puts the local list back into the shared FIFO, in order (the drain
    /// is about to leave, with its batch run).
    fn flush(&self) {
        let local = take_local();
        let mut st = self.demands.state.lock();
        requeue(&mut st.fifo, local);
    }
}

/// The sequence number of the last demand on this thread's local list.
fn last_local() -> Option<u64> {
    DRAINING.with(|d| Some(d.borrow().as_ref()?.demands.back()?.0))
}

/// Takes this thread's local list.
fn take_local() -> VecDeque<Queued> {
    DRAINING.with(|d| {
        d.borrow_mut()
            .as_mut()
            .map(|l| std::mem::take(&mut l.demands))
            .unwrap_or_default()
    })
}

/// Puts a leaving drain's local list back into the shared FIFO, merged by
/// sequence number (a local demand goes before a shared one only if it
/// has the smaller number, as in `Demands::drain`). A drain leaves on its
/// own only when every local demand goes before the whole FIFO: then this
/// costs one push per local demand, whatever the FIFO holds.
fn requeue(fifo: &mut VecDeque<Queued>, local: VecDeque<Queued>) {
    let Some((last, _)) = local.back() else {
        return;
    };
    if fifo.front().is_none_or(|(first, _)| last < first) {
        for item in local.into_iter().rev() {
            fifo.push_front(item);
        }
        return;
    }
    // Only after an unwind: merge the lot.
    let mut shared = std::mem::take(fifo);
    let mut local = local;
    loop {
        let take_local = match (shared.front(), local.front()) {
            (Some((s, _)), Some((l, _))) => l < s,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let next = if take_local {
            local.pop_front()
        } else {
            shared.pop_front()
        };
        match next {
            Some(item) => fifo.push_back(item),
            None => break,
        }
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        let local = take_local();
        let prev = self.prev.take();
        let prev_key = prev.as_ref().map_or(0, |l| Arc::as_ptr(&l.queue) as usize);
        DRAINING.with(|d| *d.borrow_mut() = prev);
        DRAINING_KEY.with(|k| k.set(prev_key));
        if local.is_empty() && !std::thread::panicking() {
            return;
        }
        // Unwinding out of a drain (a demand never unwinds, so this is a
        // bug elsewhere): hand the work to a fresh drain job.
        let mut st = self.demands.state.lock();
        requeue(&mut st.fifo, local);
        st.scheduled = !st.fifo.is_empty()
            && Waiter::current()
                .post_with(self.demands.clone(), Demands::drain)
                .is_ok();
    }
}

impl Demands {
    /// The drain job: runs the demands of the shared FIFO (taken in
    /// batches) and of this thread's local list, in their order, until
    /// both stay empty.
    ///
    /// Order: a shared push gets the next sequence number; a local one
    /// the number of shared pushes its sender could see, so it goes
    /// before every shared push it could not have known about. Merging by
    /// number keeps each sender's order and every happens-before edge
    /// between senders — in particular a message sent from this thread
    /// before the agent's deregistration began runs before its finish
    /// demand, which the deregistration thread pushed later.
    fn drain(self: Arc<Self>) {
        let mut me = self;
        let mut batch: VecDeque<Queued> = VecDeque::new();
        loop {
            let installed = Installed::new(&me);
            // Every shared push numbered up to `taken` is in `batch` or run.
            let mut taken = me.pushes.seen();
            let mut ran = 0;
            // How many of those `handled` has been told of.
            let mut counted = 0;
            loop {
                // Yield only with the batch run and every local demand
                // numbered before what the shared FIFO holds, so leaving
                // is cheap (see `Installed::flush`).
                if ran >= YIELD_EVERY
                    && batch.is_empty()
                    && last_local().is_none_or(|last| last <= taken)
                {
                    break;
                }
                // A local demand goes before the batch's next if it has the
                // smaller number; with the batch run, before every shared
                // push not taken yet if it saw none of them.
                let bound = batch.front().map_or(taken + 1, |(shared, _)| *shared);
                let local = pop_local_below(bound);
                let local_waits = matches!(local, LocalFront::Later);
                let next = match local {
                    LocalFront::Ready(demand) => {
                        // Run where it was taken: one copy fewer.
                        demand.run();
                        ran += 1;
                        continue;
                    }
                    LocalFront::Empty | LocalFront::Later => {
                        batch.pop_front().map(|(seq, demand)| {
                            // Local demands handed back on a yield come
                            // through the FIFO with older numbers: the
                            // mark only moves forward (one writer, so no
                            // read-modify-write is needed).
                            if seq > me.started.load(Ordering::Relaxed) {
                                me.started.store(seq, Ordering::Relaxed);
                            }
                            demand
                        })
                    }
                };
                if let Some(demand) = next {
                    demand.run();
                    ran += 1;
                    continue;
                }
                let mut st = me.state.lock();
                taken = me.pushes.seen();
                if !st.fifo.is_empty() {
                    // The FIFO keeps the (empty) buffer of the last batch,
                    // so neither side allocates once they have grown.
                    std::mem::swap(&mut st.fifo, &mut batch);
                    continue;
                }
                drop(st);
                if local_waits {
                    continue;
                }
                // Counted before the drain waits, so what it ran shows
                // while it polls.
                me.handled.increment((ran - counted) as u64);
                counted = ran;
                if me.poll(taken) {
                    continue;
                }
                let mut st = me.state.lock();
                if st.fifo.is_empty() {
                    st.scheduled = false;
                    // Leave the grown buffer for the next pushes (the
                    // FIFO's may be the empty one a swap gave it).
                    if st.fifo.capacity() < batch.capacity() {
                        std::mem::swap(&mut st.fifo, &mut batch);
                    }
                    drop(st);
                    drop(installed);
                    me.handled.increment((ran - counted) as u64);
                    return;
                }
            }
            // Come back as a new job so the mailbox gets a turn; if it is
            // closed (the last user let go), go on here. The local list
            // goes back to the front of the shared FIFO first.
            installed.flush();
            drop(installed);
            me.handled.increment((ran - counted) as u64);
            match Waiter::current().post_with(me, Demands::drain) {
                Ok(()) => return,
                Err(back) => me = back,
            }
        }
    }

    /// Polls for a push after `seen` for up to `busy_wait`; true if one came.
    fn poll(&self, seen: u64) -> bool {
        mp_thread::poll_until(self.busy_wait, || self.pushes.seen() != seen)
    }
}

#[cfg(test)]
mod tests {
    use super::{is_draining, Installed, WorkerQueue};
    use crate::demand::EventQueue;
    use mp_thread::Worker;
    use std::time::Duration;

    /// The drained queue's key is kept apart from its list: it must follow
    /// every install and every way out, nested drains included, or a send
    /// would take (or miss) the same-thread way on the wrong queue.
    #[test]
    fn the_drained_key_follows_nested_drains_and_their_unwinding() {
        let worker = Worker::spawn("wq-test").unwrap();
        let (a, b) = (
            WorkerQueue::new(worker.clone(), Duration::ZERO, metrics::Counter::noop()),
            WorkerQueue::new(worker, Duration::ZERO, metrics::Counter::noop()),
        );
        let (ka, kb) = (a.same_thread_key().unwrap(), b.same_thread_key().unwrap());
        assert!(!is_draining(ka) && !is_draining(kb));
        {
            let _outer = Installed::new(&a.demands);
            assert!(is_draining(ka) && !is_draining(kb));
            {
                let _inner = Installed::new(&b.demands);
                assert!(is_draining(kb) && !is_draining(ka));
            }
            assert!(
                is_draining(ka) && !is_draining(kb),
                "the outer drain is back"
            );
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _inner = Installed::new(&b.demands);
                panic!("a drain unwinding");
            }));
            assert!(unwound.is_err());
            assert!(
                is_draining(ka) && !is_draining(kb),
                "restored on unwinding too"
            );
        }
        assert!(
            !is_draining(ka) && !is_draining(kb),
            "no drain left on the thread"
        );
    }
}
