//! The multiprocess tour: this program spawns itself as a calculator
//! process, calls it from four threads at once with nested callbacks, prints
//! where each piece ran and a latency summary, then SIGKILLs the child in the
//! middle of calls, shows every blocked caller getting a disconnect error,
//! carries on with a new child, and ends with the metrics this process
//! recorded meanwhile (through a Prometheus recorder installed first: the
//! library records through the `metrics` facade and ships no exporter).
//!
//! Run: `cargo run --release -p mp-demo`.

use std::process::Command;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use mp_test_calc::{thread_name, CalcInitClient, CalculatorClient, Callback};
use multiprocess::ipc::process::{spawn_with_ipc_fd, ChildProcess};
use multiprocess::{Error, EventLoop};

const SERVE_FLAG: &str = "--serve-calculator";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_FLAG) {
        // The child: serve until the parent goes away.
        if let Err(e) = mp_test_calc::serve_inherited_fd(args.into_iter().skip(1)) {
            eprintln!("mp-demo child: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = tour() {
        eprintln!("mp-demo: {e}");
        std::process::exit(1);
    }
}

fn spawn_child(event_loop: &EventLoop) -> Result<(ChildProcess, CalcInitClient), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Io {
        context: "finding this program's path".into(),
        source: e,
    })?;
    let mut command = Command::new(exe);
    command.arg(SERVE_FLAG);
    let (child, stream) = spawn_with_ipc_fd(command)?;
    let init = mp_test_calc::connect_named(event_loop, stream, "demo")?;
    Ok((child, init))
}

/// Records each step of a nested callback chain: depth, and the thread it ran on.
struct Trace {
    calc: CalculatorClient,
    log: Arc<Mutex<Vec<String>>>,
}

impl Callback for Trace {
    fn step(&self, n: u32) -> Result<u32, Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("callback depth {n} ran on `{}`", thread_name()));
        if n == 0 {
            return Ok(0);
        }
        let server = self.calc.where_am_i().map_err(|e| e.to_string())?;
        self.log.lock().unwrap().push(format!(
            "  nested call {n} ran on server thread `{}`",
            server.thread_name
        ));
        let next = Arc::new(Trace {
            calc: self.calc.clone(),
            log: self.log.clone(),
        });
        Ok(self
            .calc
            .countdown(n - 1, next)
            .map_err(|e| e.to_string())?
            + 1)
    }
}

struct Quick;

impl Callback for Quick {
    fn step(&self, n: u32) -> Result<u32, Error> {
        Ok(n)
    }
}

