//! Seed 000 (libmultiprocess: `~Connection` racing `~ProxyClient<Thread>`),
//! each problem as a race whose window is opened on purpose and repeated.
//!
//! Here a thread's mapping is owned by its connection and every change to it
//! runs on the event loop, so the races below are sequenced by construction.
//! These tests show that the sequencing holds under pressure: no panic, no
//! hang (watchdog), nothing leaked (threads return to their baseline).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::Duration;

use common::{eventually, in_process, thread_count, watchdog};
use mp_ipc::EventLoop;
use mp_thread::Waiter;

/// Rounds of each race loop: `MP_SEED_ROUNDS` if set (the long TSan run
/// in README's Reliability section), 1,000 otherwise.
fn rounds() -> usize {
    std::env::var("MP_SEED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// The watchdog's limit, scaled with [`rounds`] (300 s per 1,000 rounds).
fn limit() -> Duration {
    Duration::from_secs(300) * rounds().div_ceil(1_000).max(1) as u32
}

/// The tests of this file compare the process's thread count with a
/// baseline, so they run one at a time: another test's event loops, started
/// or still running, would count as a leak (a long run showed it: one test
/// finished its rounds while another's two loops were still up).
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Problems 1 and 2: the connection is torn down at the same moment a
/// client thread drops its thread mapping, from two threads. Alternates
/// which side closes, and whether the thread releases explicitly or by
/// exiting.
#[test]
fn teardown_races_a_thread_dropping_its_mapping() {
    let _serial = one_at_a_time();
    watchdog(limit(), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let baseline = thread_count();
        for round in 0..rounds() {
            let (server, init) = in_process(&server_loop, &client_loop);
            let calc = init.make_calculator().unwrap();
            let gate = Arc::new(Barrier::new(2));
            let their_gate = gate.clone();
            let client = std::thread::spawn(move || {
                assert_eq!(calc.add(2, 2).unwrap(), 4);
                their_gate.wait();
                if round % 2 == 0 {
                    // Drop the mapping explicitly...
                    let _ = calc.connection().release_current_thread();
                }
                // ...or just exit, which releases it from the thread's exit.
                drop(calc);
            });
            gate.wait();
            if round % 4 < 2 {
                init.connection().close();
            } else {
                server.close();
            }
            drop(init);
            client.join().expect("client thread");
            assert!(server.wait_disconnected_timeout(Duration::from_secs(10)));
        }
        // Every server worker and mapping is gone once the reaper catches up.
        assert!(
            eventually(Duration::from_secs(20), || thread_count() <= baseline),
            "threads leaked: {} now, {baseline} before",
            thread_count()
        );
    });
}

/// Invariant 4 (problems 1 and 2): removing a disconnect callback while the
/// disconnect runs. When `remove` returns, the callback has either finished
/// (false) or will never run (true) — never "still running" or "ran after".
#[test]
fn removing_a_disconnect_callback_races_the_disconnect() {
    let _serial = one_at_a_time();
    watchdog(limit(), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (mut removed_first, mut ran_first) = (0, 0);
        for _ in 0..rounds() {
            let (server, init) = in_process(&server_loop, &client_loop);
            let conn = init.connection().clone();
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            let hook = conn
                .on_disconnect(move || {
                    // Widen the window: stay "running" for a moment.
                    std::thread::sleep(Duration::from_micros(200));
                    flag.store(true, Ordering::SeqCst);
                })
                .unwrap()
                .expect("connected");
            let gate = Arc::new(Barrier::new(2));
            let their_gate = gate.clone();
            let closer = std::thread::spawn(move || {
                their_gate.wait();
                server.close();
                server.wait_disconnected();
            });
            gate.wait();
            let removed = hook.remove();
            let ran_when_remove_returned = ran.load(Ordering::SeqCst);
            closer.join().unwrap();
            assert!(conn.wait_disconnected_timeout(Duration::from_secs(10)));
            if removed {
                removed_first += 1;
                assert!(
                    !ran.load(Ordering::SeqCst),
                    "callback ran after a successful remove"
                );
            } else {
                ran_first += 1;
                assert!(
                    ran_when_remove_returned,
                    "remove returned while the callback was still running"
                );
            }
            drop(init);
        }
        eprintln!("remove won {removed_first} times, disconnect won {ran_first} times");
    });
}

/// Problem 3: a client thread exits while a disconnect callback that touches
/// its per-thread state is running. The thread's exit must not wait for the
/// loop, and what the callback touches must still be valid (it is shared,
/// not thread-local): posting to the dead thread's mailbox fails cleanly.
#[test]
fn client_thread_exits_while_a_disconnect_callback_runs() {
    let _serial = one_at_a_time();
    watchdog(limit(), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let baseline = thread_count();
        for _ in 0..rounds() {
            let (server, init) = in_process(&server_loop, &client_loop);
            let calc = init.make_calculator().unwrap();
            let conn = init.connection().clone();
            let (mailbox_tx, mailbox_rx) = mpsc::channel();
            let (exit_tx, exit_rx) = mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                assert_eq!(calc.add(1, 1).unwrap(), 2);
                mailbox_tx.send(Waiter::current()).unwrap();
                let _ = exit_rx.recv();
            });
            let client_mailbox = mailbox_rx.recv().unwrap();
            let (running_tx, running_rx) = mpsc::channel();
            let (resume_tx, resume_rx) = mpsc::channel::<()>();
            let (outcome_tx, outcome_rx) = mpsc::channel();
            conn.on_disconnect(move || {
                running_tx.send(()).unwrap();
                // Hold the loop until the client thread has exited.
                let _ = resume_rx.recv_timeout(Duration::from_secs(10));
                let posted = client_mailbox.post(|| {});
                outcome_tx.send(posted.is_err()).unwrap();
            })
            .unwrap()
            .expect("connected");
            server.close();
            running_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("callback started");
            exit_tx.send(()).unwrap();
            client
                .join()
                .expect("client thread exits while the loop is busy");
            resume_tx.send(()).unwrap();
            let refused = outcome_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(
                refused,
                "a dead thread's mailbox refuses work instead of dangling"
            );
            assert!(conn.wait_disconnected_timeout(Duration::from_secs(10)));
            assert_eq!(conn.mapped_threads().unwrap(), 0);
            drop((init, conn));
        }
        assert!(
            eventually(Duration::from_secs(20), || thread_count() <= baseline),
            "threads leaked: {} now, {baseline} before",
            thread_count()
        );
    });
}
