//! `LoopConnection`: the part of a connection that lives on the event loop.
//!
//! Everything here is touched only by the loop thread, so none of it needs a
//! lock. It owns:
//! - the per-client-thread mapping (invariant 5: owned by the connection,
//!   keyed by thread id — never a thread-local that others point into);
//! - the `Thread` capabilities this side handed out, for validating the
//!   `Context` of incoming calls;
//! - the disconnect-callback registry (invariant 4: added, removed and run on
//!   this one thread; a removal from elsewhere is a synchronous request to the
//!   loop, so once it returns the callback can no longer run).
//!
//! This makes libmultiprocess's teardown race (a connection's destructor
//! and a thread's proxy destructor on two threads; `tests/disconnect_races.rs` in
//! mp-test-calc replays it) impossible by construction: the "disconnect callback
//! deletes the thread's client" and "the thread deletes its client" paths
//! are both jobs on the loop thread, run one after the other, never at once.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::thread::ThreadId;

use capnp::capability::FromClientHook;
use capnp_rpc::CapabilityServerSet;
use mp_thread::{panic_message, CallbackRegistry, Executor, ThreadBound, Waiter, Worker};

use crate::call_id::CallId;
use crate::cancel::CancelToken;
use crate::connection_metrics::ConnectionMeters;
use crate::error::{bad_request, limit_reached, CallSite};
use crate::job_reply::JobReply;
use crate::limits::{stack_size_for_nesting, Limits, ThreadSlots};
use crate::proxy_capnp::{context, thread, thread_map};
use crate::stats::ConnectionStats;
use crate::threads::{
    serving, serving_depth, QueueCount, ThreadMaker, ThreadMapServer, ThreadQueue, ThreadServer,
};
use crate::transport::TransportStats;

/// Which client thread a mapping belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// A thread making synchronous calls.
    Thread(ThreadId),
    /// All async calls made on the connection share one server thread.
    Async,
}

struct ClientThread {
    /// Our `Thread` for callbacks to this client thread.
    callback: thread::Client,
    /// Keeps the async callback worker alive; `None` for real client threads.
    _callback_worker: Option<Worker>,
    /// The peer's server thread for this client thread, with the generation
    /// that made it (a promise until `makeThread` returns; pipelined, so no
    /// extra round trip). Absent for server threads that only call back.
    request: Option<(u64, thread::Client)>,
}

type DisconnectCallback = Box<dyn FnOnce()>;

/// The loop-side half of a connection. Server adapters hold a
/// `Weak<LoopConnection>` and use it to run calls on the right thread and to
/// wrap capabilities they receive into thread-safe client handles.
pub struct LoopConnection {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) executor: Arc<dyn Executor>,
    /// The thread-safe side of the connection (`connection::ConnShared`,
    /// erased: this module sits below the one that defines it, which reads
    /// it back in `LoopConnection::connection`).
    pub(crate) shared: RefCell<std::sync::Weak<dyn std::any::Any + Send + Sync>>,
    pub(crate) peer_bootstrap: RefCell<Option<capnp::capability::Client>>,
    peer_thread_map: RefCell<Option<thread_map::Client>>,
    threads: RefCell<CapabilityServerSet<ThreadServer, thread::Client>>,
    made_threads: ThreadSlots,
    limits: Limits,
    pool: RefCell<Vec<(Worker, QueueCount)>>,
    /// Each server thread's count of queued calls from this connection,
    /// keyed by its mailbox, so every `Thread` handle naming the same thread
    /// shares one count.
    queues: RefCell<HashMap<usize, std::sync::Weak<ThreadQueue>>>,
    /// Calls from the peer being served now (resolving, queued, running).
    in_flight: Rc<Cell<usize>>,
    /// Objects served to the peer (counted by their [`ExportSlot`]s).
    exported: Rc<Cell<usize>>,
    /// The session's transport figures (bytes held, queued, paused).
    transport: Rc<TransportStats>,
    client_threads: RefCell<HashMap<ClientKey, ClientThread>>,
    next_generation: Cell<u64>,
    callbacks: RefCell<CallbackRegistry<DisconnectCallback>>,
    disconnected: Cell<bool>,
    /// Dropping this tells the connection's I/O task to shut down.
    pub(crate) close_signal: RefCell<Option<futures::channel::oneshot::Sender<()>>>,
}

