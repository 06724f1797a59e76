//! `Waiter`: a thread's mailbox, and the loop that runs it while the thread
//! waits for a reply.
//!
//! Every thread that blocks on a reply (a worker, or any user thread making
//! a synchronous call) blocks inside [`Waiter::wait`], which keeps running the
//! jobs other threads post to it. That is how a callback reaches a client
//! thread that is blocked in a call, nested as deep as the thread's stack
//! and its callers' limits allow, and how two workers that `sync` to each
//! other avoid deadlock.
//!
//! Invariants kept here:
//! - 3 (a payload's last owner is its receiver): a job is moved out of the
//!   queue and consumed by the thread that runs it; a reply is moved into its
//!   slot and out by the waiter, and the sender keeps no copy.
//! - 7 (every blocking wait ends): a reply sender that is dropped unsent
//!   (its job discarded, its thread gone) wakes the waiter with an error; a
//!   closed waiter drops its queued jobs, and with them their reply senders.
//!
//! Lock order: `Inner::state` before any reply `Slot` (the waiter checks its
//! reply under its own lock; a sender fills the slot, releases it, then takes
//! the waiter's lock to notify — so a wake-up cannot be lost, libmultiprocess
//! #295). Jobs never run with a lock held.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{panic_message, Error};
use std::time::Duration;

use crate::backoff::Backoff;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};

/// A unit of work posted to a thread.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Longest a waiter polls for new work before it sleeps. Waking a sleeping
/// thread on another core costs tens of microseconds on small VMs; a short
/// poll catches replies that are already on their way. The poll is a
/// [`Backoff`] with an adaptive limit (see [`Waiter::park`]): a waiter whose
/// replies come slowly (a cross-process call takes tens of microseconds)
/// stops polling, because the poll would only take CPU from the threads
/// producing the reply.
const POLL_LIMIT: Duration = Duration::from_micros(6);

/// A waiter that has stopped polling tries a short poll again every this
/// many parks, so it notices when replies become fast again.
const PROBE_EVERY: usize = 64;
/// The length of that probing poll.
const PROBE: Duration = Duration::from_nanos(400);

/// A thread's mailbox. Cheap to clone; any thread may [`post`](Waiter::post)
/// to it, only its owner thread runs the jobs (in [`wait`](Waiter::wait) or
/// [`run`](Waiter::run)).
#[derive(Clone)]
pub struct Waiter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    state: Mutex<State>,
    cv: Condvar,
    /// Bumped on every post and notify; lets a spinning waiter see new work
    /// without taking the lock.
    signals: AtomicUsize,
    /// Current poll limit before sleeping, in nanoseconds (owner thread
    /// only; atomic so `Inner` is `Sync`).
    poll_ns: AtomicU64,
    /// Parks so far, to schedule probing polls.
    parks: AtomicUsize,
    /// Polls at least this long before sleeping, whatever the adaptive
    /// budget says (zero for most waiters; see [`Waiter::with_busy_wait`]).
    busy_wait: std::time::Duration,
}

