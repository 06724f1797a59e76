//! Per-thread context switches and CPU time of a process, read from
//! `/proc/PID/task/TID/{comm,status,stat}`. Snapshots before and after N
//! calls tell which threads wake up per call and how often.

use std::collections::BTreeMap;
use std::path::Path;

/// One thread's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCounters {
    /// The thread's name (`comm`, at most 15 bytes).
    pub name: String,
    /// Voluntary context switches (the thread blocked: a sleep, a wait).
    pub voluntary: u64,
    /// Involuntary context switches (it was preempted).
    pub involuntary: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// A process's threads, by thread id.
pub type Snapshot = BTreeMap<u32, ThreadCounters>;

/// Reads the counters of every thread of process `pid`. Threads that exit
/// while it reads are skipped.
pub fn snapshot(pid: u32) -> std::io::Result<Snapshot> {
    let mut out = Snapshot::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(c) = read_thread(&entry.path()) {
            out.insert(tid, c);
        }
    }
    Ok(out)
}

fn read_thread(dir: &Path) -> Option<ThreadCounters> {
    let name = std::fs::read_to_string(dir.join("comm"))
        .ok()?
        .trim()
        .to_string();
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let field = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let voluntary = field("voluntary_ctxt_switches:")?;
    let involuntary = field("nonvoluntary_ctxt_switches:")?;
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the parenthesised name; utime and stime are fields 14
    // and 15 of the whole line, so 12 and 13 after `comm` and `state`.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ThreadCounters {
        name,
        voluntary,
        involuntary,
        cpu_ticks: utime + stime,
    })
}

/// The change from `before` to `after` per thread (threads born in between
/// count from zero), leaving out threads with no switches and no CPU time.
pub fn delta(before: &Snapshot, after: &Snapshot) -> Vec<(u32, ThreadCounters)> {
    after
        .iter()
        .filter_map(|(tid, a)| {
            let zero = ThreadCounters {
                name: a.name.clone(),
                voluntary: 0,
                involuntary: 0,
                cpu_ticks: 0,
            };
            let b = before.get(tid).unwrap_or(&zero);
            let d = ThreadCounters {
                name: a.name.clone(),
                voluntary: a.voluntary.saturating_sub(b.voluntary),
                involuntary: a.involuntary.saturating_sub(b.involuntary),
                cpu_ticks: a.cpu_ticks.saturating_sub(b.cpu_ticks),
            };
            (d.voluntary + d.involuntary + d.cpu_ticks > 0).then_some((*tid, d))
        })
        .collect()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}
