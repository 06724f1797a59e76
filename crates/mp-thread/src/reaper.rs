//! `Reaper`: the only owner of thread join handles.
//!
//! Invariant 1 (no thread joins itself; no `Drop` blocks on the thread running
//! it): threads started through a reaper hand their `JoinHandle` to the
//! reaper's own thread at birth, and tell it when their body has returned.
//! Only the reaper joins, and the reaper never starts itself through a reaper,
//! so it can never be asked to join its own thread. Code that needs to know a
//! thread is gone waits on a [`ThreadHandle`] — a latch the reaper opens after
//! the join — and waiting on one's own handle is refused with
//! [`Error::WouldJoinSelf`] instead of hanging.
//!
//! The reaper also runs *final drops* handed to it with
//! [`Reaper::drop_later`], for owners whose destruction may join threads and so
//! must not run on one of them.
//!
//! Written by hand because no crate combines "a thread that joins others
//! after they finish" with the exit latches and self-join checks we need.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{panic_message, Error};
use crate::waiter::{RunUntil, Waiter};

/// What became of a thread once the reaper joined it.
#[derive(Debug, Clone)]
pub struct ExitStatus {
    /// The thread's name.
    pub thread: String,
    /// The panic message, if the thread's body panicked.
    pub panic: Option<String>,
    /// The thread that performed the join (always the reaper's).
    pub joined_on: ThreadId,
}

struct Latch {
    name: String,
    id: ThreadId,
    /// The reaper that will join the thread: its name (for errors) and its
    /// thread (the only one that can open this latch).
    reaper_name: String,
    reaper_thread: ThreadId,
    state: Mutex<LatchState>,
    /// For waits that cannot use their thread's waiter (during thread-local
    /// destruction).
    cv: Condvar,
}

#[derive(Default)]
struct LatchState {
    exit: Option<Exit>,
    /// Waiters of threads blocked in `ThreadHandle::wait`; woken on open.
    watchers: Vec<Waiter>,
}

enum Exit {
    /// The reaper joined the thread.
    Joined(ExitStatus),
    /// The reaper shut down first; nobody will ever join the thread.
    Detached,
}

impl Latch {
    fn open(&self, exit: Exit) {
        let watchers = {
            let mut st = self.state.lock();
            st.exit = Some(exit);
            std::mem::take(&mut st.watchers)
        };
        self.cv.notify_all();
        for waiter in watchers {
            waiter.wake();
        }
    }

    fn outcome(&self, exit: &Exit) -> Result<ExitStatus, Error> {
        match exit {
            Exit::Joined(status) => Ok(status.clone()),
            Exit::Detached => Err(Error::Closed(self.reaper_name.clone())),
        }
    }
}

/// A handle to a thread started by a [`Reaper`]: it can tell when the thread
/// has been joined, but it cannot join (and dropping it does nothing).
#[derive(Clone)]
pub struct ThreadHandle {
    latch: Arc<Latch>,
}

impl std::fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadHandle")
            .field("name", &self.latch.name)
            .field("id", &self.latch.id)
            .finish()
    }
}

impl ThreadHandle {
    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.latch.name
    }

    /// The thread's id.
    pub fn id(&self) -> ThreadId {
        self.latch.id
    }

    /// True once the reaper has joined the thread.
    pub fn is_joined(&self) -> bool {
        matches!(self.latch.state.lock().exit, Some(Exit::Joined(_)))
    }

    /// Blocks until the reaper has joined the thread. Refused on the thread
    /// itself, where it could never return.
    ///
    /// While it waits, the calling thread runs jobs posted to its own
    /// [`Waiter`] (as [`Worker::sync`](crate::Worker::sync) does), so a thread
    /// whose last job calls back into the waiting thread can still finish; on
    /// the reaper's own thread (a final drop that waits for a worker) this is
    /// how the awaited join gets done. Returns [`Error::Closed`] if the reaper
    /// was shut down before it joined the thread (it never will).
    pub fn wait(&self) -> Result<ExitStatus, Error> {
        self.wait_until(None)
    }

    /// Like [`wait`](Self::wait), giving up with [`Error::Timeout`] after `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<ExitStatus, Error> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<ExitStatus, Error> {
        let me = std::thread::current().id();
        if me == self.latch.id {
            return Err(Error::WouldJoinSelf(self.latch.name.clone()));
        }
        let latch = &*self.latch;
        let Some(waiter) = crate::current::try_current_waiter() else {
            // Thread-local destruction: no mailbox to serve, block plainly.
            let mut st = latch.state.lock();
            loop {
                if let Some(exit) = &st.exit {
                    return latch.outcome(exit);
                }
                match deadline {
                    None => latch.cv.wait(&mut st),
                    Some(d) => {
                        if latch.cv.wait_until(&mut st, d).timed_out() && st.exit.is_none() {
                            return Err(Error::Timeout(latch.name.clone()));
                        }
                    }
                }
            }
        };
        {
            let mut st = latch.state.lock();
            if let Some(exit) = &st.exit {
                return latch.outcome(exit);
            }
            st.watchers.push(waiter.clone());
        }
        // On the reaper's own thread only a job of this mailbox can open the
        // latch, so a closed, empty mailbox means it never will.
        let on_reaper = me == latch.reaper_thread;
        let end = waiter.run_until(&|| latch.state.lock().exit.is_some(), deadline, on_reaper);
        let mut st = latch.state.lock();
        if let Some(exit) = &st.exit {
            return latch.outcome(exit);
        }
        // Gave up: take back our registration (one of them, if nested).
        if let Some(at) = st.watchers.iter().position(|w| w.same_as(&waiter)) {
            st.watchers.swap_remove(at);
        }
        match end {
            RunUntil::ClosedAndEmpty => Err(Error::Closed(latch.reaper_name.clone())),
            RunUntil::TimedOut | RunUntil::Done => Err(Error::Timeout(latch.name.clone())),
        }
    }
}

