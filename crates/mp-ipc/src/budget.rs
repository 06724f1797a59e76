//! A byte budget shared across threads.
//!
//! A [`Budget`] owns one count: the bytes that are held right now against a
//! limit. It is shared (as an `Arc<Budget>`) by every connection of the
//! process, and those may run on several event-loop threads, so the count is
//! an atomic and the only thing that ever blocks is a task that chose to wait
//! ([`Budget::take`]).
//!
//! Every byte taken is given back exactly once: taking returns a [`Charge`],
//! which gives its bytes back when it is dropped. Nothing else ever lowers the
//! count, so a charge that is moved into whatever holds the memory (a received
//! message, a queued reply) keeps the count right however that thing ends.
//!
//! Waiting tasks are woken through a `tokio::sync::Notify`, which works across
//! threads and runtimes. Giving bytes back touches it only when some task is
//! waiting (an atomic count of waiters says so); the common case is one
//! atomic subtraction and one load.

// The transport is the only user, and `connection.rs` does not use the
// transport yet: until it does, everything here is reached only by tests.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use tokio::sync::Notify;

/// A count of bytes held against a limit, shared across threads (see the
/// module documentation). Always used as an `Arc<Budget>`: each [`Charge`]
/// keeps the budget alive so it can give its bytes back.
pub(crate) struct Budget {
    /// The most bytes [`try_take`](Budget::try_take) and
    /// [`take`](Budget::take) let be held at once.
    limit: AtomicUsize,
    /// Bytes held now: the sum of the live charges.
    used: AtomicUsize,
    /// Tasks inside [`take`](Budget::take) that are (about to be) waiting.
    waiters: AtomicUsize,
    /// Woken (all waiters) when bytes are given back or the limit changes.
    released: Notify,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .finish()
    }
}

