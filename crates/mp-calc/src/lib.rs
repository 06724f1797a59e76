//! # mp-calc
//!
//! A calculator-shaped test interface for `multiprocess`, served and called
//! through the code `mp-codegen` generates from `schema/calc.capnp`
//! ([`calc_mp`]; checked in, so building needs no `capnp` binary, and
//! `tests/generated_code.rs` fails on drift). It exercises every path of the
//! mp-ipc core: calls mapped to a per-client-thread server thread, calls on
//! the server's event loop, callbacks that run on the waiting client thread
//! (nested), a returned object with its own methods and `destroy`, failures
//! and panics that come back as errors.
//!
//! ```no_run
//! use mp_ipc::EventLoop;
//! # fn main() -> Result<(), mp_ipc::Error> {
//! let event_loop = EventLoop::new("client-loop")?;
//! let (mut child, init) = mp_calc::spawn_and_connect(&event_loop, "target/debug/calc-server".as_ref())?;
//! let calc = init.make_calculator()?;
//! assert_eq!(calc.add(2, 3)?, 5);
//! drop((calc, init));
//! child.wait()?;
//! # Ok(()) }
//! ```

#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod calc_capnp;

/// mp-codegen's traits, clients and servers for `calc.capnp`.
pub mod calc_mp;
mod service;
mod setup;

pub use calc_mp::{
    CalcInit, CalcInitClient, CalcInitServer, Calculator, CalculatorClient, CalculatorServer,
    Callback, CallbackClient, CallbackServer, Counter, CounterClient, CounterServer,
};
pub use service::{
    thread_name, thread_number, CalcInitService, CalcService, CounterService, ThreadInfo,
};
pub use setup::{connect, connect_named, serve, serve_inherited_fd, spawn_and_connect};
