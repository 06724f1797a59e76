//! Test helpers: a watchdog that fails a test instead of letting it hang,
//! and a binder wrapper that records on which thread it was dropped.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use mp_agents::{AgentInfo, Binder, Error, EventQueue};

/// Runs `body` on its own thread; fails the test if it takes longer than
/// `limit` (a hang), and passes its panic on otherwise.
pub fn watchdog<F: FnOnce() + Send + 'static>(limit: Duration, body: F) {
    let (tx, rx) = mpsc::channel::<()>();
    let runner = std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = runner.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("watchdog: test hung for {limit:?}"),
    }
}

/// Where final drops happened, relative to the deregistration thread.
#[derive(Default)]
pub struct DropLog {
    pub dereg: OnceLock<ThreadId>,
    pub on_dereg: AtomicUsize,
    pub elsewhere: AtomicUsize,
}

impl DropLog {
    pub fn record(&self) {
        let me = std::thread::current().id();
        if self.dereg.get() == Some(&me) {
            self.on_dereg.fetch_add(1, Ordering::SeqCst);
        } else {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Wraps a binder; records where the wrapper (and so, if it held the last
/// handle, the dispatcher) is dropped.
pub struct Recording {
    pub inner: Arc<dyn Binder>,
    pub log: Arc<DropLog>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.log.record();
    }
}

impl Binder for Recording {
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error> {
        self.inner.preallocate(agent)
    }
    fn undo_preallocation(&self, agent: AgentInfo) {
        self.inner.undo_preallocation(agent)
    }
    fn bind(&self, agent: AgentInfo) -> Arc<dyn EventQueue> {
        self.inner.bind(agent)
    }
    fn unbind(&self, agent: AgentInfo) {
        self.inner.unbind(agent)
    }
}
