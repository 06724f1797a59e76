//! Smoke tests: a spawned calculator answers plain, mapped and nested-callback calls.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{spawn_calc, watchdog};
use mp_calc::{CalculatorClient, Callback};
use mp_ipc::EventLoop;

#[test]
fn add_and_loop_call() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("test-loop").unwrap();
        let (mut child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        assert_eq!(calc.add_on_loop(20, 22).unwrap(), 42);
        let here = calc.where_am_i().unwrap();
        assert_eq!(here.thread_name, std::thread::current().name().unwrap());
        drop((calc, init));
        child
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("child exits after disconnect");
    });
}

struct Nest {
    calc: CalculatorClient,
    home: std::thread::ThreadId,
}

impl Callback for Nest {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        assert_eq!(std::thread::current().id(), self.home);
        if n == 0 {
            return Ok(100);
        }
        let inner = self
            .calc
            .countdown(
                n - 1,
                Arc::new(Nest {
                    calc: self.calc.clone(),
                    home: self.home,
                }),
            )
            .map_err(|e| e.to_string())?;
        Ok(inner + 1)
    }
}

#[test]
fn nested_callbacks() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("test-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        let nest = Arc::new(Nest {
            calc: calc.clone(),
            home: std::thread::current().id(),
        });
        assert_eq!(calc.countdown(3, nest).unwrap(), 103);
    });
}

#[test]
fn a_panic_while_building_a_request_on_the_loop_fails_only_that_call() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("test-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        let site = mp_ipc::CallSite::new("Test", "panicking");
        let result: Result<(), mp_ipc::Error> = calc.connection().call(
            site,
            |_setup| -> Result<mp_ipc::codegen_support::CallFuture<()>, mp_ipc::Error> {
                panic!("request builder bug")
            },
        );
        match result {
            Err(mp_ipc::Error::Panicked { site: s, message }) => {
                assert_eq!(s, site);
                assert!(message.contains("request builder bug"), "{message}");
            }
            other => panic!("expected Error::Panicked, got {other:?}"),
        }
        // The loop survived: the connection still works.
        assert_eq!(calc.add(1, 2).unwrap(), 3);
    });
}

/// Makes a blocking call from a thread-local destructor, when the thread's
/// own locals (its mailbox among them) may already be gone.
struct CallOnExit(
    Option<CalculatorClient>,
    std::sync::mpsc::Sender<Result<i64, String>>,
);

impl Drop for CallOnExit {
    fn drop(&mut self) {
        let calc = self.0.take().expect("set once");
        let _ = self.1.send(calc.add(20, 22).map_err(|e| e.to_string()));
    }
}

std::thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<CallOnExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn a_call_from_a_thread_local_destructor_completes() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("test-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        for round in 0..20 {
            let (tx, rx) = std::sync::mpsc::channel();
            let calc = calc.clone();
            std::thread::spawn(move || {
                // Thread-locals are destroyed in reverse order of first use:
                // registering the destructor before the first call makes it
                // run after this thread's mailbox and mapping record are
                // gone; registering it after, before them.
                let first = round % 2 == 0;
                if first {
                    ON_EXIT.with(|slot| {
                        *slot.borrow_mut() = Some(CallOnExit(Some(calc.clone()), tx.clone()))
                    });
                }
                calc.add(1, 1).unwrap();
                if !first {
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(CallOnExit(Some(calc), tx)));
                }
            })
            .join()
            .unwrap();
            assert_eq!(rx.recv().unwrap(), Ok(42));
        }
    });
}
