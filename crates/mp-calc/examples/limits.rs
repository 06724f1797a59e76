//! Limits on what a peer can make this side hold or do: serve a calculator
//! with a low nesting limit, let a client nest callbacks past it, and read
//! the error and the connection's counters.
//!
//! Run: `cargo run -p mp-calc --example limits`

use std::sync::{Arc, OnceLock, Weak};

use mp_calc::{CalcInitServer, CalcInitService, CalculatorClient, Callback};
use mp_ipc::{Connection, Error, EventLoop, Limits, Side};

/// A callback that calls `countdown(n - 1)` back: each level nests one
/// more call on the server thread (and one more callback on this thread).
struct Deeper {
    calc: CalculatorClient,
    me: OnceLock<Weak<Deeper>>,
}

impl Callback for Deeper {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        if n == 0 {
            return Ok(0);
        }
        let me: Arc<dyn Callback> = self.me.get().and_then(Weak::upgrade).expect("alive");
        self.calc.countdown(n - 1, me)
    }
}

fn main() -> Result<(), Error> {
    let server_loop = EventLoop::new("server-loop")?;
    let client_loop = EventLoop::new("client-loop")?;
    let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| Error::Io {
        context: "socketpair".into(),
        source: e,
    })?;

    // The server allows 8 nested calls per thread (the default is 64).
    let limits = Limits {
        max_nesting: 8,
        ..Limits::default()
    };
    let service = Arc::new(CalcInitService);
    let server = Connection::builder(&server_loop)
        .limits(limits)
        .serve(move |conn| CalcInitServer::bootstrap(conn, service.clone()))
        .open(a, Side::Server)?;

    let init = mp_calc::connect(&client_loop, b)?;
    let calc = init.make_calculator()?;
    let deeper = Arc::new(Deeper {
        calc: calc.clone(),
        me: OnceLock::new(),
    });
    let _ = deeper.me.set(Arc::downgrade(&deeper));

    // countdown(n) nests n + 1 calls on the server thread.
    println!("8 levels: {:?}", calc.countdown(7, deeper.clone()));
    match calc.countdown(8, deeper.clone()) {
        Err(e) => println!("9 levels: {e}"),
        Ok(v) => println!("9 levels: unexpectedly served ({v})"),
    }
    // The thread goes on serving.
    println!("2 + 3 = {}", calc.add(2, 3)?);

    let stats = server.stats()?;
    println!(
        "server side: {} server thread(s), {} calls in flight, {} objects handed out, {} bytes in / {} bytes out",
        stats.server_threads,
        stats.calls_in_flight,
        stats.exported_objects,
        stats.bytes_in,
        stats.bytes_out
    );
    Ok(())
}
