//! The one error type of mp-thread. Every variant names the thread involved,
//! so a failure seen far from its cause still says where it happened.

use std::thread::ThreadId;

/// What can go wrong when handing work to a thread or waiting on one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thread's mailbox is closed: the worker was shut down or the
    /// thread that owned the waiter has exited. The job was not run.
    #[error("thread `{0}` no longer accepts work: its mailbox is closed")]
    Closed(String),

    /// The job panicked; the worker caught it and goes on serving.
    #[error("job on thread `{thread}` panicked: {message}")]
    Panicked {
        /// Name of the thread the job ran on.
        thread: String,
        /// The panic payload, if it was a string.
        message: String,
    },

    /// The job was discarded before it could reply (its thread closed with
    /// the job still queued).
    #[error("the job was discarded before it replied (thread `{0}` closed first)")]
    ReplyDropped(String),

    /// A thread asked to wait for its own exit; that can never finish.
    #[error("thread `{0}` cannot wait for its own exit (that would be a self-join)")]
    WouldJoinSelf(String),

    /// A value bound to one thread was used on another.
    #[error("value bound to thread {home:?} was used on thread {current:?}")]
    WrongThread {
        /// The value's home thread.
        home: ThreadId,
        /// The thread that tried to use it.
        current: ThreadId,
    },

    /// The operating system refused to start a thread.
    #[error("could not start thread `{name}`: {source}")]
    Spawn {
        /// Name of the thread that could not start.
        name: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A bounded wait ran out of time.
    #[error("timed out waiting for thread `{0}`")]
    Timeout(String),
}

/// Turns a panic payload into text for an error or a log line.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
