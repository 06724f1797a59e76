//! Serve a calculator on a filesystem path and call it from another
//! connection, as a Bitcoin Core client would connect to `-ipcbind=unix`.
//!
//! Run: `cargo run -p mp-calc --example listen_and_connect`

use std::sync::Arc;

use mp_calc::{CalcInitServer, CalcInitService};
use mp_ipc::listener::{connect_path, ListenOptions, Listener};
use mp_ipc::EventLoop;

fn main() -> Result<(), mp_ipc::Error> {
    let path = std::env::temp_dir().join(format!("mp-example-{}.sock", std::process::id()));
    let server_loop = EventLoop::new("server-loop")?;
    let service = Arc::new(CalcInitService);
    let listener = Listener::bind(&server_loop, &path, ListenOptions::default(), move |conn| {
        CalcInitServer::bootstrap(conn, service.clone())
    })?;
    println!("listening on {} (mode 0600)", listener.path().display());

    let client_loop = EventLoop::new("client-loop")?;
    let init = mp_calc::connect(&client_loop, connect_path(&path)?)?;
    let calc = init.make_calculator()?;
    println!("2 + 40 = {}", calc.add(2, 40)?);
    println!(
        "served on server thread `{}`",
        calc.where_am_i()?.thread_name
    );
    Ok(())
}
