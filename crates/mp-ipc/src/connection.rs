//! `Connection`: a two-party Cap'n Proto RPC session over a Unix stream.
//!
//! The thread-safe handle (`Connection`, an `Arc`) is what users hold; the
//! state that capnp-rpc needs lives on the event loop in a
//! [`LoopConnection`], reached only by jobs posted there.
//!
//! Invariants kept here:
//! - 2: the loop-side state is a `ThreadBound`; the last user handle dropped
//!   on any thread sends it home, where dropping it closes the session.
//! - 4: disconnect callbacks are added, removed and run on the loop
//!   ([`Connection::on_disconnect`], [`DisconnectHook::remove`]).
//! - 5: each thread's mapping is owned by the connection; the thread-local
//!   kept here only lists which connections to notify when the thread exits
//!   (weak references out, nothing in).
//! - 7: the connection's status latch is opened when the session ends for
//!   any reason, and in-flight calls end with [`Error::Disconnected`].

use std::cell::RefCell;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::RpcSystem;
use futures::future::{select, Either};
use futures::FutureExt;
use mp_thread::ThreadBound;
use parking_lot::{Condvar, Mutex};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::connection_metrics::ConnectionMeters;
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::limits::{buffered_budget, Limits};
use crate::loop_conn::{ClientKey, LoopConnection};
use crate::stats::ConnectionStats;
use crate::transport::{self, StallTimeout};

/// How long a deliberate close waits for the session to shut down cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Makes the bootstrap capability this side offers its peer. Runs on the
/// event loop when the connection is set up.
pub type BootstrapFactory =
    Box<dyn FnOnce(&Rc<LoopConnection>) -> capnp::capability::Client + Send>;

/// Opened when a connection's session ends.
#[derive(Default)]
pub(crate) struct Status {
    disconnected: Mutex<bool>,
    cv: Condvar,
}

impl Status {
    pub(crate) fn set_disconnected(&self) {
        *self.disconnected.lock() = true;
        self.cv.notify_all();
    }
}

pub(crate) struct ConnShared {
    // Field order matters: `local` is sent home and dropped while
    // `event_loop` still keeps the loop alive.
    pub(crate) local: ThreadBound<Rc<LoopConnection>>,
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) status: Arc<Status>,
    pub(crate) event_loop: EventLoop,
}

/// A connection to a peer process. Cheap to clone and usable from any
/// thread; the session closes when the last clone (and every [`Remote`](crate::Remote)
/// made from it) is dropped, or on [`close`](Connection::close).
#[derive(Clone)]
pub struct Connection {
    pub(crate) shared: Arc<ConnShared>,
}

/// The thread-safe side, reached from the loop side.
impl LoopConnection {
    /// The thread-safe handle of this connection, while a user still holds one.
    pub fn connection(&self) -> Option<Connection> {
        let shared = self.shared.borrow().upgrade()?;
        shared
            .downcast::<ConnShared>()
            .ok()
            .map(Connection::from_shared)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("disconnected", &self.is_disconnected())
            .finish()
    }
}

/// Sets up a [`Connection`].
pub struct ConnectionBuilder {
    event_loop: EventLoop,
    name: String,
    limits: Limits,
    bootstrap: Option<BootstrapFactory>,
    traversal_limit_words: Option<usize>,
}

impl ConnectionBuilder {
    /// A builder for a connection served by `event_loop`.
    pub fn new(event_loop: &EventLoop) -> Self {
        ConnectionBuilder {
            event_loop: event_loop.clone(),
            name: "connection".to_string(),
            limits: Limits::default(),
            bootstrap: None,
            traversal_limit_words: None,
        }
    }

    /// A name for logs and for this side's thread names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Limits on what the peer can ask of this side.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Most 8-byte words a single incoming message may hold: sets
    /// [`Limits::max_message_bytes`] to `words * 8`, whatever order this and
    /// [`limits`](Self::limits) are called in.
    pub fn traversal_limit_words(mut self, words: usize) -> Self {
        self.traversal_limit_words = Some(words);
        self
    }

    /// Offers a bootstrap capability to the peer (the server side's `Init`).
    pub fn serve<F>(mut self, bootstrap: F) -> Self
    where
        F: FnOnce(&Rc<LoopConnection>) -> capnp::capability::Client + Send + 'static,
    {
        self.bootstrap = Some(Box::new(bootstrap));
        self
    }

