//! A few seconds of soak: the tool runs, survives its own SIGKILLs and
//! connection drops, registers and deregisters agent cooperations (every
//! one it registered is deregistered), has a hostile peer attack the child
//! each round (every attack ends as it may: refused, disconnected or
//! completed), and reports no hang, leak or unexpected error.

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
        figures(&stdout, "| hostile attacks, all kinds:")[..]
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
    assert_eq!(kinds.len(), 7, "a row per kind of attack:\n{stdout}");
    for kind in &kinds {
        assert_eq!(kind.len(), 5, "{stdout}");
        assert_eq!(kind[0], kind[1..].iter().sum::<u64>(), "{stdout}");
        assert_eq!(kind[4], 0, "{stdout}");
        // Each kind runs once in every seven rounds.
        if ran >= 7 {
            assert!(kind[0] >= 1, "{stdout}");
        }
    }
    assert_eq!(kinds.iter().map(|k| k[0]).sum::<u64>(), ran, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("| child RSS max (MiB) | ")),
        "{stdout}"
    );
}
