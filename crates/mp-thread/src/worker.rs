//! `Worker`: a named OS thread that runs the jobs posted to its mailbox.
//!
//! Invariant 1: a worker's join handle belongs to the [`Reaper`]. Dropping
//! the last `Worker` handle — on any thread, the worker's own included —
//! only closes the mailbox; the worker finishes what is queued, its thread
//! returns, and the reaper joins it. No `Drop` here blocks.
//!
//! Invariant 3: in [`Worker::sync`] the job's captures are consumed by the
//! call and so dropped before the reply is sent; the caller never sees the
//! result while the job still holds anything it captured.

use std::thread::ThreadId;

use crate::error::Error;
use crate::reaper::{Reaper, ThreadHandle};
use crate::sync::Arc;
use crate::waiter::{Job, Waiter};

/// A handle to a worker thread. Clone it freely; the worker stops taking
/// work when the last clone is dropped.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    mailbox: Waiter,
    thread: ThreadHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never a join: the thread drains its queue and the reaper joins it.
        self.mailbox.close_after_queued();
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name())
            .field("thread", &self.thread_id())
            .finish()
    }
}

impl Worker {
    /// Starts a worker thread called `name`, reaped by [`Reaper::global`].
    pub fn spawn(name: impl Into<String>) -> Result<Worker, Error> {
        Worker::spawn_with(Reaper::global(), name)
    }

    /// Starts a worker thread called `name`, reaped by `reaper`.
    pub fn spawn_with(reaper: &Reaper, name: impl Into<String>) -> Result<Worker, Error> {
        Worker::spawn_busy_waiting(reaper, name, std::time::Duration::ZERO)
    }

    /// Starts a worker thread called `name`, reaped by `reaper`, that polls
    /// for new jobs for up to `busy_wait` whenever its mailbox runs empty,
    /// before it sleeps: for a thread fed in quick bursts by other running
    /// threads, where waking it each time would cost far more than the
    /// work (see [`Backoff`](crate::Backoff)).
    pub fn spawn_busy_waiting(
        reaper: &Reaper,
        name: impl Into<String>,
        busy_wait: std::time::Duration,
    ) -> Result<Worker, Error> {
        Worker::builder(name)
            .reaper(reaper)
            .busy_wait(busy_wait)
            .spawn()
    }

    /// A builder for a worker with a stack size, a busy-wait, a reaper of
    /// its own or a value to drop when its thread exits.
    ///
    /// ```
    /// use mp_thread::Worker;
    ///
    /// let worker = Worker::builder("deep")
    ///     .stack_size(8 << 20)
    ///     .spawn()
    ///     .unwrap();
    /// assert_eq!(worker.sync(|| 1 + 1).unwrap(), 2);
    /// ```
    pub fn builder(name: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder {
            name: name.into(),
            reaper: None,
            stack_size: None,
            busy_wait: std::time::Duration::ZERO,
            on_exit: None,
        }
    }

    /// The worker's name (also its OS thread name).
    pub fn name(&self) -> &str {
        self.inner.mailbox.name()
    }

    /// The worker's thread id.
    pub fn thread_id(&self) -> ThreadId {
        self.inner.thread.id()
    }

    /// The worker's mailbox.
    pub fn waiter(&self) -> &Waiter {
        &self.inner.mailbox
    }

    /// A handle that tells when the reaper has joined this worker's thread.
    pub fn thread_handle(&self) -> ThreadHandle {
        self.inner.thread.clone()
    }

    /// True if called on this worker's own thread.
    pub fn is_current(&self) -> bool {
        self.inner.mailbox.is_current()
    }

    /// Queues `f` to run on the worker (fire and forget). A panic in `f` is
    /// logged and the worker goes on.
    pub fn post<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Error> {
        self.inner.mailbox.post(f)
    }

    /// Queues a boxed job; on a closed mailbox the job comes back unrun.
    pub fn post_job(&self, job: Job) -> Result<(), Job> {
        self.inner.mailbox.post_job(job)
    }

    /// Queues `f(value)` on the worker; on a closed mailbox `value` comes
    /// back, so the caller decides where it is dropped (or sends it
    /// elsewhere) — a boxed job could not give it back.
    pub fn post_with<T, F>(&self, value: T, f: F) -> Result<(), T>
    where
        T: Send + 'static,
        F: FnOnce(T) + Send + 'static,
    {
        self.inner.mailbox.post_with(value, f)
    }

    /// Runs `f` on the worker and returns its result. On the worker itself
    /// it runs inline. While waiting, the calling thread runs jobs posted to
    /// its own [`Waiter`], so a worker that `sync`s back to the caller cannot
    /// deadlock it. A panic in `f` comes back as [`Error::Panicked`].
    pub fn sync<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        crate::call::sync_call(self.name(), self.is_current(), |job| self.post_job(job), f)
    }

    /// Closes the mailbox now (as dropping the last handle would): queued
    /// jobs still run, new posts fail. Does not wait.
    pub fn shutdown(&self) {
        self.inner.mailbox.close_after_queued();
    }
}

/// Sets up a [`Worker`]; see [`Worker::builder`].
#[must_use = "a builder does nothing until `spawn`"]
pub struct WorkerBuilder {
    name: String,
    reaper: Option<Reaper>,
    stack_size: Option<usize>,
    busy_wait: std::time::Duration,
    on_exit: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .field("busy_wait", &self.busy_wait)
            .finish()
    }
}

impl WorkerBuilder {
    /// The reaper that joins the thread (default: [`Reaper::global`]).
    pub fn reaper(mut self, reaper: &Reaper) -> Self {
        self.reaper = Some(reaper.clone());
        self
    }

    /// The thread's stack size in bytes (default: std's, 2 MiB unless
    /// `RUST_MIN_STACK` says otherwise). Stack pages are committed only as
    /// they are touched, so a large stack costs address space, not memory.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Polls for new jobs this long before sleeping (default: zero); see
    /// [`Worker::spawn_busy_waiting`].
    pub fn busy_wait(mut self, busy_wait: std::time::Duration) -> Self {
        self.busy_wait = busy_wait;
        self
    }

    /// A value the worker's thread drops as its very last act, after its
    /// mailbox is closed and every job has run or been dropped: a count of
    /// live threads decremented there counts the thread until it has truly
    /// stopped working, not just until its last handle was dropped.
    pub fn on_exit<T: Send + 'static>(mut self, value: T) -> Self {
        self.on_exit = Some(Box::new(value));
        self
    }

    /// Starts the thread.
    pub fn spawn(self) -> Result<Worker, Error> {
        let reaper = self.reaper.unwrap_or_else(|| Reaper::global().clone());
        let mailbox = Waiter::with_busy_wait(self.name.clone(), self.busy_wait);
        let theirs = mailbox.clone();
        let on_exit = self.on_exit;
        let thread = reaper.spawn_with_stack(&self.name, self.stack_size, move || {
            crate::current::install(theirs.clone());
            theirs.run();
            // Jobs posted after the last `run` check are dropped by the
            // close in the thread-local slot's destructor; close here first
            // so they are gone before `on_exit` is.
            theirs.close();
            drop(theirs);
            drop(on_exit);
        })?;
        Ok(Worker {
            inner: Arc::new(Inner { mailbox, thread }),
        })
    }
}
