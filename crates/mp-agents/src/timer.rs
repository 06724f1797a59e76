//! Delayed and periodic messages: one timer thread per environment.
//!
//! The timer thread is started through the environment's [`Reaper`]
//! (`Reaper::spawn`), so the reaper joins it; `launch` stops it after the
//! deregistration thread and waits on its handle. Timers that never fired
//! are dropped on the timer thread when it stops.
//!
//! Invariant 3: a delayed message is moved into its timer and moved out to
//! the receiver when it fires; a periodic one is cloned for each delivery
//! (the timer keeps the original until it is cancelled).
//!
//! Cancellation is exact: [`TimerHandle::cancel`] returns `true` only if
//! the timer will never deliver again, and `false` only if it had already
//! delivered (or was delivering) its last message. A periodic timer being
//! fired while it is cancelled is not re-armed. Dropping a handle cancels
//! (SObjectizer's `timer_id`); `detach` keeps the timer without it.
//!
//! Any `Duration` is accepted: a delay or period too long to add to the
//! clock leaves the timer armed and never due (it fires never again, and
//! cancelling it still returns `true`); a zero period makes a periodic
//! timer one-shot, as in SObjectizer. The timer thread survives a panic in
//! a delivery or in the `Drop` of a message it holds: it is logged, and
//! every other timer keeps its schedule.
//!
//! Lock order: the timer state is never held while a message is delivered
//! or dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mp_thread::{Reaper, ThreadHandle};
use parking_lot::{Condvar, Mutex};

use crate::contain::contain;

type Fire = Box<dyn FnMut() + Send>;

/// The timer thread's role, in logs.
const TIMER: &str = "timer";

struct Entry {
    fire: Fire,
    period: Option<Duration>,
}

struct Firing {
    id: u64,
    periodic: bool,
    /// Cancelled while it was being fired: not re-armed.
    cancelled: bool,
}

#[derive(Default)]
struct State {
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: HashMap<u64, Entry>,
    /// The timer being fired right now.
    firing: Option<Firing>,
    next: u64,
    closed: bool,
}

pub(crate) struct Timers {
    state: Mutex<State>,
    cv: Condvar,
}

/// A handle to a scheduled delayed or periodic message
/// ([`Environment::schedule_delayed`](crate::Environment::schedule_delayed),
/// [`Environment::send_periodic`](crate::Environment::send_periodic)), as
/// SObjectizer's `timer_id`: **dropping it cancels the timer**;
/// [`detach`](Self::detach) lets the timer run on without a handle (a
/// periodic one then until the environment stops).
#[derive(Debug)]
#[must_use = "dropping a TimerHandle cancels its timer; keep it, or call .detach()"]
pub struct TimerHandle {
    id: u64,
    timers: Weak<Timers>,
}

impl TimerHandle {
    /// Cancels the timer: `true` if it will deliver nothing more (for a
    /// periodic timer being fired right now: nothing after the delivery in
    /// progress), `false` if its only message was already delivered or is
    /// being delivered (or the timer was cancelled before).
    pub fn cancel(&self) -> bool {
        let Some(timers) = self.timers.upgrade() else {
            return false;
        };
        let (removed, answer) = {
            let mut st = timers.state.lock();
            match st.entries.remove(&self.id) {
                Some(entry) => (Some(entry), true),
                None => match &mut st.firing {
                    Some(firing) if firing.id == self.id && !firing.cancelled => {
                        firing.cancelled = true;
                        (None, firing.periodic)
                    }
                    _ => (None, false),
                },
            }
        };
        // A message cancelled in time is dropped here, never delivered.
        drop(removed);
        answer
    }

    /// Lets the timer go on without this handle: it fires as scheduled
    /// and can no longer be cancelled (a periodic timer then runs until
    /// the environment stops).
    pub fn detach(mut self) {
        self.timers = Weak::new();
    }
}

impl Drop for TimerHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Timers {
    /// Starts the timer thread through `reaper`.
    pub(crate) fn start(reaper: &Reaper) -> Result<(Arc<Timers>, ThreadHandle), mp_thread::Error> {
        let timers = Arc::new(Timers {
            state: Mutex::default(),
            cv: Condvar::new(),
        });
        let theirs = timers.clone();
        let handle = reaper.spawn("mp-agents-timer", move || theirs.run())?;
        Ok((timers, handle))
    }

    /// Arms a timer. Once the timer thread has stopped, the message is
    /// dropped and the handle's `cancel` returns `false`.
    pub(crate) fn add(
        self: &Arc<Self>,
        delay: Duration,
        period: Option<Duration>,
        fire: Fire,
    ) -> TimerHandle {
        let mut st = self.state.lock();
        let id = st.next;
        st.next += 1;
        if st.closed {
            drop(st);
            drop(fire);
            return TimerHandle {
                id,
                timers: Weak::new(),
            };
        }
        // A zero period is SObjectizer's one-shot.
        let period = period.filter(|p| !p.is_zero());
        st.entries.insert(id, Entry { fire, period });
        // Past the clock's range: armed, never due.
        let earliest = match Instant::now().checked_add(delay) {
            Some(at) => {
                st.queue.push(Reverse((at, id)));
                st.queue.peek().is_some_and(|Reverse((_, top))| *top == id)
            }
            None => false,
        };
        drop(st);
        if earliest {
            self.cv.notify_all();
        }
        TimerHandle {
            id,
            timers: Arc::downgrade(self),
        }
    }

    /// Timers armed and not yet fired (periodic ones until cancelled).
    pub(crate) fn armed(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// Timers armed now: (single-shot, periodic).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let st = self.state.lock();
        let periodic = st.entries.values().filter(|e| e.period.is_some()).count();
        let firing_periodic = st
            .firing
            .as_ref()
            .is_some_and(|f| f.periodic && !f.cancelled);
        let firing_single = st.firing.as_ref().is_some_and(|f| !f.periodic);
        let single = st.entries.len() - periodic + usize::from(firing_single);
        (single, periodic + usize::from(firing_periodic))
    }

    /// Stops the timer thread (it drops the timers still armed).
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }

    fn run(&self) {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                break;
            }
            let Some(&Reverse((at, id))) = st.queue.peek() else {
                self.cv.wait(&mut st);
                continue;
            };
            if at > Instant::now() {
                let _ = self.cv.wait_until(&mut st, at);
                continue;
            }
            st.queue.pop();
            let Some(mut entry) = st.entries.remove(&id) else {
                continue; // cancelled
            };
            st.firing = Some(Firing {
                id,
                periodic: entry.period.is_some(),
                cancelled: false,
            });
            drop(st);
            contain(TIMER, "delivering a timer's message", || (entry.fire)());
            st = self.state.lock();
            let cancelled = st.firing.take().is_some_and(|f| f.cancelled);
            match entry.period {
                Some(period) if !cancelled && !st.closed => {
                    st.entries.insert(id, entry);
                    // Past the clock's range: armed, never due again.
                    if let Some(next) = at.checked_add(period) {
                        st.queue.push(Reverse((next, id)));
                    }
                }
                _ => {
                    drop(st);
                    contain(TIMER, "dropping a timer's message", || drop(entry));
                    st = self.state.lock();
                }
            }
        }
        let leftovers = std::mem::take(&mut st.entries);
        st.queue.clear();
        drop(st);
        for (_, entry) in leftovers {
            contain(TIMER, "dropping an unfired timer's message", || drop(entry));
        }
    }
}
