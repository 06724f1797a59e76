//! Nesting is bounded per OS thread: calls and callbacks nested up to
//! `Limits::max_nesting` succeed (in debug and release builds: CI runs this
//! file both ways), the call past it is answered with a limit error naming
//! the limit, and the thread goes on serving. A hostile peer that
//! alternates between the two `Thread` handles naming one server thread
//! meets the same bound. The stack one level costs is measured and must stay
//! within the budget server threads are sized with.

mod common;
mod hostile;

use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use hostile::*;
use mp_calc::calc_capnp::{calculator, callback};
use mp_calc::{CalcInitServer, CalcInitService, CalculatorClient, Callback};
use mp_ipc::proxy_capnp::thread;
use mp_ipc::{Connection, Error, EventLoop, Limits, Side, STACK_PER_LEVEL};

/// A callback that calls `countdown(n - 1)` back until `n` is 0, recording
/// the address of a local at each level (to measure the stack a level
/// costs on this thread).
struct Deeper {
    calc: CalculatorClient,
    me: OnceLock<Weak<Deeper>>,
    frames: Mutex<Vec<usize>>,
}

impl Deeper {
    fn new(calc: CalculatorClient) -> Arc<Deeper> {
        let deeper = Arc::new(Deeper {
            calc,
            me: OnceLock::new(),
            frames: Mutex::new(Vec::new()),
        });
        let _ = deeper.me.set(Arc::downgrade(&deeper));
        deeper
    }

    fn me(&self) -> Arc<dyn Callback> {
        self.me.get().and_then(Weak::upgrade).expect("alive")
    }
}

impl Callback for Deeper {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        let marker = 0u8;
        self.frames
            .lock()
            .unwrap()
            .push(std::hint::black_box(&marker) as *const u8 as usize);
        if n == 0 {
            return Ok(0);
        }
        self.calc.countdown(n - 1, self.me()).map(|r| r + 1)
    }
}

/// A server with `limits` on `server_loop` and a client of it.
fn pair(
    server_loop: &EventLoop,
    client_loop: &EventLoop,
    limits: Limits,
) -> (Connection, mp_calc::CalcInitClient) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let service = Arc::new(CalcInitService);
    let server = Connection::builder(server_loop)
        .limits(limits)
        .serve(move |conn| CalcInitServer::bootstrap(conn, service.clone()))
        .open(a, Side::Server)
        .unwrap();
    let init = mp_calc::connect(client_loop, b).unwrap();
    (server, init)
}

/// `countdown(depth - 1)` makes exactly `depth` nested `countdown` calls on
/// the server thread (and `depth` nested `step` callbacks on this one).
fn nest(calc: &CalculatorClient, depth: u32) -> (Result<u32, Error>, Vec<usize>) {
    let deeper = Deeper::new(calc.clone());
    let result = calc.countdown(depth - 1, deeper.clone());
    let frames = std::mem::take(&mut *deeper.frames.lock().unwrap());
    (result, frames)
}

#[test]
fn nested_calls_up_to_the_limit_succeed_and_the_next_is_refused() {
    guarded(|| {
        let limit = Limits::default().max_nesting;
        let (server_loop, client_loop) = loops();
        let (_server, init) = pair(&server_loop, &client_loop, Limits::default());
        let calc = init.make_calculator().unwrap();

        let (result, frames) = nest(&calc, limit as u32);
        assert_eq!(
            result.expect("nesting up to the limit succeeds"),
            limit as u32 - 1
        );
        assert_eq!(frames.len(), limit);
        // The stack grows down: the first level's local sits highest.
        let per_level = (frames[0] - frames[limit - 1]) / (limit - 1);
        println!(
            "stack per level of nesting: {per_level} bytes ({} build)",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        assert!(
            per_level < STACK_PER_LEVEL,
            "a level costs {per_level} bytes of stack, over the budget of {STACK_PER_LEVEL} server threads are sized with"
        );

        match nest(&calc, limit as u32 + 1).0 {
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("limit reached") && text.contains("Limits::max_nesting"),
                    "the error names the limit: {text}"
                );
            }
            Ok(v) => panic!("one level past the limit must be refused, got {v}"),
        }

        // The thread goes on serving, at any depth up to the limit.
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        assert_eq!(nest(&calc, 3).0.unwrap(), 2);
        assert_eq!(nest(&calc, limit as u32).0.unwrap(), limit as u32 - 1);
        well_behaved_client_works(&server_loop, &client_loop);
    });
}

