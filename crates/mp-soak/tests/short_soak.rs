//! A few seconds of soak: the tool runs, survives its own SIGKILLs and
//! connection drops, registers and deregisters agent cooperations (every
//! one it registered is deregistered), has a hostile peer attack the child
//! each round (every attack ends as it may: refused, disconnected or
//! completed), reports the clients' latency during each kind of attack
//! (the rows only: their values are figures, not checked), and reports no
//! hang, leak or unexpected error.

use std::process::Command;

/// The figures of the table row whose measure starts with `measure`,
/// split on `/`.
fn figures(stdout: &str, measure: &str) -> Vec<u64> {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(measure))
        .unwrap_or_else(|| panic!("no `{measure}` row:\n{stdout}"));
    row.rsplit('|')
        .nth(1)
        .expect("a value column")
        .split('/')
        .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{row}: {e}")))
        .collect()
}

/// The kinds named by the `| hostile: <kind> | ... |` rows.
fn kinds_labels(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("| hostile: "))
        .filter_map(|l| l.split(" | ").next())
        .collect()
}

#[test]
fn a_short_soak_reports_no_hang_and_no_leak() {
    let output = Command::new(env!("CARGO_BIN_EXE_mp-soak"))
        .args(["--minutes", "0.05", "--threads", "4", "--round-ms", "300"])
        .output()
        .expect("run mp-soak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mp-soak failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("| hangs | 0 |"), "{stdout}");
    assert!(stdout.contains("| unexpected errors | 0 |"), "{stdout}");
    let [environments, registered, deregistered, _messages] = figures(&stdout, "| agents:")[..]
    else {
        panic!("four agents figures expected:\n{stdout}");
    };
    assert!(environments >= 1, "{stdout}");
    assert!(registered > 0, "{stdout}");
    assert_eq!(registered, deregistered, "{stdout}");

    // The hostile peer ran every round, and every attack ended as it may.
    let [ran, refused, disconnected, completed, unexpected] =
        figures(&stdout, "| hostile attacks, all kinds")[..]
    else {
        panic!("five hostile figures expected:\n{stdout}");
    };
    // `| rounds (child SIGKILLed / connection closed) | R (K / C) |`
    let rounds: u64 = stdout
        .lines()
        .find(|l| l.starts_with("| rounds"))
        .and_then(|l| l.rsplit('|').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rounds figure:\n{stdout}"));
    assert!(ran >= 1, "{stdout}");
    assert_eq!(ran, rounds, "one attack per round:\n{stdout}");
    assert_eq!(ran, refused + disconnected + completed, "{stdout}");
    assert_eq!(unexpected, 0, "{stdout}");
    let kinds: Vec<Vec<u64>> = stdout
        .lines()
        .filter(|l| l.starts_with("| hostile: "))
        .map(|l| figures(l, "| hostile: "))
        .collect();
    assert_eq!(
        kinds.len(),
        8,
        "a row per kind of attack, none included:\n{stdout}"
    );
    for kind in &kinds {
        assert_eq!(kind.len(), 5, "{stdout}");
        assert_eq!(kind[0], kind[1..].iter().sum::<u64>(), "{stdout}");
        assert_eq!(kind[4], 0, "{stdout}");
        // Each kind runs once in every eight rounds.
        if ran >= 8 {
            assert!(kind[0] >= 1, "{stdout}");
        }
    }
    assert_eq!(kinds.iter().map(|k| k[0]).sum::<u64>(), ran, "{stdout}");

    // `| latency during <kind>: p50 / p99 (µs), calls | a / b, n |`, one
    // per kind, the baseline `none` first; a and b are `-` when n is 0.
    let latency: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| latency during "))
        .collect();
    assert_eq!(latency.len(), 8, "a latency row per kind:\n{stdout}");
    assert!(
        latency[0].starts_with("| latency during none: p50 / p99 (µs), calls | "),
        "the baseline first:\n{stdout}"
    );
    for row in &latency {
        assert!(row.contains(": p50 / p99 (µs), calls | "), "{row}");
        let value = row.rsplit('|').nth(1).expect("a value column").trim();
        let (percentiles, calls) = value
            .split_once(", ")
            .unwrap_or_else(|| panic!("`a / b, n` expected: {row}"));
        let calls: u64 = calls.parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        let [p50, p99] = percentiles.split(" / ").collect::<Vec<_>>()[..] else {
            panic!("`a / b` expected: {row}");
        };
        for p in [p50, p99] {
            assert!(
                (calls == 0 && p == "-") || (calls > 0 && p.parse::<u64>().is_ok()),
                "{row}"
            );
        }
    }
    for kind in kinds_labels(&stdout) {
        assert!(
            latency
                .iter()
                .any(|l| l.starts_with(&format!("| latency during {kind}: "))),
            "no latency row for `{kind}`:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("| child RSS max (MiB) | ")),
        "{stdout}"
    );
}

#[test]
fn without_the_hostile_peer_there_are_no_latency_rows() {
    let output = Command::new(env!("CARGO_BIN_EXE_mp-soak"))
        .args([
            "--minutes",
            "0.02",
            "--threads",
            "2",
            "--round-ms",
            "300",
            "--no-hostile",
        ])
        .output()
        .expect("run mp-soak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mp-soak failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("| hostile attacks | off |"), "{stdout}");
    assert!(!stdout.contains("| latency during "), "{stdout}");
}
