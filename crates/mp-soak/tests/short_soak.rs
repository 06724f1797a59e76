//! A few seconds of soak: the tool runs, survives its own SIGKILLs and
//! connection drops, registers and deregisters agent cooperations (every
//! one it registered is deregistered), and reports no hang, leak or
//! unexpected error.

use std::process::Command;

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
    let agents = stdout
        .lines()
        .find(|l| l.starts_with("| agents:"))
        .unwrap_or_else(|| panic!("no agents row:\n{stdout}"));
    let figures: Vec<u64> = agents
        .rsplit('|')
        .nth(1)
        .expect("a value column")
        .split('/')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    let [environments, registered, deregistered, _messages] = figures[..] else {
        panic!("four figures expected: {agents}");
    };
    assert!(environments >= 1, "{agents}");
    assert!(registered > 0, "{agents}");
    assert_eq!(registered, deregistered, "{agents}");
}
