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
//! Unless `--no-hostile` is given, each round also has a hostile peer (see
//! `hostile`): one more thread that connects to the same child over a Unix
//! socket the child listens on (see `child`), speaks raw capnp-rpc, runs one
//! attack picked at random, and hangs up before the round ends. Its outcome
//! is tallied per kind. Before the round's kill or close, the child must
//! still be running and no well-behaved client may have seen a disconnect:
//! the attack must not have hurt them. The child's resident memory is
//! sampled through the round and its maximum reported.
//!
//! What each attack costs the well-behaved clients is measured, as a
//! figure of the table and never an assertion (see `latency`): the
//! latency of their quick calls (see [`is_quick`]) in flight while the
//! attack runs, from the hostile thread's connect to its hang-up, is
//! counted per kind of attack. An eighth kind, `none`, scheduled like the
//! others, runs no attack: its window is a timed stretch of the same part
//! of the round, as long as the attacks' windows so far on average, and its
//! row is the baseline. With `--no-hostile` there are no windows and no
//! latency rows.
//!
//! Run: `cargo run --release -p mp-soak -- --minutes 1`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mp_ipc::process::{spawn_with_ipc_fd, ChildProcess};
use mp_ipc::{Error, EventLoop};
use mp_test_calc::{CalculatorClient, Callback};

mod agents;
mod child;
mod hostile;
mod latency;

use child::{LISTEN_FLAG, SERVE_FLAG};
use hostile::{Attack, AttackBag, Tally, Verdict};
use latency::{Histogram, Window};

/// How long the main thread waits for the hostile thread to end its attack
/// after the round's time is up, before counting a hang (the attack's own
/// bound, [`hostile::ATTACK_LIMIT`], plus a margin).
const HOSTILE_WATCHDOG: Duration = Duration::from_secs(30);
/// A child whose resident memory passes this in a round is counted (a
/// correct one stays at a few tens of MiB, whatever the hostile peer does).
const CHILD_RSS_BOUND_MIB: usize = 256;
/// How long the `none` kind's window stays open before any attack's window
/// has been measured (afterwards: the attacks' mean so far; about this in
/// a debug build, where a 1 MiB name takes ~15 ms and a never-resolved
/// Context ~250 ms).
const FIRST_BASELINE_WINDOW: Duration = Duration::from_millis(150);

/// The command line's settings.
struct Options {
    /// How long to soak.
    minutes: f64,
    /// Well-behaved client threads per round.
    threads: usize,
    /// Mean round length.
    round_ms: u64,
    /// Whether each round has a hostile peer.
    hostile: bool,
}

/// Reads [`Options`] from the command line.
fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        minutes: 1.0,
        threads: 8,
        round_ms: 1500,
        hostile: true,
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
            "--no-hostile" => options.hostile = false,
            "--help" | "-h" => {
                println!(
                    "mp-soak [--minutes N (1)] [--threads N (8)] [--round-ms N (1500)] [--no-hostile]"
                );
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
    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the well-behaved client threads saw.
#[derive(Default)]
struct Counters {
    /// Calls that completed.
    calls: AtomicU64,
    /// Calls that failed with a disconnect.
    disconnects: AtomicU64,
    /// Calls that failed otherwise, client threads that panicked, and
    /// rounds where the child died or a client saw a disconnect before the
    /// round's own kill or close.
    unexpected: AtomicU64,
}

/// Recurses back into the server `n` more times from the callback.
struct Nest(CalculatorClient);

impl Callback for Nest {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        if n == 0 {
            return Ok(0);
        }
        self.0
            .countdown(n - 1, Arc::new(Nest(self.0.clone())))
            .map(|d| d + 1)
    }
}

/// How many operations [`one_op`] picks from.
const OPS: u64 = 6;

/// Whether operation `op` of [`one_op`] is a quick one, whose latency says
/// whether the server is responsive, measured during attacks: `add` (a
/// mapped call, on the caller's server thread), `addOnLoop` (on the
/// child's event loop, which serves the hostile connection too) and
/// `whereAmI` (mapped, like `add`). Not measured: `countdown` (0 to 3
/// nested callback round trips: its latency is its depth), `makeCounter`
/// (three calls and an object's release) and `sleep` (slow on purpose).
fn is_quick(op: u64) -> bool {
    op <= 2
}

