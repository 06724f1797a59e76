//! # mp-bench
//!
//! Criterion benchmarks of `mp-ipc` (through the `mp-test-calc` test interface)
//! against two baselines measured in the same run: a bare Unix-socketpair
//! ping-pong between two processes, and raw `capnp-rpc` calls between two
//! processes with no mp-ipc in the way. See `README.md` and `benches/ipc.rs`.
//!
//! This library holds what both the benchmark and its helper binaries need:
//! - [`peer`]: the child side (`bench-peer`): echo peer, raw capnp-rpc
//!   calculator, mp-test-calc server.
//! - [`pingpong`], [`raw`], [`mp`]: the parent side of each kind of session.
//! - [`report`]: the machine shape, criterion's medians and the targets,
//!   printed after a run (also used by `mp-agents-bench`).
//! - [`switches`]: per-thread context-switch counts read from `/proc`, for
//!   finding out which threads wake up per call.

pub mod mp;
pub mod peer;
pub mod pingpong;
pub mod raw;
pub mod report;
pub mod switches;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use mp_ipc::process::{spawn_with_ipc_fd, ChildProcess};

/// The argument that selects the echo peer.
pub const MODE_ECHO: &str = "echo";
/// The argument that selects the raw capnp-rpc calculator.
pub const MODE_RAW: &str = "raw-calc";
/// The argument that selects the mp-test-calc server.
pub const MODE_MP: &str = "mp-test-calc";

/// Spawns `program` (the `bench-peer` binary) as `program MODE --ipc-fd N`,
/// with one end of a fresh socketpair as fd `N`; returns the child (killed
/// and reaped when dropped) and this side's end.
pub fn spawn_peer(program: &Path, mode: &str) -> Result<(ChildProcess, UnixStream), mp_ipc::Error> {
    spawn_peer_with(program, mode, false)
}

/// [`spawn_peer`], with the peer recording metrics (it installs a
/// Prometheus recorder, [`install_recorder`]) when `metered` is true.
pub fn spawn_peer_with(
    program: &Path,
    mode: &str,
    metered: bool,
) -> Result<(ChildProcess, UnixStream), mp_ipc::Error> {
    let mut command = Command::new(program);
    command.arg(mode);
    if metered {
        command.env(METERED_ENV, "1");
    }
    spawn_with_ipc_fd(command)
}

/// Set (to anything) in a peer's environment: the peer records metrics.
pub const METERED_ENV: &str = "MP_BENCH_METRICS";

/// Installs a Prometheus recorder (kept in memory, rendered on demand; no
/// HTTP server) as this process's global metrics recorder, so mp-ipc's
/// metrics are recorded from now on. Returns the handle that renders them.
pub fn install_recorder() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))
}

/// Where `bench-peer` is for a binary built next to it (the `switches`
/// binary): the same directory as the running executable.
pub fn sibling_peer_program() -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "executable has no directory")
    })?;
    Ok(dir.join("bench-peer"))
}

/// An [`mp_ipc::Error::Io`] saying what was being done.
pub(crate) fn io_error(context: impl Into<String>, source: std::io::Error) -> mp_ipc::Error {
    mp_ipc::Error::Io {
        context: context.into(),
        source,
    }
}