impl Budget {
    /// A budget of `limit` bytes with nothing held.
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    /// The current limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(SeqCst)
    }

    /// Bytes held now. May be above the limit after
    /// [`take_unchecked`](Budget::take_unchecked) or a lowered limit.
    pub(crate) fn used(&self) -> usize {
        self.used.load(SeqCst)
    }

    /// Changes the limit. Charges already held stay held (even if they are
    /// now over it); tasks waiting in [`take`](Budget::take) look again.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            self.released.notify_waiters();
        }
    }

    /// Takes `n` bytes if `used + n <= limit`, else takes nothing and
    /// returns `None`.
    pub(crate) fn try_take(self: &Arc<Self>, n: usize) -> Option<Charge> {
        self.reserve(n, false).then(|| Charge::new(self.clone(), n))
    }

    /// Takes `n` bytes whatever the limit: for bytes that cannot be refused
    /// (a reply this side has already built). May push `used` over the
    /// limit, which then holds back [`try_take`](Budget::try_take) and
    /// [`take`](Budget::take) until enough is given back.
    pub(crate) fn take_unchecked(self: &Arc<Self>, n: usize) -> Charge {
        self.used.fetch_add(n, SeqCst);
        Charge::new(self.clone(), n)
    }

    /// Takes `n` bytes, waiting until they fit under the limit. A request
    /// larger than the whole limit fits when nothing else is held (so it is
    /// served, alone, instead of waiting forever). Cancel-safe: dropping the
    /// future takes nothing.
    pub(crate) async fn take(self: &Arc<Self>, n: usize) -> Charge {
        loop {
            if self.reserve(n, true) {
                return Charge::new(self.clone(), n);
            }
            // Register before counting ourselves as a waiter, and look again
            // after: a give-back either sees the count (and wakes us) or
            // happened before our second look (which then sees its bytes).
            let mut released = std::pin::pin!(self.released.notified());
            released.as_mut().enable();
            let _waiting = Waiting::new(&self.waiters);
            if self.reserve(n, true) {
                return Charge::new(self.clone(), n);
            }
            released.await;
        }
    }

    /// Adds `n` to `used` if it fits (or, with `alone_fits`, if nothing is
    /// held). Returns whether it did.
    fn reserve(&self, n: usize, alone_fits: bool) -> bool {
        let limit = self.limit.load(SeqCst);
        let mut used = self.used.load(SeqCst);
        loop {
            let fits = match used.checked_add(n) {
                Some(total) => total <= limit || (alone_fits && used == 0),
                None => false,
            };
            if !fits {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + n, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Gives `n` bytes back (only a [`Charge`] does this) and wakes waiters,
    /// if there are any.
    fn give_back(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            self.released.notify_waiters();
        }
    }
}

/// Counts a task as waiting in [`Budget::take`] while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts one more waiter.
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Bytes taken from a [`Budget`]; given back when this is dropped. `Send`,
/// so it can travel with what it accounts for.
#[must_use = "a charge gives its bytes back as soon as it is dropped"]
pub(crate) struct Charge {
    /// Where the bytes go back to.
    budget: Arc<Budget>,
    /// Bytes this charge holds.
    bytes: usize,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Charge {
    /// A charge for `bytes` already added to `budget`'s count.
    fn new(budget: Arc<Budget>, bytes: usize) -> Self {
        Charge { budget, bytes }
    }

    /// Bytes this charge holds.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `f` on a fresh current-thread runtime, failing the test if it
    /// takes longer than a generous bound (a hang, not a timing check).
    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), f)
                    .await
                    .expect("the test hung")
            })
    }

    /// Every take (checked, unchecked) shows in `used`, and each charge
    /// gives back exactly its bytes once.
    #[test]
    fn charges_are_counted_and_given_back_once() {
        let budget = Budget::new(100);
        let a = budget.try_take(30).expect("fits");
        let b = budget.take_unchecked(20);
        assert_eq!((a.bytes(), b.bytes()), (30, 20));
        assert_eq!(budget.used(), 50);
        drop(a);
        assert_eq!(budget.used(), 20);
        let c = budget.try_take(80).expect("fits");
        assert_eq!(c.bytes(), 80);
        assert_eq!(budget.used(), 100);
        let d = budget.take_unchecked(5);
        assert_eq!((d.bytes(), budget.used()), (5, 105));
        drop(d);
        drop(b);
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    /// A checked take past the limit is refused and takes nothing; unchecked
    /// takes may go over; the limit can move.
    #[test]
    fn over_the_limit_is_refused() {
        let budget = Budget::new(100);
        let held = budget.try_take(60).expect("fits");
        assert!(budget.try_take(41).is_none());
        assert_eq!(budget.used(), 60, "a refusal takes nothing");
        let grown = budget.try_take(40).expect("exactly the limit fits");
        assert!(budget.try_take(1).is_none());
        assert_eq!(grown.bytes(), 40);
        assert!(budget.try_take(usize::MAX).is_none(), "no overflow");
        // Unchecked takes go over; then even small checked ones are refused.
        let over = budget.take_unchecked(10);
        assert_eq!(budget.used(), 110);
        assert!(budget.try_take(1).is_none());
        drop((held, grown, over));
        assert_eq!(budget.used(), 0);
        // A lower limit refuses what used to fit; a higher one admits it.
        budget.set_limit(10);
        assert_eq!(budget.limit(), 10);
        assert!(budget.try_take(11).is_none());
        budget.set_limit(11);
        assert!(budget.try_take(11).is_some());
    }

    /// `take` returns at once when the bytes fit, and serves a request larger
    /// than the limit when nothing else is held.
    #[test]
    fn take_fits_at_once_and_a_request_over_the_limit_runs_alone() {
        let budget = Budget::new(100);
        run(async {
            let a = budget.take(100).await;
            assert_eq!(budget.used(), 100);
            drop(a);
            // Larger than the whole limit: served when nothing else is held.
            let big = budget.take(1000).await;
            assert_eq!(budget.used(), 1000);
            assert!(budget.try_take(1).is_none());
            drop(big);
            assert_eq!(budget.used(), 0);
        });
    }

    /// A task waiting in `take` on another thread's runtime wakes when a charge
    /// is dropped here.
    #[test]
    fn a_waiter_on_another_thread_wakes_when_a_charge_drops() {
        let budget = Budget::new(100);
        let held = budget.try_take(80).expect("fits");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                run(async {
                    let take = budget.take(50);
                    let mut take = std::pin::pin!(take);
                    // It cannot fit yet: the first poll must leave it waiting.
                    assert!(futures::poll!(take.as_mut()).is_pending());
                    started_tx.send(()).expect("main thread alive");
                    let charge = take.await;
                    charge.bytes()
                })
            })
        };
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the waiter started");
        assert_eq!(budget.used(), 80, "a waiter holds nothing");
        drop(held);
        // The waiter's runtime bounds it: a missed wake-up fails the test.
        assert_eq!(waiter.join().expect("waiter thread"), 50);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.waiters.load(SeqCst), 0);
    }

    /// Raising the limit wakes a waiter; a waiter dropped while waiting leaves
    /// no count behind.
    #[test]
    fn raising_the_limit_wakes_a_waiter_and_cancelling_takes_nothing() {
        let budget = Budget::new(10);
        let held = budget.try_take(10).expect("fits");
        run(async {
            {
                let take = budget.take(5);
                let mut take = std::pin::pin!(take);
                assert!(futures::poll!(take.as_mut()).is_pending());
                // Dropped here, while waiting.
            }
            assert_eq!(budget.waiters.load(SeqCst), 0);
            assert_eq!(budget.used(), 10);
            let take = budget.take(5);
            let mut take = std::pin::pin!(take);
            assert!(futures::poll!(take.as_mut()).is_pending());
            budget.set_limit(15);
            let charge = take.await;
            assert_eq!((charge.bytes(), budget.used()), (5, 15));
        });
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    /// Charges and budgets can move between threads.
    #[test]
    fn charges_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Charge>();
        assert_send::<Arc<Budget>>();
    }
}
