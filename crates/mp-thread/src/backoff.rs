//! `Backoff`: the one policy every thread of the project follows while it
//! expects another thread to give it work soon, and [`poll_until`], the
//! bounded busy-wait written over it.
//!
//! Waking a sleeping thread costs tens of microseconds on small VMs (a
//! futex wake, then the scheduler, then the hypervisor bringing a vCPU
//! back), while a message between two running threads takes well under
//! one. So a thread that expects work soon polls a little before it sleeps
//! (SObjectizer's dispatcher queues spin before they block too). Every such
//! poll in the project is a [`Backoff`]:
//!
//! - a waiting thread's mailbox ([`Waiter`](crate::Waiter)), for as long
//!   as its adaptive budget says polling has been paying;
//! - a busy-waiting worker ([`Worker::spawn_busy_waiting`](crate::Worker::spawn_busy_waiting))
//!   and an agents' dispatcher queue, for a fixed time;
//! - an event loop of the IPC layer, after its last piece of work.
//!
//! The policy has two phases, after crossbeam's `Backoff`. First it only
//! spins, one `spin_loop` hint between looks: a reply from a thread
//! running on another core comes within a microsecond or two, and a yield
//! (a system call) would only delay seeing it. Then it also yields the
//! core between looks, because if the thread that will give the work
//! shares this core, only a yield lets it run. Unlike crossbeam's, it is
//! bounded by time, not by a step count (a step is 25 ns on one machine
//! and 5 on another, and the bound is what keeps invariant 7); its spins
//! do not grow (crossbeam's grow to spread out threads retrying one
//! compare-and-swap; a waiter wants to see its work as soon as it comes);
//! and the spinning phase can be left out: an event loop's look is itself
//! a system call, so it yields from the first look. While it spins it
//! reads the clock only every [`LOOKS_PER_CLOCK`] looks (a clock read
//! costs about as much as a hint), so a spinning backoff may run up to
//! that many hints past its limit.
//!
//! Invariant 7 (every blocking wait ends): a backoff is bounded by its
//! limit; afterwards the caller sleeps (or gives up) as it would have.
//! Under loom there is no clock: a backoff with a nonzero limit allows one
//! look after a model yield, so models keep the polling path without a
//! time bound.

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

/// How long a [`Backoff::new`] only spins before it also yields between
/// looks. Measured on two vCPUs: 2 µs cost agents' cooperation benchmark
/// about 10%; 10 µs made ping-pong between two threads fall to about 1M
/// messages/s whenever both shared a core.
pub const SPIN_ONLY: Duration = Duration::from_micros(5);

/// Looks between two reads of the clock while a backoff spins: about a
/// microsecond where a hint takes 25 ns. (Under loom every look is one
/// model step, so the clock is not read by count there.)
#[cfg_attr(loom, allow(dead_code))]
pub const LOOKS_PER_CLOCK: u32 = 32;

/// A bounded poll: call [`snooze`](Self::snooze) between looks at the
/// condition you wait for; when it returns false the limit has passed, and
/// it is time to sleep.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use mp_thread::Backoff;
///
/// let ready = AtomicBool::new(false);
/// let mut backoff = Backoff::new(Duration::from_micros(20));
/// while !ready.load(Ordering::Acquire) {
///     if !backoff.snooze() {
///         break; // nothing came: sleep on a condition variable instead
///     }
/// }
/// assert!(backoff.is_completed());
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    limit: Duration,
    spin_only: Duration,
    #[cfg(not(loom))]
    start: Option<Instant>,
    #[cfg(not(loom))]
    looks: u32,
    /// Still in the spinning phase (as of the last clock read).
    #[cfg(not(loom))]
    spinning: bool,
    #[cfg(loom)]
    looked: bool,
}

impl Backoff {
    /// A backoff that spins for [`SPIN_ONLY`] (or `limit`, if shorter),
    /// then yields between looks, until `limit` has passed since the first
    /// [`snooze`](Self::snooze). For threads whose looks are cheap (an
    /// atomic load).
    pub fn new(limit: Duration) -> Backoff {
        Backoff::with_spin_only(limit, SPIN_ONLY)
    }

    /// A backoff that yields on every look, until `limit` has passed: for
    /// threads whose look is itself a system call or a trip through a
    /// runtime, where spinning gains nothing.
    pub fn yielding(limit: Duration) -> Backoff {
        Backoff::with_spin_only(limit, Duration::ZERO)
    }

    fn with_spin_only(limit: Duration, spin_only: Duration) -> Backoff {
        Backoff {
            limit,
            spin_only,
            #[cfg(not(loom))]
            start: None,
            #[cfg(not(loom))]
            looks: 0,
            #[cfg(not(loom))]
            spinning: !spin_only.is_zero(),
            #[cfg(loom)]
            looked: false,
        }
    }

