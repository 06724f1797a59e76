//! The `rpc_messages` target's peer: runs a [`script`](crate::script) as a
//! hostile capnp RPC peer of an in-process calculator server, speaking the
//! wire protocol directly (rpc.capnp messages written and read on a Unix
//! socket, no capnp-rpc client), so it can send what no well-behaved client
//! would.
//!
//! Owns the shared [`World`]: one server event loop and one well-behaved
//! probe client, created once per fuzzing process and reused by every
//! input (no thread or process is spawned per input, except the server
//! threads a script asks the server for).
//!
//! Invariant checked after every input: the server ends the hostile session
//! within a bounded time once the peer hangs up and never panics
//! (libFuzzer's panic hook aborts on any panic in the process, server
//! threads and the event loop included); every 8 inputs it must still
//! answer the probe client, every 256 a fresh connection, and server
//! threads must not pile up.

use std::collections::HashSet;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use capnp::capability::FromClientHook;
use capnp::private::capability::ClientHook;
use capnp::private::layout::{CapTable, ElementSize, PointerBuilder, StructSize};
use capnp::traits::{FromPointerBuilder, HasTypeId, ImbueMut};
use capnp_rpc::rpc_capnp::{
    cap_descriptor, disembargo, message, message_target, payload, promised_answer, return_,
};
use mp_test_calc::calc_capnp::{calc_init, calculator, callback, counter};
use mp_ipc::proxy_capnp::{thread, thread_map};
use mp_ipc::{Connection, EventLoop};

use crate::script::{CapDesc, CapRef, Iface, Op, QRef, Reply, Target, Value};

/// How long one `Await` waits for its answer.
const AWAIT: Duration = Duration::from_millis(25);
/// How long the server may take to end a session after the peer hung up.
const PATIENCE: Duration = Duration::from_secs(20);
/// Most threads the process may have between inputs before the harness
/// waits for them to be reaped (and fails if they are not).
const THREAD_CEILING: usize = 256;

/// The server loop and a well-behaved client, shared by every input.
pub struct World {
    server_loop: EventLoop,
    client_loop: EventLoop,
    /// `add(2, 2)` through the well-behaved client.
    probe: Box<dyn Fn() -> Result<i64, mp_ipc::Error> + Send + Sync>,
    _probe_server: Connection,
    inputs: AtomicU64,
}

impl World {
    /// The loop every fuzzed session is served on.
    pub fn server_loop(&self) -> &EventLoop {
        &self.server_loop
    }

    /// `add(2, 2)` through the well-behaved client: the server still serves.
    pub fn probe(&self) -> Result<i64, mp_ipc::Error> {
        (self.probe)()
    }
}

/// The world, made on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // A write to a socket the server closed must be an error, not a
        // signal that kills the fuzzer.
        // SAFETY: setting a signal disposition to SIG_IGN has no
        // preconditions; it happens once, before any socket is used.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let server_loop = EventLoop::new("fuzz-server").expect("server loop");
        let client_loop = EventLoop::new("fuzz-client").expect("client loop");
        let (a, b) = UnixStream::pair().expect("socketpair");
        let probe_server = mp_test_calc::serve(&server_loop, a).expect("serve probe");
        let calc = mp_test_calc::connect(&client_loop, b)
            .and_then(|init| init.make_calculator())
            .expect("probe client");
        let probe = Box::new(move || calc.add(2, 2));
        World {
            server_loop,
            client_loop,
            probe,
            _probe_server: probe_server,
            inputs: AtomicU64::new(0),
        }
    })
}

/// A capnp pointer as the layout sees it, so values of any shape can be
/// built (the generated builders only build well-typed ones).
struct RawPtr<'a>(PointerBuilder<'a>);

impl<'a> FromPointerBuilder<'a> for RawPtr<'a> {
    fn init_pointer(builder: PointerBuilder<'a>, _length: u32) -> Self {
        RawPtr(builder)
    }
    fn get_from_pointer(
        builder: PointerBuilder<'a>,
        _default: Option<&'a [capnp::Word]>,
    ) -> capnp::Result<Self> {
        Ok(RawPtr(builder))
    }
}

/// A `Thread` that is never called: only its hook is used, to write a
/// capability pointer (its index in the message's cap table).
struct Placeholder;
impl thread::Server for Placeholder {}

fn placeholder_hook() -> Box<dyn ClientHook> {
    capnp_rpc::new_client::<thread::Client, _>(Placeholder).into_client_hook()
}

