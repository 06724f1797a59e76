//! Receiving from chains: [`receive`] from one chain and [`select`] from
//! whichever of several chains has a message first, each message handed by
//! value to the handler registered for its type ([`Handlers`]), within
//! limits ([`handle_n`](ReceiveFrom::handle_n),
//! [`extract_n`](ReceiveFrom::extract_n), a stop predicate) and timeouts
//! ([`empty_timeout`](ReceiveFrom::empty_timeout),
//! [`total_time`](ReceiveFrom::total_time)).
//!
//! ```
//! use std::time::Duration;
//! use mp_agents::{from, launch, receive, Handlers, MchainParams, ReceiveStatus};
//!
//! launch(|env| {
//!     let ch = env.create_mchain(MchainParams::unbounded());
//!     ch.send(1u32).unwrap();
//!     ch.send("two").unwrap();
//!     let (mut sum, mut words) = (0, Vec::new());
//!     let r = receive(
//!         from(&ch).handle_n(2).empty_timeout(Duration::from_secs(10)),
//!         Handlers::new().on(|n: u32| sum += n).on(|w: &str| words.push(w)),
//!     );
//!     assert_eq!((r.handled, r.status), (2, ReceiveStatus::Limit));
//!     assert_eq!((sum, words), (1, vec!["two"]));
//!     env.stop();
//! })
//! .unwrap();
//! ```
//!
//! Handlers run on the receiving thread with no lock held; they need not
//! be `Send` and may borrow the caller's locals. A message of a type no
//! handler takes is extracted and dropped by the receiver.
//!
//! `select` waits with a [`Waker`] of its own registered in each chain it
//! waits on (under that chain's lock, after finding it empty under the same
//! lock, so no message slips between the check and the wait); a send wakes
//! every registered select and one plain receiver. A plain receiver that
//! was woken but leaves without taking a message (its total time is up)
//! passes the wake-up on, so a message never waits while a receiver sleeps.

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mp_thread::sync::{Condvar, Mutex};

use super::{deadline, ChainInner, Mchain, Msg, Pop};

type Handler<'h> = Box<dyn FnMut(Msg) + 'h>;

/// Handlers by message type, for [`receive`] and [`case`].
#[derive(Default)]
pub struct Handlers<'h> {
    list: Vec<(TypeId, Handler<'h>)>,
}

impl std::fmt::Debug for Handlers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("count", &self.list.len())
            .finish()
    }
}

impl<'h> Handlers<'h> {
    /// No handlers yet.
    pub fn new() -> Handlers<'h> {
        Handlers { list: Vec::new() }
    }

    /// Handles messages of type `M` (the closure's argument type). A second
    /// handler for the same type replaces the first.
    pub fn on<M, F>(mut self, mut handler: F) -> Handlers<'h>
    where
        M: Send + 'static,
        F: FnMut(M) + 'h,
    {
        let erased: Handler<'h> = Box::new(move |msg: Msg| {
            if let Ok(m) = msg.payload.downcast::<M>() {
                handler(*m);
            }
        });
        let ty = TypeId::of::<M>();
        match self.list.iter_mut().find(|(t, _)| *t == ty) {
            Some(slot) => slot.1 = erased,
            None => self.list.push((ty, erased)),
        }
        self
    }

    /// Hands `msg` to its handler; false (and the message dropped here) if
    /// there is none.
    fn dispatch(&mut self, msg: Msg) -> bool {
        match self.list.iter_mut().find(|(t, _)| *t == msg.ty) {
            Some((_, handler)) => {
                handler(msg);
                true
            }
            None => false,
        }
    }
}

/// Why a [`receive`] or [`select`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveStatus {
    /// `handle_n` or `extract_n` was reached.
    Limit,
    /// The stop predicate said stop.
    Stopped,
    /// The chains stayed empty for the empty timeout (at once with
    /// `no_wait_on_empty`).
    EmptyTimeout,
    /// The total time was up.
    TotalTime,
    /// The chain (for `select`: every chain) is closed and holds nothing
    /// more.
    Closed,
}

/// What a [`receive`] or [`select`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveResult {
    /// Messages taken out of the chains (handled or not).
    pub extracted: usize,
    /// Messages a handler took.
    pub handled: usize,
    /// Why it returned.
    pub status: ReceiveStatus,
}

impl ReceiveResult {
    /// True if it returned because the chain(s) are closed.
    pub fn is_closed(&self) -> bool {
        self.status == ReceiveStatus::Closed
    }
}

/// Limits and timeouts shared by [`ReceiveFrom`] and [`SelectFrom`].
#[derive(Default)]
struct Limits<'p> {
    handle_n: Option<usize>,
    extract_n: Option<usize>,
    empty_timeout: Option<Duration>,
    total_time: Option<Duration>,
    stop_on: Option<Box<dyn FnMut() -> bool + 'p>>,
}

