//! Generated adapter vs the foundation's hand-written one for the same
//! methods, in one criterion run: `Calculator.add` (mapped to this thread's
//! server thread) and `Calculator.addOnLoop` (on the server's loop), each
//! through mp-test-calc's generated client and server and through the
//! hand-written pair (`tests/support/hand_calc`), both in-process over a
//! socketpair with two event loops, serving the same `CalcService` logic.

// criterion's macros make undocumented items.
#![allow(missing_docs)]

use std::os::unix::net::UnixStream;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mp_ipc::EventLoop;

/// capnpc's types, where the hand-written adapter expects them.
mod calc_capnp {
    pub use mp_test_calc::calc_capnp::*;
}

#[path = "../tests/support/mod.rs"]
mod support;

fn bench(c: &mut Criterion) {
    let loops = [
        EventLoop::new("gen-server").unwrap(),
        EventLoop::new("gen-client").unwrap(),
        EventLoop::new("hand-server").unwrap(),
        EventLoop::new("hand-client").unwrap(),
    ];
    let (a, b) = UnixStream::pair().unwrap();
    let _gen_server = mp_test_calc::serve(&loops[0], a).unwrap();
    let generated = mp_test_calc::connect(&loops[1], b)
        .unwrap()
        .make_calculator()
        .unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let _hand_server = support::hand_calc::serve(&loops[2], a).unwrap();
    let hand = support::hand_calc::connect(&loops[3], b)
        .unwrap()
        .make_calculator()
        .unwrap();

    let mut group = c.benchmark_group("generated_vs_hand");
    group.bench_function("add/generated", |bch| {
        bch.iter(|| generated.add(black_box(2), 3).unwrap())
    });
    group.bench_function("add/hand_written", |bch| {
        bch.iter(|| hand.add(black_box(2), 3).unwrap())
    });
    group.bench_function("add_on_loop/generated", |bch| {
        bch.iter(|| generated.add_on_loop(black_box(2), 3).unwrap())
    });
    group.bench_function("add_on_loop/hand_written", |bch| {
        bch.iter(|| hand.add_on_loop(black_box(2), 3).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
