//! One run, one machine, all of:
//! 1. socketpair ping-pong between two processes (baseline);
//! 2. raw capnp-rpc sequential call between two processes (baseline);
//! 3. mp-ipc plain call (`add_on_loop`: no Context, runs on the server's loop);
//! 4. mp-ipc mapped call (`add`: runs on this thread's server thread);
//!    4b. the same with a timeout (`with_timeout`, never reached): what a
//!    deadline costs;
//! 5. mp-ipc call with one callback (`countdown(0, cb)`);
//! 6. pipelined calls, 64 in flight (mp-ipc `add_async`, and raw capnp-rpc
//!    for comparison), as throughput;
//! 7. the mapped call again with metrics recorded on both sides (a
//!    Prometheus recorder in each process), last, because a process's
//!    recorder cannot be taken out again: every benchmark before it runs
//!    with metrics off (no recorder), so 4 is its baseline;
//! 8. what the metrics add to one call, both sides' measurements alone
//!    (no I/O), with no recorder and with the recorder of 7: the off
//!    cost in nanoseconds, which a whole call's noise would hide.
//!
//! After criterion's own report it prints a summary (medians, ratios to the
//! raw capnp-rpc call, calls/s) read back from criterion's estimates.

use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{black_box, Criterion, Throughput};
use mp_bench::mp::{noop_callback, MpCalc};
use mp_bench::pingpong::PingPong;
use mp_bench::raw::RawCalc;
use mp_bench::report::{criterion_dir, machine_shape, median_ns, target};

const PEER: &str = env!("CARGO_BIN_EXE_bench-peer");
/// Calls per iteration of the pipelined benchmarks.
const BATCH: u64 = 4096;
/// Calls in flight in the pipelined benchmarks.
const IN_FLIGHT: usize = 64;

const GROUP: &str = "ipc";
const PIPE_GROUP: &str = "pipelined";
const PINGPONG: &str = "1_socketpair_pingpong";
const RAW: &str = "2_raw_capnp_rpc_call";
const PLAIN: &str = "3_mp_plain_call";
const MAPPED: &str = "4_mp_mapped_call";
const MAPPED_TIMEOUT: &str = "4b_mp_mapped_call_with_timeout";
const CALLBACK: &str = "5_mp_call_with_callback";
const PIPE_MP: &str = "6_mp_add_async_64_in_flight";
const PIPE_RAW: &str = "6b_raw_capnp_rpc_64_in_flight";
const METERED_GROUP: &str = "metrics_on";
const MAPPED_METERED: &str = "7_mp_mapped_call_metrics_on";
const COST_GROUP: &str = "metrics_cost";
const COST_OFF: &str = "8_both_sides_no_recorder";
const COST_ON: &str = "8b_both_sides_recorder";

/// One call's measurements on both sides, with nothing else: what the
/// client's and the generated server's code add to a call.
fn measure_both_sides() {
    const SITE: mp_ipc::CallSite = mp_ipc::CallSite::new("Calculator", "add");
    let client = mp_ipc::codegen_support::ServedCall::start(SITE);
    let server = mp_ipc::codegen_support::ServedCall::start(SITE);
    black_box(server.end(Ok(()))).expect("measured");
    black_box(client.end(Ok(()))).expect("measured");
}