struct State {
    queue: VecDeque<Job>,
    closed: bool,
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Waiter {
    /// A new, empty mailbox for a thread called `name`. Most code wants
    /// [`Waiter::current`] instead.
    pub(crate) fn new(name: impl Into<String>) -> Waiter {
        Waiter::with_busy_wait(name, std::time::Duration::ZERO)
    }

    /// A mailbox whose owner, when it runs out of jobs, polls for new ones
    /// for `busy_wait` (a [`Backoff`]) before it sleeps, instead of the
    /// adaptive poll: for threads whose work comes in quick bursts from
    /// other running threads. The adaptive poll (below) would learn to stop
    /// polling when work comes slower than its budget, and could not learn
    /// it back while the senders themselves sleep between messages.
    pub(crate) fn with_busy_wait(
        name: impl Into<String>,
        busy_wait: std::time::Duration,
    ) -> Waiter {
        Waiter {
            inner: Arc::new(Inner {
                name: name.into(),
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    closed: false,
                }),
                cv: Condvar::new(),
                signals: AtomicUsize::new(0),
                poll_ns: AtomicU64::new(POLL_LIMIT.as_nanos() as u64),
                parks: AtomicUsize::new(0),
                busy_wait,
            }),
        }
    }

    /// The name of the thread this waiter belongs to.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True if both handles are the same mailbox.
    pub fn same_as(&self, other: &Waiter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// An identity for this mailbox: the same for every clone of it, and
    /// different from that of every other mailbox alive at the same time
    /// (a key for maps of per-thread state, kept only while a clone is).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The number of jobs queued and not yet started.
    pub fn queued_jobs(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    /// Queues `f` to run on the owner thread, in FIFO order with other posts.
    ///
    /// Fails with [`Error::Closed`] (dropping `f` here) if the mailbox is closed.
    pub fn post<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Error> {
        self.post_job(Box::new(f))
            .map_err(|_job| Error::Closed(self.inner.name.clone()))
    }

    /// Queues a boxed job; on a closed mailbox the job is handed back, not
    /// dropped, so the caller decides on which thread its captures die.
    pub fn post_job(&self, job: Job) -> Result<(), Job> {
        let mut st = self.inner.state.lock();
        if st.closed {
            return Err(job);
        }
        st.queue.push_back(job);
        self.inner.signals.fetch_add(1, Ordering::Release);
        drop(st);
        self.inner.cv.notify_one();
        Ok(())
    }

    /// Queues `f(value)` to run on the owner thread; on a closed mailbox
    /// `value` comes back untouched (nothing was boxed around it), so the
    /// caller keeps full ownership of what it failed to hand over.
    pub fn post_with<T, F>(&self, value: T, f: F) -> Result<(), T>
    where
        T: Send + 'static,
        F: FnOnce(T) + Send + 'static,
    {
        let mut st = self.inner.state.lock();
        if st.closed {
            return Err(value);
        }
        st.queue.push_back(Box::new(move || f(value)));
        self.inner.signals.fetch_add(1, Ordering::Release);
        drop(st);
        self.inner.cv.notify_one();
        Ok(())
    }

    /// Closes the mailbox: later posts fail, queued jobs are dropped (on the
    /// calling thread, outside the lock), which drops their reply senders so
    /// whoever waits on them wakes with an error. A thread in [`run`](Waiter::run)
    /// returns once it has nothing left to do.
    pub fn close(&self) {
        let dropped = {
            let mut st = self.inner.state.lock();
            st.closed = true;
            self.inner.signals.fetch_add(1, Ordering::Release);
            std::mem::take(&mut st.queue)
        };
        self.inner.cv.notify_all();
        drop(dropped);
    }

    /// Closes the mailbox but lets the owner run what is already queued.
    pub(crate) fn close_after_queued(&self) {
        let mut st = self.inner.state.lock();
        st.closed = true;
        self.inner.signals.fetch_add(1, Ordering::Release);
        drop(st);
        self.inner.cv.notify_all();
    }

    /// True once the mailbox no longer accepts jobs.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    /// A one-shot reply channel whose receiving end is waited on by this
    /// waiter. Send the [`ReplySender`] to whichever thread computes the reply.
    pub fn reply_channel<T: Send>(&self) -> (ReplySender<T>, Reply<T>) {
        let slot = Arc::new(Mutex::new(SlotState::Pending));
        (
            ReplySender {
                slot: Some(slot.clone()),
                waiter: self.clone(),
            },
            Reply { slot },
        )
    }

    /// [`wait`](Self::wait) once the caller is known to be the owner (the
    /// check lives with the thread's slot, in `current`).
    pub(crate) fn wait_as_owner<T>(&self, reply: Reply<T>) -> Result<T, Error> {
        let mut st = self.inner.state.lock();
        loop {
            if let Some(ready) = reply.take() {
                return ready.ok_or_else(|| Error::ReplyDropped(self.inner.name.clone()));
            }
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                self.run_job(job);
                st = self.inner.state.lock();
                continue;
            }
            st = self.park(st);
        }
    }

    /// Runs posted jobs until the mailbox is closed and empty: a worker's
    /// main loop.
    pub fn run(&self) {
        let mut st = self.inner.state.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                self.run_job(job);
                st = self.inner.state.lock();
                continue;
            }
            if st.closed {
                return;
            }
            st = self.park(st);
        }
    }

    /// Sleeps until something is posted or notified, polling briefly first.
    ///
    /// A waiter made [`with_busy_wait`](Self::with_busy_wait) polls for
    /// its fixed time. Otherwise the poll's limit adapts: a poll that
    /// catches work doubles it (up to `POLL_LIMIT`), one that does not
    /// halves it. At zero, every `PROBE_EVERY`th park polls for `PROBE` to
    /// find out whether polling pays again.
    fn park<'a>(
        &'a self,
        st: crate::sync::MutexGuard<'a, State>,
    ) -> crate::sync::MutexGuard<'a, State> {
        let seen = self.inner.signals.load(Ordering::Acquire);
        drop(st);
        let fixed = !self.inner.busy_wait.is_zero();
        let budget = self.inner.poll_ns.load(Ordering::Relaxed);
        let limit = if fixed {
            self.inner.busy_wait
        } else if budget == 0 {
            let parks = self.inner.parks.fetch_add(1, Ordering::Relaxed);
            if parks % PROBE_EVERY == 0 {
                PROBE
            } else {
                Duration::ZERO
            }
        } else {
            Duration::from_nanos(budget)
        };
        let mut backoff = Backoff::new(limit);
        while backoff.snooze() {
            if self.inner.signals.load(Ordering::Acquire) != seen {
                if !fixed {
                    let grown = (limit.as_nanos() as u64 * 2).min(POLL_LIMIT.as_nanos() as u64);
                    self.inner.poll_ns.store(grown, Ordering::Relaxed);
                }
                return self.inner.state.lock();
            }
        }
        if !fixed {
            // Below a probe's length, polling has stopped paying: stop.
            let halved = budget / 2;
            let next = if halved < PROBE.as_nanos() as u64 {
                0
            } else {
                halved
            };
            self.inner.poll_ns.store(next, Ordering::Relaxed);
        }
        let mut st = self.inner.state.lock();
        if self.inner.signals.load(Ordering::Acquire) != seen {
            return st;
        }
        self.inner.cv.wait(&mut st);
        st
    }

    /// Runs jobs posted to this waiter until `done()` holds, `deadline`
    /// passes, or (with `stop_if_closed_and_empty`) no job can ever arrive.
    /// Must be called on the owner thread. Whoever makes `done()` true from
    /// another thread must call [`wake`](Self::wake) afterwards. (Under loom
    /// there is no clock: `deadline` must be `None`.)
    pub(crate) fn run_until(
        &self,
        done: &dyn Fn() -> bool,
        deadline: Option<std::time::Instant>,
        stop_if_closed_and_empty: bool,
    ) -> RunUntil {
        loop {
            // Read before `done()`: a `wake` after a change we did not see
            // bumps `signals` past `seen`, so the park below cannot miss it.
            let seen = self.inner.signals.load(Ordering::Acquire);
            if done() {
                return RunUntil::Done;
            }
            let mut st = self.inner.state.lock();
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                self.run_job(job);
                continue;
            }
            if stop_if_closed_and_empty && st.closed {
                return RunUntil::ClosedAndEmpty;
            }
            if self.inner.signals.load(Ordering::Acquire) != seen {
                continue;
            }
            match deadline {
                None => {
                    self.inner.cv.wait(&mut st);
                    drop(st);
                }
                #[cfg(loom)]
                Some(_) => unreachable!("loom models have no deadlines"),
                #[cfg(not(loom))]
                Some(deadline) => {
                    if std::time::Instant::now() >= deadline {
                        drop(st);
                        return if done() {
                            RunUntil::Done
                        } else {
                            RunUntil::TimedOut
                        };
                    }
                    let _ = self.inner.cv.wait_until(&mut st, deadline);
                    drop(st);
                }
            }
        }
    }

    /// Wakes the owner if it is waiting (in [`wait`](Self::wait),
    /// [`run`](Self::run) or `run_until`) so it re-checks what it waits for.
    pub(crate) fn wake(&self) {
        self.notify();
    }

    fn notify(&self) {
        let st = self.inner.state.lock();
        self.inner.signals.fetch_add(1, Ordering::Release);
        drop(st);
        self.inner.cv.notify_all();
    }

    /// Runs one job, containing a panic so the thread keeps serving.
    fn run_job(&self, job: Job) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
            tracing::error!(
                thread = %self.inner.name,
                panic = %panic_message(&*payload),
                "a posted job panicked; the thread goes on"
            );
        }
    }
}