/// Operation `op` (below [`OPS`]) of a well-behaved client.
fn one_op(calc: &CalculatorClient, op: u64, rng: &mut Rng) -> Result<(), Error> {
    match op {
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

/// Counts `result`; whether the client thread goes on.
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

/// This process's thread count.
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

/// This process's open file descriptors.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// This process's resident memory in KiB.
fn rss_kib() -> usize {
    vm_rss_kib("/proc/self/status").unwrap_or(0)
}

/// The `VmRSS` of a `/proc/<pid>/status` file in KiB; `None` once the
/// process is gone (or a zombie).
fn vm_rss_kib(status: impl AsRef<Path>) -> Option<usize> {
    std::fs::read_to_string(status).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

/// The child's resident memory now, in KiB (0 once it is gone).
fn child_rss_kib(child: &ChildProcess) -> usize {
    vm_rss_kib(format!("/proc/{}/status", child.pid())).unwrap_or(0)
}

/// Sleeps until `until`, sampling the child's resident memory into `max`.
fn sample_child_until(child: &ChildProcess, until: Instant, max: &mut usize) {
    loop {
        *max = (*max).max(child_rss_kib(child));
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(25)));
    }
}

/// Waits for `thread` to finish, at most until `until`, sampling the
/// child's resident memory into `max`; whether it finished.
fn wait_finished<T>(
    thread: &JoinHandle<T>,
    child: &ChildProcess,
    until: Instant,
    max: &mut usize,
) -> bool {
    while !thread.is_finished() && Instant::now() < until {
        *max = (*max).max(child_rss_kib(child));
        std::thread::sleep(Duration::from_millis(5));
    }
    thread.is_finished()
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

/// The soak, or the calculator child when started with [`SERVE_FLAG`].
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_FLAG) {
        if let Err(e) = child::serve(args.into_iter().skip(1)) {
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

/// A round's socket path for the hostile peer (removed first if a killed
/// child left it behind).
fn socket_path(round: u64) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mp-soak-{}-{round}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Starts the round's hostile thread: `attack` against the child listening
/// on `path`, with the round's latency `window` (open for `baseline` if
/// the kind is `none`).
fn spawn_hostile(
    path: PathBuf,
    attack: Attack,
    seed: u64,
    window: Arc<Window>,
    baseline: Duration,
) -> std::io::Result<JoinHandle<Verdict>> {
    std::thread::Builder::new()
        .name("soak-hostile".into())
        .spawn(move || hostile::run(&path, attack, seed, &window, baseline))
}

/// Runs the soak; the process's exit status.
fn soak(options: &Options) -> i32 {
    let exe = std::env::current_exe().expect("own path");
    let event_loop = EventLoop::new("soak-loop").expect("event loop");
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs_f64(options.minutes * 60.0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut agents = agents::AgentsSoak::start(rng.next());
    let (mut rounds, mut kills, mut closes, mut hangs, mut leaks) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut baseline: Option<(usize, usize, usize)> = None;
    let mut attacks = AttackBag::default();
    let mut tally = Tally::default();
    // Per kind of attack, in `Attack::ALL`'s order: the latency of the
    // quick calls made while it ran.
    let mut latency = vec![Histogram::default(); Attack::ALL.len()];
    // The attacks' windows so far (`none` excluded): count, total length.
    let (mut attack_windows, mut attack_window_total) = (0u32, Duration::ZERO);
    let (mut child_rss_max_kib, mut child_rss_over) = (0usize, 0u64);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    println!(
        "mp-soak: {} min, {} client threads, rounds of ~{} ms, hostile peer {}",
        options.minutes,
        options.threads,
        options.round_ms,
        if options.hostile { "on" } else { "off" }
    );
    while Instant::now() < deadline {
        let path = options.hostile.then(|| socket_path(rounds));
        let mut command = Command::new(&exe);
        command.arg(SERVE_FLAG);
        if let Some(path) = &path {
            command.arg(LISTEN_FLAG).arg(path);
        }
        let (mut child, stream) = match spawn_with_ipc_fd(command) {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("spawn failed: {e}");
                return 1;
            }
        };
        // Once this has been answered, the child's listening path (bound
        // first) accepts connections.
        let calc = match mp_test_calc::connect_named(&event_loop, stream, "soak")
            .and_then(|init| init.make_calculator())
        {
            Ok(calc) => calc,
            Err(e) => {
                eprintln!("connect failed: {e}");
                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                drop(child);
                if let Some(path) = &path {
                    let _ = std::fs::remove_file(path);
                }
                continue;
            }
        };
        let disconnects_before = counters.disconnects.load(Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let window = Arc::new(Window::default());
        let workers: Vec<_> = (0..options.threads)
            .map(|i| {
                let calc = calc.clone();
                let stop = stop.clone();
                let counters = counters.clone();
                let window = window.clone();
                let seed = rng.next() | 1;
                std::thread::Builder::new()
                    .name(format!("soak-{i}"))
                    .spawn(move || {
                        let mut rng = Rng(seed);
                        // This thread's quick calls in flight at some
                        // moment of the attack's window, that succeeded.
                        let mut latency = Histogram::default();
                        while !stop.load(Ordering::Relaxed) {
                            let op = rng.below(OPS);
                            let timed = is_quick(op).then(|| (window.phase(), Instant::now()));
                            let result = one_op(&calc, op, &mut rng);
                            if let (Some((phase, started)), Ok(())) = (timed, &result) {
                                let took = started.elapsed();
                                if window.overlapped(phase) {
                                    latency.record(took);
                                }
                            }
                            if !classify(result, &counters) {
                                break;
                            }
                        }
                        latency
                    })
                    .expect("spawn client thread")
            })
            .collect();
        let round =
            Duration::from_millis(options.round_ms / 2 + rng.below(options.round_ms.max(1)));
        let round_end = Instant::now() + round;
        let baseline_window = attack_window_total
            .checked_div(attack_windows)
            .unwrap_or(FIRST_BASELINE_WINDOW);
        let hostile = path.as_ref().map(|path| {
            let attack = attacks.next(&mut rng);
            let seed = rng.next();
            let thread = spawn_hostile(path.clone(), attack, seed, window.clone(), baseline_window);
            (attack, thread)
        });
        let round_kind = hostile.as_ref().map(|(attack, _)| *attack);
        let mut round_rss_kib = 0;
        sample_child_until(&child, round_end, &mut round_rss_kib);
        // The attack ends before the round does: wait for it (bounded).
        let mut hostile_left = None;
        match hostile {
            None => {}
            Some((attack, Err(e))) => {
                tally.record(attack, &Err(format!("could not start: {e}")));
                eprintln!(
                    "HOSTILE {}: could not start its thread: {e}",
                    attack.label()
                );
            }
            Some((attack, Ok(thread))) => {
                let until = Instant::now() + HOSTILE_WATCHDOG;
                if wait_finished(&thread, &child, until, &mut round_rss_kib) {
                    let verdict = thread
                        .join()
                        .unwrap_or_else(|_| Err("the hostile thread panicked".into()));
                    if let Err(why) = &verdict {
                        eprintln!("HOSTILE {}: unexpected: {why}", attack.label());
                    }
                    tally.record(attack, &verdict);
                    if attack != Attack::Baseline && !window.length().is_zero() {
                        attack_windows += 1;
                        attack_window_total += window.length();
                    }
                } else {
                    let why = format!("HANG: still attacking {HOSTILE_WATCHDOG:?} after the round");
                    eprintln!("HOSTILE {}: {why}", attack.label());
                    tally.record(attack, &Err(why));
                    hostile_left = Some(thread);
                }
            }
        }
        // Calls from here on are not the attack's.
        window.shut();
        // Nothing may have hurt the well-behaved side before its own end.
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                eprintln!("UNEXPECTED: the child exited during round {rounds}: {status}");
            }
            Err(e) => {
                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                eprintln!("UNEXPECTED: could not poll the child: {e}");
            }
        }
        let early = counters.disconnects.load(Ordering::Relaxed) - disconnects_before;
        if early > 0 {
            counters.unexpected.fetch_add(early, Ordering::Relaxed);
            eprintln!(
                "UNEXPECTED: {early} client calls saw a disconnect before the end of round {rounds}"
            );
        }
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
                match worker.join() {
                    Ok(calls) => {
                        if let Some(kind) = round_kind {
                            latency[kind.index()].merge(&calls);
                        }
                    }
                    Err(_) => {
                        counters.unexpected.fetch_add(1, Ordering::Relaxed);
                        eprintln!("UNEXPECTED: a client thread panicked");
                    }
                }
            } else {
                hangs += 1;
                eprintln!("HANG: a client thread did not return within 30 s of the disconnect");
            }
        }
        drop(calc);
        let _ = child.kill();
        let _ = child.wait();
        if let Some(path) = &path {
            let _ = std::fs::remove_file(path);
        }
        // A hostile thread past its watchdog has lost its peer now; give it
        // one more bounded wait, else leave it (the thread check reports it).
        if let Some(thread) = hostile_left {
            let until = Instant::now() + HOSTILE_WATCHDOG;
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        child_rss_max_kib = child_rss_max_kib.max(round_rss_kib);
        if round_rss_kib > CHILD_RSS_BOUND_MIB << 10 {
            child_rss_over += 1;
            eprintln!(
                "CHILD RSS: {} MiB in round {rounds}, over the bound of {CHILD_RSS_BOUND_MIB} MiB",
                round_rss_kib >> 10
            );
        }
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
                "[{:>6.1}s] rounds {rounds}, calls {}, disconnects {}, coops {}, attacks {} ({} unexpected), hangs {hangs}, threads {}, fds {}, rss {} KiB, child rss max {} KiB",
                started.elapsed().as_secs_f64(),
                counters.calls.load(Ordering::Relaxed),
                counters.disconnects.load(Ordering::Relaxed),
                agents.counters().deregistered.load(Ordering::Relaxed),
                tally.ran(),
                tally.unexpected(),
                thread_count(),
                fd_count(),
                rss_kib(),
                child_rss_max_kib
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
    let unexpected = counters.unexpected.load(Ordering::Relaxed)
        + a.errors.load(Ordering::Relaxed)
        + tally.unexpected();
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
    if options.hostile {
        for row in tally.rows() {
            println!("{row}");
        }
        // The baseline (`none`) first: `Attack::ALL` starts with it.
        for kind in Attack::ALL {
            println!("{}", latency[kind.index()].row(kind.label()));
        }
    } else {
        println!("| hostile attacks | off |");
    }
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
    println!(
        "| child RSS max (MiB) | {:.1} |",
        child_rss_max_kib as f64 / 1024.0
    );
    println!("| rounds whose child RSS passed {CHILD_RSS_BOUND_MIB} MiB | {child_rss_over} |");
    if hangs > 0 || leaks > 0 || unexpected > 0 || child_rss_over > 0 {
        1
    } else {
        0
    }
}