    /// Runs the session over `stream`. `side` is `Side::Client` for the side
    /// that connected (or spawned), `Side::Server` for the one that accepted
    /// (or was spawned).
    pub fn open(self, stream: UnixStream, side: Side) -> Result<Connection, Error> {
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("setting the socket non-blocking", e))?;
        let event_loop = self.event_loop.clone();
        let executor = event_loop.executor();
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let status = Arc::new(Status::default());
        let loop_handle = event_loop.clone();
        event_loop.sync(move || -> Result<Connection, Error> {
            let stream = tokio::net::UnixStream::from_std(stream)
                .map_err(|e| Error::io("registering the socket with the event loop", e))?;
            let (reader, writer) = stream.into_split();
            let mut limits = self.limits;
            if let Some(words) = self.traversal_limit_words {
                limits.max_message_bytes = words.saturating_mul(8);
            }
            let (network, stats) = transport::new_network(
                futures::io::BufReader::new(reader.compat()),
                futures::io::BufWriter::new(StallTimeout::new(
                    writer.compat_write(),
                    limits.write_timeout,
                )),
                side,
                limits.transport(),
                buffered_budget(),
                ConnectionMeters::register(&self.name),
            );
            let local = LoopConnection::new(id, self.name.clone(), executor, limits, stats);
            let bootstrap = self.bootstrap.map(|make| make(&local));
            let mut rpc = RpcSystem::new(network, bootstrap);
            let peer_side = match side {
                Side::Client => Side::Server,
                Side::Server => Side::Client,
            };
            let peer: capnp::capability::Client = rpc.bootstrap(peer_side);
            *local.peer_bootstrap.borrow_mut() = Some(peer);
            let disconnector = rpc.get_disconnector();
            let (close_tx, close_rx) = futures::channel::oneshot::channel::<()>();
            *local.close_signal.borrow_mut() = Some(close_tx);
            let weak_local = Rc::downgrade(&local);
            let task_status = status.clone();
            EventLoop::spawn_local(async move {
                let rpc = rpc.fuse();
                futures::pin_mut!(rpc);
                let session = async {
                    match select(rpc.as_mut(), close_rx).await {
                        Either::Left((result, _)) => {
                            if let Err(e) = result {
                                tracing::debug!(conn = id, error = %e, "session ended with an error");
                            }
                        }
                        Either::Right((_, rpc)) => {
                            // Closed on purpose: shut the session down cleanly
                            // while the RPC system keeps running to flush it.
                            // A peer that stops reading cannot hold us: past
                            // the grace period the socket is just dropped.
                            let both = futures::future::join(disconnector, rpc);
                            let _ = tokio::time::timeout(CLOSE_GRACE, both).await;
                        }
                    }
                };
                // A panic while polling the RPC system (a server method's
                // synchronous part, capnp-rpc itself) ends the session like
                // an error would. Without this the task just died: the peer
                // saw a disconnect, but the disconnect callbacks never ran
                // and `wait_disconnected` never returned.
                if let Err(panic) = std::panic::AssertUnwindSafe(session).catch_unwind().await {
                    tracing::error!(
                        conn = id,
                        panic = %mp_thread::panic_message(&*panic),
                        "the session panicked on the event loop; closing the connection"
                    );
                }
                if let Some(local) = weak_local.upgrade() {
                    local.on_disconnected();
                }
                task_status.set_disconnected();
            });
            let shared = Arc::new(ConnShared {
                local: ThreadBound::new(local.clone(), loop_handle.executor()),
                id,
                name: self.name,
                status,
                event_loop: loop_handle,
            });
            let erased: Arc<dyn std::any::Any + Send + Sync> = shared.clone();
            *local.shared.borrow_mut() = Arc::downgrade(&erased);
            Ok(Connection { shared })
        })?
    }
}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<ConnShared>) -> Connection {
        Connection { shared }
    }

    /// A builder for a connection on `event_loop`.
    pub fn builder(event_loop: &EventLoop) -> ConnectionBuilder {
        ConnectionBuilder::new(event_loop)
    }

    /// This connection's id: unique in the process and never reused, so a
    /// new connection can never be mistaken for a dead one.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The name given at set-up.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The event loop serving this connection.
    pub fn event_loop(&self) -> &EventLoop {
        &self.shared.event_loop
    }

    /// True once the session has ended.
    pub fn is_disconnected(&self) -> bool {
        *self.shared.status.disconnected.lock()
    }

    /// Blocks until the session ends.
    pub fn wait_disconnected(&self) {
        let mut d = self.shared.status.disconnected.lock();
        while !*d {
            self.shared.status.cv.wait(&mut d);
        }
    }

    /// Blocks until the session ends or `timeout` passes; true if it ended.
    pub fn wait_disconnected_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut d = self.shared.status.disconnected.lock();
        while !*d {
            if self
                .shared
                .status
                .cv
                .wait_until(&mut d, deadline)
                .timed_out()
            {
                return *d;
            }
        }
        true
    }

    /// Ends the session (does not wait; see [`wait_disconnected`](Self::wait_disconnected)).
    /// Calls in flight return [`Error::Disconnected`].
    pub fn close(&self) {
        let shared = self.shared.clone();
        let _ = self.shared.event_loop.post(move || {
            if let Ok(local) = shared.local.get() {
                let signal = local.close_signal.borrow_mut().take();
                drop(signal);
            }
        });
    }

    /// Runs `f` with the loop-side connection, on the loop, and returns its
    /// result. For adapters that need to build or wrap capabilities.
    pub fn with_loop<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<LoopConnection>) -> R + Send + 'static,
    {
        let shared = self.shared.clone();
        self.shared.event_loop.sync(move || {
            let local = shared.local.get().expect("job runs on the loop");
            f(local)
        })
    }

    /// Registers `callback` to run on the event loop when the session ends.
    /// Returns `None` if it has already ended (the callback is dropped unrun).
    ///
    /// The callback runs on the loop thread and must not block.
    pub fn on_disconnect<F: FnOnce() + Send + 'static>(
        &self,
        callback: F,
    ) -> Result<Option<DisconnectHook>, Error> {
        let id = self.with_loop(move |local| local.add_callback(Box::new(callback)).ok())?;
        Ok(id.map(|id| DisconnectHook {
            conn: Arc::downgrade(&self.shared),
            id,
        }))
    }

    /// The peer's bootstrap object as a thread-safe handle of interface `C`
    /// (for peers whose root needs no `construct` exchange).
    pub fn bootstrap<C>(&self) -> Result<crate::Remote<C>, Error>
    where
        C: capnp::capability::FromClientHook + Clone + 'static,
    {
        self.with_loop(|local| {
            let cap = local.peer_bootstrap::<C>().ok_or(Error::Disconnected {
                site: crate::CallSite::new("Connection", "bootstrap"),
                phase: crate::DisconnectPhase::AfterDisconnect,
            })?;
            crate::Remote::new(local, cap)
        })?
    }

    /// Forgets the calling thread's server-thread mapping on this connection
    /// now (it is forgotten anyway when the thread exits). Returns when the
    /// mapping is gone; the peer then releases that server thread.
    pub fn release_current_thread(&self) -> Result<(), Error> {
        let key = ClientKey::Thread(std::thread::current().id());
        self.with_loop(move |local| local.release_client_thread(key))
    }

    /// This connection's counters: bytes held and queued, whether reading
    /// is paused, calls in flight, server threads, objects handed out.
    pub fn stats(&self) -> Result<ConnectionStats, Error> {
        self.with_loop(|local| local.stats())
    }

    /// How many client threads currently have a server thread on this connection.
    pub fn mapped_threads(&self) -> Result<usize, Error> {
        self.with_loop(|local| local.mapped_threads())
    }
}

