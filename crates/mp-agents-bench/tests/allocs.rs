//! Heap allocations per message of each benchmark body, counted by a global
//! allocator over every thread of the process (one test, so nothing else
//! runs meanwhile). Prints the table (`-- --nocapture`). Asserts the
//! message counts, and one property of mp-agents: a message costs one
//! allocation (its payload) once the queues have grown; the peers'
//! figures are findings, not limits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use mp_agents_bench::{actix_peer, agents, floor, kameo_peer, ractor_peer, Threads};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: u64 = 20_000;
const BURST: u64 = 100_000;

/// Allocations per message of `run(n)` after a warm-up run; `per` is the
/// messages in one unit of `n`.
fn per_message(mut run: impl FnMut(u64) -> u64, n: u64, per: u64) -> f64 {
    assert_eq!(run(n / 10), n / 10);
    let before = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(run(n), n);
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / (n * per) as f64
}

#[test]
fn allocations_per_message() {
    let mut rows = Vec::new();
    for (name, threads) in [("one thread", Threads::One), ("two threads", Threads::Two)] {
        let mut f = agents::PingPong::new(threads);
        rows.push((
            format!("ping-pong {name}: mp-agents"),
            per_message(|n| f.run(n), ROUNDS, 2),
        ));
        let mut f = actix_peer::PingPong::new(threads);
        rows.push((
            format!("ping-pong {name}: actix"),
            per_message(|n| f.run(n), ROUNDS, 2),
        ));
        let mut f = ractor_peer::PingPong::new(threads);
        rows.push((
            format!("ping-pong {name}: ractor"),
            per_message(|n| f.run(n), ROUNDS, 2),
        ));
        let mut f = kameo_peer::PingPong::new(threads);
        rows.push((
            format!("ping-pong {name}: kameo"),
            per_message(|n| f.run(n), ROUNDS, 2),
        ));
    }
    let mut f = floor::PingPong::new();
    rows.push((
        "ping-pong two threads: crossbeam".into(),
        per_message(|n| f.run(n), ROUNDS, 2),
    ));
    let mut f = agents::Burst::new();
    rows.push((
        "burst: mp-agents".into(),
        per_message(|n| f.run(n), BURST, 1),
    ));
    let mut f = floor::Burst::new();
    rows.push((
        "burst: crossbeam".into(),
        per_message(|n| f.run(n), BURST, 1),
    ));
    let mut f = actix_peer::Burst::new();
    rows.push(("burst: actix".into(), per_message(|n| f.run(n), BURST, 1)));
    let mut f = ractor_peer::Burst::new();
    rows.push(("burst: ractor".into(), per_message(|n| f.run(n), BURST, 1)));
    let mut f = kameo_peer::Burst::new();
    rows.push(("burst: kameo".into(), per_message(|n| f.run(n), BURST, 1)));
    let mut f = agents::Coops::new();
    rows.push((
        "coop register+deregister (per agent)".into(),
        per_message(|n| f.run(n), 200, agents::COOP_AGENTS),
    ));
    for (what, a) in &rows {
        println!("{what:<40} {a:>6.2} allocations/message");
    }
    for (what, a) in &rows {
        if what.ends_with(": mp-agents") {
            // The payload box; a few more while queues grow or a drain
            // job is posted (a per-message job box would make it 2).
            assert!(*a < 1.1, "{what}: {a:.2} allocations per message");
        }
    }
}
