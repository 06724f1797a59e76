//! 10,000 connect / call / disconnect cycles: the thread count and the open
//! fd count come back to where they started.

mod common;

use std::time::Duration;

use common::{eventually, fd_count, in_process, thread_count, watchdog};
use mp_ipc::EventLoop;

const CYCLES: usize = 10_000;

#[test]
fn ten_thousand_cycles_leak_no_thread_and_no_fd() {
    watchdog(Duration::from_secs(600), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let cycle = || {
            let (server, init) = in_process(&server_loop, &client_loop);
            let calc = init.make_calculator().unwrap();
            assert_eq!(calc.add(20, 22).unwrap(), 42);
            assert_eq!(calc.add_on_loop(1, 2).unwrap(), 3);
            drop((calc, init));
            assert!(server.wait_disconnected_timeout(Duration::from_secs(10)));
        };
        // Warm up: the reaper and any lazily made per-process threads start.
        for _ in 0..10 {
            cycle();
        }
        let settled = |threads: usize, fds: usize| {
            eventually(Duration::from_secs(20), || {
                thread_count() <= threads && fd_count() <= fds
            })
        };
        let (threads, fds) = (thread_count(), fd_count());
        for _ in 0..CYCLES {
            cycle();
        }
        assert!(
            settled(threads, fds),
            "after {CYCLES} cycles: {} threads (was {threads}), {} fds (was {fds})",
            thread_count(),
            fd_count()
        );
    });
}
