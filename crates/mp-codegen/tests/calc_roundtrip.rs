//! Round trips through the code generated for mp-test-calc's `calc.capnp`
//! (mp-test-calc's checked-in `calc_mp`, which the golden test holds to this
//! generator's output), in one process over a socketpair with two event loops: mapped
//! calls, loop calls, callbacks onto the waiting client thread (nested),
//! a returned object with its own methods, failures and panics, async
//! calls — and wire compatibility with the foundation's hand-written adapter
//! (`tests/support/hand_calc`) in both directions.

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog_for;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use mp_ipc::{Connection, Error, EventLoop, Side};

/// capnpc's types, where the hand-written adapter expects them.
mod calc_capnp {
    pub use mp_test_calc::calc_capnp::*;
}

mod support;

use mp_test_calc::calc_mp::{
    CalcInit, CalcInitClient, CalcInitServer, Calculator, CalculatorClient,
    CalculatorWhereAmIResults, Callback, CallbackClient, Counter,
};

/// Counts the `destroy` calls of the counters it makes.
struct Init(Arc<AtomicUsize>);

impl CalcInit for Init {
    fn make_calculator(&self) -> Result<Arc<dyn Calculator>, mp_ipc::Error> {
        Ok(Arc::new(Calc(self.0.clone())))
    }
}

struct Calc(Arc<AtomicUsize>);

impl Calculator for Calc {
    fn add(&self, a: i64, b: i64) -> Result<i64, mp_ipc::Error> {
        a.checked_add(b)
            .ok_or_else(|| mp_ipc::Error::failed(format!("{a} + {b} overflows")))
    }

    fn add_on_loop(&self, a: i64, b: i64) -> Result<i64, mp_ipc::Error> {
        self.add(a, b)
    }

    fn where_am_i(&self) -> Result<CalculatorWhereAmIResults, mp_ipc::Error> {
        Ok(CalculatorWhereAmIResults {
            thread_name: std::thread::current().name().unwrap_or("?").to_string(),
            thread_number: 7,
        })
    }

    fn countdown(&self, n: u32, callback: CallbackClient) -> Result<u32, mp_ipc::Error> {
        callback.step(n)
    }

    fn sleep(&self, millis: u32) -> Result<(), mp_ipc::Error> {
        std::thread::sleep(Duration::from_millis(u64::from(millis)));
        Ok(())
    }

    fn fail(&self, message: String) -> Result<(), mp_ipc::Error> {
        Err(message.into())
    }

    fn panic(&self, message: String) -> Result<(), mp_ipc::Error> {
        panic!("{message}")
    }

    fn make_counter(&self, start: i64) -> Result<Arc<dyn Counter>, mp_ipc::Error> {
        Ok(Arc::new(CounterImp(AtomicI64::new(start), self.0.clone())))
    }
}

struct CounterImp(AtomicI64, Arc<AtomicUsize>);

impl Counter for CounterImp {
    fn add(&self, delta: i64) -> Result<i64, mp_ipc::Error> {
        Ok(self.0.fetch_add(delta, Ordering::SeqCst) + delta)
    }

    fn get(&self) -> Result<i64, mp_ipc::Error> {
        Ok(self.0.load(Ordering::SeqCst))
    }

    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A callback that checks it runs on the waiting client thread, and counts
/// down through the server again until `n` is 0.
struct Steps {
    calc: CalculatorClient,
    home: ThreadId,
}

impl Callback for Steps {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        if std::thread::current().id() != self.home {
            return Err("callback ran on another thread".into());
        }
        if n == 0 {
            return Ok(1000);
        }
        let next = Arc::new(Steps {
            calc: self.calc.clone(),
            home: self.home,
        });
        let inner = self
            .calc
            .countdown(n - 1, next)
            .map_err(|e| e.to_string())?;
        Ok(inner + n)
    }
}