#[test]
fn a_lower_limit_is_enforced_and_named() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let limits = Limits {
            max_nesting: 5,
            ..Limits::default()
        };
        let (_server, init) = pair(&server_loop, &client_loop, limits);
        let calc = init.make_calculator().unwrap();
        assert_eq!(nest(&calc, 5).0.unwrap(), 4);
        let e = nest(&calc, 6).0.expect_err("past the limit");
        assert!(e.to_string().contains("(Limits::max_nesting = 5)"), "{e}");
        assert_eq!(nest(&calc, 5).0.unwrap(), 4);
    });
}

/// The hostile callback: answers each `step` by calling `countdown` back
/// into the server, naming alternately the `Thread` it got from
/// `makeThread` and the `callbackThread` the server sent with the step —
/// two handles of one server thread.
struct Reentrant {
    calc: calculator::Client,
    made: thread::Client,
    me: std::cell::RefCell<Option<callback::Client>>,
    deepest: Rc<std::cell::Cell<u32>>,
}

impl callback::Server for Reentrant {
    async fn step(
        self: Rc<Self>,
        params: callback::StepParams,
        mut results: callback::StepResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let n = p.get_n();
        self.deepest.set(self.deepest.get().max(n));
        let ctx = p.get_context()?;
        let thread = if n % 2 == 0 {
            self.made.clone()
        } else {
            ctx.get_callback_thread()?
        };
        let mut req = self.calc.countdown_request();
        req.get().init_context().set_thread(thread);
        req.get().set_n(n + 1);
        req.get()
            .set_callback(self.me.borrow().clone().expect("set before use"));
        let reply = req.send().promise.await?;
        results.get().set_result(reply.get()?.get_result());
        Ok(())
    }
}

#[test]
fn a_hostile_peer_alternating_thread_handles_meets_the_limit() {
    guarded(|| {
        let limit = Limits::default().max_nesting as u32;
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        let rss_before = rss_bytes();
        let outcome = run_local(async {
            let peer = RawPeer::connect(stream).await;
            let made = peer.make_thread("reentrant").await.expect("makeThread");
            let calc = peer
                .make_calculator(Ctx::Thread(made.clone()))
                .await
                .expect("makeCalculator");
            let deepest = Rc::new(std::cell::Cell::new(0));
            let reentrant = Rc::new(Reentrant {
                calc: calc.clone(),
                made: made.clone(),
                me: std::cell::RefCell::new(None),
                deepest: deepest.clone(),
            });
            let cb: callback::Client = capnp_rpc::new_client_from_rc(reentrant.clone());
            *reentrant.me.borrow_mut() = Some(cb.clone());
            let mut req = calc.countdown_request();
            req.get().init_context().set_thread(made.clone());
            req.get().set_n(0);
            req.get().set_callback(cb);
            let result = req
                .send()
                .promise
                .await
                .map(|r| r.get().map(|r| r.get_result()));
            // The attacked thread still serves, through either handle.
            let sum = raw_add(&calc, Ctx::Thread(made.clone()), 20, 22).await;
            *reentrant.me.borrow_mut() = None;
            peer.hang_up().await;
            (result, deepest.get(), sum)
        });
        let (result, deepest, sum) = outcome;
        let e = match result {
            Err(e) => e,
            Ok(r) => panic!("the attack must end in an error, got {r:?}"),
        };
        assert!(
            e.to_string().contains("Limits::max_nesting"),
            "the error names the limit: {e}"
        );
        // The server ran exactly `limit` nested calls on the thread.
        assert_eq!(deepest, limit - 1, "steps reached before the refusal");
        assert_eq!(sum.expect("the thread still serves"), 42);
        // 256 MiB: far above a correct server's few MiB, far below what an
        // unbounded one would reach before the stack overflowed.
        assert_rss_grew_less_than(rss_before, 256 << 20);
        well_behaved_client_works(&server_loop, &client_loop);
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

/// A hostile server: every call a client makes is answered by calling the
/// client's callback back, nested, far past any limit. The client side
/// refuses at its limit and the client process survives.
#[test]
fn a_hostile_server_nesting_callbacks_meets_the_client_limit() {
    guarded(|| {
        let limit = Limits::default().max_nesting as u32;
        let (server_loop, client_loop) = loops();
        // The "server" here is our own calculator: its countdown calls
        // the client's callback, whose step (ours) calls countdown again —
        // so this is the client thread's own nesting, counted and refused on
        // the client side as a callback past its limit.
        let (_server, init) = pair(
            &server_loop,
            &client_loop,
            Limits {
                max_nesting: 1000,
                ..Limits::default()
            },
        );
        let calc = init.make_calculator().unwrap();
        let e = nest(&calc, limit + 1).0.expect_err("the client refuses");
        let named = format!("(Limits::max_nesting = {limit})");
        assert!(e.to_string().contains(&named), "{e}");
        assert_eq!(calc.add(1, 1).unwrap(), 2);
    });
}
