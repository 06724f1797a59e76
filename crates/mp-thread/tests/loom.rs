//! loom models of mp-thread's waiter protocols (invariants 3, 6 and 7).
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p mp-thread --release --test loom`
//!
//! Under `cfg(loom)` only `Waiter` and `mp_thread::loom_support` exist; a
//! model thread becomes a "worker" by installing a waiter and running it.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use mp_thread::{loom_support, Error, Waiter};

/// Explores every interleaving up to `preemptions` forced switches.
fn model<F: Fn() + Sync + Send + 'static>(preemptions: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "EXECUTIONS {}",
        executions.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A waiter installed as the calling model thread's own mailbox.
fn own_waiter(name: &str) -> Waiter {
    let waiter = loom_support::new_waiter(name);
    loom_support::install(waiter.clone());
    waiter
}

/// A job's capture that counts whether the job ran or was dropped unrun.
struct Token {
    ran: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    done: bool,
}

impl Token {
    fn new(ran: &Arc<AtomicUsize>, dropped: &Arc<AtomicUsize>) -> Token {
        Token {
            ran: ran.clone(),
            dropped: dropped.clone(),
            done: false,
        }
    }

    fn run(mut self) {
        self.done = true;
        self.ran.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.done {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// (a) Waiter: replies and posts racing the owner's park.

#[test]
fn a_reply_sent_while_the_owner_waits_is_never_lost() {
    model(3, || {
        let owner = own_waiter("owner");
        let (tx, rx) = owner.reply_channel::<u32>();
        let sender = thread::spawn(move || tx.send(7));
        assert_eq!(owner.wait(rx).unwrap(), 7);
        sender.join().unwrap();
    });
}

/// The same race with an owner that busy-waits for a fixed time (the
/// other branch of the waiter's backoff) before it sleeps.
#[test]
fn a_reply_and_a_callback_reach_a_busy_waiting_owner() {
    model(3, || {
        let owner = loom_support::new_busy_waiting_waiter("owner");
        loom_support::install(owner.clone());
        let (tx, rx) = owner.reply_channel::<u32>();
        let (cb_tx, cb_rx) = owner.reply_channel::<u32>();
        let target = owner.clone();
        let poster = thread::spawn(move || {
            target.post(move || cb_tx.send(1)).unwrap();
            tx.send(7);
        });
        assert_eq!(owner.wait(rx).unwrap(), 7);
        assert_eq!(owner.wait(cb_rx).unwrap(), 1);
        poster.join().unwrap();
    });
}

#[test]
fn a_callback_posted_while_the_owner_waits_runs_and_its_reply_arrives() {
    model(3, || {
        let owner = own_waiter("owner");
        let (tx, rx) = owner.reply_channel::<thread::ThreadId>();
        let target = owner.clone();
        let poster = thread::spawn(move || {
            // The callback runs on the owner, inside its wait, and replies.
            target
                .post(move || tx.send(thread::current().id()))
                .unwrap();
        });
        let ran_on = owner.wait(rx).unwrap();
        assert_eq!(ran_on, thread::current().id());
        poster.join().unwrap();
    });
}

#[test]
fn a_reply_and_a_callback_from_two_threads_both_arrive() {
    model(3, || {
        let owner = own_waiter("owner");
        let (tx, rx) = owner.reply_channel::<u32>();
        let callback_ran = Arc::new(AtomicBool::new(false));
        let (target, flag) = (owner.clone(), callback_ran.clone());
        let poster = thread::spawn(move || {
            let _ = target.post(move || flag.store(true, Ordering::SeqCst));
        });
        let replier = thread::spawn(move || tx.send(1));
        assert_eq!(owner.wait(rx).unwrap(), 1);
        poster.join().unwrap();
        replier.join().unwrap();
        // If the wait returned before the callback ran, the next wait runs it.
        let (tx, rx) = owner.reply_channel::<()>();
        owner.post(move || tx.send(())).unwrap();
        owner.wait(rx).unwrap();
        assert!(callback_ran.load(Ordering::SeqCst));
    });
}

#[test]
fn a_reply_sender_dropped_unsent_wakes_the_waiter() {
    model(3, || {
        let owner = own_waiter("owner");
        let (tx, rx) = owner.reply_channel::<u32>();
        let dropper = thread::spawn(move || drop(tx));
        assert!(matches!(owner.wait(rx), Err(Error::ReplyDropped(_))));
        dropper.join().unwrap();
    });
}

// (b) Worker shutdown: the last handle's drop is `close_after_queued`.

/// Outcome of one job posted to a worker that is shutting down: it must have
/// run if and only if its post succeeded, and otherwise have been dropped —
/// exactly once either way.
fn assert_exactly_once(posted: bool, ran: &AtomicUsize, dropped: &AtomicUsize) {
    let (ran, dropped) = (ran.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst));
    assert_eq!(ran + dropped, 1, "ran {ran}, dropped {dropped}");
    if posted {
        assert_eq!(ran, 1, "a job queued before the close was not run");
    } else {
        assert_eq!(dropped, 1, "a refused job was not dropped");
    }
}

#[test]
fn shutdown_from_a_job_on_the_worker_races_a_post() {
    model(3, || {
        let mailbox = loom_support::new_waiter("worker");
        let theirs = mailbox.clone();
        let worker = thread::spawn(move || {
            loom_support::install(theirs.clone());
            theirs.run();
        });
        // The last handle dies inside a job on the worker itself.
        let closer = mailbox.clone();
        mailbox
            .post(move || loom_support::close_after_queued(&closer))
            .unwrap();
        // Meanwhile another thread posts.
        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let token = Token::new(&ran, &dropped);
        let target = mailbox.clone();
        let poster = thread::spawn(move || target.post(move || token.run()).is_ok());
        let posted = poster.join().unwrap();
        // `run` returns: the worker thread ends.
        worker.join().unwrap();
        assert!(mailbox.is_closed());
        assert_exactly_once(posted, &ran, &dropped);
    });
}

#[test]
fn shutdown_from_another_thread_races_a_post() {
    model(3, || {
        let mailbox = loom_support::new_waiter("worker");
        let theirs = mailbox.clone();
        let worker = thread::spawn(move || {
            loom_support::install(theirs.clone());
            theirs.run();
        });
        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let token = Token::new(&ran, &dropped);
        let target = mailbox.clone();
        let poster = thread::spawn(move || target.post(move || token.run()).is_ok());
        // The last handle dies here, racing the post.
        loom_support::close_after_queued(&mailbox);
        let posted = poster.join().unwrap();
        worker.join().unwrap();
        assert_exactly_once(posted, &ran, &dropped);
    });
}

#[test]
fn a_sync_to_a_worker_that_shuts_down_never_hangs() {
    model(3, || {
        // The caller (this thread) waits for a reply from a job it posts to a
        // worker whose last handle is dropped concurrently.
        let caller = own_waiter("caller");
        let mailbox = loom_support::new_waiter("worker");
        let theirs = mailbox.clone();
        let worker = thread::spawn(move || {
            loom_support::install(theirs.clone());
            theirs.run();
        });
        let closer_box = mailbox.clone();
        let closer = thread::spawn(move || loom_support::close_after_queued(&closer_box));
        let (tx, rx) = caller.reply_channel::<u32>();
        let posted = mailbox.post(move || tx.send(5)).is_ok();
        let got = caller.wait(rx);
        if posted {
            assert_eq!(got.unwrap(), 5);
        } else {
            assert!(matches!(got, Err(Error::ReplyDropped(_))));
        }
        closer.join().unwrap();
        worker.join().unwrap();
    });
}

// (c) Closing a waiter whose queue holds a job carrying a reply sender.

#[test]
fn closing_a_waiter_wakes_the_thread_waiting_on_a_queued_jobs_reply() {
    model(3, || {
        let caller = own_waiter("caller");
        // The target's owner never serves it: only `close` can end the wait.
        let target = loom_support::new_waiter("target");
        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let token = Token::new(&ran, &dropped);
        let (tx, rx) = caller.reply_channel::<u32>();
        let closing = target.clone();
        let closer = thread::spawn(move || closing.close());
        let posted = target
            .post(move || {
                token.run();
                tx.send(1);
            })
            .is_ok();
        assert!(matches!(caller.wait(rx), Err(Error::ReplyDropped(_))));
        closer.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        let _ = posted;
    });
}

#[test]
fn closing_a_served_waiter_while_a_reply_carrying_job_is_queued() {
    model(3, || {
        let caller = own_waiter("caller");
        let target = loom_support::new_waiter("target");
        let theirs = target.clone();
        let owner = thread::spawn(move || {
            loom_support::install(theirs.clone());
            theirs.run();
        });
        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let token = Token::new(&ran, &dropped);
        let (tx, rx) = caller.reply_channel::<u32>();
        let closing = target.clone();
        let closer = thread::spawn(move || closing.close());
        let _ = target.post(move || {
            token.run();
            tx.send(1);
        });
        // Either the owner ran it (reply 1) or `close` (or the refused post)
        // dropped it (ReplyDropped); never a hang, never both.
        match caller.wait(rx) {
            Ok(v) => {
                assert_eq!(v, 1);
                assert_eq!(ran.load(Ordering::SeqCst), 1);
            }
            Err(Error::ReplyDropped(_)) => assert_eq!(dropped.load(Ordering::SeqCst), 1),
            Err(other) => panic!("unexpected {other:?}"),
        }
        closer.join().unwrap();
        owner.join().unwrap();
        assert_eq!(
            ran.load(Ordering::SeqCst) + dropped.load(Ordering::SeqCst),
            1
        );
    });
}

// (d) Waiting for a thread's exit (`ThreadHandle::wait`): the waiting thread
// runs its own mailbox until a condition set elsewhere holds; the setter
// calls `wake` afterwards, as the reaper does when it opens an exit latch.

#[test]
fn a_condition_set_elsewhere_then_woken_ends_run_until() {
    model(3, || {
        let owner = own_waiter("owner");
        let exited = Arc::new(AtomicBool::new(false));
        let callback_ran = Arc::new(AtomicBool::new(false));
        let (flag, target) = (exited.clone(), owner.clone());
        let opener = thread::spawn(move || {
            flag.store(true, Ordering::SeqCst);
            loom_support::wake(&target);
        });
        // A callback posted meanwhile (the exiting thread's last job calling
        // back) runs during the wait or, at the latest, is still queued.
        let (ran, target) = (callback_ran.clone(), owner.clone());
        let poster = thread::spawn(move || {
            target
                .post(move || ran.store(true, Ordering::SeqCst))
                .unwrap();
        });
        let flag = exited.clone();
        assert!(loom_support::run_until(
            &owner,
            &move || flag.load(Ordering::SeqCst),
            false
        ));
        opener.join().unwrap();
        poster.join().unwrap();
        assert!(exited.load(Ordering::SeqCst));
    });
}

#[test]
fn run_until_on_a_closed_drained_mailbox_gives_up_instead_of_hanging() {
    model(3, || {
        // The reaper waiting, inside one of its own jobs, for a join that can
        // only come as a job: once its mailbox is closed and empty, it stops.
        let reaper = own_waiter("reaper");
        let closing = reaper.clone();
        let closer = thread::spawn(move || loom_support::close_after_queued(&closing));
        let done = loom_support::run_until(&reaper, &|| false, true);
        assert!(!done);
        closer.join().unwrap();
    });
}