/// A generated server on `server_loop`, a generated client on `client_loop`.
fn generated_pair(
    server_loop: &EventLoop,
    client_loop: &EventLoop,
) -> (Connection, CalcInitClient) {
    let (server, init, _) = counting_pair(server_loop, client_loop);
    (server, init)
}

/// [`generated_pair`], with the count of `Counter.destroy` calls.
fn counting_pair(
    server_loop: &EventLoop,
    client_loop: &EventLoop,
) -> (Connection, CalcInitClient, Arc<AtomicUsize>) {
    let destroyed = Arc::new(AtomicUsize::new(0));
    let count = destroyed.clone();
    let (a, b) = UnixStream::pair().expect("socketpair");
    let server = Connection::builder(server_loop)
        .name("gen-server")
        .serve(move |conn| CalcInitServer::bootstrap(conn, Arc::new(Init(count))))
        .open(a, Side::Server)
        .expect("serve");
    let conn = Connection::builder(client_loop)
        .name("gen-client")
        .open(b, Side::Client)
        .expect("open");
    let init = CalcInitClient::connect(&conn).expect("connect");
    (server, init, destroyed)
}

fn loops() -> (EventLoop, EventLoop) {
    (
        EventLoop::new("server-loop").unwrap(),
        EventLoop::new("client-loop").unwrap(),
    )
}

#[test]
fn mapped_and_loop_calls() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init) = generated_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        assert_eq!(calc.add_on_loop(40, 2).unwrap(), 42);
        let here = calc.where_am_i().unwrap();
        assert_ne!(
            here.thread_name, "server-loop",
            "a Context call runs on a server thread"
        );
        assert_ne!(here.thread_name, "?");
        assert_eq!(here.thread_number, 7);
        // The same client thread keeps its server thread.
        assert_eq!(calc.where_am_i().unwrap(), here);
        // Another client thread gets another one.
        let other = calc.clone();
        let there = std::thread::spawn(move || other.where_am_i().unwrap())
            .join()
            .unwrap();
        assert_ne!(there.thread_name, here.thread_name);
        calc.sleep(1).unwrap();
    });
}

#[test]
fn failures_and_panics_come_back_as_errors() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init) = generated_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        match calc.fail("no luck") {
            Err(Error::Remote { site, message }) => {
                assert_eq!(site.to_string(), "Calculator.fail");
                assert!(message.contains("no luck"), "{message}");
            }
            other => panic!("expected a remote failure, got {other:?}"),
        }
        match calc.add(i64::MAX, 1) {
            Err(Error::Remote { message, .. }) => assert!(message.contains("overflows")),
            other => panic!("expected a remote failure, got {other:?}"),
        }
        match calc.panic("boom") {
            Err(Error::Remote { message, .. }) => assert!(message.contains("boom"), "{message}"),
            other => panic!("expected a remote failure, got {other:?}"),
        }
        // The connection survives all of it.
        assert_eq!(calc.add(1, 1).unwrap(), 2);
    });
}

#[test]
fn callbacks_run_on_the_waiting_client_thread_nested() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init) = generated_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        let steps = Arc::new(Steps {
            calc: calc.clone(),
            home: std::thread::current().id(),
        });
        assert_eq!(calc.countdown(0, steps.clone()).unwrap(), 1000);
        // client -> server -> callback -> server -> ... four levels deep.
        assert_eq!(calc.countdown(3, steps).unwrap(), 1000 + 1 + 2 + 3);
    });
}

#[test]
fn returned_objects_have_their_own_methods() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init) = generated_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        let counter = calc.make_counter(5).unwrap();
        assert_eq!(counter.add(3).unwrap(), 8);
        assert_eq!(counter.get().unwrap(), 8);
        let from_elsewhere = counter.clone();
        std::thread::spawn(move || from_elsewhere.add(2).unwrap())
            .join()
            .unwrap();
        assert_eq!(counter.get().unwrap(), 10);
        // Two counters are two objects.
        let other = calc.make_counter(-1).unwrap();
        assert_eq!(other.get().unwrap(), -1);
        counter.destroy().unwrap();
        assert_eq!(other.get().unwrap(), -1);
        // The server let the destroyed one go: a later call says so.
        let err = counter.get().unwrap_err().to_string();
        assert!(
            err.contains("Counter.get") && err.contains("destroyed"),
            "{err}"
        );
    });
}

