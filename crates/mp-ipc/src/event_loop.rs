//! `EventLoop`: the one thread per process that does all Cap'n Proto I/O.
//!
//! A tokio current-thread runtime with a `LocalSet`, so `!Send` capnp-rpc
//! objects (`Rc`-based) can live there. Other threads reach it only by
//! posting closures.
//!
//! What it shares with mp-thread's `Worker`: the thread is started and
//! joined by the `Reaper`, and `sync` is mp-thread's `sync_call`, the
//! protocol of `Worker::sync` (a panic comes back as a panic error). What
//! it does not: its mailbox is a tokio channel the runtime awaits, not a
//! `Waiter`. A `Waiter` is run by its owner whenever that thread blocks, so
//! a loop thread blocked in a wait would run the loop's own jobs inside
//! the job that waits, re-entering capnp-rpc objects in the middle of a
//! borrow. The loop's jobs run only from the loop, one after the other.
//!
//! Invariants kept here:
//! - 1: the loop thread is started through the reaper; dropping the last
//!   `EventLoop` handle — even from a job running on the loop — only closes
//!   its mailbox. The loop then drops every task it holds (on itself, so
//!   invariant 2 holds for them too) and returns; the reaper joins it.
//! - 2: the executor handed to `ThreadBound` values holds only a *weak*
//!   sender, so loop-bound values never keep their own loop alive.
//! - 7: after work the loop polls for more (`idle_poll`) for a bounded
//!   time before it sleeps; `sync` waits through the caller's `Waiter` (mp-thread's
//!   `sync_call`, shared with `Worker::sync`); a job discarded because the
//!   loop stopped drops its reply sender and wakes the caller, and a panic
//!   in the job comes back as a panic error, not as a stopped loop.

use std::future::Future;
use std::sync::Arc;
use std::thread::ThreadId;

use mp_thread::{sync_call, Executor, Job, Reaper, ThreadHandle};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::idle_poll;

/// A handle to an event-loop thread. Clone it freely; the loop stops when
/// the last handle is dropped.
#[derive(Clone)]
pub struct EventLoop {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    jobs: mpsc::UnboundedSender<Job>,
    thread: ThreadHandle,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl EventLoop {
    /// Starts an event-loop thread called `name`.
    pub fn new(name: &str) -> Result<EventLoop, Error> {
        let (jobs, mut inbox) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building the event loop's runtime", e))?;
        let thread = Reaper::global().spawn(name, move || {
            let local = tokio::task::LocalSet::new();
            local.spawn_local(idle_poll::poll_before_sleeping());
            local.block_on(&runtime, async move {
                while let Some(job) = inbox.recv().await {
                    idle_poll::note_activity();
                    // A panicking job must not take the loop (and every
                    // connection on it) down; its reply sender is dropped
                    // in the unwind, so its caller gets an error.
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                        tracing::error!(
                            panic = %mp_thread::panic_message(&*p),
                            "a job posted to the event loop panicked; the loop goes on"
                        );
                    }
                }
            });
            // Tasks still in the set (connections, in-flight calls) are
            // dropped here, on the loop thread.
            drop(local);
            drop(runtime);
        })?;
        Ok(EventLoop {
            shared: Arc::new(Shared {
                name: name.to_string(),
                jobs,
                thread,
            }),
        })
    }

    /// The loop thread's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The loop thread's id.
    pub fn thread_id(&self) -> ThreadId {
        self.shared.thread.id()
    }

    /// A handle that tells when the loop thread has been joined.
    pub fn thread_handle(&self) -> ThreadHandle {
        self.shared.thread.clone()
    }

    /// True on the loop thread.
    pub fn is_current(&self) -> bool {
        std::thread::current().id() == self.thread_id()
    }

    /// Queues `f` to run on the loop thread (inside the `LocalSet`, so it
    /// may `tokio::task::spawn_local`).
    pub fn post<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Error> {
        self.shared
            .jobs
            .send(Box::new(f))
            .map_err(|_| mp_thread::Error::Closed(self.shared.name.clone()).into())
    }

    /// Runs `f` on the loop thread and returns its result; inline when called
    /// on the loop. The caller's [`Waiter`](mp_thread::Waiter) keeps running
    /// posted jobs while it waits (mp-thread's [`sync_call`], the protocol
    /// of `Worker::sync`). A panic in `f` comes back as
    /// [`mp_thread::Error::Panicked`] and the loop goes on; a loop that has
    /// stopped gives [`mp_thread::Error::Closed`].
    ///
    /// ```
    /// use mp_ipc::{Error, EventLoop};
    ///
    /// let event_loop = EventLoop::new("loop")?;
    /// assert_eq!(event_loop.sync(|| 2 + 2)?, 4);
    /// let panicked = event_loop.sync(|| -> u32 { panic!("a bug") });
    /// assert!(matches!(
    ///     panicked,
    ///     Err(Error::Thread(mp_thread::Error::Panicked { ref message, .. })) if message == "a bug"
    /// ));
    /// assert_eq!(event_loop.sync(|| 1)?, 1); // the loop goes on
    /// # Ok::<(), Error>(())
    /// ```
    pub fn sync<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let jobs = &self.shared.jobs;
        sync_call(
            &self.shared.name,
            self.is_current(),
            |job| jobs.send(job).map_err(|e| e.0),
            f,
        )
        .map_err(Error::from)
    }

    /// Spawns a `!Send` future on the loop. Must be called on the loop thread.
    pub(crate) fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        tokio::task::spawn_local(fut);
    }

    /// An executor for values bound to this loop that does not keep the loop
    /// alive: once the loop is gone, jobs are refused.
    pub fn executor(&self) -> Arc<dyn Executor> {
        Arc::new(WeakLoop {
            jobs: self.shared.jobs.downgrade(),
        })
    }
}

struct WeakLoop {
    jobs: mpsc::WeakUnboundedSender<Job>,
}

impl Executor for WeakLoop {
    fn execute(&self, job: Job) -> Result<(), Job> {
        match self.jobs.upgrade() {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }
}