macro_rules! limit_methods {
    () => {
        /// Returns once `n` messages have been handled.
        pub fn handle_n(mut self, n: usize) -> Self {
            self.limits.handle_n = Some(n);
            self
        }

        /// Returns once `n` messages have been extracted (handled or not).
        pub fn extract_n(mut self, n: usize) -> Self {
            self.limits.extract_n = Some(n);
            self
        }

        /// Returns when the chain stays empty for `timeout` (measured from
        /// when it is found empty). Without it, an empty chain is waited
        /// on until a message comes, the chain closes or the total time is
        /// up.
        pub fn empty_timeout(mut self, timeout: Duration) -> Self {
            self.limits.empty_timeout = Some(timeout);
            self
        }

        /// Returns at once when the chain is empty (an empty timeout of 0).
        pub fn no_wait_on_empty(self) -> Self {
            self.empty_timeout(Duration::ZERO)
        }

        /// Returns once `limit` has passed since the receive began, even if
        /// messages are waiting (checked before each extraction and while
        /// waiting).
        pub fn total_time(mut self, limit: Duration) -> Self {
            self.limits.total_time = Some(limit);
            self
        }

        /// Returns when `stop` says so; it is asked after each handled
        /// message.
        pub fn stop_on<F: FnMut() -> bool + 'a>(mut self, stop: F) -> Self {
            self.limits.stop_on = Some(Box::new(stop));
            self
        }
    };
}

/// What to [`receive`] from one chain, and for how long: made by [`from`].
pub struct ReceiveFrom<'a> {
    chain: &'a Mchain,
    limits: Limits<'a>,
}

impl std::fmt::Debug for ReceiveFrom<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveFrom")
            .field("chain", self.chain)
            .finish_non_exhaustive()
    }
}

impl<'a> ReceiveFrom<'a> {
    limit_methods!();
}

/// Limits and timeouts of a [`select`]: made by [`from_all`].
pub struct SelectFrom<'a> {
    limits: Limits<'a>,
}

impl std::fmt::Debug for SelectFrom<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectFrom").finish_non_exhaustive()
    }
}

impl<'a> SelectFrom<'a> {
    limit_methods!();
}

/// Starts describing a [`receive`] from `chain`. With no limit, no timeout
/// and no stop predicate, the receive goes on until the chain is closed
/// and drained.
pub fn from(chain: &Mchain) -> ReceiveFrom<'_> {
    ReceiveFrom {
        chain,
        limits: Limits::default(),
    }
}

/// Starts describing a [`select`]. With no limit, no timeout and no stop
/// predicate, the select goes on until every chain is closed and drained.
pub fn from_all<'a>() -> SelectFrom<'a> {
    SelectFrom {
        limits: Limits::default(),
    }
}

/// One chain of a [`select`] with its handlers.
pub struct Case<'a> {
    chain: &'a Mchain,
    handlers: Handlers<'a>,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("chain", self.chain)
            .field("handlers", &self.handlers)
            .finish()
    }
}

/// A case of a [`select`]: messages taken from `chain` go to `handlers`.
pub fn case<'a>(chain: &'a Mchain, handlers: Handlers<'a>) -> Case<'a> {
    Case { chain, handlers }
}

/// Where a receive or select stands.
struct Run<'p> {
    limits: Limits<'p>,
    total_until: Option<Instant>,
    extracted: usize,
    handled: usize,
}

