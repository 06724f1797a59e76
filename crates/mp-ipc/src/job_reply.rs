//! `JobReply`: the reply end of a call the event loop hands to a server
//! thread (or, for a callback, to the thread that waits for it).
//!
//! Invariant 2 (a value tied to a thread is used and dropped on that
//! thread), at the moment invariant 5's teardown runs: the receiving end
//! is awaited by a task in the
//! loop's `LocalSet`, and waking such a task from another thread reads
//! tokio's thread-local on the waking thread. A job can be dropped unrun
//! from a thread-local destructor: a thread that exits with a call still
//! queued in its mailbox drops it while its context is torn down, and by
//! then tokio's thread-locals on that thread may already be gone (the
//! order thread-locals are destroyed in is not specified). A wake from
//! there would panic inside a destructor and abort the process.
//!
//! So a reply end sent or dropped while its thread exits goes home: the
//! send or the drop is posted to the loop (for a drop, the loop's task then
//! sees the sender gone and fails the call, "stopped before replying").
//! Everywhere else it is sent or dropped where it is, as a plain sender
//! would be, and so is one whose receiver is already gone (there is no task
//! left to wake). If the loop no longer
//! takes jobs while its task is still being dropped, the sender is leaked
//! with a warning rather than dropped where it must not be (the same rule
//! as mp-thread's `ThreadBound`).

use std::sync::Arc;

use futures::channel::oneshot;
use mp_thread::Executor;

/// The sending end of a job's reply; see the module docs.
pub(crate) struct JobReply<T: Send + 'static> {
    tx: Option<oneshot::Sender<T>>,
    home: Arc<dyn Executor>,
}

impl<T: Send + 'static> JobReply<T> {
    /// A reply channel whose receiver is awaited on the loop `home` runs
    /// jobs on.
    pub(crate) fn channel(home: Arc<dyn Executor>) -> (JobReply<T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (JobReply { tx: Some(tx), home }, rx)
    }

    /// Sends the reply. The value is dropped if the loop has stopped
    /// awaiting it.
    pub(crate) fn send(mut self, value: T) {
        if let Some(tx) = self.tx.take() {
            // A job can run on an exiting thread too: a `Drop` run by the
            // thread's teardown that waits serves a fresh mailbox.
            self.finish(tx, move |tx| {
                let _ = tx.send(value);
            });
        }
    }

    /// Sends or drops `tx` (what `end` does) here, or on the loop while
    /// this thread is exiting and the receiver still has a task to wake.
    fn finish(
        &self,
        tx: oneshot::Sender<T>,
        end: impl FnOnce(oneshot::Sender<T>) + Send + 'static,
    ) {
        if !mp_thread::context::is_exiting() || tx.is_canceled() {
            return end(tx);
        }
        if let Err(refused) = self.home.execute(Box::new(move || end(tx))) {
            tracing::warn!(
                "a call's reply sender was left by an exiting thread after its event loop \
                 stopped; it is leaked rather than dropped there"
            );
            std::mem::forget(refused);
        }
    }
}

impl<T: Send + 'static> Drop for JobReply<T> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.finish(tx, drop);
        }
    }
}