fn tour() -> Result<(), Error> {
    println!("multiprocess tour\n=================\n");
    // Installed before any connection opens: a connection registers its
    // metric handles when it opens.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Error::failed(format!("installing the metrics recorder: {e}")))?;
    let event_loop = EventLoop::new("demo-loop")?;
    let (mut child, init) = spawn_child(&event_loop)?;
    println!("spawned calculator process pid {}\n", child.pid());
    let calc = init.make_calculator()?;

    // 1. Four threads at once, each with its own server thread and a
    //    callback chain three deep that comes back to it every time.
    println!("1. four client threads, each calling with nested callbacks");
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let calc = calc.clone();
            let start = start.clone();
            std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || -> Result<Vec<String>, Error> {
                    start.wait();
                    let here = calc.where_am_i()?;
                    let log = Arc::new(Mutex::new(vec![format!(
                        "`{}` calls; its calls run on server thread `{}` (#{})",
                        thread_name(),
                        here.thread_name,
                        here.thread_number
                    )]));
                    let depth = calc.countdown(
                        3,
                        Arc::new(Trace {
                            calc: calc.clone(),
                            log: log.clone(),
                        }),
                    )?;
                    let mut lines = log.lock().unwrap().clone();
                    lines.push(format!("chain returned {depth}"));
                    Ok(lines)
                })
                .expect("spawn client thread")
        })
        .collect();
    for t in threads {
        let lines = t.join().expect("client thread")?;
        for line in lines {
            println!("   {line}");
        }
        println!();
    }

    // 2. Latency.
    println!("2. latency (this thread, {} calls each)", SAMPLES);
    let plain = measure(|| calc.add_on_loop(1, 2).map(drop))?;
    let mapped = measure(|| calc.add(1, 2).map(drop))?;
    let quick: Arc<dyn Callback> = Arc::new(Quick);
    let with_callback = measure(|| calc.countdown(1, quick.clone()).map(drop))?;
    println!("   {:<34} {:>9} {:>9}", "", "p50", "p99");
    for (name, s) in [
        ("plain call (server event loop)", &plain),
        ("mapped call (own server thread)", &mapped),
        ("call with one callback", &with_callback),
    ] {
        println!("   {name:<34} {:>7.1}µs {:>7.1}µs", s.p50, s.p99);
    }
    println!();

    // 3. SIGKILL the child while calls are blocked in it.
    println!("3. SIGKILL the child while four calls are in flight");
    let ready = Arc::new(Barrier::new(5));
    let blocked: Vec<_> = (0..4)
        .map(|i| {
            let calc = calc.clone();
            let ready = ready.clone();
            std::thread::Builder::new()
                .name(format!("blocked-{i}"))
                .spawn(move || {
                    calc.add(0, 0).map(drop)?;
                    ready.wait();
                    let started = Instant::now();
                    let result = calc.sleep(60_000);
                    Ok::<_, Error>((result, started.elapsed()))
                })
                .expect("spawn blocked caller")
        })
        .collect();
    ready.wait();
    std::thread::sleep(Duration::from_millis(100));
    println!("   kill -9 {}", child.pid());
    child.kill()?;
    for (i, t) in blocked.into_iter().enumerate() {
        let (result, waited) = t.join().expect("blocked caller")?;
        match result {
            Err(e) => println!("   blocked-{i}: returned after {waited:.2?}: {e}"),
            Ok(()) => println!("   blocked-{i}: unexpectedly completed"),
        }
    }
    child.wait()?;
    println!("   later call: {}", calc.add(1, 1).unwrap_err());
    println!();
    drop((calc, init));

    // 4. A new child.
    println!("4. a new child");
    let (child2, init2) = spawn_child(&event_loop)?;
    let calc2 = init2.make_calculator()?;
    println!(
        "   pid {}: 40 + 2 = {} on server thread `{}`",
        child2.pid(),
        calc2.add(40, 2)?,
        calc2.where_am_i()?.thread_name
    );
    drop((calc2, init2, child2));
    println!();

    // 5. What this process recorded.
    println!("5. metrics of this process (Prometheus text, a selection)");
    for line in selected(&metrics.render()) {
        println!("   {line}");
    }
    println!("\ndone.");
    Ok(())
}

/// The lines of a Prometheus rendering worth a look at the end of the tour:
/// calls and errors per method, the latency quantiles of the mapped and
/// plain calls, and each connection's traffic and server threads.
fn selected(rendered: &str) -> Vec<String> {
    let wanted = |line: &str| {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        match name {
            "mp_ipc_calls_total" | "mp_ipc_call_errors_total" => true,
            "mp_ipc_call_seconds" => {
                line.contains("side=\"client\"")
                    && (line.contains("method=\"add\"") || line.contains("method=\"addOnLoop\""))
                    && (line.contains("quantile=\"0.5\"") || line.contains("quantile=\"0.99\""))
            }
            "mp_ipc_connection_bytes_in_total"
            | "mp_ipc_connection_bytes_out_total"
            | "mp_ipc_connection_server_threads" => true,
            _ => false,
        }
    };
    let mut lines: Vec<String> = rendered
        .lines()
        .filter(|l| !l.starts_with('#') && wanted(l))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

const SAMPLES: usize = 2_000;

struct Summary {
    p50: f64,
    p99: f64,
}

fn measure(mut call: impl FnMut() -> Result<(), Error>) -> Result<Summary, Error> {
    for _ in 0..SAMPLES / 10 {
        call()?;
    }
    let mut micros = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        call()?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 - 1.0) * q).round() as usize];
    Ok(Summary {
        p50: at(0.50),
        p99: at(0.99),
    })
}
