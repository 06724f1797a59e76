//! Setting up calculator sessions: serve one on a stream, connect to one,
//! or spawn a calculator process and connect to it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mp_ipc::process::{spawn_process, ChildProcess};
use mp_ipc::{send_request, CallSite, Connection, Error, EventLoop, Remote, Side};

use crate::calc_capnp::calc_init;
use crate::client::CalcInitClient;
use crate::server::CalcInitServer;
use crate::service::CalcService;

/// Serves a calculator on `stream` (the accepting or spawned side).
pub fn serve(event_loop: &EventLoop, stream: UnixStream) -> Result<Connection, Error> {
    let service = Arc::new(CalcService);
    Connection::builder(event_loop)
        .name("calc-server")
        .serve(move |conn| CalcInitServer::client(conn, service))
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
    const SITE: CallSite = CallSite::new("CalcInit", "construct");
    let connection = Connection::builder(event_loop)
        .name(name)
        .open(stream, Side::Client)?;
    let remote = connection.call(SITE, |setup| {
        let conn = setup.conn().clone();
        let init: calc_init::Client = conn.peer_bootstrap().ok_or(Error::BadRequest {
            site: SITE,
            message: "the peer offers no bootstrap object".into(),
        })?;
        let mut req = init.construct_request();
        req.get().set_thread_map(conn.thread_map_client());
        let reply = send_request(SITE, req, |r| r.get_thread_map());
        Ok(Box::pin(async move {
            let theirs = reply.await?;
            conn.set_peer_thread_map(theirs);
            Remote::new(&conn, init)
        }))
    })?;
    Ok(CalcInitClient { remote })
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