impl<'p> Run<'p> {
    fn new(limits: Limits<'p>) -> Run<'p> {
        Run {
            total_until: limits.total_time.and_then(deadline),
            limits,
            extracted: 0,
            handled: 0,
        }
    }

    fn result(&self, status: ReceiveStatus) -> ReceiveResult {
        ReceiveResult {
            extracted: self.extracted,
            handled: self.handled,
            status,
        }
    }

    fn at_limit(&self) -> bool {
        self.limits.handle_n.is_some_and(|n| self.handled >= n)
            || self.limits.extract_n.is_some_and(|n| self.extracted >= n)
    }

    fn total_passed(&self) -> bool {
        self.total_until.is_some_and(|t| Instant::now() >= t)
    }

    /// Counts one extracted message; the status to return with, if done.
    fn record(&mut self, handled: bool) -> Option<ReceiveStatus> {
        self.extracted += 1;
        if handled {
            self.handled += 1;
            if self.limits.stop_on.as_mut().is_some_and(|stop| stop()) {
                return Some(ReceiveStatus::Stopped);
            }
        }
        self.at_limit().then_some(ReceiveStatus::Limit)
    }

    /// The deadline of a wait that began on empty chains at `since`.
    fn wait_until(&self, since: Instant) -> Option<Instant> {
        let empty = self.limits.empty_timeout.and_then(|d| since.checked_add(d));
        match (empty, self.total_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The status of a wait that timed out.
    fn timeout_status(&self) -> ReceiveStatus {
        if self.total_passed() {
            ReceiveStatus::TotalTime
        } else {
            ReceiveStatus::EmptyTimeout
        }
    }
}

/// Receives from one chain: each message extracted goes, by value, to the
/// handler for its type, until a limit, a timeout, the stop predicate, or
/// the chain being closed and empty ends it. Blocks the calling thread
/// while the chain is empty.
pub fn receive(from: ReceiveFrom<'_>, mut handlers: Handlers<'_>) -> ReceiveResult {
    let chain: &ChainInner = &from.chain.inner;
    let mut run = Run::new(from.limits);
    if run.at_limit() {
        return run.result(ReceiveStatus::Limit);
    }
    let mut empty_since: Option<Instant> = None;
    loop {
        let mut st = chain.state.lock();
        if run.total_passed() {
            if !st.queue.is_empty() {
                // We may have taken a wake-up meant for a message we leave.
                chain.not_empty.notify_one();
            }
            return run.result(ReceiveStatus::TotalTime);
        }
        let msg = match chain.pop_locked(&mut st) {
            Pop::Msg(m) => m,
            Pop::Closed => return run.result(ReceiveStatus::Closed),
            Pop::Empty => {
                let until = run.wait_until(*empty_since.get_or_insert_with(Instant::now));
                let mut timed_out = false;
                while st.queue.is_empty() && !st.closed {
                    match until {
                        None => chain.not_empty.wait(&mut st),
                        Some(t) => {
                            if chain.not_empty.wait_until(&mut st, t).timed_out() {
                                timed_out = st.queue.is_empty() && !st.closed;
                                break;
                            }
                        }
                    }
                }
                if timed_out {
                    return run.result(run.timeout_status());
                }
                continue;
            }
        };
        drop(st);
        empty_since = None;
        let handled = handlers.dispatch(msg);
        if let Some(status) = run.record(handled) {
            return run.result(status);
        }
    }
}

/// Receives from whichever chain of `cases` has a message first, handing
/// it to that case's handlers, until a limit, a timeout, the stop
/// predicate, or every chain being closed and empty ends it. Chains are
/// scanned round-robin so a busy one does not starve the others. With no
/// case it returns `Closed` at once.
pub fn select<'a>(
    from: SelectFrom<'a>,
    cases: impl IntoIterator<Item = Case<'a>>,
) -> ReceiveResult {
    let mut cases: Vec<Case<'a>> = cases.into_iter().collect();
    let mut run = Run::new(from.limits);
    if run.at_limit() {
        return run.result(ReceiveStatus::Limit);
    }
    let n = cases.len();
    let waker = Arc::new(Waker::default());
    let mut empty = vec![false; n];
    let mut next = 0;
    let mut empty_since: Option<Instant> = None;
    'scan: loop {
        if run.total_passed() {
            return run.result(ReceiveStatus::TotalTime);
        }
        let mut any_open = false;
        for k in 0..n {
            let i = (next + k) % n;
            empty[i] = false;
            match cases[i].chain.inner.pop() {
                Pop::Msg(msg) => {
                    next = (i + 1) % n;
                    empty_since = None;
                    let handled = cases[i].handlers.dispatch(msg);
                    if let Some(status) = run.record(handled) {
                        return run.result(status);
                    }
                    continue 'scan;
                }
                Pop::Empty => {
                    empty[i] = true;
                    any_open = true;
                }
                Pop::Closed => {}
            }
        }
        if !any_open {
            return run.result(ReceiveStatus::Closed);
        }
        let until = run.wait_until(*empty_since.get_or_insert_with(Instant::now));
        waker.reset();
        let mut ready = false;
        for (case, _) in cases.iter().zip(&empty).filter(|(_, e)| **e) {
            ready |= !case.chain.inner.register(&waker);
        }
        let woken = ready || waker.wait(until);
        for (case, _) in cases.iter().zip(&empty).filter(|(_, e)| **e) {
            case.chain.inner.unregister(&waker);
        }
        if !woken {
            return run.result(run.timeout_status());
        }
    }
}

/// Wakes a [`select`] waiting on several chains.
#[derive(Default)]
pub(crate) struct Waker {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl Waker {
    /// Called by a chain, under its lock, when it gets a message or closes.
    pub(crate) fn wake(&self) {
        *self.fired.lock() = true;
        self.cv.notify_one();
    }

    fn reset(&self) {
        *self.fired.lock() = false;
    }

    /// Waits for a wake-up until `until`; false if it timed out.
    fn wait(&self, until: Option<Instant>) -> bool {
        let mut fired = self.fired.lock();
        while !*fired {
            match until {
                None => self.cv.wait(&mut fired),
                Some(t) => {
                    if self.cv.wait_until(&mut fired, t).timed_out() {
                        break;
                    }
                }
            }
        }
        *fired
    }
}

impl ChainInner {
    /// Registers a select's waker; false (not registered) if the chain is
    /// no longer empty and open, so the select must scan again.
    fn register(&self, waker: &Arc<Waker>) -> bool {
        let mut st = self.state.lock();
        if !st.queue.is_empty() || st.closed {
            return false;
        }
        st.selectors.push(waker.clone());
        true
    }

    fn unregister(&self, waker: &Arc<Waker>) {
        // Never the last handle (the select holds one): nothing to drop.
        self.state
            .lock()
            .selectors
            .retain(|w| !Arc::ptr_eq(w, waker));
    }
}
