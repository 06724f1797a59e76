//! `mp-soak`: runs the IPC layer hard for a while and checks that nothing
//! hangs and nothing leaks.
//!
//! Each round spawns a calculator process (this program, re-executed), has
//! several client threads call it with random operations — plain and mapped
//! calls, nested callback chains, returned objects, slow calls — and then
//! ends the round violently: SIGKILL of the child, or a close of the
//! connection from this side, at a random moment. Every client thread must
//! come back (a disconnect error is fine) within a bounded wait, or the round
//! counts a hang. Meanwhile a thread of its own registers and deregisters
//! mp-agents cooperations (see `agents`); it is parked at a quiescent
//! point for the checks. After each round the process's threads and open
//! fds are compared with the first round's, once the reapers have caught
//! up.
//!
//! Run: `cargo run --release -p mp-soak -- --minutes 1`

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mp_calc::{CalculatorClient, Callback};
use mp_ipc::process::spawn_process;
use mp_ipc::{Error, EventLoop};

mod agents;

const SERVE_FLAG: &str = "--serve-calculator";

struct Options {
    minutes: f64,
    threads: usize,
    round_ms: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        minutes: 1.0,
        threads: 8,
        round_ms: 1500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--minutes" => {
                options.minutes = value("--minutes")?
                    .parse()
                    .map_err(|e| format!("--minutes: {e}"))?
            }
            "--threads" => {
                options.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--round-ms" => {
                options.round_ms = value("--round-ms")?
                    .parse()
                    .map_err(|e| format!("--round-ms: {e}"))?
            }
            "--help" | "-h" => {
                println!("mp-soak [--minutes N (1)] [--threads N (8)] [--round-ms N (1500)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(options)
}

/// A tiny deterministic generator (xorshift), seeded per thread.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    disconnects: AtomicU64,
    unexpected: AtomicU64,
}

/// Recurses back into the server `n` more times from the callback.
struct Nest(CalculatorClient);

impl Callback for Nest {
    fn step(&self, n: u32) -> Result<u32, String> {
        if n == 0 {
            return Ok(0);
        }
        self.0
            .countdown(n - 1, Arc::new(Nest(self.0.clone())))
            .map(|d| d + 1)
            .map_err(|e| e.to_string())
    }
}

fn one_op(calc: &CalculatorClient, rng: &mut Rng) -> Result<(), Error> {
    match rng.below(6) {
        0 => calc.add(1, 2).map(drop),
        1 => calc.add_on_loop(3, 4).map(drop),
        2 => calc.where_am_i().map(drop),
        3 => {
            let depth = rng.below(4) as u32;
            calc.countdown(depth, Arc::new(Nest(calc.clone())))
                .map(drop)
        }
        4 => {
            let counter = calc.make_counter(10)?;
            counter.add(5)?;
            counter.get().map(drop)
        }
        _ => calc.sleep(rng.below(20) as u32),
    }
}