impl std::fmt::Debug for LoopConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopConnection")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// A `ThreadMap` served to the peer makes its threads here.
impl ThreadMaker for LoopConnection {
    fn max_name_bytes(&self) -> usize {
        self.limits().max_name_bytes
    }

    fn make_thread(&self, name: &str) -> Result<thread::Client, capnp::Error> {
        LoopConnection::make_thread(self, name)
    }

    fn make_pool(&self, count: u32) -> Result<(), capnp::Error> {
        LoopConnection::make_pool(self, count)
    }
}

/// Where an incoming call runs: the thread's mailbox and name, its count of
/// queued calls, and the `Thread` server (named threads; not pool threads).
type ResolvedThread = (Waiter, String, QueueCount, Option<Rc<ThreadServer>>);

/// Holds one place in a server thread's count of queued calls; travels
/// with the call's job and is dropped with it, run or not.
struct QueuedCall(QueueCount);

impl QueuedCall {
    /// Takes a place in `queued`, or none if it holds `max` calls already;
    /// records the depth the call found.
    fn take(queued: QueueCount, max: usize, meters: &ConnectionMeters) -> Option<QueuedCall> {
        let before = queued.take(max)?;
        meters.queue_depth.record(before as f64);
        Some(QueuedCall(queued))
    }
}