fn sequential(c: &mut Criterion) {
    let peer = Path::new(PEER);
    let mut group = c.benchmark_group(GROUP);

    let mut pp = PingPong::spawn(peer).expect("spawning the echo peer");
    group.bench_function(PINGPONG, |b| {
        b.iter(|| black_box(pp.round_trip().expect("echo")))
    });
    drop(pp);

    let raw = RawCalc::spawn(peer).expect("spawning the raw capnp-rpc peer");
    assert_eq!(raw.add(2, 3).expect("raw call"), 5);
    group.bench_function(RAW, |b| {
        b.iter_custom(|iters| raw.sequential(iters).expect("raw calls"))
    });
    drop(raw);

    let mp = MpCalc::spawn(peer).expect("spawning the mp-test-calc peer");
    let calc = mp.calc();
    assert_eq!(calc.add(2, 3).expect("mapped call"), 5);
    assert_eq!(calc.add_on_loop(2, 3).expect("plain call"), 5);
    let cb = noop_callback();
    assert_eq!(calc.countdown(0, cb.clone()).expect("callback call"), 1);

    let mut i = 0i64;
    group.bench_function(PLAIN, |b| {
        b.iter(|| {
            i += 1;
            black_box(calc.add_on_loop(i, 1).expect("plain call"))
        })
    });
    group.bench_function(MAPPED, |b| {
        b.iter(|| {
            i += 1;
            black_box(calc.add(i, 1).expect("mapped call"))
        })
    });
    // The same call bounded by a timeout (never reached): the price of a
    // deadline, a timer on the loop per call.
    let bounded = calc.with_timeout(Some(Duration::from_secs(60)));
    group.bench_function(MAPPED_TIMEOUT, |b| {
        b.iter(|| {
            i += 1;
            black_box(bounded.add(i, 1).expect("mapped call with a timeout"))
        })
    });
    group.bench_function(CALLBACK, |b| {
        b.iter(|| black_box(calc.countdown(0, cb.clone()).expect("callback call")))
    });
    group.finish();
    drop(mp);
    let mut cost = c.benchmark_group(COST_GROUP);
    cost.bench_function(COST_OFF, |b| b.iter(measure_both_sides));
    cost.finish();
}

fn pipelined(c: &mut Criterion) {
    let peer = Path::new(PEER);
    let mut group = c.benchmark_group(PIPE_GROUP);
    group.throughput(Throughput::Elements(BATCH));

    let mp = MpCalc::spawn(peer).expect("spawning the mp-test-calc peer");
    mp.pipelined(IN_FLIGHT as u64, IN_FLIGHT)
        .expect("first async calls");
    group.bench_function(PIPE_MP, |b| {
        b.iter(|| mp.pipelined(BATCH, IN_FLIGHT).expect("async calls"))
    });
    drop(mp);

    let raw = RawCalc::spawn(peer).expect("spawning the raw capnp-rpc peer");
    group.bench_function(PIPE_RAW, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += raw.pipelined(BATCH, IN_FLIGHT).expect("raw calls");
            }
            total
        })
    });
    group.finish();
    drop(raw);
}

/// The mapped call with a metrics recorder in both processes. Installs
/// this process's recorder, so it runs last.
fn metrics_on(c: &mut Criterion) {
    let handle = mp_bench::install_recorder().expect("the bench's only recorder");
    let mut group = c.benchmark_group(METERED_GROUP);
    let mp = MpCalc::spawn_with(Path::new(PEER), true).expect("spawning the metered peer");
    let calc = mp.calc();
    assert_eq!(calc.add(2, 3).expect("mapped call"), 5);
    let mut i = 0i64;
    group.bench_function(MAPPED_METERED, |b| {
        b.iter(|| {
            i += 1;
            black_box(calc.add(i, 1).expect("mapped call"))
        })
    });
    group.finish();
    drop(mp);
    let mut cost = c.benchmark_group(COST_GROUP);
    cost.bench_function(COST_ON, |b| b.iter(measure_both_sides));
    cost.finish();
    // The calls were recorded: this side's client series is there.
    let rendered = handle.render();
    let series = "mp_ipc_calls_total{side=\"client\",interface=\"Calculator\",method=\"add\"}";
    assert!(
        rendered.contains(series),
        "metrics were not recorded: no {series} in\n{rendered}"
    );
}

/// The targets: mapped call ≤ 1.3× the raw capnp-rpc call, a call with one
/// callback ≤ 2.5× it, and pipelined calls at least as fast as raw
/// capnp-rpc's, on every machine shape.
const MAPPED_TARGET: f64 = 1.3;
const CALLBACK_TARGET: f64 = 2.5;
const PIPELINED_TARGET: f64 = 1.0;

