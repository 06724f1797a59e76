//! One criterion run: ping-pong on one thread and on two, a one-way burst,
//! and (mp-agents only) cooperation register+deregister, for mp-agents and
//! its peers. Throughput is in messages (cooperations for `coops`); the
//! bodies live in the crate's modules, the fixtures are made once per
//! benchmark, outside the timed loop.

use std::time::SystemTime;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use mp_agents_bench::{
    actix_peer, agents, floor, kameo_peer, per_cpu_second, ractor_peer, Threads,
};
use mp_bench::report::{criterion_dir, machine_shape, median_ns, target};

/// Round trips per iteration (two messages each).
const ROUNDS: u64 = 50_000;
/// Messages per burst (1M, not 10M: a 10M iteration takes
/// seconds per sample and queues gigabytes in the slower peers).
const BURST: u64 = 1_000_000;
/// Cooperations (of 10 agents) per iteration.
const COOPS: u64 = 1_000;

fn bench(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut run: impl FnMut(u64) -> u64, n: u64) {
    g.bench_function(id, |b| b.iter(|| assert_eq!(run(n), n)));
}

fn ping_pong(c: &mut Criterion) {
    for (group, threads) in [
        ("ping_pong_one_thread", Threads::One),
        ("ping_pong_two_threads", Threads::Two),
    ] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10)
            .throughput(Throughput::Elements(2 * ROUNDS));
        {
            let mut f = agents::PingPong::new(threads);
            bench(&mut g, "mp_agents", |n| f.run(n), ROUNDS);
        }
        if threads == Threads::Two {
            let mut f = floor::PingPong::new();
            bench(&mut g, "crossbeam", |n| f.run(n), ROUNDS);
        }
        {
            let mut f = actix_peer::PingPong::new(threads);
            bench(&mut g, "actix", |n| f.run(n), ROUNDS);
        }
        {
            let mut f = ractor_peer::PingPong::new(threads);
            bench(&mut g, "ractor", |n| f.run(n), ROUNDS);
        }
        {
            let mut f = kameo_peer::PingPong::new(threads);
            bench(&mut g, "kameo", |n| f.run(n), ROUNDS);
        }
        g.finish();
    }
}

fn burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("burst");
    g.sample_size(10).throughput(Throughput::Elements(BURST));
    {
        let mut f = agents::Burst::new();
        bench(&mut g, "mp_agents", |n| f.run(n), BURST);
    }
    {
        let mut f = floor::Burst::new();
        bench(&mut g, "crossbeam", |n| f.run(n), BURST);
    }
    {
        let mut f = actix_peer::Burst::new();
        bench(&mut g, "actix", |n| f.run(n), BURST);
    }
    {
        let mut f = ractor_peer::Burst::new();
        bench(&mut g, "ractor", |n| f.run(n), BURST);
    }
    {
        let mut f = kameo_peer::Burst::new();
        bench(&mut g, "kameo", |n| f.run(n), BURST);
    }
    g.finish();
}

fn coops(c: &mut Criterion) {
    let mut g = c.benchmark_group("coops");
    g.sample_size(10).throughput(Throughput::Elements(COOPS));
    let mut f = agents::Coops::new();
    bench(&mut g, "mp_agents_reg_dereg_10_agents", |n| f.run(n), COOPS);
    g.finish();
}

