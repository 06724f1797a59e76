//! Request/reply (so5extra's `sync`, actors' `ask`): a [`Request`] carries
//! a query and a one-shot [`Replier`]; the asker either blocks for the
//! reply with a timeout ([`ask`], from any thread that is not the
//! receiver's own) or gets it later as an [`Answer`] message
//! ([`Environment::request`](crate::Environment::request),
//! [`Context::request`](crate::Context::request)), so a handler never
//! blocks its dispatcher thread waiting.
//!
//! Exactly one outcome reaches the asker: the reply, the timeout, or —
//! when the request is dropped unanswered — why ([`AskError`]: the
//! receiver is gone, has no handler for it in its current state, refused
//! it by a message limit, or its handler let it go). A reply after the
//! timeout is dropped, and [`Replier::reply`] says so.
//!
//! Lock order: a request's slot is a leaf; it is never held while an
//! answer is delivered or a timer is cancelled.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::dropped::{self, DropReason};
use crate::target::Target;
use crate::timer::{TimerHandle, Timers};

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No reply within the timeout.
    #[error("request `{request}`: no reply within {after:?}")]
    Timeout {
        /// The query's type.
        request: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The receiver has no handler for the request in its current state.
    #[error("request `{request}`: the receiver has no handler for it in its current state")]
    NoHandler {
        /// The query's type.
        request: &'static str,
    },
    /// The receiver is gone (deregistered, finishing, or never registered).
    #[error("request `{request}`: the receiver is gone")]
    ReceiverGone {
        /// The query's type.
        request: &'static str,
    },
    /// The receiver's message limit for requests of this type refused it.
    #[error("request `{request}`: refused by the receiver's message limit")]
    LimitReached {
        /// The query's type.
        request: &'static str,
    },
    /// The request reached a handler, which let it go without replying.
    #[error("request `{request}`: dropped by its handler without a reply")]
    Unanswered {
        /// The query's type.
        request: &'static str,
    },
}

/// Identifies a request made with
/// [`Environment::request`](crate::Environment::request), in its
/// [`Answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The outcome of a request made without blocking, delivered as a message
/// to where the asker said.
#[derive(Debug)]
pub struct Answer<R> {
    /// The request this answers.
    pub id: RequestId,
    /// The reply, or why there is none.
    pub result: Result<R, AskError>,
}

/// A request message: subscribe a handler for `Request<Q, R>` and
/// [`reply`](Self::reply) with an `R`. Derefs to the query.
pub struct Request<Q, R> {
    query: Q,
    replier: Replier<R>,
}

impl<Q, R> Request<Q, R> {
    /// The query.
    pub fn query(&self) -> &Q {
        &self.query
    }

    /// Replies; `false` if the asker no longer waits (it timed out).
    pub fn reply(self, value: R) -> bool {
        self.replier.reply(value)
    }

    /// The query and the replier, apart: keep the replier to answer later
    /// (from another message's handler, another thread).
    pub fn into_parts(self) -> (Q, Replier<R>) {
        (self.query, self.replier)
    }
}

impl<Q, R> std::ops::Deref for Request<Q, R> {
    type Target = Q;
    fn deref(&self) -> &Q {
        &self.query
    }
}

impl<Q: fmt::Debug, R> fmt::Debug for Request<Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// The one-shot answering end of a request. Dropped without a reply, it
/// tells the asker why ([`AskError`]).
pub struct Replier<R> {
    sink: Option<Arc<Sink<R>>>,
}

impl<R> Replier<R> {
    /// Sends the reply; `false` if the asker no longer waits.
    pub fn reply(mut self, value: R) -> bool {
        match self.sink.take() {
            Some(sink) => sink.complete(Ok(value)),
            None => false,
        }
    }

    /// True while the asker still waits for the reply.
    pub fn is_awaited(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.is_pending())
    }
}

impl<R> fmt::Debug for Replier<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replier")
            .field("awaited", &self.is_awaited())
            .finish()
    }
}

impl<R> Drop for Replier<R> {
    fn drop(&mut self) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let request = sink.request;
        let error = match dropped::current() {
            Some(DropReason::ReceiverGone) => AskError::ReceiverGone { request },
            Some(DropReason::NoHandler) => AskError::NoHandler { request },
            Some(DropReason::Limit) => AskError::LimitReached { request },
            None => AskError::Unanswered { request },
        };
        sink.complete(Err(error));
    }
}

type Forward<R> = Box<dyn FnOnce(Result<R, AskError>) + Send>;

enum Slot<R> {
    /// A blocked asker waits for it.
    Waiting,
    /// To be delivered as an [`Answer`]; the timeout's timer, cancelled
    /// (dropped) when the outcome is known.
    Forward(Forward<R>, Option<TimerHandle>),
    /// The outcome, for the blocked asker to take.
    Ready(Result<R, AskError>),
    /// Taken, or given up on.
    Closed,
}

