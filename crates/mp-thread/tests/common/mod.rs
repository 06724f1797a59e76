//! Helpers shared by the integration tests: a watchdog so that a deadlock
//! fails its test instead of hanging the run, and a drop probe.
#![allow(dead_code)]

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// How long any one test body may run before it is declared hung.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` on a fresh thread (so it also gets a fresh `Waiter::current`)
/// and fails the test with a clear message if it has not finished within
/// [`LIMIT`]. A panic in `body` fails the test with the body's own message.
pub fn watchdog<F>(name: &str, body: F)
where
    F: FnOnce() + Send + 'static,
{
    watchdog_for(name, LIMIT, body)
}

/// [`watchdog`] with an explicit limit.
pub fn watchdog_for<F>(name: &str, limit: Duration, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("test-{name}"))
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(body));
            let _ = tx.send(outcome);
        })
        .expect("cannot start the test body thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => resume_unwind(payload),
        Err(_) => panic!(
            "watchdog: test `{name}` did not finish within {limit:?} (deadlock or hang); \
             its thread is left running"
        ),
    }
    // The body returned; its thread only has thread-local destructors left
    // (which close its waiter). Those must end too.
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "watchdog: test `{name}` returned but its thread's exit hung for {limit:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
    if let Err(payload) = handle.join() {
        resume_unwind(payload);
    }
}

/// A value that records, when dropped, the thread it was dropped on.
pub struct DropProbe {
    pub drops: Arc<Mutex<Vec<ThreadId>>>,
}

impl DropProbe {
    pub fn new() -> (DropProbe, Arc<Mutex<Vec<ThreadId>>>) {
        let drops = Arc::new(Mutex::new(Vec::new()));
        (
            DropProbe {
                drops: drops.clone(),
            },
            drops,
        )
    }
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.lock().push(thread::current().id());
    }
}