/// A registered disconnect callback. [`remove`](DisconnectHook::remove) it to
/// unregister; dropping the hook leaves the callback registered.
#[derive(Debug)]
pub struct DisconnectHook {
    conn: Weak<ConnShared>,
    id: u64,
}

impl DisconnectHook {
    /// Unregisters the callback. Synchronous with the event loop: when this
    /// returns, the callback has either finished running (false) or will
    /// never run (true). Never call it from inside a disconnect callback's
    /// wait on another thread.
    pub fn remove(self) -> bool {
        let Some(shared) = self.conn.upgrade() else {
            return false;
        };
        let id = self.id;
        let conn = Connection { shared };
        conn.with_loop(move |local| local.remove_callback(id))
            .unwrap_or(false)
    }
}

/// Tells each connection a thread used that the thread is gone, so its
/// mapping (and the peer's server thread) is released. Posts only: a thread
/// exit never waits on the loop. Its slot of the thread's context
/// (`mp_thread::context`), dropped when the thread exits.
struct ExitNotice {
    thread: std::thread::ThreadId,
    conns: RefCell<Vec<(u64, Weak<ConnShared>)>>,
}

impl Default for ExitNotice {
    fn default() -> Self {
        ExitNotice {
            thread: std::thread::current().id(),
            conns: RefCell::new(Vec::new()),
        }
    }
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let key = ClientKey::Thread(self.thread);
        for (_, weak) in self.conns.get_mut().drain(..) {
            if let Some(shared) = weak.upgrade() {
                let home = shared.clone();
                let _ = shared.event_loop.post(move || {
                    if let Ok(local) = home.local.get() {
                        local.release_client_thread(key);
                    }
                });
            }
        }
    }
}

/// Records that the calling thread has a mapping on `conn`.
pub(crate) fn note_thread_uses(shared: &Arc<ConnShared>) {
    mp_thread::context::with(|notice: &ExitNotice| {
        let mut conns = notice.conns.borrow_mut();
        if conns.iter().any(|(id, _)| *id == shared.id) {
            return;
        }
        conns.retain(|(_, w)| w.strong_count() > 0);
        conns.push((shared.id, Arc::downgrade(shared)));
    });
}
