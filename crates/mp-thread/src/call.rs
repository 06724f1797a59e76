//! Running a closure on another thread and waiting for its result: the one
//! protocol behind [`Worker::sync`](crate::Worker::sync) and the event
//! loop's `sync` in mp-ipc, whose mailbox is not a [`Waiter`].
//!
//! Invariant 3: the closure is consumed by the job, so what it captured is
//! dropped on the target thread before the reply is sent. Invariant 7: the
//! caller waits through its own [`Waiter`] (running the jobs posted to it,
//! so a target that calls back cannot deadlock it), and a job dropped
//! unrun drops its reply sender, which ends the wait.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{panic_message, Error};
use crate::waiter::{Job, Waiter};

/// Runs `f` on the thread named `thread` and returns its result.
///
/// - `on_target`: the caller *is* that thread; `f` runs inline.
/// - otherwise `post` queues a job there (giving it back if the mailbox is
///   closed), and the caller waits for the reply through its own
///   [`Waiter`], running the jobs posted to it meanwhile.
///
/// A panic in `f` comes back as [`Error::Panicked`] naming the thread, on
/// either path; a job refused or dropped unrun (its thread stopped) as
/// [`Error::Closed`].
///
/// ```
/// use mp_thread::{sync_call, Error, Worker};
///
/// let worker = Worker::spawn("target").unwrap();
/// let post = |job| worker.post_job(job);
/// assert_eq!(sync_call("target", false, post, || 6 * 7).unwrap(), 42);
/// let panicked = sync_call("target", false, |job| worker.post_job(job), || -> u32 {
///     panic!("bad input")
/// });
/// assert!(matches!(panicked, Err(Error::Panicked { ref message, .. }) if message == "bad input"));
/// ```
pub fn sync_call<R, F>(
    thread: &str,
    on_target: bool,
    post: impl FnOnce(Job) -> Result<(), Job>,
    f: F,
) -> Result<R, Error>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let panicked = |message| Error::Panicked {
        thread: thread.to_string(),
        message,
    };
    if on_target {
        return catch_unwind(AssertUnwindSafe(f)).map_err(|p| panicked(panic_message(&*p)));
    }
    let me = Waiter::current();
    let (tx, rx) = me.reply_channel::<Result<R, String>>();
    post(Box::new(move || {
        // `f` is consumed here, so its captures die before `send`.
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p));
        tx.send(result);
    }))
    .map_err(|_refused| Error::Closed(thread.to_string()))?;
    match me.wait(rx) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(panicked(message)),
        Err(Error::ReplyDropped(_)) => Err(Error::Closed(thread.to_string())),
        Err(other) => Err(other),
    }
}