#[derive(Default)]
struct Books {
    /// Threads whose handle the reaper holds and whose body still runs.
    running: HashMap<ThreadId, (JoinHandle<()>, Arc<Latch>)>,
    /// Threads that finished before their handle arrived (both are posted to
    /// the reaper; a short-lived thread can win that race).
    finished_early: HashMap<ThreadId, Option<String>>,
}

/// Owns join handles and performs final drops on its own thread.
///
/// [`Reaper::global`] serves the whole process and is what [`Worker`](crate::Worker)
/// uses; a private reaper from [`Reaper::new`] is for tests and for programs
/// that want to [`shutdown`](Reaper::shutdown) theirs.
#[derive(Clone)]
pub struct Reaper {
    mailbox: Waiter,
    thread: ThreadId,
    books: Arc<Mutex<Books>>,
    live: Arc<AtomicUsize>,
    reaper_thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    _closer: Arc<Closer>,
}

/// Closes the reaper's mailbox when its last handle goes, so a private reaper
/// whose users are gone finishes its queue and exits (detached, never joined
/// by a thread it could be).
struct Closer(Waiter);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close_after_queued();
    }
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("name", &self.mailbox.name())
            .field("live_threads", &self.live_threads())
            .finish()
    }
}

static GLOBAL: OnceLock<Reaper> = OnceLock::new();

