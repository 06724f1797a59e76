//! Baseline 2: raw capnp-rpc, no mp-ipc. The client drives its own
//! `RpcSystem` on a tokio current-thread runtime and `LocalSet` in the
//! calling thread (the benchmark thread), so a sequential call costs one
//! socket round trip plus capnp-rpc's own work on each side, with no
//! thread hand-off at all on the client.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use futures::{StreamExt, TryStreamExt};
use mp_ipc::process::ChildProcess;
use mp_test_calc::calc_capnp::{calc_init, calculator};
use tokio::runtime::Runtime;
use tokio::task::LocalSet;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Any error of the raw session's set-up or calls.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A raw capnp-rpc client of the `raw-calc` peer, driven on this thread.
pub struct RawCalc {
    // Field order is drop order: the capability, then the tasks (the RPC
    // system), then the runtime they were registered with, then the child.
    calc: calculator::Client,
    local: LocalSet,
    runtime: Runtime,
    child: ChildProcess,
}

impl RawCalc {
    /// Spawns the raw calculator peer and gets its `Calculator` through
    /// `CalcInit.makeCalculator` (sent without a Context; the raw server
    /// ignores it).
    pub fn spawn(program: &Path) -> Result<RawCalc, BoxError> {
        let (child, stream) = crate::spawn_peer(program, crate::MODE_RAW)?;
        stream.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = LocalSet::new();
        let calc = local.block_on(&runtime, async move {
            let stream = tokio::net::UnixStream::from_std(stream)?;
            let (reader, writer) = stream.into_split();
            let network = twoparty::VatNetwork::new(
                futures::io::BufReader::new(reader.compat()),
                futures::io::BufWriter::new(writer.compat_write()),
                Side::Client,
                Default::default(),
            );
            let mut rpc = RpcSystem::new(Box::new(network), None);
            let init: calc_init::Client = rpc.bootstrap(Side::Server);
            tokio::task::spawn_local(async move {
                let _ = rpc.await;
            });
            let reply = init.make_calculator_request().send().promise.await?;
            let calc = reply.get()?.get_result()?;
            Ok::<_, BoxError>(calc)
        })?;
        Ok(RawCalc {
            calc,
            local,
            runtime,
            child,
        })
    }

    /// The child's process id.
    pub fn child_pid(&self) -> u32 {
        self.child.pid()
    }

    fn request(&self, a: i64, b: i64) -> impl Future<Output = Result<i64, capnp::Error>> + 'static {
        let mut req = self.calc.add_on_loop_request();
        req.get().set_a(a);
        req.get().set_b(b);
        let promise = req.send().promise;
        async move { Ok(promise.await?.get()?.get_result()) }
    }

    /// One call of `Calculator.addOnLoop(a, b)`.
    pub fn add(&self, a: i64, b: i64) -> Result<i64, capnp::Error> {
        self.local.block_on(&self.runtime, self.request(a, b))
    }

    /// `n` sequential calls (each awaited before the next is sent) inside
    /// one entry into the runtime; returns the time they took.
    pub fn sequential(&self, n: u64) -> Result<Duration, capnp::Error> {
        self.local.block_on(&self.runtime, async {
            let start = Instant::now();
            for i in 0..n {
                let sum = self.request(i as i64, 1).await?;
                debug_assert_eq!(sum, i as i64 + 1);
            }
            Ok(start.elapsed())
        })
    }

    /// `n` calls with up to `in_flight` outstanding at once; returns the
    /// time they took.
    pub fn pipelined(&self, n: u64, in_flight: usize) -> Result<Duration, capnp::Error> {
        self.local.block_on(&self.runtime, async {
            let start = Instant::now();
            futures::stream::iter(0..n)
                .map(|i| self.request(i as i64, 1))
                .buffer_unordered(in_flight)
                .try_for_each(|_| std::future::ready(Ok(())))
                .await?;
            Ok(start.elapsed())
        })
    }
}
