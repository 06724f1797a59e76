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
//! fired while it is cancelled is not re-armed.
//!
//! Lock order: the timer state is never held while a message is delivered.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mp_thread::{Reaper, ThreadHandle};
use parking_lot::{Condvar, Mutex};

use crate::mbox::{DirectMbox, Mbox};

/// Where a timer delivers: an agent's direct mbox (any `Send` message) or
/// an MPMC mbox (`Clone` messages).
pub trait Target<M>: Send + Sync + 'static {
    /// Sends `msg` here.
    fn deliver(&self, msg: M);
}

impl<M: Send + 'static> Target<M> for DirectMbox {
    fn deliver(&self, msg: M) {
        self.send(msg);
    }
}

impl<M: Clone + Send + 'static> Target<M> for Mbox {
    fn deliver(&self, msg: M) {
        self.send(msg);
    }
}

type Fire = Box<dyn FnMut() + Send>;

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

/// A handle to a delayed or periodic message. Dropping it does not cancel.
#[derive(Clone, Debug)]
pub struct TimerHandle {
    id: u64,
    timers: Weak<Timers>,
}

impl TimerHandle {
    /// Cancels the timer: `true` if it will deliver nothing more (for a
    /// periodic timer being fired right now: nothing after the delivery in
    /// progress), `false` if its only message was already delivered or is
    /// being delivered.
    pub fn cancel(&self) -> bool {
        let Some(timers) = self.timers.upgrade() else {
            return false;
        };
        let (removed, answer) = {
            let mut st = timers.state.lock();
            match st.entries.remove(&self.id) {
                Some(entry) => (Some(entry), true),
                None => match &mut st.firing {
                    Some(firing) if firing.id == self.id => {
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
        let at = Instant::now() + delay;
        st.entries.insert(id, Entry { fire, period });
        st.queue.push(Reverse((at, id)));
        let earliest = st.queue.peek().is_some_and(|Reverse((_, top))| *top == id);
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
            (entry.fire)();
            st = self.state.lock();
            let cancelled = st.firing.take().is_some_and(|f| f.cancelled);
            match entry.period {
                Some(period) if !cancelled && !st.closed => {
                    st.entries.insert(id, entry);
                    st.queue
                        .push(Reverse((at + period.max(Duration::from_micros(1)), id)));
                }
                _ => {
                    drop(st);
                    drop(entry);
                    st = self.state.lock();
                }
            }
        }
        let leftovers = std::mem::take(&mut st.entries);
        st.queue.clear();
        drop(st);
        drop(leftovers);
    }
}
