//! The server process: serves `HelloInit` on the socket its parent passed
//! as `--ipc-fd N`, until the parent goes away.
//!
//! It is started by `hello-client`, not by hand.

use std::sync::Arc;

use hello::{HelloInitServer, HelloService};
use mp_ipc::{Connection, Error, EventLoop, Side};

fn serve() -> Result<(), Error> {
    // The socket the parent handed over (`--ipc-fd N` on the command line).
    let stream = mp_ipc::process::stream_from_args(std::env::args())?;
    // One event loop thread does this process's Cap'n Proto I/O.
    let event_loop = EventLoop::new("hello-server")?;
    let service = Arc::new(HelloService);
    let connection = Connection::builder(&event_loop)
        .name("hello-server")
        // What the client gets when it connects: our HelloInit.
        .serve(move |conn| HelloInitServer::bootstrap(conn, service.clone()))
        .open(stream, Side::Server)?;
    // Calls run on server threads that mp-ipc makes, one per client thread;
    // this thread only waits for the client to disconnect.
    connection.wait_disconnected();
    Ok(())
}

fn main() {
    if let Err(e) = serve() {
        eprintln!("hello-server: {e}");
        std::process::exit(1);
    }
}
