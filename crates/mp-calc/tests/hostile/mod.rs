//! The harness of the hostile-peer tests: test isolation with a log of
//! every panic in the process, a raw capnp-rpc peer (no mp-ipc client code,
//! so it can send what our client never would), a well-behaved client that
//! must keep getting answers, and the process's resident memory.

#![allow(dead_code)]

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, Once};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use capnp::capability::FromClientHook;
use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use mp_calc::calc_capnp::{calc_init, calculator};
use mp_ipc::proxy_capnp::{thread, thread_map};
use mp_ipc::{CallSite, Connection, Error, EventLoop};

use crate::common::watchdog;

pub const LIMIT: Duration = Duration::from_secs(120);
/// Bound for "eventually" waits (a disconnect noticed, threads reaped).
pub const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Test isolation: one test at a time, and a log of every panic.
// ---------------------------------------------------------------------------

pub static SERIAL: Mutex<()> = Mutex::new(());
pub static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Serialises the tests of this file and starts a fresh panic log.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>").to_string();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("thread `{name}`: {info}"));
            previous(info);
        }));
    });
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    guard
}

/// Runs a test body under the watchdog, alone, and fails if anything in the
/// process panicked meanwhile (a panic on the server loop or a server thread
/// is caught there and would otherwise go unnoticed).
pub fn guarded(body: impl FnOnce() + Send + 'static) {
    let _serial = exclusive();
    watchdog(LIMIT, body);
    let panics = std::mem::take(&mut *PANICS.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(panics.is_empty(), "panics during the test: {panics:#?}");
}

/// [`guarded`] for a test that provokes a panic on purpose: every panic seen
/// must contain `expected`, and there must be at least one.
pub fn guarded_expecting_panic(expected: &'static str, body: impl FnOnce() + Send + 'static) {
    let _serial = exclusive();
    watchdog(LIMIT, body);
    let panics = std::mem::take(&mut *PANICS.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(
        !panics.is_empty(),
        "the expected panic (`{expected}`) did not happen"
    );
    assert!(
        panics.iter().all(|p| p.contains(expected)),
        "unexpected panics during the test: {panics:#?}"
    );
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Serves a calculator on `server_loop`; the other end of the socketpair is
/// returned for the peer.
pub fn serve_pair(server_loop: &EventLoop) -> (Connection, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let server = mp_calc::serve(server_loop, a).expect("serve");
    (server, b)
}

/// [`serve_pair`] with `limits` on the server's side.
pub fn serve_pair_with(
    server_loop: &EventLoop,
    limits: mp_ipc::Limits,
) -> (Connection, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let service = std::sync::Arc::new(mp_calc::CalcInitService);
    let server = Connection::builder(server_loop)
        .limits(limits)
        .serve(move |conn| mp_calc::CalcInitServer::bootstrap(conn, service.clone()))
        .open(a, Side::Server)
        .expect("serve");
    (server, b)
}

/// A well-behaved client on a new connection to `server_loop` gets correct
/// answers: a mapped call (on a server thread named after this thread), a
/// loop call, and a callback-free failure path. Closes the connection after.
pub fn well_behaved_client_works(server_loop: &EventLoop, client_loop: &EventLoop) {
    let (server, stream) = serve_pair(server_loop);
    let init = mp_calc::connect(client_loop, stream).expect("a normal client connects");
    let calc = init.make_calculator().expect("makeCalculator");
    assert_eq!(calc.add(40, 2).expect("add"), 42);
    assert_eq!(calc.add_on_loop(-7, 10).expect("addOnLoop"), 3);
    let here = calc.where_am_i().expect("whereAmI");
    assert_eq!(
        Some(here.thread_name.as_str()),
        std::thread::current().name()
    );
    match calc.fail("expected failure") {
        Err(Error::Remote { message, .. }) => {
            assert!(message.contains("expected failure"), "{message}")
        }
        other => panic!("Calculator.fail: {other:?}"),
    }
    let client_conn = init.connection().clone();
    drop((calc, init));
    client_conn.close();
    assert!(client_conn.wait_disconnected_timeout(PATIENCE));
    assert!(
        server.wait_disconnected_timeout(PATIENCE),
        "the server sees the normal client leave"
    );
}

/// The error of a raw call that must fail.
pub fn refused<T>(result: Result<T, capnp::Error>, what: &str) -> capnp::Error {
    match result {
        Ok(_) => panic!("{what}: the call succeeded but must be refused"),
        Err(e) => e,
    }
}

/// Checks a raw capnp error: classified by mp-ipc as a bad request whose
/// message contains `needle`.
pub fn assert_bad_request(site: CallSite, e: capnp::Error, needle: &str) {
    assert_classified(site, e, needle, "a bad request", |e| match e {
        Error::BadRequest { site, message } => Some((site, message)),
        _ => None,
    });
}

/// Checks a raw capnp error: classified by mp-ipc as a limit reached whose
/// message contains `needle`.
pub fn assert_limit_reached(site: CallSite, e: capnp::Error, needle: &str) {
    assert_classified(site, e, needle, "a limit error", |e| match e {
        Error::LimitReached { site, message } => Some((site, message)),
        _ => None,
    });
}

/// Classifies `e` as mp-ipc's client would and checks that `pick` finds
/// the expected kind, at `site`, with `needle` in its message.
fn assert_classified(
    site: CallSite,
    e: capnp::Error,
    needle: &str,
    kind: &str,
    pick: impl FnOnce(&Error) -> Option<(&CallSite, &String)>,
) {
    let raw = e.to_string();
    let classified = Error::from_capnp(site, e);
    match pick(&classified) {
        Some((s, message)) => {
            assert_eq!(*s, site);
            assert!(
                message.contains(needle),
                "`{needle}` not in the message of {kind}: `{message}`"
            );
        }
        None => panic!("expected {kind} containing `{needle}`, got {classified:?} (raw: {raw})"),
    }
}

// ---------------------------------------------------------------------------
// The raw peer: plain capnp-rpc, no mp-ipc client code.
// ---------------------------------------------------------------------------

/// tokio's socket halves as the `futures` I/O traits capnp-rpc wants.
pub struct Io<T>(pub T);

impl<T: tokio::io::AsyncRead + Unpin> futures::io::AsyncRead for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match Pin::new(&mut self.get_mut().0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> futures::io::AsyncWrite for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Runs `fut` on a fresh current-thread runtime inside a `LocalSet`, on the
/// calling thread. Everything it spawned is dropped (sockets closed) when it
/// returns.
pub fn run_local<F: Future>(fut: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("raw peer runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, fut)
}

/// A `ThreadMap` the raw peer offers in `construct`; it refuses everything.
pub struct RefusingThreadMap;
impl thread_map::Server for RefusingThreadMap {}

/// A `Thread` served by the raw peer itself: a handle the server never made.
pub struct ForeignThread {
    pub asked: Rc<std::cell::Cell<u32>>,
}

impl thread::Server for ForeignThread {
    fn get_name(
        self: Rc<Self>,
        _params: thread::GetNameParams,
        mut results: thread::GetNameResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        self.asked.set(self.asked.get() + 1);
        results.get().set_result("forged");
        std::future::ready(Ok(()))
    }
}

/// Starts a raw capnp-rpc session (this side connected) on `stream` and
/// bootstraps the peer's root object as `C`. Must run inside [`run_local`];
/// aborting the returned task ends the session and closes the socket.
pub fn raw_bootstrap<C: FromClientHook>(stream: UnixStream) -> (C, tokio::task::JoinHandle<()>) {
    stream.set_nonblocking(true).expect("non-blocking");
    let stream = tokio::net::UnixStream::from_std(stream).expect("register the socket");
    let (reader, writer) = stream.into_split();
    let network = twoparty::VatNetwork::new(
        futures::io::BufReader::new(Io(reader)),
        futures::io::BufWriter::new(Io(writer)),
        Side::Client,
        capnp::message::ReaderOptions::new(),
    );
    let mut rpc = RpcSystem::new(Box::new(network), None);
    let root: C = rpc.bootstrap(Side::Server);
    let task = tokio::task::spawn_local(async move {
        let _ = rpc.await;
    });
    (root, task)
}

/// A read half that reads nothing while its gate is shut: a peer that does
/// not read what the server sends it.
pub struct Gated<R> {
    inner: R,
    open: Rc<std::cell::Cell<bool>>,
    waker: Rc<std::cell::RefCell<Option<std::task::Waker>>>,
}

/// Opens a [`Gated`] reader.
#[derive(Clone)]
pub struct Gate {
    open: Rc<std::cell::Cell<bool>>,
    waker: Rc<std::cell::RefCell<Option<std::task::Waker>>>,
}

impl Gate {
    /// Lets the reader read from now on.
    pub fn open(&self) {
        self.open.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Stops the reader after what it is reading now.
    pub fn shut(&self) {
        self.open.set(false);
    }
}

impl<R: futures::io::AsyncRead + Unpin> futures::io::AsyncRead for Gated<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if !this.open.get() {
            *this.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// [`raw_bootstrap`] whose reading can be stopped and resumed with the
/// returned [`Gate`] (open at first).
pub fn raw_bootstrap_gated<C: FromClientHook>(
    stream: UnixStream,
) -> (C, tokio::task::JoinHandle<()>, Gate) {
    stream.set_nonblocking(true).expect("non-blocking");
    let stream = tokio::net::UnixStream::from_std(stream).expect("register the socket");
    let (reader, writer) = stream.into_split();
    let gate = Gate {
        open: Rc::new(std::cell::Cell::new(true)),
        waker: Rc::default(),
    };
    let network = twoparty::VatNetwork::new(
        futures::io::BufReader::with_capacity(
            512,
            Gated {
                inner: Io(reader),
                open: gate.open.clone(),
                waker: gate.waker.clone(),
            },
        ),
        futures::io::BufWriter::new(Io(writer)),
        Side::Client,
        capnp::message::ReaderOptions::new(),
    );
    let mut rpc = RpcSystem::new(Box::new(network), None);
    let root: C = rpc.bootstrap(Side::Server);
    let task = tokio::task::spawn_local(async move {
        let _ = rpc.await;
    });
    (root, task, gate)
}

/// What a raw request's `context` field holds.
pub enum Ctx {
    /// No `context` at all.
    Missing,
    /// A `Context` whose `thread` is null.
    NullThread,
    /// A `Context` naming this thread.
    Thread(thread::Client),
}

/// A raw capnp-rpc session with a calculator server. Must live inside
/// [`run_local`].
pub struct RawPeer {
    /// The server's bootstrap object.
    pub init: calc_init::Client,
    /// The server's `ThreadMap`, from `construct`.
    pub thread_map: thread_map::Client,
    rpc_task: tokio::task::JoinHandle<()>,
}

impl RawPeer {
    pub async fn connect(stream: UnixStream) -> RawPeer {
        let (init, rpc_task) = raw_bootstrap::<calc_init::Client>(stream);
        let mut req = init.construct_request();
        req.get()
            .set_thread_map(capnp_rpc::new_client(RefusingThreadMap));
        let reply = req.send().promise.await.expect("CalcInit.construct");
        let thread_map = reply
            .get()
            .unwrap()
            .get_thread_map()
            .expect("the server's ThreadMap");
        RawPeer {
            init,
            thread_map,
            rpc_task,
        }
    }

    pub async fn make_thread(&self, name: &str) -> Result<thread::Client, capnp::Error> {
        let mut req = self.thread_map.make_thread_request();
        req.get().set_name(name);
        let reply = req.send().promise.await?;
        reply.get()?.get_result()
    }

    pub async fn make_thread_raw_name(&self, name: &[u8]) -> Result<thread::Client, capnp::Error> {
        let mut req = self.thread_map.make_thread_request();
        req.get().set_name(capnp::text::Reader::from(name));
        let reply = req.send().promise.await?;
        reply.get()?.get_result()
    }

    pub async fn make_pool(&self, count: u32) -> Result<(), capnp::Error> {
        let mut req = self.thread_map.make_pool_request();
        req.get().set_count(count);
        req.send().promise.await.map(drop)
    }

    pub async fn make_calculator(&self, ctx: Ctx) -> Result<calculator::Client, capnp::Error> {
        let mut req = self.init.make_calculator_request();
        fill(ctx, || req.get().init_context());
        let reply = req.send().promise.await?;
        reply.get()?.get_result()
    }

    /// A calculator made properly (with a thread this connection made).
    pub async fn calculator(&self) -> calculator::Client {
        let thread = self.make_thread("raw-ctor").await.expect("makeThread");
        self.make_calculator(Ctx::Thread(thread))
            .await
            .expect("makeCalculator")
    }

    /// Ends the session: the RPC system and the socket are dropped.
    pub async fn hang_up(self) {
        self.rpc_task.abort();
        let _ = self.rpc_task.await;
    }
}

pub fn fill<'a>(ctx: Ctx, init: impl FnOnce() -> mp_ipc::proxy_capnp::context::Builder<'a>) {
    match ctx {
        Ctx::Missing => {}
        Ctx::NullThread => {
            init();
        }
        Ctx::Thread(thread) => init().set_thread(thread),
    }
}

pub async fn raw_add(
    calc: &calculator::Client,
    ctx: Ctx,
    a: i64,
    b: i64,
) -> Result<i64, capnp::Error> {
    let mut req = calc.add_request();
    fill(ctx, || req.get().init_context());
    req.get().set_a(a);
    req.get().set_b(b);
    let reply = req.send().promise.await?;
    Ok(reply.get()?.get_result())
}

pub async fn raw_where_am_i(
    calc: &calculator::Client,
    ctx: Ctx,
) -> Result<(String, u64), capnp::Error> {
    let mut req = calc.where_am_i_request();
    fill(ctx, || req.get().init_context());
    let reply = req.send().promise.await?;
    let r = reply.get()?;
    Ok((r.get_thread_name()?.to_string()?, r.get_thread_number()))
}

pub async fn raw_get_name(thread: &thread::Client) -> Result<String, capnp::Error> {
    let reply = thread.get_name_request().send().promise.await?;
    Ok(reply.get()?.get_result()?.to_string()?)
}

pub const ADD: CallSite = CallSite::new("Calculator", "add");
pub const WHERE: CallSite = CallSite::new("Calculator", "whereAmI");
pub const MAKE_CALC: CallSite = CallSite::new("CalcInit", "makeCalculator");
pub const MAKE_THREAD: CallSite = CallSite::new("ThreadMap", "makeThread");
pub const MAKE_POOL: CallSite = CallSite::new("ThreadMap", "makePool");

pub fn loops() -> (EventLoop, EventLoop) {
    (
        EventLoop::new("server-loop").expect("server loop"),
        EventLoop::new("client-loop").expect("client loop"),
    )
}

/// This process's resident memory in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS: line")
}

/// Checks that resident memory grew by less than `bound` bytes since
/// `before` (a figure of [`rss_bytes`]). Under a sanitizer, whose shadow
/// memory multiplies what is resident, the bound is multiplied by
/// `MP_RSS_FACTOR` (`scripts/tsan` sets it).
pub fn assert_rss_grew_less_than(before: usize, bound: usize) {
    let factor: usize = std::env::var("MP_RSS_FACTOR")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(1);
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < bound * factor,
        "RSS grew by {grown} bytes, over the bound of {} bytes",
        bound * factor
    );
}
