//! Counts, per thread of both processes, the context switches and CPU time
//! that N calls of each kind cost — which threads wake up, and how often,
//! per call. Run it built with the benchmark's profile:
//!
//! ```text
//! cargo run --release -p mp-bench --bin switches -- [N [SCENARIO...]]
//! ```
//!
//! SCENARIO is any of `pingpong raw raw-pipelined plain mapped callback
//! pipelined` (all by default), so `perf record` can look at one alone.
//!
//! Run it under `taskset -c 0` to see the same with both processes on one
//! core. It spawns `bench-peer` from its own directory.

use std::time::{Duration, Instant};

use mp_bench::mp::{noop_callback, MpCalc};
use mp_bench::pingpong::PingPong;
use mp_bench::raw::RawCalc;
use mp_bench::switches::{delta, snapshot, ticks_per_second, Snapshot};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Before {
    me: Snapshot,
    child: Snapshot,
    at: Instant,
}

fn before(child: u32) -> Result<Before, BoxError> {
    Ok(Before {
        me: snapshot(std::process::id())?,
        child: snapshot(child)?,
        at: Instant::now(),
    })
}

fn report(title: &str, n: u64, child: u32, b: Before) -> Result<(), BoxError> {
    let elapsed = b.at.elapsed();
    let me = snapshot(std::process::id())?;
    let theirs = snapshot(child)?;
    let tick_us = 1e6 / ticks_per_second() as f64;
    let per = |x: u64| x as f64 / n as f64;
    println!(
        "\n== {title}: {n} calls, {:.2} µs/call wall ==",
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "{:<8} {:<16} {:>10} {:>10} {:>12}",
        "process", "thread", "vol/call", "invol/call", "cpu µs/call"
    );
    let mut totals = (0u64, 0u64, 0u64);
    for (side, b, a) in [("client", &b.me, &me), ("server", &b.child, &theirs)] {
        for (_, d) in delta(b, a) {
            totals.0 += d.voluntary;
            totals.1 += d.involuntary;
            totals.2 += d.cpu_ticks;
            println!(
                "{:<8} {:<16} {:>10.2} {:>10.2} {:>12.2}",
                side,
                d.name,
                per(d.voluntary),
                per(d.involuntary),
                per(d.cpu_ticks) * tick_us
            );
        }
    }
    println!(
        "{:<8} {:<16} {:>10.2} {:>10.2} {:>12.2}",
        "total",
        "",
        per(totals.0),
        per(totals.1),
        per(totals.2) * tick_us
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .first()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let chosen: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let run = |name: &str| chosen.is_empty() || chosen.contains(&name);
    let peer = mp_bench::sibling_peer_program()?;
    let warm = n / 10 + 1;

    if run("pingpong") {
        pingpong(&peer, n, warm)?;
    }
    if run("raw") || run("raw-pipelined") {
        let raw = RawCalc::spawn(&peer)?;
        raw.sequential(warm)?;
        if run("raw") {
            let b = before(raw.child_pid())?;
            raw.sequential(n)?;
            report("2 raw capnp-rpc call", n, raw.child_pid(), b)?;
        }
        if run("raw-pipelined") {
            let b = before(raw.child_pid())?;
            raw.pipelined(n, 64)?;
            report("6b raw capnp-rpc, 64 in flight", n, raw.child_pid(), b)?;
        }
    }
    if ["plain", "mapped", "callback", "pipelined"]
        .iter()
        .any(|s| run(s))
    {
        mp(&peer, n, warm, &run)?;
    }
    // Let the reaper finish with the last threads before the process exits.
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

fn pingpong(peer: &std::path::Path, n: u64, warm: u64) -> Result<(), BoxError> {
    let mut pp = PingPong::spawn(peer)?;
    for _ in 0..warm {
        pp.round_trip()?;
    }
    let b = before(pp.child_pid())?;
    for _ in 0..n {
        pp.round_trip()?;
    }
    report("1 socketpair ping-pong", n, pp.child_pid(), b)
}

fn mp(
    peer: &std::path::Path,
    n: u64,
    warm: u64,
    run: &dyn Fn(&str) -> bool,
) -> Result<(), BoxError> {
    let mp = MpCalc::spawn(peer)?;
    let calc = mp.calc();
    let pid = mp.child_pid();
    for i in 0..warm as i64 {
        calc.add_on_loop(i, 1)?;
        calc.add(i, 1)?;
    }
    if run("plain") {
        let b = before(pid)?;
        for i in 0..n as i64 {
            calc.add_on_loop(i, 1)?;
        }
        report("3 mp plain call (add_on_loop)", n, pid, b)?;
    }
    if run("mapped") {
        let b = before(pid)?;
        for i in 0..n as i64 {
            calc.add(i, 1)?;
        }
        report("4 mp mapped call (add)", n, pid, b)?;
    }
    if run("callback") {
        let cb = noop_callback();
        for _ in 0..warm {
            calc.countdown(0, cb.clone())?;
        }
        let b = before(pid)?;
        for _ in 0..n {
            calc.countdown(0, cb.clone())?;
        }
        report("5 mp call + 1 callback (countdown 0)", n, pid, b)?;
    }
    if run("pipelined") {
        mp.pipelined(warm, 64)?;
        let b = before(pid)?;
        mp.pipelined(n, 64)?;
        report("6 mp add_async, 64 in flight", n, pid, b)?;
    }
    Ok(())
}
