//! `CancelToken`: how a running call learns that its caller gave up.
//!
//! A caller gives up on a call when its deadline passes or when it drops
//! the future of an async call. Its side then drops the call's reply
//! promise, and capnp-rpc sends the peer Cap'n Proto's `Finish` for it (a
//! disconnect does the same for every call in flight). On the serving side
//! `Finish` drops the call's dispatch future: a call still queued for its
//! server thread is taken out and never runs, and a call already running
//! has its token cancelled. The implementation, a method of a generated
//! trait whose signature does not change, finds the token of the call it
//! serves with [`CancelToken::current`], and may poll it, wait on it, or
//! ignore it (then the reply it returns is dropped, as a peer that does
//! not know `Finish` would have it be).
//!
//! Invariant 7 (every blocking wait ends): [`CancelToken::wait_timeout`]
//! is bounded by its timeout; a token is cancelled at most once, and the
//! flag is set before waiters are woken, under the lock they wait on.
//! Invariant 5: the token is found through the serving thread's context
//! (its stack of calls being served), not through a global.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The cancellation state of one incoming call. Cheap to clone; every
/// clone sees the same state.
///
/// ```
/// use std::time::Duration;
///
/// // Outside a served call there is no token.
/// assert!(mp_ipc::CancelToken::current().is_none());
///
/// // Inside one (a method of a generated trait), an implementation that
/// // works for a long time looks at it between steps:
/// fn long_work() -> Result<(), mp_ipc::Error> {
///     let token = mp_ipc::CancelToken::current();
///     for _step in 0..10 {
///         if token.as_ref().is_some_and(|t| t.is_cancelled()) {
///             return Err(mp_ipc::Error::failed("cancelled by the caller"));
///         }
///         std::thread::sleep(Duration::from_millis(1));
///     }
///     Ok(())
/// }
/// long_work().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: Mutex<bool>,
    cv: Condvar,
    /// Wakes async waiters ([`CancelToken::cancelled`]).
    notify: tokio::sync::Notify,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// The token of the innermost incoming call this thread is serving, or
    /// `None` if it serves none (or is being torn down).
    pub fn current() -> Option<CancelToken> {
        mp_thread::context::with(|s: &Tokens| s.0.borrow().last().cloned()).flatten()
    }

    /// A token not yet cancelled, for a call about to be served.
    pub(crate) fn new() -> CancelToken {
        CancelToken::default()
    }

    /// True once the caller has given up on the call (its deadline passed,
    /// it dropped the call's future, or the connection went away).
    pub fn is_cancelled(&self) -> bool {
        *self.inner.cancelled.lock()
    }

    /// Blocks until the call is cancelled or `timeout` has passed; true if
    /// it was cancelled. For a blocking implementation that would otherwise
    /// sleep.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut cancelled = self.inner.cancelled.lock();
        while !*cancelled {
            if self
                .inner
                .cv
                .wait_until(&mut cancelled, deadline)
                .timed_out()
            {
                break;
            }
        }
        *cancelled
    }

    /// Completes once the call is cancelled: for async work inside an
    /// implementation (`select` it against the work).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Cancels the call: sets the flag, then wakes every waiter.
    pub(crate) fn cancel(&self) {
        let mut cancelled = self.inner.cancelled.lock();
        if *cancelled {
            return;
        }
        *cancelled = true;
        drop(cancelled);
        self.inner.cv.notify_all();
        self.inner.notify.notify_waiters();
    }
}

/// The tokens of the calls this thread is serving, innermost last: a slot
/// of the thread's context.
#[derive(Default)]
struct Tokens(RefCell<Vec<CancelToken>>);

/// Makes `token` this thread's current one until the guard drops: held by
/// the server thread while it runs the call.
pub(crate) fn serving(token: CancelToken) -> Serving {
    mp_thread::context::with(|s: &Tokens| s.0.borrow_mut().push(token));
    Serving(())
}

/// Keeps a token current; see [`serving`].
pub(crate) struct Serving(());

impl Drop for Serving {
    fn drop(&mut self) {
        let popped = mp_thread::context::with(|s: &Tokens| s.0.borrow_mut().pop());
        drop(popped);
    }
}

#[cfg(test)]
mod tests {
    use super::CancelToken;
    use std::time::Duration;

    #[test]
    fn a_waiting_thread_sees_the_cancel() {
        let token = CancelToken::new();
        let waiting = {
            let token = token.clone();
            std::thread::spawn(move || token.wait_timeout(Duration::from_secs(30)))
        };
        token.cancel();
        assert!(waiting.join().unwrap());
        assert!(token.is_cancelled());
    }

    #[test]
    fn an_uncancelled_wait_times_out() {
        let token = CancelToken::new();
        assert!(!token.wait_timeout(Duration::from_millis(5)));
    }

    #[test]
    fn an_async_waiter_sees_a_cancel_made_before_or_during_its_wait() {
        let token = CancelToken::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let waiter = token.clone();
        let canceller = token.clone();
        rt.block_on(async move {
            let wait = tokio::spawn(async move { waiter.cancelled().await });
            tokio::task::yield_now().await;
            canceller.cancel();
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .expect("watchdog")
                .unwrap();
        });
        // Already cancelled: completes at once.
        rt.block_on(token.cancelled());
    }
}
