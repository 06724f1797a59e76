//! The system under test: an mp-test-calc calculator in a child process, called
//! through mp-ipc (client event loop thread, per-thread server threads).

use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use mp_ipc::process::ChildProcess;
use mp_ipc::{Error, EventLoop};
use mp_test_calc::{CalcInitClient, CalculatorClient, Callback};

/// A connected mp-test-calc session with a child process.
pub struct MpCalc {
    // Field order is drop order: the handles close the connection, then the
    // child is killed and reaped, then the loop goes.
    calc: CalculatorClient,
    init: CalcInitClient,
    child: ChildProcess,
    event_loop: EventLoop,
}

impl MpCalc {
    /// Starts an event loop, spawns the `mp-test-calc` peer, connects
    /// (`CalcInit.construct`) and makes a calculator.
    pub fn spawn(program: &Path) -> Result<MpCalc, Error> {
        MpCalc::spawn_with(program, false)
    }

    /// [`spawn`](Self::spawn), with the peer recording metrics if
    /// `metered` ([`spawn_peer_with`](crate::spawn_peer_with)).
    pub fn spawn_with(program: &Path, metered: bool) -> Result<MpCalc, Error> {
        let event_loop = EventLoop::new("bench-loop")?;
        let (child, stream) = crate::spawn_peer_with(program, crate::MODE_MP, metered)?;
        let init = mp_test_calc::connect(&event_loop, stream)?;
        let calc = init.make_calculator()?;
        Ok(MpCalc {
            calc,
            init,
            child,
            event_loop,
        })
    }

    /// The calculator.
    pub fn calc(&self) -> &CalculatorClient {
        &self.calc
    }

    /// The bootstrap object.
    pub fn init(&self) -> &CalcInitClient {
        &self.init
    }

    /// The client's event loop.
    pub fn event_loop(&self) -> &EventLoop {
        &self.event_loop
    }

    /// The child's process id.
    pub fn child_pid(&self) -> u32 {
        self.child.pid()
    }

    /// `n` calls of `add_async` with up to `in_flight` outstanding, driven by
    /// `futures::executor::block_on` on the calling thread.
    pub fn pipelined(&self, n: u64, in_flight: usize) -> Result<(), Error> {
        let calc = &self.calc;
        futures::executor::block_on(
            futures::stream::iter(0..n)
                .map(|i| calc.add_async(i as i64, 1))
                .buffer_unordered(in_flight)
                .try_for_each(|_| std::future::ready(Ok(()))),
        )
    }
}

/// A callback that answers at once.
#[derive(Debug, Default)]
pub struct NoopCallback;

impl Callback for NoopCallback {
    fn step(&self, n: u32) -> Result<u32, mp_ipc::Error> {
        Ok(n + 1)
    }
}

/// A shareable [`NoopCallback`].
pub fn noop_callback() -> Arc<dyn Callback> {
    Arc::new(NoopCallback)
}
