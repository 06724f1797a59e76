//! Tokio runtimes for the ractor and kameo fixtures: a current-thread
//! runtime on the caller's thread, and one on a thread of its own.

use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

/// A current-thread runtime (driven only while a caller blocks on it).
pub(crate) fn local() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// A current-thread runtime running on a thread of its own until dropped.
pub(crate) struct Remote {
    pub(crate) handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Remote {
    pub(crate) fn new() -> Remote {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = local();
            tx.send(rt.handle().clone()).unwrap();
            let _ = rt.block_on(stopped);
        });
        Remote {
            handle: rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}
