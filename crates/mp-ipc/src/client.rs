//! Calling the peer: synchronous calls from any thread, async calls for
//! tokio code, and [`Remote`], the thread-safe handle to a peer's object.
//!
//! A synchronous call posts a job to the event loop and waits in the calling
//! thread's [`Waiter`], which keeps running jobs posted to it — so a callback
//! from the server lands on this very thread while it waits, nested
//! (client → server → callback → server → ...) up to `Limits::max_nesting`
//! levels per thread.
//!
//! Invariant 7: the reply travels through a `ReplySender` owned by the
//! loop-side task; if the session dies the task ends with a disconnect
//! error, and if the loop is torn down the sender is dropped, which wakes
//! the caller with [`Error::Disconnected`]. No wait here has another way out
//! to forget.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{AbortHandle, AbortRegistration};
use mp_thread::{ThreadBound, Waiter};

use crate::call_id::CallId;
use crate::call_metrics::{CallSide, Measured};
use crate::connection::{note_thread_uses, Connection};
use crate::error::{CallSite, Error};
use crate::event_loop::EventLoop;
use crate::loop_conn::{ClientContext, ClientKey, LoopConnection};
use crate::threads::{callback_target, serving_call_id};

/// The loop-side future of one call: sends the request, awaits and converts
/// the reply.
pub type CallFuture<R> = Pin<Box<dyn Future<Output = Result<R, Error>>>>;

/// What a call's request builder gets on the loop: the loop-side connection
/// and, on demand, the `Context` to send.
pub struct CallSetup {
    conn: Rc<LoopConnection>,
    site: CallSite,
    call_id: CallId,
    key: ClientKey,
    thread_name: String,
    waiter: Option<Waiter>,
    request_override: Option<crate::threads::CallbackThread>,
}

impl CallSetup {
    /// The loop-side connection (to wrap returned capabilities, serve
    /// callback objects).
    pub fn conn(&self) -> &Rc<LoopConnection> {
        &self.conn
    }

    /// The `Context` for this call: the server thread mapped to the calling
    /// thread (made on first use) and the calling thread's callback `Thread`.
    pub fn context(&self) -> Result<ClientContext, Error> {
        let request_override = match &self.request_override {
            Some(cb) => Some(cb.get().map_err(Error::Thread)?.clone()),
            None => None,
        };
        self.conn
            .client_context(
                self.key,
                &self.thread_name,
                self.waiter.clone(),
                request_override,
            )
            .map(|ctx| ctx.with_call_id(self.call_id))
            .map_err(|message| Error::BadRequest {
                site: self.site,
                message,
            })
    }
}

impl Connection {
    /// Makes a synchronous call from the calling thread. `build` runs on the
    /// event loop: it fills and sends the request and returns the future of
    /// the reply. Blocks until the reply arrives, running callbacks meanwhile.
    ///
    /// Refused on the event-loop thread ([`Error::OnEventLoop`]); use
    /// [`call_async`](Self::call_async) there.
    pub fn call<R, F>(&self, site: CallSite, build: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        self.call_within(site, None, build)
    }