    /// The limit this backoff was made with.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Waits a little before the next look: spins or yields, as the phase
    /// says. Returns false, without waiting, once `limit` has passed since
    /// the first call (or at once if `limit` is zero): the caller should
    /// sleep now.
    #[cfg(not(loom))]
    pub fn snooze(&mut self) -> bool {
        if self.limit.is_zero() {
            return false;
        }
        let Some(start) = self.start else {
            // The first look: the limit counts from here.
            self.start = Some(Instant::now());
            self.looks = 1;
            return self.wait_before_next(Duration::ZERO);
        };
        self.looks = self.looks.wrapping_add(1);
        if self.spinning && self.looks % LOOKS_PER_CLOCK != 0 {
            crate::sync::spin_hint();
            return true;
        }
        let waited = start.elapsed();
        if waited >= self.limit {
            return false;
        }
        self.wait_before_next(waited)
    }

    /// Spins or yields once, as the phase at `waited` says. Once yielding,
    /// every look reads the clock (a yield costs far more than the read).
    #[cfg(not(loom))]
    fn wait_before_next(&mut self, waited: Duration) -> bool {
        self.spinning = waited < self.spin_only;
        if self.spinning {
            crate::sync::spin_hint();
        } else {
            std::thread::yield_now();
        }
        true
    }

    /// Under loom: one model yield, then completed.
    #[cfg(loom)]
    pub fn snooze(&mut self) -> bool {
        if self.limit.is_zero() || self.looked {
            return false;
        }
        self.looked = true;
        crate::sync::spin_hint(); // a model yield under loom
        true
    }

    /// True once [`snooze`](Self::snooze) has said the limit passed (or the
    /// limit is zero).
    pub fn is_completed(&self) -> bool {
        if self.limit.is_zero() {
            return true;
        }
        #[cfg(not(loom))]
        {
            self.start.is_some_and(|s| s.elapsed() >= self.limit)
        }
        #[cfg(loom)]
        {
            self.looked
        }
    }

    /// Starts over, as if new: for a poller that just found work and will
    /// poll for the next piece.
    pub fn reset(&mut self) {
        *self = Backoff::with_spin_only(self.limit, self.spin_only);
    }
}

/// Polls `ready` with a [`Backoff::new`] of `limit`; true as soon as it
/// holds, false if `limit` passed first (or is zero, after one look).
/// `ready` should be cheap (an atomic load): it runs every few hundred
/// nanoseconds at most.
pub fn poll_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let mut backoff = Backoff::new(limit);
    loop {
        if ready() {
            return true;
        }
        if !backoff.snooze() {
            return false;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{poll_until, Backoff, SPIN_ONLY};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_zero_limit_never_waits() {
        let mut b = Backoff::new(Duration::ZERO);
        assert!(b.is_completed());
        assert!(!b.snooze());
        let mut looks = 0;
        assert!(!poll_until(Duration::ZERO, || {
            looks += 1;
            false
        }));
        assert_eq!(looks, 1, "one look, then give up");
    }

    /// The bound is what lets the caller sleep: the backoff never gives up
    /// before it, and always gives up after it.
    #[test]
    fn it_gives_up_only_once_the_limit_has_passed() {
        for mut b in [
            Backoff::new(Duration::from_micros(200)),
            Backoff::yielding(Duration::from_micros(200)),
        ] {
            let start = Instant::now();
            let mut looks = 0u64;
            while b.snooze() {
                looks += 1;
                assert!(start.elapsed() < Duration::from_secs(10), "watchdog");
            }
            assert!(start.elapsed() >= b.limit());
            assert!(b.is_completed());
            assert!(looks > 0);
            assert!(!b.snooze(), "stays completed");
        }
    }

    #[test]
    fn reset_starts_the_limit_over() {
        let mut b = Backoff::yielding(Duration::from_micros(50));
        while b.snooze() {}
        b.reset();
        assert!(!b.is_completed());
        assert!(b.snooze());
    }

    #[test]
    fn a_short_limit_is_not_stretched_by_the_spinning_phase() {
        let limit = SPIN_ONLY / 5;
        let mut b = Backoff::new(limit);
        while b.snooze() {}
        assert!(b.is_completed());
    }

    #[test]
    fn poll_until_sees_a_flag_set_by_another_thread() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || flag.store(true, Ordering::Release))
        };
        // Generous: the setter only has to be scheduled once.
        let seen = poll_until(Duration::from_secs(10), || flag.load(Ordering::Acquire));
        setter.join().unwrap();
        assert!(seen);
    }
}