impl Drop for QueuedCall {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// One object served to the peer, counted against
/// `Limits::max_exported_objects` for as long as the object lives (capnp-rpc
/// drops it when the peer releases its last reference). Generated server
/// adapters hold one.
#[derive(Debug)]
pub struct ExportSlot(Rc<Cell<usize>>);

impl Drop for ExportSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Holds one place in a connection's count of calls in flight.
struct InFlight(Rc<Cell<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A call's work, shared by its job on the server thread and the loop-side
/// future waiting for it. Whichever comes first takes it: the job to run
/// it, or the future, dropped because the peer cancelled the call or the
/// connection closed, to drop the parameters at once instead of leaving
/// them in the thread's queue until the thread reaches the job.
type CallSlot<F> = Arc<parking_lot::Mutex<Option<F>>>;

/// Cancels a call whose loop-side future is dropped before the reply (the
/// peer's `Finish`, a disconnect): drops its work if the job has not taken
/// it yet (the call never runs), and cancels its token for a job that is
/// running.
struct CancelOnDrop<F> {
    slot: CallSlot<F>,
    token: CancelToken,
    replied: bool,
}

impl<F> Drop for CancelOnDrop<F> {
    fn drop(&mut self) {
        let unstarted = self.slot.lock().take();
        drop(unstarted);
        if !self.replied {
            self.token.cancel();
        }
    }
}

/// How a call's job ended on its server thread.
enum JobOutcome<R> {
    /// The method returned.
    Done(R),
    /// The method panicked (the message).
    Panicked(String),
    /// Not run: the thread was already this many calls deep.
    TooDeep(usize),
}

/// The server-side view of a call's `Context` parameter.
pub struct ServerContext {
    thread: Option<thread::Client>,
    callback: Option<thread::Client>,
    call_id: Option<CallId>,
}

impl ServerContext {
    /// Reads a call's `context` parameter. `has_context` is the params'
    /// `has_context()`; a request without one is refused as a bad request.
    pub fn read(
        site: CallSite,
        has_context: bool,
        reader: capnp::Result<context::Reader<'_>>,
    ) -> Result<ServerContext, capnp::Error> {
        if !has_context {
            return Err(bad_request(format!(
                "{site}: request has no Context; this method runs on a server thread the Context must name"
            )));
        }
        let reader = reader?;
        let thread = if reader.has_thread() {
            Some(reader.get_thread()?)
        } else {
            None
        };
        let callback = if reader.has_callback_thread() {
            Some(reader.get_callback_thread()?)
        } else {
            None
        };
        Ok(ServerContext {
            thread,
            callback,
            call_id: CallId::from_wire(reader.get_call_id()),
        })
    }
}

/// The context capabilities a client fills into a request.
pub struct ClientContext {
    thread: thread::Client,
    callback: Option<thread::Client>,
    call_id: Option<CallId>,
}

impl ClientContext {
    /// The server thread the call will run on.
    pub fn thread(&self) -> &thread::Client {
        &self.thread
    }

    /// Fills a request's `context` field.
    pub fn fill(&self, mut builder: context::Builder<'_>) {
        builder.set_thread(self.thread.clone());
        if let Some(cb) = &self.callback {
            builder.set_callback_thread(cb.clone());
        }
        if let Some(id) = self.call_id {
            builder.set_call_id(id.to_wire());
        }
    }

    /// The same context for the call `id`.
    pub(crate) fn with_call_id(mut self, id: CallId) -> ClientContext {
        self.call_id = Some(id);
        self
    }
}

impl LoopConnection {
    pub(crate) fn new(
        id: u64,
        name: String,
        executor: Arc<dyn Executor>,
        limits: Limits,
        transport: Rc<TransportStats>,
    ) -> Rc<LoopConnection> {
        Rc::new(LoopConnection {
            id,
            name,
            executor,
            shared: RefCell::new(std::sync::Weak::<()>::new()),
            peer_bootstrap: RefCell::new(None),
            peer_thread_map: RefCell::new(None),
            threads: RefCell::new(CapabilityServerSet::new()),
            made_threads: ThreadSlots::new(transport.meters.server_threads.clone()),
            limits,
            pool: RefCell::new(Vec::new()),
            queues: RefCell::new(HashMap::new()),
            in_flight: Rc::new(Cell::new(0)),
            exported: Rc::new(Cell::new(0)),
            transport,
            client_threads: RefCell::new(HashMap::new()),
            next_generation: Cell::new(0),
            callbacks: RefCell::new(CallbackRegistry::new()),
            disconnected: Cell::new(false),
            close_signal: RefCell::new(None),
        })
    }

    /// What a server adapter does first: the loop-side connection behind
    /// `weak`, or the disconnect error to reply with once it is gone.
    pub fn upgrade(weak: &WeakLoopConnection) -> Result<Rc<LoopConnection>, capnp::Error> {
        weak.upgrade()
            .ok_or_else(|| capnp::Error::disconnected("connection closed".into()))
    }

    /// The connection's id (unique in this process, never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the peer is gone or the connection was closed.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected.get()
    }

    /// A new `ThreadMap` capability for the peer, served by this connection.
    pub fn thread_map_client(self: &Rc<Self>) -> thread_map::Client {
        let maker: Rc<dyn ThreadMaker> = self.clone();
        capnp_rpc::new_client(ThreadMapServer {
            conn: Rc::downgrade(&maker),
        })
    }

    /// Records the peer's `ThreadMap` (from `Init.construct`), used to make a
    /// server thread for each client thread.
    pub fn set_peer_thread_map(&self, thread_map: thread_map::Client) {
        *self.peer_thread_map.borrow_mut() = Some(thread_map);
    }

    /// The peer's bootstrap capability, cast to the interface `C`.
    pub fn peer_bootstrap<C: capnp::capability::FromClientHook>(&self) -> Option<C> {
        self.peer_bootstrap
            .borrow()
            .as_ref()
            .map(|c| c.clone().cast_to::<C>())
    }

    /// Binds a loop-side value to the loop so a thread-safe handle can own it.
    pub fn bind<T: 'static>(&self, value: T) -> ThreadBound<T> {
        ThreadBound::new(value, self.executor.clone())
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The count of calls queued on the thread behind `waiter` from this
    /// connection, shared by every `Thread` handle naming that thread; a
    /// new one is labelled `thread` (see `ConnectionMeters::thread_queue`).
    pub(crate) fn queue_count(&self, waiter: &Waiter, thread: &str) -> QueueCount {
        let mut queues = self.queues.borrow_mut();
        if let Some(count) = queues.get(&waiter.id()).and_then(std::sync::Weak::upgrade) {
            return count;
        }
        // Forget the counts of threads no handle names any more, so the
        // map is bounded by the threads alive.
        queues.retain(|_, count| count.strong_count() > 0);
        let count = ThreadQueue::new(self.transport.meters.thread_queue(thread));
        queues.insert(waiter.id(), Arc::downgrade(&count));
        count
    }

    /// A worker for this connection with a stack that holds `max_nesting`
    /// nested calls, dropping `on_exit` as its thread stops.
    fn spawn_worker<T: Send + 'static>(
        &self,
        name: impl Into<String>,
        on_exit: T,
    ) -> Result<Worker, mp_thread::Error> {
        Worker::builder(name)
            .stack_size(stack_size_for_nesting(self.limits.max_nesting))
            .on_exit(on_exit)
            .spawn()
    }