/// How [`Waiter::run_until`] ended.
#[cfg_attr(loom, allow(dead_code))] // no deadlines under loom
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunUntil {
    /// The condition holds.
    Done,
    /// The deadline passed first.
    TimedOut,
    /// The mailbox is closed and empty, so no job can make the condition true.
    ClosedAndEmpty,
}

enum SlotState<T> {
    Pending,
    Ready(T),
    Dropped,
    Taken,
}

/// The receiving end of a [`Waiter::reply_channel`]; pass it to [`Waiter::wait`].
pub struct Reply<T> {
    slot: Arc<Mutex<SlotState<T>>>,
}

impl<T> Reply<T> {
    /// `None` while pending; `Some(None)` if the sender was dropped unsent.
    fn take(&self) -> Option<Option<T>> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, SlotState::Taken) {
            SlotState::Pending => {
                *slot = SlotState::Pending;
                None
            }
            SlotState::Ready(v) => Some(Some(v)),
            SlotState::Dropped | SlotState::Taken => Some(None),
        }
    }
}

/// The sending end of a [`Waiter::reply_channel`]. Dropping it unsent wakes
/// the waiter with [`Error::ReplyDropped`], so a discarded job never leaves
/// its caller blocked.
pub struct ReplySender<T> {
    slot: Option<Arc<Mutex<SlotState<T>>>>,
    waiter: Waiter,
}

impl<T> ReplySender<T> {
    /// Delivers the reply and wakes the waiter. The value moves into the
    /// slot; nothing of it stays with the sender.
    pub fn send(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            *slot.lock() = SlotState::Ready(value);
            drop(slot);
            self.waiter.notify();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            *slot.lock() = SlotState::Dropped;
            drop(slot);
            self.waiter.notify();
        }
    }
}
