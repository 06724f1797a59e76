//! # mp-agents-bench
//!
//! The bodies of the benchmarks in `benches/agents.rs`: mp-agents and, for
//! comparison, a crossbeam channel (the floor), actix, ractor and kameo.
//! Each peer is a long-lived fixture (its threads and actors made once)
//! with a `run` method that does one iteration and returns the count the
//! receiving side saw, so `tests/bodies.rs` can check every body with a
//! small N and the benches can time many.
//!
//! | module | owns |
//! |---|---|
//! | [`agents`] | mp-agents: ping-pong, burst, cooperation register+deregister |
//! | [`floor`] | crossbeam-channel ping-pong and burst between two threads |
//! | [`actix_peer`] | actix (+ actix-rt) ping-pong and burst |
//! | [`ractor_peer`] | ractor ping-pong and burst |
//! | [`kameo_peer`] | kameo ping-pong and burst |
//!
//! Semantics shared by every peer:
//! - **ping-pong**: `rounds` request/reply round trips of a `u64`, one after
//!   the other; two messages per round trip. mp-agents has no ask: the
//!   pinger is an agent and the ping carries its direct mbox (as
//!   `examples/ping_pong.rs`); the actor frameworks use their own ask
//!   (`Addr::send`, `call!`, `ask`) from a task on the pinger's thread.
//! - **burst**: the bench thread sends `n` small messages, without waiting,
//!   to one receiver living on a thread of the framework; the iteration
//!   ends when the receiver has counted all `n`.
//! - [`Threads::One`]: both sides on one thread (one_thread dispatcher, one
//!   actix arbiter, one tokio current-thread runtime); [`Threads::Two`]:
//!   each side on a thread of its own (active_obj dispatcher, a second
//!   arbiter, a second current-thread runtime).

pub mod actix_peer;
pub mod agents;
pub mod floor;
pub mod kameo_peer;
pub mod ractor_peer;
mod rt;

/// CPU time used so far by every thread of the process.
pub fn process_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Messages per CPU-second (all threads) of `run(n)`, `per` messages per
/// unit of `n`: unlike wall-clock throughput, barely moved by other load
/// on the machine (a thread waiting for its turn uses no CPU).
pub fn per_cpu_second(mut run: impl FnMut(u64) -> u64, n: u64, per: u64) -> f64 {
    let before = process_cpu_time();
    assert_eq!(run(n), n);
    (n * per) as f64 / (process_cpu_time() - before).as_secs_f64()
}

/// Where the two sides of a ping-pong run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Both on one thread.
    One,
    /// Each on a thread of its own.
    Two,
}