impl Reaper {
    /// The process-wide reaper, started on first use. Its thread lives as
    /// long as the process.
    pub fn global() -> &'static Reaper {
        GLOBAL.get_or_init(|| Reaper::new("mp-reaper").expect("cannot start the mp-reaper thread"))
    }

    /// Starts a private reaper thread named `name`.
    pub fn new(name: &str) -> Result<Reaper, Error> {
        let mailbox = Waiter::new(name);
        let theirs = mailbox.clone();
        let books: Arc<Mutex<Books>> = Arc::default();
        let our_books = books.clone();
        let join = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                crate::current::install(theirs.clone());
                theirs.run();
                // Closed and drained: nothing can join the threads still in
                // the books now. Tell their handles instead of leaving every
                // wait on them blocked forever.
                let orphans = std::mem::take(&mut *our_books.lock());
                for (_, (join, latch)) in orphans.running {
                    drop(join);
                    latch.open(Exit::Detached);
                }
            })
            .map_err(|source| Error::Spawn {
                name: name.to_string(),
                source,
            })?;
        Ok(Reaper {
            _closer: Arc::new(Closer(mailbox.clone())),
            mailbox,
            thread: join.thread().id(),
            books,
            live: Arc::default(),
            reaper_thread: Arc::new(Mutex::new(Some(join))),
        })
    }

    /// The reaper's own thread id.
    pub fn thread_id(&self) -> ThreadId {
        self.thread
    }

    /// Threads started by this reaper that it has not joined yet.
    pub fn live_threads(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Starts a named thread running `body`; the reaper joins it after `body`
    /// returns (or panics — the panic is recorded in its [`ExitStatus`]).
    pub fn spawn<F>(&self, name: &str, body: F) -> Result<ThreadHandle, Error>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_with_stack(name, None, body)
    }

    /// [`spawn`](Self::spawn) with a stack of `stack_size` bytes (`None`:
    /// std's default, 2 MiB unless `RUST_MIN_STACK` says otherwise).
    pub fn spawn_with_stack<F>(
        &self,
        name: &str,
        stack_size: Option<usize>,
        body: F,
    ) -> Result<ThreadHandle, Error>
    where
        F: FnOnce() + Send + 'static,
    {
        if self.mailbox.is_closed() {
            // Nobody would ever join it, and its handle would never open.
            return Err(Error::Closed(self.mailbox.name().to_string()));
        }
        if name.contains('\0') {
            // std would panic on such a name; refuse it as the OS would.
            return Err(Error::Spawn {
                name: name.replace('\0', "\\0"),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "thread name contains a NUL byte",
                ),
            });
        }
        let reaper = self.clone();
        self.live.fetch_add(1, Ordering::AcqRel);
        let mut builder = std::thread::Builder::new().name(name.to_string());
        if let Some(bytes) = stack_size {
            builder = builder.stack_size(bytes);
        }
        let spawned = builder.spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let panic = outcome.err().map(|p| panic_message(&*p));
            if let Some(message) = &panic {
                tracing::error!(panic = %message, "thread body panicked");
            }
            reaper.finished(std::thread::current().id(), panic);
        });
        let join = match spawned {
            Ok(join) => join,
            Err(source) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::Spawn {
                    name: name.to_string(),
                    source,
                });
            }
        };
        let latch = Arc::new(Latch {
            name: name.to_string(),
            id: join.thread().id(),
            reaper_name: self.mailbox.name().to_string(),
            reaper_thread: self.thread,
            state: Mutex::default(),
            cv: Condvar::new(),
        });
        let our_latch = latch.clone();
        let handle = ThreadHandle {
            latch: latch.clone(),
        };
        let books = self.books.clone();
        let live = self.live.clone();
        let adopt = move || {
            let id = latch.id;
            let early = books.lock().finished_early.remove(&id);
            match early {
                Some(panic) => join_now(join, &latch, panic, &live),
                None => {
                    books.lock().running.insert(id, (join, latch));
                }
            }
        };
        if self.mailbox.post(adopt).is_err() {
            // Closed since the check above: the thread runs detached and is
            // never joined; its handle says so instead of blocking forever.
            tracing::error!(thread = name, "reaper is shut down; thread left detached");
            our_latch.open(Exit::Detached);
        }
        Ok(handle)
    }

    /// Called by a finishing thread as its body's last act.
    fn finished(&self, id: ThreadId, panic: Option<String>) {
        let books = self.books.clone();
        let live = self.live.clone();
        let reap = move || {
            let entry = books.lock().running.remove(&id);
            match entry {
                Some((join, latch)) => join_now(join, &latch, panic, &live),
                None => {
                    books.lock().finished_early.insert(id, panic);
                }
            }
        };
        if self.mailbox.post(reap).is_err() {
            tracing::error!("reaper is shut down; finished thread left detached");
        }
    }

    /// Drops `value` on the reaper's thread: for owners whose drop joins
    /// threads and so must not run on one of those threads.
    pub fn drop_later<T: Send + 'static>(&self, value: T) {
        if let Err(job) = self.mailbox.post_job(Box::new(move || drop(value))) {
            tracing::warn!("reaper is shut down; final drop runs on the caller");
            job();
        }
    }

    /// Blocks until everything posted to the reaper before this call is done
    /// (joins and final drops included).
    pub fn flush(&self) -> Result<(), Error> {
        if self.mailbox.is_current() {
            return Ok(());
        }
        let me = Waiter::current();
        let (tx, rx) = me.reply_channel::<()>();
        self.mailbox.post(move || tx.send(()))?;
        me.wait(rx)
    }

    /// Lets the reaper finish what is queued, then joins its thread. Threads
    /// it has not joined yet are left detached (waits on their handles
    /// return [`Error::Closed`]) and later [`spawn`](Self::spawn)s fail with
    /// it. Refused with [`Error::WouldJoinSelf`] on the reaper's own thread.
    /// On the global reaper it does nothing and returns `Ok`: that one lives
    /// as long as the process, since every [`Worker::spawn`](crate::Worker::spawn)
    /// relies on it.
    pub fn shutdown(self) -> Result<(), Error> {
        if std::thread::current().id() == self.thread {
            return Err(Error::WouldJoinSelf(self.mailbox.name().to_string()));
        }
        if GLOBAL
            .get()
            .is_some_and(|global| Arc::ptr_eq(&global.books, &self.books))
        {
            return Ok(());
        }
        self.mailbox.close_after_queued();
        let join = self.reaper_thread.lock().take();
        if let Some(join) = join {
            if join.join().is_err() {
                return Err(Error::Panicked {
                    thread: self.mailbox.name().to_string(),
                    message: "reaper thread panicked".into(),
                });
            }
        }
        Ok(())
    }
}

/// Joins a finished thread and opens its latch. Runs only on the reaper.
fn join_now(join: JoinHandle<()>, latch: &Latch, panic: Option<String>, live: &AtomicUsize) {
    let me = std::thread::current().id();
    assert_ne!(me, latch.id, "reaper asked to join its own thread");
    // The body has returned; join waits only for thread-local destructors.
    let _ = join.join();
    live.fetch_sub(1, Ordering::AcqRel);
    latch.open(Exit::Joined(ExitStatus {
        thread: latch.name.clone(),
        panic,
        joined_on: me,
    }));
}
