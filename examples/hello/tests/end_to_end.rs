//! Runs the example as a user would: `hello-client` spawns `hello-server`
//! and calls it from three threads with callbacks; the test checks what it
//! printed and that both processes exited cleanly.

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hello-client`, killing it if it has not finished within `limit`.
fn run_client(limit: Duration) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hello-client"))
        .arg("--server")
        .arg(env!("CARGO_BIN_EXE_hello-server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning hello-client");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling hello-client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: hello-client did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, out, err)
}

#[test]
fn the_client_spawns_the_server_and_calls_it_from_three_threads() {
    let (status, out, err) = run_client(Duration::from_secs(60));
    assert!(
        status.success(),
        "hello-client failed: {status}\n{out}\n{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let has = |line: &str| lines.contains(&line);

    assert!(
        has("[main] as expected: HelloInit.makeGreeter: remote failure: no greeting in language `tlh` (try \"en\" or \"fr\")"),
        "{out}"
    );
    // Two processes: the server threads are in the server's.
    let server_pid = lines
        .iter()
        .find_map(|l| l.strip_prefix("[main] client process "))
        .and_then(|rest| rest.split_once(", server process "))
        .map(|(client, server)| {
            assert_ne!(client, server, "{out}");
            server.to_string()
        })
        .unwrap_or_else(|| panic!("no process ids:\n{out}"));
    let mut server_threads = HashSet::new();
    for i in 1..=3 {
        let me = format!("caller-{i}");
        assert!(has(&format!("[{me}] Hello, world from {me}!")), "{out}");
        // Each callback ran on the client thread that made the call.
        assert!(has(&format!("[{me}] heard: Hello, Ada!")), "{out}");
        assert!(has(&format!("[{me}] heard: Hello, Grace!")), "{out}");
        assert!(!has(&format!("[{me}] heard: Hello, Linus!")), "{out}");
        assert!(has(&format!("[{me}] greeted 2 of 3")), "{out}");
        let prefix = format!("[{me}] served by server thread ");
        let served = lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no server thread for {me}:\n{out}"));
        assert!(
            served.starts_with(&format!("{me} ("))
                && served.ends_with(&format!(" of process {server_pid})")),
            "{me} served by {served}, in the server process {server_pid}"
        );
        server_threads.insert(served.to_string());
    }
    assert_eq!(
        server_threads.len(),
        3,
        "one server thread per client thread:\n{out}"
    );
    assert_eq!(
        lines.last(),
        Some(&"[main] server exited: exit status: 0"),
        "{out}"
    );
}

#[test]
fn started_by_hand_the_server_says_what_it_needs() {
    let out = Command::new(env!("CARGO_BIN_EXE_hello-server"))
        .output()
        .expect("running hello-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing `--ipc-fd N`"), "{err}");
}