    /// [`call`](Self::call) with a timeout: if no reply has come `timeout`
    /// after the call was made, the call is cancelled (the peer gets
    /// `Finish`) and fails with [`Error::DeadlineExceeded`]. Callbacks the
    /// call makes still run on this thread while it waits; the deadline is
    /// seen once the one running returns.
    pub fn call_within<R, F>(
        &self,
        site: CallSite,
        timeout: Option<Duration>,
        build: F,
    ) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let deadline = timeout.map(Deadline::after);
        if self.shared.event_loop.is_current() {
            return Err(Error::OnEventLoop { site });
        }
        let waiter = Waiter::current();
        let call_id = CallId::next();
        let _span = tracing::debug_span!(
            "mp.call",
            interface = site.interface,
            method = site.method,
            conn = self.shared.id,
            client_thread = %waiter.name(),
            call_id = %call_id,
            parent_call_id = serving_call_id().map(tracing::field::display),
        )
        .entered();
        note_thread_uses(&self.shared);
        let request_override = callback_target(self.shared.id);
        let key = ClientKey::Thread(std::thread::current().id());
        let (tx, rx) = waiter.reply_channel::<Result<R, Error>>();
        let thread_name = waiter.name().to_string();
        self.start_call(
            site,
            call_id,
            key,
            thread_name,
            Some(waiter.clone()),
            request_override,
            Limit {
                deadline,
                abort: None,
            },
            build,
            move |result| tx.send(result),
        )?;
        match waiter.wait(rx) {
            Ok(result) => result,
            Err(_) => Err(Error::interrupted(site)),
        }
    }

    /// The name of the server thread mapped to the calling thread on this
    /// connection (`Thread.getName`), making the mapping if there is none.
    pub fn server_thread_name(&self) -> Result<String, Error> {
        const SITE: CallSite = CallSite::new("Thread", "getName");
        self.call(SITE, |setup| {
            let req = setup.context()?.thread().get_name_request();
            Ok(send_request(SITE, req, |r| {
                Ok(r.get_result()?.to_string()?)
            }))
        })
    }

    /// Makes a call from async code. The returned future is `Send` and may
    /// be awaited on any runtime. Calls that need a server thread share one
    /// per connection (made on first use); callbacks during them run on a
    /// worker of this side's.
    ///
    /// Dropping the future before it completes cancels the call: the peer
    /// gets `Finish` for it.
    pub fn call_async<R, F>(
        &self,
        site: CallSite,
        build: F,
    ) -> impl Future<Output = Result<R, Error>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        self.call_async_within(site, None, build)
    }

    /// [`call_async`](Self::call_async) with a timeout, counted from now:
    /// past it the call is cancelled and the future completes with
    /// [`Error::DeadlineExceeded`]. The timer runs on the connection's
    /// event loop, so the future still needs no particular runtime.
    pub fn call_async_within<R, F>(
        &self,
        site: CallSite,
        timeout: Option<Duration>,
        build: F,
    ) -> impl Future<Output = Result<R, Error>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let (tx, rx) = futures::channel::oneshot::channel::<Result<R, Error>>();
        let name = format!("{}-async", self.shared.name);
        let (abort, registration) = AbortHandle::new_pair();
        let posted = self.start_call(
            site,
            CallId::next(),
            ClientKey::Async,
            name,
            None,
            None,
            Limit {
                deadline: timeout.map(Deadline::after),
                abort: Some(registration),
            },
            build,
            move |result| {
                let _ = tx.send(result);
            },
        );
        // Dropped with the future: a call still waiting for its reply is
        // cancelled.
        let cancel = AbortOnDrop(abort);
        async move {
            let _cancel = cancel;
            posted?;
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(Error::interrupted(site)),
            }
        }
    }

    /// Sends a call without waiting for its reply, from any thread (the
    /// event loop too): the request is built and sent on the loop, and its
    /// outcome is only logged (`debug` level, target `mp_ipc::client`).
    /// What a dropped client uses for its `destroy` where it cannot wait.
    /// Runs like [`call_async`](Self::call_async): calls that need a server
    /// thread use the connection's shared async one.
    pub fn call_detached<R, F>(&self, site: CallSite, build: F)
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let name = format!("{}-async", self.shared.name);
        let deliver = move |result: Result<R, Error>| {
            if let Err(e) = result {
                tracing::debug!(target: "mp_ipc::client", "{site}: detached call failed: {e}");
            }
        };
        let unlimited = Limit {
            deadline: None,
            abort: None,
        };
        if let Err(e) = self.start_call(
            site,
            CallId::next(),
            ClientKey::Async,
            name,
            None,
            None,
            unlimited,
            build,
            deliver,
        ) {
            tracing::debug!(target: "mp_ipc::client", "{site}: detached call not sent: {e}");
        }
    }
}

