//! Setting up calculator sessions: serve one on a stream, connect to one,
//! or spawn a calculator process and connect to it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mp_ipc::process::{spawn_process, ChildProcess};
use mp_ipc::{CallSite, Connection, Error, EventLoop, Side};

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
    let (child, stream) = spawn_process(Command::new(program), |fd| {
        vec!["--ipc-fd".into(), fd.to_string().into()]
    })?;
    let init = connect(event_loop, stream)?;
    Ok((child, init))
}

/// The child side: finds `--ipc-fd N` in `args`, serves a calculator on it
/// and blocks until the parent disconnects.
pub fn serve_inherited_fd(args: impl IntoIterator<Item = String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let mut fd = None;
    while let Some(arg) = args.next() {
        if arg == "--ipc-fd" {
            let value = args.next().unwrap_or_default();
            fd = Some(mp_ipc::process::parse_fd(&value)?);
        }
    }
    let fd = fd.ok_or_else(|| Error::BadRequest {
        site: CallSite::new("process", "serve"),
        message: "missing `--ipc-fd N` argument".into(),
    })?;
    let stream = mp_ipc::process::stream_from_inherited_fd(fd)?;
    let event_loop = EventLoop::new("calc-loop")?;
    let conn = serve(&event_loop, stream)?;
    conn.wait_disconnected();
    Ok(())
}