fn build_value(mut p: PointerBuilder<'_>, v: &Value) {
    match v {
        Value::Null => {}
        Value::Struct(data, ptrs) => {
            let s = p.init_struct(StructSize {
                data: data.len() as u16,
                pointers: ptrs.len() as u16,
            });
            for (i, w) in data.iter().enumerate() {
                s.set_data_field::<u64>(i, *w);
            }
            let mut s = s;
            for (i, child) in ptrs.iter().enumerate() {
                build_value(s.reborrow().get_pointer_field(i), child);
            }
        }
        Value::List(kind, len) => {
            let (size, cap) = match kind % 7 {
                0 => (ElementSize::Void, (1 << 29) - 1),
                1 => (ElementSize::Bit, 1 << 20),
                2 => (ElementSize::Byte, 1 << 16),
                3 => (ElementSize::TwoBytes, 1 << 15),
                4 => (ElementSize::FourBytes, 1 << 14),
                5 => (ElementSize::EightBytes, 1 << 13),
                _ => (ElementSize::Pointer, 1 << 13),
            };
            p.init_list(size, (*len).min(cap));
        }
        Value::Text(bytes) => p.set_text(capnp::text::Reader::from(bytes.as_slice())),
        Value::Data(bytes) => p.set_data(bytes),
        Value::Cap => p.set_capability(placeholder_hook()),
        Value::Deep(n) => {
            for _ in 0..(*n).min(2000) {
                let s = p.init_struct(StructSize {
                    data: 0,
                    pointers: 1,
                });
                p = s.get_pointer_field(0);
            }
        }
        Value::StructList(len, data, ptrs) => {
            let (data, ptrs) = (u16::from(data % 4), u16::from(ptrs % 4));
            let cap = if data + ptrs == 0 {
                (1 << 29) - 1
            } else {
                1 << 12
            };
            p.init_struct_list(
                (*len).min(cap),
                StructSize {
                    data,
                    pointers: ptrs,
                },
            );
        }
        Value::PtrList(items) => {
            let mut l = p.init_list(ElementSize::Pointer, items.len() as u32);
            for (i, item) in items.iter().enumerate() {
                build_value(l.reborrow().get_pointer_element(i as u32), item);
            }
        }
    }
}

fn iface_id(i: Iface) -> u64 {
    match i {
        Iface::CalcInit => <calc_init::Client as HasTypeId>::TYPE_ID,
        Iface::Calculator => <calculator::Client as HasTypeId>::TYPE_ID,
        Iface::Callback => <callback::Client as HasTypeId>::TYPE_ID,
        Iface::Counter => <counter::Client as HasTypeId>::TYPE_ID,
        Iface::ThreadMap => <thread_map::Client as HasTypeId>::TYPE_ID,
        Iface::Thread => <thread::Client as HasTypeId>::TYPE_ID,
        Iface::Raw(id) => id,
    }
}

/// The state of one hostile session.
struct Peer {
    stream: Option<UnixStream>,
    /// Question ids asked, in order.
    questions: Vec<u32>,
    /// Question ids the server answered.
    answered: HashSet<u32>,
    next_question: u32,
    /// Import ids the server exported to us, in the order we learned them.
    imports: Vec<u32>,
    /// Question ids of calls the server made to us, not yet answered.
    incoming: Vec<u32>,
    /// The read side lost frame sync (a timed-out partial read) or ended.
    reading: bool,
    /// What came back, for tests of the harness itself.
    summary: Summary,
}

/// What one session got back from the server (lets tests check that the
/// seeds reach deep into the server, not just its front door).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Returns with results.
    pub results: usize,
    /// Returns with an exception.
    pub exceptions: usize,
    /// Capabilities the server exported to the peer.
    pub imports: usize,
    /// Calls (and bootstraps) the server made to the peer.
    pub server_calls: usize,
    /// The server aborted the session.
    pub aborted: bool,
}

impl Peer {
    fn question(&self, q: QRef) -> u32 {
        if q.0 >= 0x80 || self.questions.is_empty() {
            self.next_question + u32::from(q.0 & 0x7f)
        } else {
            self.questions[usize::from(q.0) % self.questions.len()]
        }
    }

    fn import(&self, c: CapRef) -> u32 {
        match c {
            CapRef::Raw(id) => id,
            CapRef::Learned(i) if self.imports.is_empty() => u32::from(i),
            CapRef::Learned(i) => self.imports[usize::from(i) % self.imports.len()],
        }
    }