#[test]
fn async_calls() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init) = generated_pair(&s, &c);
        let calc = futures::executor::block_on(init.make_calculator_async()).unwrap();
        let sum = futures::executor::block_on(calc.add_async(20, 22)).unwrap();
        assert_eq!(sum, 42);
        let on_loop = futures::executor::block_on(calc.add_on_loop_async(1, 2)).unwrap();
        assert_eq!(on_loop, 3);
        let counter = futures::executor::block_on(calc.make_counter_async(1)).unwrap();
        assert_eq!(
            futures::executor::block_on(counter.add_async(1)).unwrap(),
            2
        );
    });
}

#[test]
fn calls_after_the_server_is_gone_fail_with_disconnect() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (server, init) = generated_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        server.close();
        assert!(calc
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(10)));
        let err = calc.add(1, 2).unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
    });
}

/// The generated client talks to the hand-written server.
#[test]
fn generated_client_against_hand_written_server() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (a, b) = UnixStream::pair().unwrap();
        let _server = support::hand_calc::serve(&s, a).unwrap();
        let conn = Connection::builder(&c).open(b, Side::Client).unwrap();
        let init = CalcInitClient::connect(&conn).unwrap();
        let calc = init.make_calculator().unwrap();
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        assert_eq!(calc.add_on_loop(2, 3).unwrap(), 5);
        assert!(calc.where_am_i().unwrap().thread_number > 0);
        let steps = Arc::new(Steps {
            calc: calc.clone(),
            home: std::thread::current().id(),
        });
        assert_eq!(calc.countdown(2, steps).unwrap(), 1000 + 1 + 2);
        let counter = calc.make_counter(1).unwrap();
        assert_eq!(counter.add(1).unwrap(), 2);
    });
}

/// The hand-written client talks to the generated server.
#[test]
fn hand_written_client_against_generated_server() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (a, b) = UnixStream::pair().unwrap();
        let _server = Connection::builder(&s)
            .serve(|conn| CalcInitServer::bootstrap(conn, Arc::new(Init(Arc::default()))))
            .open(a, Side::Server)
            .unwrap();
        let init = support::hand_calc::connect(&c, b).unwrap();
        let calc = init.make_calculator().unwrap();
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        assert_eq!(calc.add_on_loop(2, 3).unwrap(), 5);
        let counter = calc.make_counter(10).unwrap();
        assert_eq!(counter.add(5).unwrap(), 15);
        assert_eq!(counter.get().unwrap(), 15);
    });
}

/// Like libmultiprocess's clients, a generated client whose interface has
/// `destroy` calls it when its last handle is dropped — once, and not again
/// after an explicit `destroy`.
#[test]
fn dropping_the_last_handle_calls_destroy_once() {
    watchdog_for(Duration::from_secs(30), || {
        let (s, c) = loops();
        let (_server, init, destroyed) = counting_pair(&s, &c);
        let calc = init.make_calculator().unwrap();
        let counter = calc.make_counter(1).unwrap();
        let clone = counter.clone();
        drop(counter);
        assert_eq!(
            destroyed.load(Ordering::SeqCst),
            0,
            "a clone is still alive"
        );
        std::thread::spawn(move || drop(clone)).join().unwrap();
        assert_eq!(destroyed.load(Ordering::SeqCst), 1);
        let explicit = calc.make_counter(2).unwrap();
        explicit.destroy().unwrap();
        drop(explicit);
        assert_eq!(destroyed.load(Ordering::SeqCst), 2);
        // After a disconnect, a drop does not try.
        let late = calc.make_counter(3).unwrap();
        calc.connection().close();
        assert!(calc
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(10)));
        drop(late);
        assert_eq!(destroyed.load(Ordering::SeqCst), 2);
    });
}
