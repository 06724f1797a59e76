//! `poll_until`: a bounded busy-wait for a condition another thread makes
//! true, used by threads that would otherwise sleep between messages.
//!
//! Waking a sleeping thread costs tens of microseconds on small VMs (a
//! futex wake, then the scheduler), while a message between two running
//! threads takes well under one. A thread that expects more work soon may
//! poll a little before it sleeps (SObjectizer's dispatcher queues spin
//! before they block, too). Polling first only spins — a reply from a
//! thread running on another core comes within a microsecond or two, and a
//! yield (a system call) would only delay seeing it — then also yields
//! between checks, because if the thread that will make the condition true
//! shares this core, only a yield lets it run.
//!
//! Invariant 7 (every blocking wait ends): the poll is bounded by its
//! limit; the caller sleeps (or gives up) afterwards as it would have.

use std::time::Duration;

/// Checks of the condition between two looks at the clock: about a
/// microsecond of `spin_loop` hints.
#[cfg(not(loom))]
const SPINS_PER_CHECK: u32 = 32;

/// How long polling only spins before it also yields between checks.
/// Measured on two vCPUs: 2 µs cost agents' cooperation benchmark ~10%;
/// 10 µs made ping-pong between two threads fall to ~1M msg/s whenever
/// both shared a core.
#[cfg(not(loom))]
const SPIN_ONLY: Duration = Duration::from_micros(5);

/// Polls `ready` for up to `limit`; true as soon as it holds, false if
/// `limit` passed first (or is zero). `ready` should be cheap — an atomic
/// load — since it runs about every 30 ns.
#[cfg(not(loom))]
pub fn poll_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    if limit.is_zero() {
        return false;
    }
    let start = std::time::Instant::now();
    loop {
        for _ in 0..SPINS_PER_CHECK {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        let waited = start.elapsed();
        if waited >= limit {
            return false;
        }
        if waited >= SPIN_ONLY {
            std::thread::yield_now();
        }
    }
}

/// Under loom there is no clock: one look, so models keep the path in
/// without a time bound.
#[cfg(loom)]
pub fn poll_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    !limit.is_zero() && ready()
}
