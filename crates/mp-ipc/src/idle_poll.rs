//! The event loop polls briefly before it sleeps.
//!
//! A call hands work between threads and processes several times: client
//! thread to client loop, loop to socket, server loop to server thread and
//! back. Each hand-off to a thread asleep in the kernel costs a wake-up. On
//! a small VM that is a vCPU the hypervisor has to bring back, tens of
//! microseconds, often more than the rest of the call. So after each piece
//! of work (a job run, a message read) the loop does not go to sleep in
//! `epoll_wait` at once. For [`POLL_BEFORE_SLEEP`] it yields to the runtime
//! instead, which then looks for I/O and jobs without blocking; in that
//! window, the next message or job is picked up with no wake-up. Between
//! two looks it also yields the core (`sched_yield`), so a thread that
//! shares the core, on a small machine the very server thread the loop
//! waits for, runs first: the project's one poll policy,
//! [`mp_thread::Backoff`], in its yielding form (a look is a trip through
//! the runtime and `epoll_wait`, so spinning between looks gains nothing).
//!
//! Measured on a 2-vCPU VM (`cargo bench -p mp-bench --bench ipc`, medians
//! of two runs, against the loops sleeping at once, alternated in one
//! session; `crates/mp-bench/README.md` has the table): unpinned, a plain
//! call fell from 56–61 to 21–27 µs, a mapped call from 89 to 34–39 µs, a
//! call with one callback from 247–257 to 93–100 µs. With every thread on
//! one core (`taskset -c 1`) the mapped call fell from 51–55 to 38–40 µs
//! and the callback from 123–151 to 98–100 µs, while 64 pipelined calls
//! lost about 10%. `switches` counts no voluntary sleep of either loop per
//! mapped call (3 each before).
//!
//! Invariant 7 holds: the poll is bounded; after a quiet
//! [`POLL_BEFORE_SLEEP`] the loop sleeps as before. The poller decides only
//! *when* the loop sleeps, never whether work is done (tokio drives every
//! job and every socket either way), so a missed or late notice costs
//! latency, not a job. All of it runs on the loop thread: the state is a
//! slot of that thread's context, touched by no other thread.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// How long the loop keeps polling after its last piece of work before it
/// sleeps in the kernel.
pub(crate) const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(100);

/// The loop's record of work done: its slot of the loop thread's context.
#[derive(Default)]
struct Activity {
    /// Pieces of work so far.
    count: Cell<u64>,
    /// Whether the poller is polling now (then it sees `count` move itself).
    polling: Cell<bool>,
    /// Starts the poller when work comes to a sleeping loop.
    wake: Rc<tokio::sync::Notify>,
}

/// Tells the loop it just did work (ran a job, read a message), so it
/// polls for more for a while before it sleeps. On the loop thread; on
/// another thread it only counts in that thread's slot, which nothing reads.
pub(crate) fn note_activity() {
    mp_thread::context::with(|a: &Activity| {
        a.count.set(a.count.get() + 1);
        if !a.polling.get() {
            // A permit is kept if the poller is not waiting yet: no notice
            // is lost between its last look and its next wait.
            a.wake.notify_one();
        }
    });
}

/// The loop's poller, spawned once on the loop: after work, yields until
/// [`POLL_BEFORE_SLEEP`] has passed with no new work.
pub(crate) async fn poll_before_sleeping() {
    let Some(wake) = mp_thread::context::with(|a: &Activity| a.wake.clone()) else {
        return;
    };
    let count = || mp_thread::context::with(|a: &Activity| a.count.get()).unwrap_or(0);
    let polling = |on| {
        mp_thread::context::with(|a: &Activity| a.polling.set(on));
    };
    loop {
        wake.notified().await;
        polling(true);
        let mut seen = count();
        let mut backoff = mp_thread::Backoff::yielding(POLL_BEFORE_SLEEP);
        loop {
            // The runtime looks for I/O (without blocking) and runs what
            // is ready before it polls this task again.
            tokio::task::yield_now().await;
            let now = count();
            if now != seen {
                seen = now;
                backoff.reset();
                continue;
            }
            // Yields the core between looks; false once a quiet
            // `POLL_BEFORE_SLEEP` has passed.
            if !backoff.snooze() {
                break;
            }
        }
        polling(false);
    }
}
