//! A callback from the server runs on the client thread that is waiting for
//! the call — and may call the server again, nesting as deep as it likes.
//!
//! Run: `cargo run -p mp-calc --example callbacks`

use std::sync::Arc;

use mp_calc::{thread_name, CalculatorClient, Callback};
use mp_ipc::EventLoop;

struct Countdown(CalculatorClient);

impl Callback for Countdown {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        println!("  callback {n} runs on `{}`", thread_name());
        if n == 0 {
            return Ok(0);
        }
        let next = Arc::new(Countdown(self.0.clone()));
        self.0.countdown(n - 1, next)
    }
}

fn main() -> Result<(), mp_ipc::Error> {
    let (server_end, client_end) =
        std::os::unix::net::UnixStream::pair().map_err(|e| mp_ipc::Error::Io {
            context: "socketpair".into(),
            source: e,
        })?;
    let server_loop = EventLoop::new("server-loop")?;
    let _server = mp_calc::serve(&server_loop, server_end)?;
    let client_loop = EventLoop::new("client-loop")?;
    let calc = mp_calc::connect(&client_loop, client_end)?.make_calculator()?;
    std::thread::Builder::new()
        .name("caller".into())
        .spawn(move || {
            println!("`caller` calls countdown(3):");
            calc.countdown(3, Arc::new(Countdown(calc.clone())))
        })
        .expect("spawn")
        .join()
        .expect("caller thread")?;
    Ok(())
}
