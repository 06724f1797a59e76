//! The child side of each session, as run by the `bench-peer` binary.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use mp_test_calc::calc_capnp::{calc_init, calculator};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Finds `--ipc-fd N` in `args` and takes the inherited socket.
pub fn inherited_stream(args: &[String]) -> Result<UnixStream, mp_ipc::Error> {
    mp_ipc::process::stream_from_args(args.iter().cloned())
}

/// Echoes every 8-byte message back until the parent closes the socket.
pub fn serve_echo(mut stream: UnixStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut buf = [0u8; 8];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A `CalcInit` whose `makeCalculator` ignores its Context and returns a
/// `RawCalculator`.
struct RawInit;

impl calc_init::Server for RawInit {
    fn make_calculator(
        self: Rc<Self>,
        _params: calc_init::MakeCalculatorParams,
        mut results: calc_init::MakeCalculatorResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let calc: calculator::Client = capnp_rpc::new_client(RawCalculator);
        results.get().set_result(calc);
        std::future::ready(Ok(()))
    }
}

/// A `Calculator` that implements only `addOnLoop`, right on the RPC
/// system's thread.
struct RawCalculator;

impl calculator::Server for RawCalculator {
    fn add_on_loop(
        self: Rc<Self>,
        params: calculator::AddOnLoopParams,
        mut results: calculator::AddOnLoopResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let result = (|| {
            let p = params.get()?;
            results.get().set_result(p.get_a().wrapping_add(p.get_b()));
            Ok(())
        })();
        std::future::ready(result)
    }
}

/// Serves a tiny `CalcInit` (its `makeCalculator` returns a `Calculator`
/// that implements only `addOnLoop`) with a plain `capnp_rpc::RpcSystem` on
/// a tokio current-thread runtime and `LocalSet`, until the parent
/// disconnects.
pub fn serve_raw_calc(stream: UnixStream) -> std::io::Result<()> {
    stream.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let stream = tokio::net::UnixStream::from_std(stream)?;
        let (reader, writer) = stream.into_split();
        let network = twoparty::VatNetwork::new(
            futures::io::BufReader::new(reader.compat()),
            futures::io::BufWriter::new(writer.compat_write()),
            Side::Server,
            Default::default(),
        );
        let init: calc_init::Client = capnp_rpc::new_client(RawInit);
        let rpc = RpcSystem::new(Box::new(network), Some(init.client));
        // Ends with an error when the parent goes away; that is the normal end.
        let _ = rpc.await;
        Ok(())
    })
}

/// Serves an mp-test-calc calculator (mp-ipc event loop, mapped server threads)
/// until the parent disconnects.
pub fn serve_mp_test_calc(args: Vec<String>) -> Result<(), mp_ipc::Error> {
    mp_test_calc::serve_inherited_fd(args)
}
