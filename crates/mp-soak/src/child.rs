//! The calculator child: what this program does when re-executed with
//! [`SERVE_FLAG`].
//!
//! Owns the child's command line and its serving. The child serves a
//! calculator on the socket it inherited (`--ipc-fd N`, the well-behaved
//! clients' connection) and, given [`LISTEN_FLAG`] `PATH`, on a Unix socket
//! at `PATH` too, where the hostile peer connects (with
//! [`crate::hostile::listen_options`]). The path is bound before the
//! inherited socket is served, so once the parent's first call on the
//! inherited connection has been answered the path accepts connections.
//! The child exits when the inherited connection ends; dropping the
//! listener then removes the socket file and closes what it accepted.

use std::path::PathBuf;
use std::sync::Arc;

use mp_ipc::listener::Listener;
use mp_ipc::process::IPC_FD_FLAG;
use mp_ipc::EventLoop;
use mp_test_calc::{CalcInitServer, CalcInitService};

/// The first argument that makes this program the calculator child.
pub const SERVE_FLAG: &str = "--serve-calculator";
/// The child's option naming the path to listen on for the hostile peer.
pub const LISTEN_FLAG: &str = "--listen";

/// Serves as the child, given the arguments after [`SERVE_FLAG`]; returns
/// when the parent's connection ends.
pub fn serve(args: impl IntoIterator<Item = String>) -> Result<(), String> {
    let mut args = args.into_iter();
    let mut fd = None;
    let mut listen = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            IPC_FD_FLAG => {
                let value = args.next().unwrap_or_default();
                fd = Some(mp_ipc::process::parse_fd(&value).map_err(|e| e.to_string())?);
            }
            LISTEN_FLAG => {
                let value = args.next().ok_or(format!("{LISTEN_FLAG} needs a path"))?;
                listen = Some(PathBuf::from(value));
            }
            other => return Err(format!("unknown child argument `{other}`")),
        }
    }
    let fd = fd.ok_or(format!("missing `{IPC_FD_FLAG} N` argument"))?;
    let event_loop = EventLoop::new("calc-loop").map_err(|e| e.to_string())?;
    let service = Arc::new(CalcInitService);
    let _listener = match listen {
        Some(path) => Some(
            Listener::bind(
                &event_loop,
                &path,
                crate::hostile::listen_options(),
                move |conn| CalcInitServer::bootstrap(conn, service.clone()),
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let stream = mp_ipc::process::stream_from_inherited_fd(fd).map_err(|e| e.to_string())?;
    let conn = mp_test_calc::serve(&event_loop, stream).map_err(|e| e.to_string())?;
    conn.wait_disconnected();
    Ok(())
}
