//! Setting up calculator sessions: serve one on a stream, connect to one,
//! or spawn a calculator process and connect to it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mp_ipc::process::{spawn_with_ipc_fd, stream_from_args, ChildProcess};
use mp_ipc::{Connection, Error, EventLoop, Side};

use crate::calc_mp::{CalcInitClient, CalcInitServer};
use crate::service::CalcInitService;

/// Serves a calculator on `stream` (the accepting or spawned side).
pub fn serve(event_loop: &EventLoop, stream: UnixStream) -> Result<Connection, Error> {
    let service = Arc::new(CalcInitService);
    Connection::builder(event_loop)
        .name("calc-server")
        .serve(move |conn| CalcInitServer::bootstrap(conn, service.clone()))
        .open(stream, Side::Server)
}

/// Connects to a calculator served on `stream` and exchanges thread maps
/// (`CalcInit.construct`).
pub fn connect(event_loop: &EventLoop, stream: UnixStream) -> Result<CalcInitClient, Error> {
    connect_named(event_loop, stream, "calc-client")
}

/// [`connect`] with a connection name (it prefixes this side's thread names).
pub fn connect_named(
    event_loop: &EventLoop,
    stream: UnixStream,
    name: &str,
) -> Result<CalcInitClient, Error> {
    let connection = Connection::builder(event_loop)
        .name(name)
        .open(stream, Side::Client)?;
    CalcInitClient::connect(&connection)
}

/// Spawns `program` (a binary that calls [`serve_inherited_fd`]) with
/// `--ipc-fd N` and connects to it.
pub fn spawn_and_connect(
    event_loop: &EventLoop,
    program: &Path,
) -> Result<(ChildProcess, CalcInitClient), Error> {
    let (child, stream) = spawn_with_ipc_fd(Command::new(program))?;
    let init = connect(event_loop, stream)?;
    Ok((child, init))
}

/// The child side: finds `--ipc-fd N` in `args`, serves a calculator on it
/// and blocks until the parent disconnects.
pub fn serve_inherited_fd(args: impl IntoIterator<Item = String>) -> Result<(), Error> {
    let stream = stream_from_args(args)?;
    let event_loop = EventLoop::new("calc-loop")?;
    let conn = serve(&event_loop, stream)?;
    conn.wait_disconnected();
    Ok(())
}
