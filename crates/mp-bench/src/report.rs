//! What a benchmark run prints after criterion's own report: the machine
//! shape, medians read back from criterion's estimates, and each target
//! with whether this run met it. Shared by `mp-bench` and `mp-agents-bench`,
//! so every published figure can say the machine it came from.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The machine this runs on, in one line: CPUs this process may use, the
/// CPU model, and memory (from `/proc`; parts it cannot read are left out).
///
/// ```
/// let shape = mp_bench::report::machine_shape();
/// assert!(shape.contains("CPU"), "{shape}");
/// ```
pub fn machine_shape() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut shape = format!("{cpus} CPUs");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if let Some(model) = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
    {
        shape.push_str(&format!(", {}", model.1.trim()));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(kib) = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
    {
        shape.push_str(&format!(", {:.0} GiB", kib as f64 / (1 << 20) as f64));
    }
    shape
}

/// Where criterion writes its estimates (the same rules it uses, short of
/// running `cargo metadata`: a bench binary lives in `TARGET/PROFILE/deps`).
pub fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median time per iteration (ns) of `group/bench`, if it was measured
/// after `since` (this run) in criterion's directory `dir`.
pub fn median_ns(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let file = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// One target line: `what`, the figure reached, and whether it is met.
/// Returns whether it was met (`None`: not measured in this run).
pub fn target(what: &str, reached: Option<(f64, bool)>, unit: &str) -> Option<bool> {
    match reached {
        Some((value, met)) => {
            let verdict = if met { "met" } else { "NOT met" };
            println!("target {what:<44} {value:>9.2}{unit}  {verdict}");
            Some(met)
        }
        None => {
            println!("target {what:<44} (not measured in this run)");
            None
        }
    }
}