    pub(crate) fn make_thread(&self, name: &str) -> Result<thread::Client, capnp::Error> {
        if self.disconnected.get() {
            return Err(capnp::Error::disconnected("connection closed".into()));
        }
        let ticket = self.made_threads.admit(&self.limits).map_err(|why| {
            limit_reached(format!(
                "ThreadMap.makeThread: {why}; thread `{name}` was not started"
            ))
        })?;
        let slot = ticket.slot();
        let worker = self
            .spawn_worker(name, ticket)
            .map_err(|e| capnp::Error::failed(e.to_string()))?;
        let queued = self.queue_count(worker.waiter(), &slot.to_string());
        let server = ThreadServer::for_worker(worker, queued);
        let mut threads = self.threads.borrow_mut();
        // Forget Threads the peer has released, so a peer that makes and
        // drops threads forever cannot grow the set without bound.
        threads.gc();
        Ok(threads.new_client(server))
    }

    /// A place for one more object served to the peer as an `interface`,
    /// or the limit error to answer with.
    pub fn export_slot(&self, interface: &str) -> Result<ExportSlot, capnp::Error> {
        let max = self.limits.max_exported_objects;
        if self.exported.get() >= max {
            return Err(limit_reached(format!(
                "cannot hand out another {interface}: the peer already holds {max} objects of this side (Limits::max_exported_objects)"
            )));
        }
        self.exported.set(self.exported.get() + 1);
        Ok(ExportSlot(self.exported.clone()))
    }

    /// Objects this side serves to the peer now (through returned or passed
    /// capabilities; the bootstrap object and `Thread`s are not counted).
    pub fn exported_objects(&self) -> usize {
        self.exported.get()
    }

    /// This connection's counters now.
    pub fn stats(&self) -> ConnectionStats {
        let t = &self.transport;
        ConnectionStats {
            incoming_bytes: t.incoming_bytes(),
            peak_incoming_bytes: t.peak_incoming_bytes(),
            frame_buffer_bytes: t.frame_buffer_bytes(),
            unwritten_bytes: t.unwritten_bytes(),
            peak_unwritten_bytes: t.peak_unwritten_bytes(),
            reading_paused: t.paused(),
            messages_in: t.messages_in(),
            messages_out: t.messages_out(),
            bytes_in: t.bytes_in(),
            bytes_out: t.bytes_out(),
            calls_in_flight: self.in_flight.get(),
            queued_calls: self
                .queues
                .borrow()
                .values()
                .filter_map(std::sync::Weak::upgrade)
                .map(|count| count.len())
                .sum(),
            server_threads: self.made_threads.alive(),
            exported_objects: self.exported.get(),
        }
    }

    /// Server threads of this connection alive now (made by `makeThread`
    /// and not yet stopped, whether or not the peer still holds them).
    pub fn server_threads(&self) -> usize {
        self.made_threads.alive()
    }

    pub(crate) fn make_pool(&self, count: u32) -> Result<(), capnp::Error> {
        let mut pool = self.pool.borrow_mut();
        let wanted = pool.len() as u64 + u64::from(count);
        if wanted > u64::from(self.limits.max_pool) {
            return Err(limit_reached(format!(
                "ThreadMap.makePool: {wanted} pool threads asked for, the limit is {} (Limits::max_pool)",
                self.limits.max_pool
            )));
        }
        for _ in 0..count {
            let name = format!("{}-pool-{}", self.name, pool.len());
            let worker = self
                .spawn_worker(name, ())
                .map_err(|e| capnp::Error::failed(e.to_string()))?;
            let queued = self.queue_count(worker.waiter(), &format!("pool-{}", pool.len()));
            pool.push((worker, queued));
        }
        Ok(())
    }