/// After criterion: each body once more, as messages per CPU-second of
/// the whole process (a loaded machine moves wall-clock figures a lot, CPU
/// time little). Skipped with `--profile-time`, `--list`, `--test` or
/// `MP_BENCH_NO_CPU` set.
fn cpu_summary() {
    let row = |what: &str, per_cpu_s: f64| {
        println!("{what:<36} {:>8.2} M msg per CPU-s", per_cpu_s / 1e6)
    };
    println!("\nmessages per CPU-second (all threads):");
    for (name, threads) in [("one thread", Threads::One), ("two threads", Threads::Two)] {
        let mut f = agents::PingPong::new(threads);
        row(
            &format!("ping-pong {name}: mp-agents"),
            per_cpu_second(|n| f.run(n), 4 * ROUNDS, 2),
        );
        drop(f);
        if threads == Threads::Two {
            let mut f = floor::PingPong::new();
            row(
                "ping-pong two threads: crossbeam",
                per_cpu_second(|n| f.run(n), 4 * ROUNDS, 2),
            );
        }
        let mut f = actix_peer::PingPong::new(threads);
        row(
            &format!("ping-pong {name}: actix"),
            per_cpu_second(|n| f.run(n), 4 * ROUNDS, 2),
        );
        drop(f);
        let mut f = ractor_peer::PingPong::new(threads);
        row(
            &format!("ping-pong {name}: ractor"),
            per_cpu_second(|n| f.run(n), 4 * ROUNDS, 2),
        );
        drop(f);
        let mut f = kameo_peer::PingPong::new(threads);
        row(
            &format!("ping-pong {name}: kameo"),
            per_cpu_second(|n| f.run(n), 4 * ROUNDS, 2),
        );
    }
    let mut f = agents::Burst::new();
    row("burst: mp-agents", per_cpu_second(|n| f.run(n), BURST, 1));
    drop(f);
    let mut f = floor::Burst::new();
    row("burst: crossbeam", per_cpu_second(|n| f.run(n), BURST, 1));
    drop(f);
    let mut f = actix_peer::Burst::new();
    row("burst: actix", per_cpu_second(|n| f.run(n), BURST, 1));
    drop(f);
    let mut f = ractor_peer::Burst::new();
    row("burst: ractor", per_cpu_second(|n| f.run(n), BURST, 1));
    drop(f);
    let mut f = kameo_peer::Burst::new();
    row("burst: kameo", per_cpu_second(|n| f.run(n), BURST, 1));
    drop(f);
    let mut f = agents::Coops::new();
    println!(
        "{:<36} {:>8.1} k coops per CPU-s",
        "coops register+deregister: mp-agents",
        per_cpu_second(|n| f.run(n), COOPS, 1) / 1e3
    );
}

/// The targets, on every machine shape: the burst at least as fast as the
/// best of actix, ractor and kameo; two-thread ping-pong at least as fast
/// as the crossbeam floor; one-thread ping-pong at least 3× actix; at
/// least 100k cooperations (of 10 agents) registered and deregistered per
/// second.
fn targets(since: SystemTime) {
    let Some(dir) = criterion_dir() else {
        return;
    };
    // Messages (or cooperations) per second of `group/bench` in this run.
    let rate = |group: &str, bench: &str, per_iteration: u64| {
        median_ns(&dir, group, bench, since).map(|ns| per_iteration as f64 / (ns / 1e9))
    };
    println!("\n== targets (criterion medians of this run) ==");
    println!("machine: {}", machine_shape());
    let versus = |ours: Option<f64>, theirs: Option<f64>, factor: f64| {
        let (ours, theirs) = (ours?, theirs?);
        Some((ours / theirs, ours >= factor * theirs))
    };
    let burst = |peer| rate("burst", peer, BURST);
    let best_peer = ["actix", "ractor", "kameo"]
        .into_iter()
        .filter_map(burst)
        .reduce(f64::max);
    target(
        "burst ≥ 1× the best of actix, ractor, kameo",
        versus(burst("mp_agents"), best_peer, 1.0),
        "×",
    );
    let two = |peer| rate("ping_pong_two_threads", peer, 2 * ROUNDS);
    target(
        "ping-pong, two threads ≥ 1× crossbeam",
        versus(two("mp_agents"), two("crossbeam"), 1.0),
        "×",
    );
    let one = |peer| rate("ping_pong_one_thread", peer, 2 * ROUNDS);
    target(
        "ping-pong, one thread ≥ 3× actix",
        versus(one("mp_agents"), one("actix"), 3.0),
        "×",
    );
    target(
        "coops register+deregister ≥ 100 k/s",
        rate("coops", "mp_agents_reg_dereg_10_agents", COOPS)
            .map(|per_s| (per_s / 1e3, per_s >= 100e3)),
        " k/s",
    );
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    ping_pong(&mut c);
    burst(&mut c);
    coops(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if std::env::args().any(|a| a == "--bench") {
        targets(started);
    }
    let skip = ["--profile-time", "--list", "--test"];
    if std::env::var_os("MP_BENCH_NO_CPU").is_none()
        && !std::env::args().any(|a| skip.contains(&a.as_str()))
    {
        cpu_summary();
    }
}
