//! Every session the benchmarks use works, briefly: so a broken peer shows
//! up in `cargo test`, not only when someone runs the benchmarks.

use std::path::Path;

use mp_bench::mp::{noop_callback, MpCalc};
use mp_bench::pingpong::PingPong;
use mp_bench::raw::RawCalc;

const PEER: &str = env!("CARGO_BIN_EXE_bench-peer");

#[test]
fn pingpong_echoes() {
    let mut pp = PingPong::spawn(Path::new(PEER)).unwrap();
    for i in 1..=100u64 {
        assert_eq!(pp.round_trip().unwrap(), i);
    }
}

#[test]
fn raw_capnp_rpc_calls() {
    let raw = RawCalc::spawn(Path::new(PEER)).unwrap();
    assert_eq!(raw.add(40, 2).unwrap(), 42);
    raw.sequential(100).unwrap();
    raw.pipelined(300, 64).unwrap();
}

#[test]
fn mp_calls_of_every_kind() {
    let mp = MpCalc::spawn(Path::new(PEER)).unwrap();
    let calc = mp.calc();
    assert_eq!(calc.add_on_loop(40, 2).unwrap(), 42);
    assert_eq!(calc.add(40, 2).unwrap(), 42);
    assert_eq!(calc.countdown(6, noop_callback()).unwrap(), 7);
    mp.pipelined(300, 64).unwrap();
}

#[test]
fn switch_counters_read_this_process() {
    let snap = mp_bench::switches::snapshot(std::process::id()).unwrap();
    assert!(!snap.is_empty());
    let same = mp_bench::switches::delta(&snap, &snap);
    assert!(same.is_empty());
}