fn summary(since: SystemTime) {
    let Some(dir) = criterion_dir() else {
        return;
    };
    let get = |group, bench| median_ns(&dir, group, bench, since);
    let raw = get(GROUP, RAW);
    println!("\n== summary (medians; ratios to the raw capnp-rpc call) ==");
    println!("machine: {}", machine_shape());
    for (name, bench) in [
        ("socketpair ping-pong", PINGPONG),
        ("raw capnp-rpc call", RAW),
        ("mp plain call (add_on_loop)", PLAIN),
        ("mp mapped call (add)", MAPPED),
        ("mp mapped call with a timeout", MAPPED_TIMEOUT),
        ("mp call + 1 callback (countdown 0)", CALLBACK),
    ] {
        match (get(GROUP, bench), raw) {
            (Some(ns), Some(r)) => {
                println!("{name:<36} {:>9.2} µs   {:>5.2}× raw", ns / 1e3, ns / r)
            }
            (Some(ns), None) => println!("{name:<36} {:>9.2} µs", ns / 1e3),
            _ => println!("{name:<36} (not run)"),
        }
    }
    match (get(METERED_GROUP, MAPPED_METERED), get(GROUP, MAPPED)) {
        (Some(on), Some(off)) => println!(
            "{:<36} {:>9.2} µs   {:>5.3}× metrics off",
            "mp mapped call, metrics on",
            on / 1e3,
            on / off
        ),
        _ => println!("{:<36} (not run)", "mp mapped call, metrics on"),
    }
    for (name, bench) in [
        ("metrics' own cost, no recorder", COST_OFF),
        ("metrics' own cost, recorder", COST_ON),
    ] {
        match (get(COST_GROUP, bench), get(GROUP, MAPPED)) {
            (Some(ns), Some(call)) => println!(
                "{name:<36} {ns:>9.0} ns   {:>5.2}% of a mapped call",
                100.0 * ns / call
            ),
            _ => println!("{name:<36} (not run)"),
        }
    }
    let per_s = |bench| get(PIPE_GROUP, bench).map(|ns| BATCH as f64 / (ns / 1e9));
    for (name, bench) in [
        ("mp add_async, 64 in flight", PIPE_MP),
        ("raw capnp-rpc, 64 in flight", PIPE_RAW),
    ] {
        match per_s(bench) {
            Some(calls) => println!(
                "{name:<36} {calls:>9.0} calls/s ({:.2} µs/call)",
                1e6 / calls
            ),
            None => println!("{name:<36} (not run)"),
        }
    }
    let ratio = |bench, limit: f64| {
        let (ns, r) = (get(GROUP, bench)?, raw?);
        Some((ns / r, ns / r <= limit))
    };
    target(
        &format!("mapped call ≤ {MAPPED_TARGET}× raw"),
        ratio(MAPPED, MAPPED_TARGET),
        "×",
    );
    target(
        &format!("call + 1 callback ≤ {CALLBACK_TARGET}× raw"),
        ratio(CALLBACK, CALLBACK_TARGET),
        "×",
    );
    let pipelined = per_s(PIPE_MP)
        .zip(per_s(PIPE_RAW))
        .map(|(ours, theirs)| (ours / theirs, ours / theirs >= PIPELINED_TARGET));
    target(
        &format!("pipelined ≥ {PIPELINED_TARGET}× raw's calls/s"),
        pipelined,
        "×",
    );
}

fn main() {
    let started = SystemTime::now();
    // Short enough that the whole run takes a few minutes; options on the
    // command line (`--measurement-time`, `--sample-size`, a filter) win.
    let mut c = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    sequential(&mut c);
    pipelined(&mut c);
    metrics_on(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if std::env::args().any(|a| a == "--bench") {
        summary(started);
    }
}
