//! The event loop: `sync` from any thread (inline on the loop), a panicking
//! job does not stop it, and the last handle dropped — even on the loop
//! itself — only closes its mailbox: the reaper joins the thread.

use std::sync::mpsc;
use std::time::Duration;

use mp_ipc::EventLoop;
use mp_thread::Reaper;

#[test]
fn sync_runs_on_the_loop_and_inline_there() {
    let event_loop = EventLoop::new("test-loop").unwrap();
    let loop_thread = event_loop.thread_id();
    assert_eq!(
        event_loop.sync(|| std::thread::current().id()).unwrap(),
        loop_thread
    );
    let inner = event_loop.clone();
    let nested = event_loop
        .sync(move || inner.sync(|| std::thread::current().id()).unwrap())
        .unwrap();
    assert_eq!(nested, loop_thread, "sync on the loop itself runs inline");
}

#[test]
fn a_panicking_job_does_not_stop_the_loop() {
    let event_loop = EventLoop::new("test-loop").unwrap();
    event_loop.post(|| panic!("job bug")).unwrap();
    assert_eq!(event_loop.sync(|| 7).unwrap(), 7);
}

#[test]
fn last_handle_dropped_on_the_loop_itself_is_no_self_join() {
    for _ in 0..200 {
        let event_loop = EventLoop::new("test-loop").unwrap();
        let exited = event_loop.thread_handle();
        let (tx, rx) = mpsc::channel();
        // Post through the loop's weak executor, so the job owns the only
        // strong handle and drops it on the loop thread.
        let executor = event_loop.executor();
        let last = event_loop;
        let posted = executor.execute(Box::new(move || {
            let on_loop = last.is_current();
            drop(last);
            tx.send(on_loop).unwrap();
        }));
        assert!(posted.is_ok());
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        let status = exited
            .wait_timeout(Duration::from_secs(10))
            .expect("loop thread joined");
        assert_eq!(status.joined_on, Reaper::global().thread_id());
        assert!(status.panic.is_none());
    }
}