    fn send(&mut self, msg: &capnp::message::Builder<capnp::message::HeapAllocator>) {
        if let Some(s) = self.stream.as_mut() {
            if capnp::serialize::write_message(&mut *s, msg).is_err() {
                // The server closed the session: nothing more to send.
                self.stream = None;
            }
        }
    }

    fn promised(&self, mut b: promised_answer::Builder<'_>, q: QRef, transform: &[Option<u16>]) {
        b.set_question_id(self.question(q));
        let mut ops = b.init_transform(transform.len() as u32);
        for (i, step) in transform.iter().enumerate() {
            let mut op = ops.reborrow().get(i as u32);
            match step {
                None => op.set_noop(()),
                Some(f) => op.set_get_pointer_field(*f),
            }
        }
    }

    fn target(&self, b: message_target::Builder<'_>, t: &Target) {
        match t {
            Target::Import(c) => {
                let mut b = b;
                b.set_imported_cap(self.import(*c));
            }
            Target::Promised(q, tr) => self.promised(b.init_promised_answer(), *q, tr),
        }
    }

    fn capdesc(&self, mut b: cap_descriptor::Builder<'_>, c: &CapDesc) {
        match c {
            CapDesc::None => b.set_none(()),
            CapDesc::SenderHosted(id) => b.set_sender_hosted(*id),
            CapDesc::SenderPromise(id) => b.set_sender_promise(*id),
            CapDesc::ReceiverHosted(r) => b.set_receiver_hosted(self.import(*r)),
            CapDesc::ReceiverAnswer(q, tr) => self.promised(b.init_receiver_answer(), *q, tr),
            CapDesc::ThirdParty => {
                b.init_third_party_hosted().set_vine_id(7);
            }
        }
    }

    /// Fills a payload: `content` built raw, then the cap table.
    fn payload(&self, mut b: payload::Builder<'_>, content: &Value, caps: &[CapDesc]) {
        let mut table: CapTable = Vec::new();
        {
            let mut c = b.reborrow().init_content();
            c.imbue_mut(&mut table);
            let raw: RawPtr<'_> = c.init_as();
            build_value(raw.0, content);
        }
        let mut list = b.init_cap_table(caps.len() as u32);
        for (i, c) in caps.iter().enumerate() {
            self.capdesc(list.reborrow().get(i as u32), c);
        }
    }

