//! Our client facing a hostile server, written on plain capnp-rpc (no
//! mp-ipc server code): a callback flood onto the waiting client thread,
//! callbacks nested without end, and a reply larger than the client
//! accepts. Each ends in errors on the client — never a crash, never a
//! hang — and the client's thread and process go on.

mod common;
mod hostile;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use hostile::*;
use mp_calc::calc_capnp::{calc_init, calculator};
use mp_calc::{CalcInitClient, Callback};
use mp_ipc::proxy_capnp::{thread, thread_map};
use mp_ipc::{Connection, Error, EventLoop, Limits};

/// What the hostile calculator does when the client calls `countdown`.
#[derive(Clone, Copy)]
enum Mode {
    /// Sends this many `step` callbacks at once to the waiting client
    /// thread; answers with how many were refused.
    Flood(u32),
    /// Answers every `countdown` by calling `step(n + 1)` back, forever.
    Nest,
    /// Answers `whereAmI` with a thread name of this many bytes.
    HugeReply(usize),
}

struct RawThread;
impl thread::Server for RawThread {}

struct RawThreadMap;
impl thread_map::Server for RawThreadMap {
    async fn make_thread(
        self: Rc<Self>,
        _params: thread_map::MakeThreadParams,
        mut results: thread_map::MakeThreadResults,
    ) -> Result<(), capnp::Error> {
        results.get().set_result(capnp_rpc::new_client(RawThread));
        Ok(())
    }
}

struct RawInit {
    mode: Mode,
}

impl calc_init::Server for RawInit {
    async fn construct(
        self: Rc<Self>,
        _params: calc_init::ConstructParams,
        mut results: calc_init::ConstructResults,
    ) -> Result<(), capnp::Error> {
        results
            .get()
            .set_thread_map(capnp_rpc::new_client(RawThreadMap));
        Ok(())
    }

    async fn make_calculator(
        self: Rc<Self>,
        _params: calc_init::MakeCalculatorParams,
        mut results: calc_init::MakeCalculatorResults,
    ) -> Result<(), capnp::Error> {
        results
            .get()
            .set_result(capnp_rpc::new_client(RawCalculator {
                mode: self.mode,
                refused: Cell::new(0),
            }));
        Ok(())
    }
}

struct RawCalculator {
    mode: Mode,
    refused: Cell<u32>,
}

impl calculator::Server for RawCalculator {
    async fn add(
        self: Rc<Self>,
        params: calculator::AddParams,
        mut results: calculator::AddResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        results.get().set_result(p.get_a() + p.get_b());
        Ok(())
    }

    async fn where_am_i(
        self: Rc<Self>,
        _params: calculator::WhereAmIParams,
        mut results: calculator::WhereAmIResults,
    ) -> Result<(), capnp::Error> {
        let len = match self.mode {
            Mode::HugeReply(len) => len,
            _ => 8,
        };
        results.get().set_thread_name("h".repeat(len).as_str());
        Ok(())
    }

    async fn countdown(
        self: Rc<Self>,
        params: calculator::CountdownParams,
        mut results: calculator::CountdownResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let n = p.get_n();
        let cb = p.get_callback()?;
        let back = p.get_context()?.get_callback_thread()?;
        let step = |n: u32| {
            let mut req = cb.step_request();
            req.get().init_context().set_thread(back.clone());
            req.get().set_n(n);
            req.send().promise
        };
        match self.mode {
            Mode::Flood(count) => {
                let replies = futures::future::join_all((0..count).map(step)).await;
                for reply in replies {
                    if let Err(e) = reply {
                        assert!(
                            e.to_string().contains("limit reached"),
                            "a flooded callback fails on a limit: {e}"
                        );
                        self.refused.set(self.refused.get() + 1);
                    }
                }
                results.get().set_result(self.refused.get());
            }
            Mode::Nest | Mode::HugeReply(_) => {
                let reply = step(n + 1).await?;
                results.get().set_result(reply.get()?.get_result());
            }
        }
        Ok(())
    }
}

/// Serves the hostile calculator on `stream` from a thread of its own
/// until the client hangs up.
fn serve_hostile(
    stream: std::os::unix::net::UnixStream,
    mode: Mode,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("hostile-server".into())
        .spawn(move || {
            run_local(async move {
                stream.set_nonblocking(true).unwrap();
                let stream = tokio::net::UnixStream::from_std(stream).unwrap();
                let (reader, writer) = stream.into_split();
                let network = twoparty::VatNetwork::new(
                    futures::io::BufReader::new(Io(reader)),
                    futures::io::BufWriter::new(Io(writer)),
                    Side::Server,
                    capnp::message::ReaderOptions::new(),
                );
                let init: calc_init::Client = capnp_rpc::new_client(RawInit { mode });
                let _ = RpcSystem::new(Box::new(network), Some(init.client)).await;
            })
        })
        .unwrap()
}