fn classify(result: Result<(), Error>, counters: &Counters) -> bool {
    match result {
        Ok(()) => {
            counters.calls.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) if e.is_disconnected() => {
            counters.disconnects.fetch_add(1, Ordering::Relaxed);
            false
        }
        // A callback whose nested call saw the disconnect reports it as its
        // failure text; that is a disconnect too.
        Err(Error::Remote { ref message, .. }) if message.contains("disconnect") => {
            counters.disconnects.fetch_add(1, Ordering::Relaxed);
            false
        }
        Err(e) => {
            counters.unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!("unexpected error: {e}");
            false
        }
    }
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (bounded) for threads and fds to come back to `(threads, fds)`.
fn settles(threads: usize, fds: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if thread_count() <= threads && fd_count() <= fds {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_FLAG) {
        if let Err(e) = mp_calc::serve_inherited_fd(args.into_iter().skip(1)) {
            eprintln!("mp-soak child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mp-soak: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(soak(&options));
}

fn soak(options: &Options) -> i32 {
    let exe = std::env::current_exe().expect("own path");
    let event_loop = EventLoop::new("soak-loop").expect("event loop");
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs_f64(options.minutes * 60.0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut agents = agents::AgentsSoak::start(rng.next());
    let (mut rounds, mut kills, mut closes, mut hangs, mut leaks) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut baseline: Option<(usize, usize, usize)> = None;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    println!(
        "mp-soak: {} min, {} client threads, rounds of ~{} ms",
        options.minutes, options.threads, options.round_ms
    );
    while Instant::now() < deadline {
        let mut command = Command::new(&exe);
        command.arg(SERVE_FLAG);
        let (mut child, stream) =
            match spawn_process(command, |fd| vec!["--ipc-fd".into(), fd.to_string().into()]) {
                Ok(pair) => pair,
                Err(e) => {
                    eprintln!("spawn failed: {e}");
                    return 1;
                }
            };
        let calc = match mp_calc::connect_named(&event_loop, stream, "soak")
            .and_then(|init| init.make_calculator())
        {
            Ok(calc) => calc,
            Err(e) => {
                eprintln!("connect failed: {e}");
                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..options.threads)
            .map(|i| {
                let calc = calc.clone();
                let stop = stop.clone();
                let counters = counters.clone();
                let seed = rng.next() | 1;
                std::thread::Builder::new()
                    .name(format!("soak-{i}"))
                    .spawn(move || {
                        let mut rng = Rng(seed);
                        while !stop.load(Ordering::Relaxed) {
                            if !classify(one_op(&calc, &mut rng), &counters) {
                                break;
                            }
                        }
                    })
                    .expect("spawn client thread")
            })
            .collect();
        let round =
            Duration::from_millis(options.round_ms / 2 + rng.below(options.round_ms.max(1)));
        std::thread::sleep(round);
        if rng.below(10) < 7 {
            let _ = child.kill();
            kills += 1;
        } else {
            calc.connection().close();
            closes += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let wait_until = Instant::now() + Duration::from_secs(30);
        for worker in workers {
            while !worker.is_finished() && Instant::now() < wait_until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if worker.is_finished() {
                let _ = worker.join();
            } else {
                hangs += 1;
                eprintln!("HANG: a client thread did not return within 30 s of the disconnect");
            }
        }
        drop(calc);
        let _ = child.kill();
        let _ = child.wait();
        rounds += 1;
        // Park the agents loop for the checks (every cooperation down, its
        // environment up).
        let agents_parked = agents.pause();
        if !agents_parked {
            hangs += 1;
            eprintln!("HANG: the agents loop did not reach a quiescent point within 30 s");
        }
        match baseline {
            None => baseline = Some((thread_count(), fd_count(), rss_kib())),
            Some((threads, fds, _)) => {
                if !settles(threads, fds) {
                    leaks += 1;
                    eprintln!(
                        "LEAK? after round {rounds}: {} threads (baseline {threads}), {} fds (baseline {fds})",
                        thread_count(),
                        fd_count()
                    );
                }
            }
        }
        agents.resume();
        if !agents_parked {
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            println!(
                "[{:>6.1}s] rounds {rounds}, calls {}, disconnects {}, coops {}, hangs {hangs}, threads {}, fds {}, rss {} KiB",
                started.elapsed().as_secs_f64(),
                counters.calls.load(Ordering::Relaxed),
                counters.disconnects.load(Ordering::Relaxed),
                agents.counters().deregistered.load(Ordering::Relaxed),
                thread_count(),
                fd_count(),
                rss_kib()
            );
        }
    }
    if !agents.stop() {
        hangs += 1;
        eprintln!("HANG: the agents environment did not stop within 30 s");
    }
    let a = agents.counters();
    let registered = a.registered.load(Ordering::Relaxed);
    let deregistered = a.deregistered.load(Ordering::Relaxed);
    hangs += a.hangs.load(Ordering::Relaxed);
    if registered != deregistered {
        hangs += 1;
        eprintln!("HANG: {registered} cooperations registered, {deregistered} deregistered");
    }
    let (threads0, fds0, rss0) = baseline.unwrap_or((0, 0, 0));
    let unexpected = counters.unexpected.load(Ordering::Relaxed) + a.errors.load(Ordering::Relaxed);
    println!("\n| measure | value |\n|---|---|");
    println!("| duration | {:.1} s |", started.elapsed().as_secs_f64());
    println!("| rounds (child SIGKILLed / connection closed) | {rounds} ({kills} / {closes}) |");
    println!(
        "| calls completed | {} |",
        counters.calls.load(Ordering::Relaxed)
    );
    println!(
        "| disconnects survived | {} |",
        counters.disconnects.load(Ordering::Relaxed)
    );
    println!(
        "| agents: environments / coops registered / coops deregistered / messages | {} / {registered} / {deregistered} / {} |",
        a.environments.load(Ordering::Relaxed),
        a.delivered.load(Ordering::Relaxed)
    );
    println!("| unexpected errors | {unexpected} |");
    println!("| hangs | {hangs} |");
    println!("| leaks (rounds whose threads/fds did not settle) | {leaks} |");
    println!(
        "| threads after round 1 / at end | {threads0} / {} |",
        thread_count()
    );
    println!("| fds after round 1 / at end | {fds0} / {} |", fd_count());
    println!(
        "| RSS after round 1 / at end | {} / {} KiB |",
        rss0,
        rss_kib()
    );
    if hangs > 0 || leaks > 0 || unexpected > 0 {
        1
    } else {
        0
    }
}
