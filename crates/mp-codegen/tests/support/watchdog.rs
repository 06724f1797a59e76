//! Every test body runs under a watchdog: on a thread of its own, so a hang
//! fails the test with a message instead of stalling the run.

use std::sync::mpsc;
use std::time::Duration;

/// [`watchdog_for`] with a limit of 60 s.
#[allow(dead_code)]
pub fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog_for(Duration::from_secs(60), body)
}

/// Runs `body` on its own thread and returns its value; a panic in it is
/// resumed here, and a body still running after `limit` fails the test.
pub fn watchdog_for<T: Send + 'static>(
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
        Err(_) => panic!("watchdog: test did not finish within {limit:?}"),
    }
}
