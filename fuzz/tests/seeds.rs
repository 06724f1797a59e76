//! The harness itself: every checked-in `rpc_messages` seed decodes, runs
//! without tripping the target's checks, and the seeds that use the server
//! the normal way get real answers (so fuzzing starts deep in the server).
//!
//! `SEED_DIR=dir cargo test --release --test seeds every -- --nocapture`
//! runs (and times) a whole corpus outside libFuzzer;
//! `SEED=file cargo test --test seeds show -- --ignored --nocapture` prints
//! the script an input decodes to.

use std::path::Path;

fn seed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/rpc_messages")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_rpc_seed_runs() {
    let dir = std::env::var("SEED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/rpc_messages"));
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        let start = std::time::Instant::now();
        let summary = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&bytes));
        eprintln!("{}: {summary:?} {:?}", path.display(), start.elapsed());
    }
}

#[test]
fn normal_session_reaches_the_calculator() {
    let s = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&seed("session")));
    assert_eq!(s.results, 4, "{s:?}");
    assert!(s.imports >= 4, "{s:?}");
    let s = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&seed("add")));
    assert_eq!(s.results, 5, "{s:?}");
    let s = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&seed("counter")));
    assert!(s.results >= 8, "{s:?}");
    let s = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&seed("missing_context")));
    assert_eq!((s.results, s.exceptions), (4, 1), "{s:?}");
    let s = mp_fuzz::rpc::run(&mp_fuzz::script::decode(&seed(
        "countdown_refused_callback",
    )));
    assert!(s.server_calls >= 1, "{s:?}");
}

/// Prints the script `$SEED` decodes to.
#[test]
#[ignore]
fn show() {
    let bytes = std::fs::read(std::env::var("SEED").unwrap()).unwrap();
    for op in mp_fuzz::script::decode(&bytes) {
        eprintln!("{op:?}");
    }
}

/// Runs `$SEED_DIR` `$ROUNDS` times and prints the RSS after each pass (a
/// leak per session shows as growth; LeakSanitizer's per-input check can
/// misfire on server threads still starting or ending).
#[test]
#[ignore]
fn rss_over_passes() {
    let dir = std::env::var("SEED_DIR").expect("SEED_DIR");
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("input"))
        .collect();
    for pass in 0..rounds {
        for bytes in &inputs {
            mp_fuzz::rpc::run(&mp_fuzz::script::decode(bytes));
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap()
            .to_string();
        let threads = status
            .lines()
            .find(|l| l.starts_with("Threads"))
            .unwrap()
            .to_string();
        eprintln!("pass {pass}: {} inputs, {rss}, {threads}", inputs.len());
    }
}
