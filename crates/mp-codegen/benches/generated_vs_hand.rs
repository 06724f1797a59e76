//! Generated adapter vs mp-calc's hand-written one for the same methods, in
//! one criterion run: `Calculator.add` (mapped to this thread's server
//! thread) and `Calculator.addOnLoop` (on the server's loop), each through
//! a generated client and server and through the hand-written pair, both
//! in-process over a socketpair with two event loops.

// criterion's macros make undocumented items.
#![allow(missing_docs)]

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mp_ipc::{Connection, EventLoop, Side};

/// capnpc's types, where the generated code expects them.
mod calc_capnp {
    pub use mp_calc::calc_capnp::*;
}

/// The generated adapters (the checked-in golden file).
#[allow(dead_code)]
mod calc_mp {
    include!("../tests/data/calc_mp.rs");
}

use calc_mp::{CalcInit, CalcInitClient, CalcInitServer, Calculator};

struct Init;

impl CalcInit for Init {
    fn make_calculator(&self) -> Result<Arc<dyn Calculator>, String> {
        Ok(Arc::new(Calc))
    }
}

/// The same behaviour as mp-calc's `CalcService` for the measured methods.
struct Calc;

impl Calculator for Calc {
    fn add(&self, a: i64, b: i64) -> Result<i64, String> {
        mp_calc::CalcService.add(a, b)
    }
    fn add_on_loop(&self, a: i64, b: i64) -> Result<i64, String> {
        mp_calc::CalcService.add(a, b)
    }
    fn where_am_i(&self) -> Result<calc_mp::CalculatorWhereAmIResults, String> {
        Err("unused".into())
    }
    fn countdown(&self, _: u32, _: calc_mp::CallbackClient) -> Result<u32, String> {
        Err("unused".into())
    }
    fn sleep(&self, _: u32) -> Result<(), String> {
        Ok(())
    }
    fn fail(&self, message: String) -> Result<(), String> {
        Err(message)
    }
    fn panic(&self, message: String) -> Result<(), String> {
        Err(message)
    }
    fn make_counter(&self, _: i64) -> Result<Arc<dyn calc_mp::Counter>, String> {
        Err("unused".into())
    }
}

fn bench(c: &mut Criterion) {
    let loops = [
        EventLoop::new("gen-server").unwrap(),
        EventLoop::new("gen-client").unwrap(),
        EventLoop::new("hand-server").unwrap(),
        EventLoop::new("hand-client").unwrap(),
    ];
    let (a, b) = UnixStream::pair().unwrap();
    let _gen_server = Connection::builder(&loops[0])
        .serve(|conn| CalcInitServer::bootstrap(conn, Arc::new(Init)))
        .open(a, Side::Server)
        .unwrap();
    let conn = Connection::builder(&loops[1])
        .open(b, Side::Client)
        .unwrap();
    let generated = CalcInitClient::connect(&conn)
        .unwrap()
        .make_calculator()
        .unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let _hand_server = mp_calc::serve(&loops[2], a).unwrap();
    let hand = mp_calc::connect(&loops[3], b)
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
