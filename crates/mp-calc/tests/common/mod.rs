//! Shared test helpers: a watchdog so a deadlock fails the test instead of
//! hanging CI, and a spawned calculator process.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use mp_calc::CalcInitClient;
use mp_ipc::process::ChildProcess;
use mp_ipc::EventLoop;

/// Runs `body` on its own thread; panics if it does not finish within `limit`.
pub fn watchdog<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let runner = std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
        })
        .expect("spawn test body");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = runner.join();
            value
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("watchdog: test did not finish within {limit:?} (deadlock or hang)"),
    }
}

/// Spawns the `calc-server` binary and connects to it.
pub fn spawn_calc(event_loop: &EventLoop) -> (ChildProcess, CalcInitClient) {
    mp_calc::spawn_and_connect(event_loop, env!("CARGO_BIN_EXE_calc-server").as_ref())
        .expect("spawn calc-server")
}

/// Serves a calculator on `server_loop` and connects to it from
/// `client_loop`, both in this process, over a socketpair.
pub fn in_process(
    server_loop: &EventLoop,
    client_loop: &EventLoop,
) -> (mp_ipc::Connection, CalcInitClient) {
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let server = mp_calc::serve(server_loop, a).expect("serve");
    let init = mp_calc::connect(client_loop, b).expect("connect");
    (server, init)
}

/// This process's thread count (Linux `/proc/self/status`).
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: line")
}

/// This process's open file descriptor count.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