    /// The context to send with a call from client thread `key`, creating
    /// the mapping on first use. With `request_override` (a server thread
    /// calling back into the client it serves), that thread is named instead
    /// of asking the peer for one.
    pub(crate) fn client_context(
        self: &Rc<Self>,
        key: ClientKey,
        name: &str,
        waiter: Option<Waiter>,
        request_override: Option<thread::Client>,
    ) -> Result<ClientContext, String> {
        let mut map = self.client_threads.borrow_mut();
        let entry = match map.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(vacant) => {
                let (waiter, callback_worker) = match (waiter, key) {
                    (Some(w), ClientKey::Thread(_)) => (w, None),
                    _ => {
                        let worker = self
                            .spawn_worker(format!("{}-async-cb", self.name), ())
                            .map_err(|e| e.to_string())?;
                        (worker.waiter().clone(), Some(worker))
                    }
                };
                // This side's own threads, serving callbacks: one series
                // for all of them (they come and go with the program).
                let queued = self.queue_count(&waiter, "callbacks");
                let callback = self
                    .threads
                    .borrow_mut()
                    .new_client(ThreadServer::for_waiter(name.to_string(), waiter, queued));
                vacant.insert(ClientThread {
                    callback,
                    _callback_worker: callback_worker,
                    request: None,
                })
            }
        };
        let callback = Some(entry.callback.clone());
        if let Some(thread) = request_override {
            return Ok(ClientContext {
                thread,
                callback,
                call_id: None,
            });
        }
        if let Some((_, thread)) = &entry.request {
            return Ok(ClientContext {
                thread: thread.clone(),
                callback,
                call_id: None,
            });
        }
        let thread_map = self.peer_thread_map.borrow().clone().ok_or_else(|| {
            "the peer's ThreadMap is unknown (exchange thread maps with Init.construct first)"
                .to_string()
        })?;
        let mut request = thread_map.make_thread_request();
        request.get().set_name(name);
        let pending = request.send();
        let thread: thread::Client = pending.pipeline.get_result();
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        entry.request = Some((generation, thread.clone()));
        drop(map);
        // If the peer refuses the thread, forget it so the next call asks
        // again instead of reusing a broken capability forever.
        let weak = Rc::downgrade(self);
        crate::event_loop::EventLoop::spawn_local(async move {
            if pending.promise.await.is_err() {
                if let Some(conn) = weak.upgrade() {
                    conn.forget_request_thread(key, generation);
                }
            }
        });
        Ok(ClientContext {
            thread,
            callback,
            call_id: None,
        })
    }

    fn forget_request_thread(&self, key: ClientKey, generation: u64) {
        let stale = {
            let mut map = self.client_threads.borrow_mut();
            match map.get_mut(&key) {
                Some(entry) if matches!(entry.request, Some((g, _)) if g == generation) => {
                    entry.request.take()
                }
                _ => None,
            }
        };
        drop(stale);
    }

    /// Forgets client thread `key`'s mapping (its thread exited or asked to).
    /// Dropping the capabilities lets the peer release its server thread.
    pub(crate) fn release_client_thread(&self, key: ClientKey) {
        let removed = self.client_threads.borrow_mut().remove(&key);
        drop(removed);
    }

    /// Number of client threads mapped on this connection.
    pub(crate) fn mapped_threads(&self) -> usize {
        self.client_threads.borrow().len()
    }

    /// Runs `job` for an incoming call on the thread its Context names (or a
    /// pool thread), with the call's `callbackThread` recorded for calls that
    /// thread makes back. A panic in `job` becomes an error reply.
    ///
    /// Bounds kept here: the connection's calls in flight, the thread's
    /// queue (counted per thread until the job has run or been dropped), the
    /// time a promised `Context.thread` may take to resolve, and the nesting
    /// depth of the thread. If the call is cancelled (the peer's `Finish`, a
    /// disconnect) before its job starts, `job` is dropped at once and never
    /// runs; if it is running, its [`CancelToken`] is cancelled.
    pub fn dispatch<R, F>(
        self: &Rc<Self>,
        site: CallSite,
        ctx: ServerContext,
        job: F,
    ) -> impl std::future::Future<Output = Result<R, capnp::Error>> + 'static
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let this = self.clone();
        async move {
            let limits = this.limits;
            if this.in_flight.get() >= limits.max_calls_in_flight {
                return Err(limit_reached(format!(
                    "{site}: this connection already has {} calls in flight (Limits::max_calls_in_flight)",
                    limits.max_calls_in_flight
                )));
            }
            this.in_flight.set(this.in_flight.get() + 1);
            let _in_flight = InFlight(this.in_flight.clone());
            let resolving = this.resolve_thread(site, ctx.thread);
            futures::pin_mut!(resolving);
            // A Thread that is already resolved (every well-behaved call)
            // is ready at once; only a promise pays for a timer. (A timer
            // per call costs a mapped call several times its latency.)
            let resolved = match futures::poll!(resolving.as_mut()) {
                std::task::Poll::Ready(resolved) => resolved,
                std::task::Poll::Pending => {
                    match tokio::time::timeout(limits.context_timeout, resolving).await {
                        Ok(resolved) => resolved,
                        Err(_) => {
                            return Err(limit_reached(format!(
                                "{site}: the Context's thread was not resolved within {:?} (Limits::context_timeout)",
                                limits.context_timeout
                            )))
                        }
                    }
                }
            };
            let (waiter, thread_name, queued, server) = resolved?;
            // Counted until the job has run or is dropped unrun, wherever
            // that happens; not when this future ends.
            let Some(place) =
                QueuedCall::take(queued, limits.max_queued_calls, &this.transport.meters)
            else {
                return Err(limit_reached(format!(
                    "{site}: server thread `{thread_name}` already has {} calls queued (Limits::max_queued_calls)",
                    limits.max_queued_calls
                )));
            };
            if let (Some(server), Some(cb)) = (&server, &ctx.callback) {
                server.remember_callback(cb);
            }
            let callback = ctx.callback.map(|cb| Arc::new(this.bind(cb)));
            // The loop keeps a reference until the reply, so the server thread
            // never drops the last one (which would post the drop back here).
            let _keep_home = callback.clone();
            let slot: CallSlot<F> = Arc::new(parking_lot::Mutex::new(Some(job)));
            let token = CancelToken::new();
            let mut cancel = CancelOnDrop {
                slot: slot.clone(),
                token: token.clone(),
                replied: false,
            };
            let (tx, rx) = JobReply::<JobOutcome<R>>::channel(this.executor.clone());
            let conn_id = this.id;
            let call_id = ctx.call_id;
            let max_nesting = limits.max_nesting;
            let posted = waiter.post(move || {
                let _place = place;
                let Some(job) = slot.lock().take() else {
                    return; // cancelled before it started
                };
                let depth = serving_depth();
                if depth >= max_nesting {
                    drop(job);
                    tx.send(JobOutcome::TooDeep(depth));
                    return;
                }
                let _span = tracing::debug_span!(
                    "mp.serve",
                    interface = site.interface,
                    method = site.method,
                    conn = conn_id,
                    server_thread = %mp_thread::Waiter::current().name(),
                    call_id = call_id.map(tracing::field::display),
                )
                .entered();
                let guard = serving(conn_id, callback, call_id, token);
                // `job` is consumed here, so its captures die before the reply.
                let outcome = match catch_unwind(AssertUnwindSafe(job)) {
                    Ok(value) => JobOutcome::Done(value),
                    Err(p) => JobOutcome::Panicked(panic_message(&*p)),
                };
                drop(guard);
                tx.send(outcome);
            });
            match posted {
                Err(_) => Err(capnp::Error::failed(format!(
                    "{site}: server thread `{thread_name}` has exited"
                ))),
                Ok(()) => match rx.await.inspect(|_| cancel.replied = true) {
                    Ok(JobOutcome::Done(value)) => Ok(value),
                    Ok(JobOutcome::Panicked(panic)) => Err(capnp::Error::failed(format!(
                        "{site} panicked on server thread `{thread_name}`: {panic}"
                    ))),
                    Ok(JobOutcome::TooDeep(depth)) => Err(limit_reached(format!(
                        "{site}: thread `{thread_name}` is already running {depth} nested calls (Limits::max_nesting = {max_nesting})"
                    ))),
                    Err(_) => Err(capnp::Error::failed(format!(
                        "{site}: server thread `{thread_name}` stopped before replying"
                    ))),
                },
            }
        }
    }

    /// Runs `job` right here on the loop thread (methods without a Context),
    /// turning a panic into an error reply.
    pub fn run_on_loop<R, F: FnOnce() -> R>(
        &self,
        site: CallSite,
        job: F,
    ) -> Result<R, capnp::Error> {
        catch_unwind(AssertUnwindSafe(job)).map_err(|p| {
            capnp::Error::failed(format!(
                "{site} panicked on the event loop: {}",
                panic_message(&*p)
            ))
        })
    }

    async fn resolve_thread(
        &self,
        site: CallSite,
        thread: Option<thread::Client>,
    ) -> Result<ResolvedThread, capnp::Error> {
        match thread {
            Some(cap) => {
                let resolved = capnp::capability::get_resolved_cap(cap).await;
                let server = self
                    .threads
                    .borrow()
                    .get_local_server_of_resolved(&resolved);
                match server {
                    Some(server) => Ok((
                        server.waiter().clone(),
                        server.name().to_string(),
                        server.queued().clone(),
                        Some(server),
                    )),
                    None => Err(bad_request(format!(
                        "{site}: invalid thread handle: the Context names a Thread this connection did not make"
                    ))),
                }
            }
            None => {
                let pool = self.pool.borrow();
                let least_busy = pool.iter().min_by_key(|(_, busy)| busy.len());
                match least_busy {
                    Some((worker, busy)) => Ok((
                        worker.waiter().clone(),
                        worker.name().to_string(),
                        busy.clone(),
                        None,
                    )),
                    None => Err(bad_request(format!(
                        "{site}: no thread specified and no pool configured"
                    ))),
                }
            }
        }
    }

    /// Registers a disconnect callback; hands it back if already disconnected.
    pub(crate) fn add_callback(&self, cb: DisconnectCallback) -> Result<u64, DisconnectCallback> {
        self.callbacks.borrow_mut().add(cb)
    }

    /// Removes a disconnect callback; false if it already ran (or is running).
    pub(crate) fn remove_callback(&self, id: u64) -> bool {
        let removed = self.callbacks.borrow_mut().remove(id);
        removed.is_some()
    }

    /// The peer is gone: run the disconnect callbacks, drop every mapping.
    pub(crate) fn on_disconnected(&self) {
        if self.disconnected.replace(true) {
            return;
        }
        tracing::debug!(conn = self.id, name = %self.name, "disconnected");
        let callbacks = self.callbacks.borrow_mut().fire();
        for cb in callbacks {
            if let Err(p) = catch_unwind(AssertUnwindSafe(cb)) {
                tracing::error!(conn = self.id, panic = %panic_message(&*p), "a disconnect callback panicked");
            }
        }
        let threads = std::mem::take(&mut *self.client_threads.borrow_mut());
        drop(threads);
        let thread_map = self.peer_thread_map.borrow_mut().take();
        drop(thread_map);
        let bootstrap = self.peer_bootstrap.borrow_mut().take();
        drop(bootstrap);
        let pool = std::mem::take(&mut *self.pool.borrow_mut());
        drop(pool);
        self.threads.borrow_mut().gc();
    }
}

impl Drop for LoopConnection {
    fn drop(&mut self) {
        // Dropping the last handle ends the session, and the I/O task can no
        // longer reach this state to run the callbacks: run them here.
        let callbacks = self.callbacks.get_mut().fire();
        if !callbacks.is_empty() {
            tracing::debug!(
                conn = self.id,
                pending = callbacks.len(),
                "connection dropped; running its disconnect callbacks"
            );
        }
        for cb in callbacks {
            if let Err(p) = catch_unwind(AssertUnwindSafe(cb)) {
                tracing::error!(conn = self.id, panic = %panic_message(&*p), "a disconnect callback panicked");
            }
        }
    }
}

/// A weak loop-side connection, as server adapters keep it.
pub type WeakLoopConnection = Weak<LoopConnection>;