    fn call(&mut self, c: &crate::script::Call) {
        let id = iface_id(c.iface);
        let mut method = c.method;
        let mut params = c.params.clone();
        if id == <calculator::Client as HasTypeId>::TYPE_ID {
            // `panic` panics on purpose (libFuzzer would count it as a
            // crash): call `fail` instead.
            if method == 6 {
                method = 5;
            }
            // `sleep` blocks a server thread for `millis`: keep it short.
            if method == 4 {
                if let Value::Struct(data, _) = &mut params {
                    if let Some(w) = data.first_mut() {
                        *w = (*w & !0xffff_ffff) | (*w & 0xffff_ffff).min(5);
                    }
                } else {
                    params = Value::Null;
                }
            }
        }
        let q = self.next_question;
        self.next_question += 1;
        self.questions.push(q);
        let mut msg = capnp::message::Builder::new_default();
        {
            let mut call = msg.init_root::<message::Builder<'_>>().init_call();
            call.set_question_id(q);
            call.set_interface_id(id);
            call.set_method_id(method);
            self.target(call.reborrow().init_target(), &c.target);
            self.payload(call.reborrow().init_params(), &params, &c.caps);
            let mut to = call.reborrow().init_send_results_to();
            if c.flags & 1 != 0 {
                to.set_yourself(());
            } else if c.flags & 2 != 0 {
                to.init_third_party();
            } else {
                to.set_caller(());
            }
            call.set_no_promise_pipelining(c.flags & 4 != 0);
            call.set_only_promise_pipeline(c.flags & 8 != 0);
        }
        self.send(&msg);
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Call(c) => return self.call(c),
            Op::Await {
                question,
                answer_calls,
            } => {
                let q = self.question(*question);
                return self.pump(Some(q), *answer_calls);
            }
            Op::HangUp => {
                self.stream = None;
                return;
            }
            Op::Garbage(bytes) => {
                if let Some(s) = self.stream.as_mut() {
                    if s.write_all(bytes).is_err() {
                        self.stream = None;
                    }
                }
                return;
            }
            Op::Other(k) if k % 7 == 6 => {
                // A message whose union discriminant is no known member.
                let mut msg = capnp::message::Builder::new_default();
                {
                    let raw: RawPtr<'_> = msg.init_root();
                    let s = raw.0.init_struct(StructSize {
                        data: 1,
                        pointers: 1,
                    });
                    s.set_data_field::<u16>(0, 0xfff0 | u16::from(*k >> 4));
                }
                return self.send(&msg);
            }
            _ => {}
        }
        let mut msg = capnp::message::Builder::new_default();
        {
            let root = msg.init_root::<message::Builder<'_>>();
            match op {
                Op::Call(_) | Op::Await { .. } | Op::HangUp | Op::Garbage(_) => unreachable!(),
                Op::Bootstrap => {
                    let q = self.next_question;
                    self.next_question += 1;
                    self.questions.push(q);
                    root.init_bootstrap().set_question_id(q);
                }
                Op::Finish(q, release) => {
                    let mut f = root.init_finish();
                    f.set_question_id(self.question(*q));
                    f.set_release_result_caps(*release);
                }
                Op::Release(c, n) => {
                    let mut r = root.init_release();
                    r.set_id(self.import(*c));
                    r.set_reference_count(*n);
                }
                Op::Resolve(id, cap) => {
                    let mut r = root.init_resolve();
                    r.set_promise_id(*id);
                    match cap {
                        Some(c) => self.capdesc(r.init_cap(), c),
                        None => r.init_exception().set_reason("resolved to an error"),
                    }
                }
                Op::Disembargo(t, kind, id) => {
                    let mut d: disembargo::Builder<'_> = root.init_disembargo();
                    self.target(d.reborrow().init_target(), t);
                    let mut ctx = d.init_context();
                    match kind % 4 {
                        0 => ctx.set_sender_loopback(*id),
                        1 => ctx.set_receiver_loopback(*id),
                        2 => ctx.set_accept(()),
                        _ => ctx.set_provide(*id),
                    }
                }
                Op::Abort(reason) => {
                    root.init_abort()
                        .set_reason(capnp::text::Reader::from(reason.as_slice()));
                }
                Op::Return(i, reply) => {
                    let answer = if self.incoming.is_empty() {
                        u32::from(*i)
                    } else {
                        self.incoming.remove(usize::from(*i) % self.incoming.len())
                    };
                    let mut r: return_::Builder<'_> = root.init_return();
                    r.set_answer_id(answer);
                    match reply {
                        Reply::Results(v, caps) => {
                            self.payload(r.init_results(), v, caps);
                        }
                        Reply::Exception => {
                            r.init_exception().set_reason("refused by the fuzz peer")
                        }
                        Reply::Canceled => r.set_canceled(()),
                        Reply::SentElsewhere => r.set_results_sent_elsewhere(()),
                        Reply::TakeFrom(q) => r.set_take_from_other_question(self.question(*q)),
                    }
                }
                Op::Other(k) => match k % 7 {
                    0 => {
                        let u = root.init_unimplemented();
                        u.init_bootstrap().set_question_id(0);
                    }
                    1 => {
                        let _ = root.init_obsolete_save();
                    }
                    2 => {
                        let _ = root.init_obsolete_delete();
                    }
                    3 => {
                        let mut p = root.init_provide();
                        p.set_question_id(self.next_question);
                        p.reborrow().init_target().set_imported_cap(0);
                    }
                    4 => {
                        root.init_accept().set_question_id(self.next_question);
                    }
                    5 => {
                        let mut j = root.init_join();
                        j.set_question_id(self.next_question);
                        j.init_target().set_imported_cap(0);
                    }
                    _ => unreachable!("handled above"),
                },
            }
        }
        self.send(&msg);
    }

    /// Reads the server's messages until question `want` is answered (or
    /// [`AWAIT`] passes, or the session ends): learns the capabilities it
    /// exports to us, and notes (or refuses, with `answer_calls`) the calls
    /// it makes to us. Waiting for a question never asked or already
    /// answered returns at once, and so does waiting while the server waits
    /// for us (a call to us arrives that we are not to answer at once).
    fn pump(&mut self, want: Option<u32>, answer_calls: bool) {
        if let Some(q) = want {
            if self.answered.contains(&q) || !self.questions.contains(&q) {
                return;
            }
        }
        let deadline = Instant::now() + AWAIT;
        while self.reading {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let _ = stream.set_read_timeout(Some(deadline - now));
            let options = *capnp::message::ReaderOptions::new()
                .traversal_limit_in_words(Some(1 << 24))
                .nesting_limit(128);
            let msg = match capnp::serialize::try_read_message(&mut *stream, options) {
                Ok(Some(m)) => m,
                Ok(None) | Err(_) => {
                    // End of session, or a timeout that may have cut a
                    // frame: stop reading either way.
                    self.reading = false;
                    return;
                }
            };
            let Ok(root) = msg.get_root::<message::Reader<'_>>() else {
                continue;
            };
            match root.which() {
                Ok(message::Return(Ok(r))) => {
                    match r.which() {
                        Ok(return_::Results(Ok(p))) => {
                            self.summary.results += 1;
                            self.learn(p);
                        }
                        Ok(return_::Exception(_)) => self.summary.exceptions += 1,
                        _ => {}
                    }
                    self.answered.insert(r.get_answer_id());
                    if Some(r.get_answer_id()) == want {
                        return;
                    }
                }
                Ok(message::Resolve(Ok(r))) => {
                    if let Ok(capnp_rpc::rpc_capnp::resolve::Cap(Ok(c))) = r.which() {
                        self.learn_one(c);
                    }
                }
                Ok(message::Call(Ok(c))) => {
                    if let Ok(p) = c.get_params() {
                        self.learn(p);
                    }
                    self.incoming(c.get_question_id(), answer_calls);
                    if want.is_some() && !answer_calls {
                        return;
                    }
                }
                Ok(message::Bootstrap(Ok(b))) => self.incoming(b.get_question_id(), answer_calls),
                Ok(message::Abort(_)) => {
                    self.summary.aborted = true;
                    self.reading = false;
                    return;
                }
                _ => {}
            }
        }
    }

    fn incoming(&mut self, q: u32, refuse: bool) {
        self.summary.server_calls += 1;
        if refuse {
            let mut msg = capnp::message::Builder::new_default();
            {
                let mut r = msg.init_root::<message::Builder<'_>>().init_return();
                r.set_answer_id(q);
                r.init_exception().set_reason("refused by the fuzz peer");
            }
            self.send(&msg);
        } else {
            self.incoming.push(q);
        }
    }

    fn learn(&mut self, p: payload::Reader<'_>) {
        if let Ok(caps) = p.get_cap_table() {
            for c in caps.iter() {
                self.learn_one(c);
            }
        }
    }

    fn learn_one(&mut self, c: cap_descriptor::Reader<'_>) {
        match c.which() {
            Ok(cap_descriptor::SenderHosted(id)) | Ok(cap_descriptor::SenderPromise(id)) => {
                self.summary.imports += 1;
                if self.imports.len() < 256 {
                    self.imports.push(id);
                }
            }
            _ => {}
        }
    }
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one script against a fresh session of the shared server, then
/// checks the invariants (see the module comment). Panics on a violation.
pub fn run(ops: &[Op]) -> Summary {
    let world = world();
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let server = mp_test_calc::serve(&world.server_loop, ours).expect("serve");
    let mut peer = Peer {
        stream: Some(theirs),
        questions: Vec::new(),
        answered: HashSet::new(),
        next_question: 0,
        imports: Vec::new(),
        incoming: Vec::new(),
        reading: true,
        summary: Summary::default(),
    };
    for op in ops {
        peer.run(op);
        if peer.stream.is_none() {
            break;
        }
    }
    // Hang up: half-close, refuse whatever the server still asks, drain.
    if let Some(s) = peer.stream.as_ref() {
        let _ = s.shutdown(Shutdown::Write);
        peer.pump(None, false);
    }
    let summary = std::mem::take(&mut peer.summary);
    drop(peer);
    assert!(
        server.wait_disconnected_timeout(PATIENCE),
        "the server kept a session open after its peer hung up"
    );
    drop(server);
    let n = world.inputs.fetch_add(1, Ordering::Relaxed);
    if n.is_multiple_of(8) {
        assert_eq!((world.probe)().expect("the server still serves others"), 4);
    }
    if n.is_multiple_of(256) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let fresh_server = mp_test_calc::serve(&world.server_loop, a).expect("serve");
        let init = mp_test_calc::connect(&world.client_loop, b).expect("a fresh client connects");
        let calc = init.make_calculator().expect("makeCalculator");
        assert_eq!(calc.add(40, 2).expect("a fresh connection is served"), 42);
        let conn = init.connection().clone();
        drop((calc, init));
        conn.close();
        assert!(fresh_server.wait_disconnected_timeout(PATIENCE));
    }
    if thread_count() > THREAD_CEILING {
        let deadline = Instant::now() + PATIENCE;
        while thread_count() > THREAD_CEILING {
            assert!(
                Instant::now() < deadline,
                "server threads pile up: {} threads",
                thread_count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    summary
}