impl Connection {
    /// Posts the loop half of a call: checks the session, builds and sends
    /// the request, and hands the outcome to `deliver` on the loop. If the
    /// loop drops the job unrun, `deliver` is dropped with it (which wakes a
    /// waiting caller through its reply sender).
    #[allow(clippy::too_many_arguments)]
    fn start_call<R, F, D>(
        &self,
        site: CallSite,
        call_id: CallId,
        key: ClientKey,
        thread_name: String,
        waiter: Option<Waiter>,
        request_override: Option<crate::threads::CallbackThread>,
        limit: Limit,
        build: F,
        deliver: D,
    ) -> Result<(), Error>
    where
        R: Send + 'static,
        F: FnOnce(&CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
        D: FnOnce(Result<R, Error>) + Send + 'static,
    {
        let shared = self.shared.clone();
        // Counted from here, the caller's side of the hand-off; ended with
        // the outcome, or as cancelled if the job or its task is dropped
        // without one.
        let measured = Measured::start(site, CallSide::Client);
        // A call with no waiting thread (async, detached) has its span on
        // the loop, around its task; a synchronous call's is the caller's.
        let loop_span = waiter.is_none().then(|| {
            tracing::debug_span!(
                "mp.call",
                interface = site.interface,
                method = site.method,
                conn = self.shared.id,
                client_thread = "async",
                call_id = %call_id,
                parent_call_id = serving_call_id().map(tracing::field::display),
            )
        });
        let deliver = move |result: Result<R, Error>| {
            measured.end(result.as_ref().err().map(Error::kind));
            deliver(result);
        };
        self.shared
            .event_loop
            .post(move || {
                let conn = shared.local.get().expect("job runs on the loop").clone();
                if conn.is_disconnected() {
                    deliver(Err(Error::after_disconnect(site)));
                    return;
                }
                let Limit { deadline, abort } = limit;
                if abort.as_ref().is_some_and(|reg| reg.handle().is_aborted()) {
                    return; // the caller gave up before the request was sent
                }
                if let Some(passed) = deadline.filter(Deadline::has_passed) {
                    deliver(Err(passed.exceeded(site)));
                    return;
                }
                let setup = CallSetup {
                    conn,
                    site,
                    call_id,
                    key,
                    thread_name,
                    waiter,
                    request_override,
                };
                let span = loop_span.unwrap_or_else(tracing::Span::none);
                let entered = span.enter();
                let built = guarded(site, || build(&setup));
                drop(entered);
                match built {
                    Ok(reply) => EventLoop::spawn_local(tracing::Instrument::instrument(
                        async move {
                            let outcome = within(site, deadline, finish(site, reply));
                            match abort {
                                // Aborted: the caller dropped its future, and
                                // dropping `outcome` here drops the reply promise.
                                Some(registration) => {
                                    if let Ok(result) =
                                        futures::future::Abortable::new(outcome, registration).await
                                    {
                                        deliver(result);
                                    }
                                }
                                None => deliver(outcome.await),
                            }
                        },
                        span,
                    )),
                    Err(e) => deliver(Err(e)),
                }
            })
            .map_err(|_| Error::after_disconnect(site))
    }
}

/// What bounds a call besides its reply: a deadline, and (for an async
/// call) the caller dropping its future.
struct Limit {
    deadline: Option<Deadline>,
    abort: Option<AbortRegistration>,
}

/// When a call gives up: its timeout, counted from when it was made.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline {
            // A timeout too far out to add is no timeout in practice.
            at: Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365 * 30)),
            timeout,
        }
    }

    fn has_passed(&self) -> bool {
        Instant::now() >= self.at
    }

    fn exceeded(&self, site: CallSite) -> Error {
        Error::DeadlineExceeded {
            site,
            timeout: self.timeout,
        }
    }
}

/// Awaits `reply` until `deadline`; past it, drops `reply` (which drops the
/// reply promise, so capnp-rpc sends the peer `Finish`) and fails.
async fn within<R>(
    site: CallSite,
    deadline: Option<Deadline>,
    reply: impl Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    match deadline {
        None => reply.await,
        Some(d) => tokio::time::timeout_at(d.at.into(), reply)
            .await
            .unwrap_or_else(|_| Err(d.exceeded(site))),
    }
}

/// Aborts an async call's loop-side task when the caller's future is
/// dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Awaits a reply future, turning a panic in it into [`Error::Panicked`].
async fn finish<R>(site: CallSite, reply: CallFuture<R>) -> Result<R, Error> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(reply)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| {
            Err(Error::Panicked {
                site,
                message: mp_thread::panic_message(&*p),
            })
        })
}

/// Runs a request builder, turning a panic in it into [`Error::Panicked`].
fn guarded<R>(
    site: CallSite,
    build: impl FnOnce() -> Result<CallFuture<R>, Error>,
) -> Result<CallFuture<R>, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)).unwrap_or_else(|p| {
        Err(Error::Panicked {
            site,
            message: mp_thread::panic_message(&*p),
        })
    })
}

