//! Shared test helpers: a watchdog so a deadlock fails the test instead of
//! hanging CI, and a spawned calculator process.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use mp_calc::CalcInitClient;
use mp_ipc::process::ChildProcess;
use mp_ipc::EventLoop;

/// Runs `body` on its own thread; panics if it does not finish within `limit`.
pub fn watchdog<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
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
