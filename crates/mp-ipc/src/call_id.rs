//! `CallId`: the id one call carries across the process boundary, so its
//! client span (`mp.call`) and its server span (`mp.serve`) show the same
//! `call_id` in both processes' logs.
//!
//! It travels in the call's `Context`, as the field `callId` that
//! multiprocess adds to libmultiprocess's `proxy.capnp` (see that file, and
//! `docs/architecture.md` for why the `Context` and not another place). A
//! peer built from libmultiprocess's own schema neither reads nor sends
//! it: its `Context` has no data section, so ours arrives with the id as
//! 0, which means "none" and is left out of the span.
//!
//! Ids are unique within a process and, being a 64-bit mix of a random
//! per-process seed, apart across processes with near certainty. Each
//! thread takes them from blocks it reserves from one process-wide counter,
//! so making one costs no shared write. Keeps invariant 5: the thread's
//! block is its own; only the counter it draws blocks from is shared.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// One call's id, shown as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CallId(u64);

/// Ids a thread reserves at a time.
const BLOCK: u64 = 1 << 16;

/// The next block's first number.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's next number and the end of its block.
    static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The process's seed: random, fixed for the process's life.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| RandomState::new().hash_one(std::process::id()))
}

/// A bijection of `u64` (splitmix64's finalizer): distinct numbers give
/// distinct ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl CallId {
    /// A fresh id, never 0 and never one this process made before.
    pub(crate) fn next() -> CallId {
        let n = BLOCK_LEFT
            .try_with(|left| {
                let (mut next, mut end) = left.get();
                if next == end {
                    next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                    end = next + BLOCK;
                }
                left.set((next + 1, end));
                next
            })
            // The thread is exiting: a block of one.
            .unwrap_or_else(|_| NEXT_BLOCK.fetch_add(1, Ordering::Relaxed));
        match mix(n.wrapping_add(seed())) {
            // 0 means "none" on the wire; one number in 2^64 is skipped.
            0 => CallId::next(),
            id => CallId(id),
        }
    }

    /// The id a `Context` carried: `None` for 0 (a peer that sends none).
    pub(crate) fn from_wire(raw: u64) -> Option<CallId> {
        (raw != 0).then_some(CallId(raw))
    }

    /// The value sent in the `Context`.
    pub(crate) fn to_wire(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::CallId;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct_across_threads_and_blocks_and_never_zero() {
        let ids: Vec<CallId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..70_000).map(|_| CallId::next()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let distinct: HashSet<CallId> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(ids.iter().all(|id| id.to_wire() != 0));
        assert_eq!(CallId::from_wire(0), None);
        let id = ids[0];
        assert_eq!(CallId::from_wire(id.to_wire()), Some(id));
        assert_eq!(id.to_string().len(), 16);
    }
}
