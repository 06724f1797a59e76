//! Thread mapping: every client thread gets its own server thread, named
//! after it, and callbacks land back on the waiting client thread.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use parking_lot::Mutex;
use std::time::Duration;

use common::{spawn_calc, watchdog};
use mp_calc::{thread_number, CalculatorClient, Callback};
use mp_ipc::EventLoop;

/// Records the thread each step of a callback chain ran on and recurses
/// into the server until `n` reaches 0.
struct Chain {
    calc: CalculatorClient,
    seen: Arc<Mutex<Vec<(u32, std::thread::ThreadId)>>>,
}

impl Callback for Chain {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        self.seen.lock().push((n, std::thread::current().id()));
        if n == 0 {
            return Ok(0);
        }
        let next = Arc::new(Chain {
            calc: self.calc.clone(),
            seen: self.seen.clone(),
        });
        let depth = self
            .calc
            .countdown(n - 1, next)
            .map_err(|e| e.to_string())?;
        Ok(depth + 1)
    }
}

#[test]
fn eight_threads_each_get_their_own_server_thread() {
    watchdog(Duration::from_secs(120), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let calc = calc.clone();
                let start = start.clone();
                std::thread::Builder::new()
                    .name(format!("client-{i}"))
                    .spawn(move || {
                        let me = std::thread::current().name().unwrap().to_string();
                        start.wait();
                        let mut numbers = HashSet::new();
                        for round in 0..20 {
                            assert_eq!(calc.add(i, round).unwrap(), i + round);
                            let here = calc.where_am_i().unwrap();
                            assert_eq!(
                                here.thread_name, me,
                                "server thread is named after the client thread"
                            );
                            numbers.insert(here.thread_number);
                        }
                        assert_eq!(
                            numbers.len(),
                            1,
                            "every call from {me} ran on one server thread"
                        );
                        let name = calc.connection().server_thread_name().unwrap();
                        assert_eq!(name, me, "Thread.getName agrees with where the calls ran");

                        // A callback chain three deep lands on this thread each time.
                        let seen = Arc::new(Mutex::new(Vec::new()));
                        let chain = Arc::new(Chain {
                            calc: calc.clone(),
                            seen: seen.clone(),
                        });
                        assert_eq!(calc.countdown(3, chain).unwrap(), 3);
                        let seen = seen.lock().clone();
                        assert_eq!(
                            seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                            vec![3, 2, 1, 0]
                        );
                        assert!(seen.iter().all(|(_, t)| *t == std::thread::current().id()));
                        (me, numbers.into_iter().next().unwrap(), thread_number())
                    })
                    .unwrap()
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let server_threads: HashSet<u64> = results.iter().map(|(_, n, _)| *n).collect();
        assert_eq!(
            server_threads.len(),
            8,
            "eight client threads, eight distinct server threads"
        );
    });
}

#[test]
fn a_thread_calling_two_connections_has_a_server_thread_on_each() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        let (_c1, init1) = spawn_calc(&event_loop);
        let (_c2, init2) = spawn_calc(&event_loop);
        let (a, b) = (
            init1.make_calculator().unwrap(),
            init2.make_calculator().unwrap(),
        );
        let me = std::thread::current().name().unwrap().to_string();
        assert_eq!(a.where_am_i().unwrap().thread_name, me);
        assert_eq!(b.where_am_i().unwrap().thread_name, me);
        assert_eq!(a.connection().mapped_threads().unwrap(), 1);
        assert_eq!(b.connection().mapped_threads().unwrap(), 1);
    });
}

#[test]
fn mapping_is_released_when_the_client_thread_exits() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        let conn = calc.connection().clone();
        for _ in 0..10 {
            let calc = calc.clone();
            std::thread::spawn(move || calc.add(1, 1).unwrap())
                .join()
                .unwrap();
        }
        // Exits post the release; it is processed on the loop shortly after.
        assert!(common::eventually(Duration::from_secs(10), || conn
            .mapped_threads()
            .unwrap()
            <= 1));
        // The calling (test) thread made a mapping only via make_calculator.
        assert!(conn.mapped_threads().unwrap() <= 1);
    });
}