/// Where a request's outcome goes; shared by the replier and the asker
/// (or the timeout's timer).
struct Sink<R> {
    slot: Mutex<Slot<R>>,
    ready: Condvar,
    request: &'static str,
}

impl<R> Sink<R> {
    fn new(request: &'static str, slot: Slot<R>) -> Arc<Sink<R>> {
        Arc::new(Sink {
            slot: Mutex::new(slot),
            ready: Condvar::new(),
            request,
        })
    }

    fn is_pending(&self) -> bool {
        matches!(*self.slot.lock(), Slot::Waiting | Slot::Forward(..))
    }

    /// Settles the request with `outcome` unless it is settled already;
    /// true if this outcome is the one the asker gets.
    fn complete(&self, outcome: Result<R, AskError>) -> bool {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Waiting => {
                *slot = Slot::Ready(outcome);
                drop(slot);
                self.ready.notify_one();
                true
            }
            Slot::Forward(forward, timer) => {
                drop(slot);
                drop(timer);
                forward(outcome);
                true
            }
            settled @ (Slot::Ready(_) | Slot::Closed) => {
                *slot = settled;
                false
            }
        }
    }
}

/// Sends `query` to `to` (an agent's [`DirectMbox`](crate::DirectMbox), a
/// [`UniqueMbox`](crate::UniqueMbox), an [`Mchain`](crate::Mchain)) and
/// blocks until the reply comes, or `timeout`
/// passes (any `Duration`; `Duration::MAX` waits for the outcome however
/// long it takes).
///
/// Call it from a thread that is not the receiver's dispatcher thread: a
/// handler asking an agent of its own thread waits for itself until the
/// timeout. From a handler, use [`Context::request`](crate::Context::request).
pub fn ask<Q, R, T>(to: &T, query: Q, timeout: Duration) -> Result<R, AskError>
where
    Q: Send + 'static,
    R: Send + 'static,
    T: Target<Request<Q, R>>,
{
    let request = std::any::type_name::<Q>();
    let sink = Sink::new(request, Slot::Waiting);
    to.deliver(Request {
        query,
        replier: Replier {
            sink: Some(sink.clone()),
        },
    });
    let deadline = Instant::now().checked_add(timeout);
    let mut slot = sink.slot.lock();
    loop {
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Ready(outcome) => return outcome,
            Slot::Waiting => *slot = Slot::Waiting,
            Slot::Forward(..) | Slot::Closed => unreachable!("a blocking request's slot"),
        }
        match deadline {
            // Past the clock's range: as long as it takes.
            None => sink.ready.wait(&mut slot),
            Some(deadline) => {
                if sink.ready.wait_until(&mut slot, deadline).timed_out() {
                    // Given up: a reply from now on is dropped.
                    return match std::mem::replace(&mut *slot, Slot::Closed) {
                        Slot::Ready(outcome) => outcome,
                        _ => Err(AskError::Timeout {
                            request,
                            after: timeout,
                        }),
                    };
                }
            }
        }
    }
}

/// Sends `query` to `to`; its outcome comes to `reply_to` as an
/// [`Answer`] (the timeout through `timers`).
pub(crate) fn request<Q, R, To, T>(
    timers: &Arc<Timers>,
    to: &To,
    query: Q,
    timeout: Duration,
    reply_to: &T,
) -> RequestId
where
    Q: Send + 'static,
    R: Send + 'static,
    To: Target<Request<Q, R>>,
    T: Target<Answer<R>> + Clone,
{
    let id = RequestId(NEXT_REQUEST.fetch_add(1, Ordering::Relaxed));
    let request = std::any::type_name::<Q>();
    let reply_to = reply_to.clone();
    let forward: Forward<R> = Box::new(move |result| reply_to.deliver(Answer { id, result }));
    let sink = Sink::new(request, Slot::Forward(forward, None));
    let on_timeout = sink.clone();
    let mut expired = Some(move || {
        on_timeout.complete(Err(AskError::Timeout {
            request,
            after: timeout,
        }));
    });
    let timer = timers.add(
        timeout,
        None,
        Box::new(move || {
            if let Some(expire) = expired.take() {
                expire();
            }
        }),
    );
    // Keep the timer with the outcome's slot, unless the outcome is known
    // (a zero timeout may have fired already).
    let stray = {
        let mut slot = sink.slot.lock();
        match &mut *slot {
            Slot::Forward(_, kept) => {
                *kept = Some(timer);
                None
            }
            _ => Some(timer),
        }
    };
    drop(stray);
    to.deliver(Request {
        query,
        replier: Replier { sink: Some(sink) },
    });
    id
}