/// A client with `limits` connected to a hostile server in `mode`.
fn client(
    client_loop: &EventLoop,
    mode: Mode,
    limits: Limits,
) -> (CalcInitClient, std::thread::JoinHandle<()>) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let server = serve_hostile(b, mode);
    let conn = Connection::builder(client_loop)
        .name("victim")
        .limits(limits)
        .open(a, Side::Client)
        .unwrap();
    (CalcInitClient::connect(&conn).unwrap(), server)
}

/// Closes the client's connection and waits for the hostile server to see it.
fn hang_up(
    init: CalcInitClient,
    calc: mp_calc::CalculatorClient,
    server: std::thread::JoinHandle<()>,
) {
    let conn = init.connection().clone();
    drop((calc, init));
    conn.close();
    assert!(conn.wait_disconnected_timeout(PATIENCE));
    server.join().unwrap();
}

/// A callback that holds its thread until a flood has arrived (so the flood queues up) and,
/// for the nesting server, calls `countdown` back as a program whose
/// callbacks talk to the server would.
struct Victim {
    calc: std::sync::OnceLock<mp_calc::CalculatorClient>,
    me: std::sync::OnceLock<std::sync::Weak<Victim>>,
    nest: bool,
    /// For the flood: the first step waits until the client has read this
    /// many messages, so the whole flood has arrived while the thread is
    /// busy whatever the machine's speed (bounded: past the deadline it
    /// goes on, and the test's assertions decide).
    wait_for_messages: Option<u64>,
}

impl Callback for Victim {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        if !self.nest {
            if let Some(target) = self.wait_for_messages {
                let conn = self.calc.get().unwrap().connection().clone();
                let deadline = std::time::Instant::now() + PATIENCE;
                while std::time::Instant::now() < deadline
                    && conn.stats().map(|s| s.messages_in).unwrap_or(u64::MAX) < target
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            return Ok(n);
        }
        let me = self.me.get().and_then(std::sync::Weak::upgrade).unwrap();
        self.calc.get().unwrap().countdown(n, me)
    }
}

fn victim(
    calc: &mp_calc::CalculatorClient,
    nest: bool,
    wait_for_messages: Option<u64>,
) -> Arc<Victim> {
    let v = Arc::new(Victim {
        calc: std::sync::OnceLock::new(),
        me: std::sync::OnceLock::new(),
        nest,
        wait_for_messages,
    });
    let _ = v.calc.set(calc.clone());
    let _ = v.me.set(Arc::downgrade(&v));
    v
}

#[test]
fn a_callback_flood_is_refused_past_the_queue_limit() {
    guarded(|| {
        let client_loop = EventLoop::new("client-loop").unwrap();
        let limits = Limits {
            max_queued_calls: 64,
            ..Limits::default()
        };
        let rss_before = rss_bytes();
        let (init, server) = client(&client_loop, Mode::Flood(5000), limits);
        let calc = init.make_calculator().unwrap();
        // Every flooded step waits on the first one's gate: all 5,000 calls
        // are read (and dispatched) while the thread is busy.
        let read_before = init.connection().stats().unwrap().messages_in;
        let refused = calc
            .countdown(0, victim(&calc, false, Some(read_before + 5000)))
            .expect("the flood ends and the call returns");
        assert!(refused > 0, "part of the flood is refused");
        assert!(refused < 5000, "the queue's worth is served");
        assert_rss_grew_less_than(rss_before, 64 << 20);
        // The client thread goes on.
        assert_eq!(calc.add(2, 2).unwrap(), 4);
        hang_up(init, calc, server);
    });
}

#[test]
fn endless_callback_nesting_stops_at_the_client_limit() {
    guarded(|| {
        let client_loop = EventLoop::new("client-loop").unwrap();
        let limit = Limits::default().max_nesting;
        let (init, server) = client(&client_loop, Mode::Nest, Limits::default());
        let calc = init.make_calculator().unwrap();
        let e = calc
            .countdown(0, victim(&calc, true, None))
            .expect_err("endless nesting ends in an error");
        let named = format!("(Limits::max_nesting = {limit})");
        assert!(e.to_string().contains(&named), "{e}");
        // The client thread goes on.
        assert_eq!(calc.add(3, 4).unwrap(), 7);
        hang_up(init, calc, server);
    });
}

#[test]
fn a_reply_larger_than_the_client_accepts_ends_the_session() {
    guarded(|| {
        let client_loop = EventLoop::new("client-loop").unwrap();
        let limits = Limits {
            max_message_bytes: 1 << 20,
            ..Limits::default()
        };
        let (init, server) = client(&client_loop, Mode::HugeReply(4 << 20), limits);
        let calc = init.make_calculator().unwrap();
        match calc.where_am_i() {
            Err(Error::LimitReached { message, .. }) => {
                assert!(message.contains("(Limits::max_message_bytes)"), "{message}")
            }
            other => panic!("a 4 MiB reply over a 1 MiB limit: {other:?}"),
        }
        let conn = init.connection().clone();
        assert!(conn.wait_disconnected_timeout(PATIENCE));
        drop((calc, init));
        server.join().unwrap();
    });
}