/// A thread-safe handle to an object in the peer process: a capability of
/// type `C` (a capnp-generated `Client`) bound to the event loop, plus the
/// connection it lives on. Clone it, send it, call it from any thread.
pub struct Remote<C: 'static> {
    inner: Arc<RemoteInner<C>>,
    /// How long each call through this handle may wait for its reply.
    timeout: Option<Duration>,
}

struct RemoteInner<C: 'static> {
    // Field order matters: the capability goes home while `conn` still
    // keeps the event loop alive.
    cap: ThreadBound<C>,
    conn: Connection,
}

impl<C: 'static> Clone for Remote<C> {
    fn clone(&self) -> Self {
        Remote {
            inner: self.inner.clone(),
            timeout: self.timeout,
        }
    }
}

impl<C: 'static> std::fmt::Debug for Remote<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("type", &std::any::type_name::<C>())
            .field("conn", &self.inner.conn.id())
            .finish()
    }
}

impl<C: Clone + 'static> Remote<C> {
    /// Wraps a capability received on `conn`'s loop. Must run on the loop.
    /// Fails if no user holds the connection any more (it is closing).
    pub fn new(conn: &Rc<LoopConnection>, cap: C) -> Result<Remote<C>, Error> {
        let handle = conn.connection().ok_or(Error::Disconnected {
            site: CallSite::new("Connection", "wrap"),
            phase: crate::error::DisconnectPhase::AfterDisconnect,
        })?;
        Ok(Remote {
            inner: Arc::new(RemoteInner {
                cap: conn.bind(cap),
                conn: handle,
            }),
            timeout: None,
        })
    }

    /// This handle with a timeout for each call made through it (`None`:
    /// calls wait for their reply as long as the connection lives, the
    /// default). Past it a call is cancelled (the peer gets `Finish`) and
    /// fails with [`Error::DeadlineExceeded`]. The handle it is made from
    /// keeps its own timeout, so one handle can serve as a client's default
    /// and another, made for one call, as an override.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Remote<C> {
        Remote {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// The timeout of calls through this handle.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The connection this object lives on.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The capability, on the event loop only.
    pub fn cap(&self) -> Result<&C, Error> {
        Ok(self.inner.cap.get()?)
    }

    /// A synchronous call on this object, bounded by this handle's
    /// [`timeout`](Self::timeout); see [`Connection::call_within`].
    pub fn call<R, F>(&self, site: CallSite, build: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&C, &CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner
            .conn
            .call_within(site, self.timeout, move |setup| {
                let cap = inner.cap.get()?;
                build(cap, setup)
            })
    }

    /// An async call on this object, bounded by this handle's
    /// [`timeout`](Self::timeout); see [`Connection::call_async_within`].
    pub fn call_async<R, F>(
        &self,
        site: CallSite,
        build: F,
    ) -> impl Future<Output = Result<R, Error>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&C, &CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner
            .conn
            .call_async_within(site, self.timeout, move |setup| {
                let cap = inner.cap.get()?;
                build(cap, setup)
            })
    }

    /// A call on this object that does not wait for its reply; see
    /// [`Connection::call_detached`].
    pub fn call_detached<R, F>(&self, site: CallSite, build: F)
    where
        R: Send + 'static,
        F: FnOnce(&C, &CallSetup) -> Result<CallFuture<R>, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner.conn.call_detached(site, move |setup| {
            let cap = inner.cap.get()?;
            build(cap, setup)
        })
    }
}

/// Sends `request` and returns the future of its decoded reply: the usual
/// tail of a request builder. `read` turns the reply into Rust values.
pub fn send_request<Params, Results, R, F>(
    site: CallSite,
    request: capnp::capability::Request<Params, Results>,
    read: F,
) -> CallFuture<R>
where
    Params: capnp::traits::Owned + 'static,
    Results: capnp::traits::Pipelined + capnp::traits::Owned + Unpin + 'static,
    <Results as capnp::traits::Pipelined>::Pipeline: capnp::capability::FromTypelessPipeline,
    R: 'static,
    F: for<'a> FnOnce(<Results as capnp::traits::Owned>::Reader<'a>) -> capnp::Result<R> + 'static,
{
    let promise = request.send().promise;
    Box::pin(async move {
        let response = promise.await.map_err(|e| Error::from_capnp(site, e))?;
        let reader = response.get().map_err(|e| Error::from_capnp(site, e))?;
        read(reader).map_err(|e| Error::from_capnp(site, e))
    })
}
