//! Client adapters: thread-safe handles whose methods build a request on
//! the event loop (filling the `Context` from the calling thread's mapping),
//! block until the reply, and return Rust values. Also the client side's
//! server for [`Callback`] objects it passes to the calculator.

use std::rc::Rc;
use std::sync::Arc;

use mp_ipc::codegen_support::{send_request, LoopConnection, ServerContext, WeakLoopConnection};
use mp_ipc::{CallSite, Error, Remote};

use super::service::{Callback, ThreadInfo};
use crate::calc_capnp::{calc_init, calculator, callback, counter};

/// The calculator process's bootstrap object.
#[derive(Clone, Debug)]
pub struct CalcInitClient {
    pub(crate) remote: Remote<calc_init::Client>,
}

impl CalcInitClient {
    /// Makes a calculator; the constructor runs on the caller's server thread.
    pub fn make_calculator(&self) -> Result<CalcClient, Error> {
        const SITE: CallSite = CallSite::new("CalcInit", "makeCalculator");
        self.remote.call(SITE, |cap, setup| {
            let mut req = cap.make_calculator_request();
            setup.context()?.fill(req.get().init_context());
            let conn = setup.conn().clone();
            let reply = send_request(SITE, req, |r| r.get_result());
            Ok(Box::pin(async move {
                let cap = reply.await?;
                Ok(CalcClient {
                    remote: Remote::new(&conn, cap)?,
                })
            }))
        })
    }

    /// The connection this object lives on.
    pub fn connection(&self) -> &mp_ipc::Connection {
        self.remote.connection()
    }
}

/// A calculator in the peer process. Clone it and call it from any thread.
#[derive(Clone, Debug)]
pub struct CalcClient {
    remote: Remote<calculator::Client>,
}

impl CalcClient {
    /// The connection this object lives on.
    pub fn connection(&self) -> &mp_ipc::Connection {
        self.remote.connection()
    }

    /// `a + b` on this thread's server thread.
    pub fn add(&self, a: i64, b: i64) -> Result<i64, Error> {
        const SITE: CallSite = CallSite::new("Calculator", "add");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.add_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_a(a);
            p.set_b(b);
            Ok(send_request(SITE, req, |r| Ok(r.get_result())))
        })
    }

    /// `a + b` from async code (runs on the connection's async server thread).
    pub fn add_async(
        &self,
        a: i64,
        b: i64,
    ) -> impl std::future::Future<Output = Result<i64, Error>> + Send + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "add");
        self.remote.call_async(SITE, move |cap, setup| {
            let mut req = cap.add_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_a(a);
            p.set_b(b);
            Ok(send_request(SITE, req, |r| Ok(r.get_result())))
        })
    }

    /// `a + b` on the server's event loop (no Context, no server thread).
    pub fn add_on_loop(&self, a: i64, b: i64) -> Result<i64, Error> {
        const SITE: CallSite = CallSite::new("Calculator", "addOnLoop");
        self.remote.call(SITE, move |cap, _setup| {
            let mut req = cap.add_on_loop_request();
            req.get().set_a(a);
            req.get().set_b(b);
            Ok(send_request(SITE, req, |r| Ok(r.get_result())))
        })
    }

    /// The server thread this thread's calls run on.
    pub fn where_am_i(&self) -> Result<ThreadInfo, Error> {
        const SITE: CallSite = CallSite::new("Calculator", "whereAmI");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.where_am_i_request();
            setup.context()?.fill(req.get().init_context());
            Ok(send_request(SITE, req, |r| {
                Ok(ThreadInfo {
                    name: r.get_thread_name()?.to_string()?,
                    number: r.get_thread_number(),
                })
            }))
        })
    }

    /// Asks the server to call `callback.step(n)` and returns its answer.
    /// The callback runs on this thread while it waits.
    pub fn countdown(&self, n: u32, callback: Arc<dyn Callback>) -> Result<u32, Error> {
        const SITE: CallSite = CallSite::new("Calculator", "countdown");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.countdown_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_n(n);
            p.set_callback(CallbackServer::client(setup.conn(), callback));
            Ok(send_request(SITE, req, |r| Ok(r.get_result())))
        })
    }

    /// Blocks this thread's server thread for `millis`.
    pub fn sleep(&self, millis: u32) -> Result<(), Error> {
        const SITE: CallSite = CallSite::new("Calculator", "sleep");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.sleep_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_millis(millis);
            Ok(send_request(SITE, req, |_| Ok(())))
        })
    }

    /// Blocks the connection's async server thread for `millis`, from async code.
    pub fn sleep_async(
        &self,
        millis: u32,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "sleep");
        self.remote.call_async(SITE, move |cap, setup| {
            let mut req = cap.sleep_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_millis(millis);
            Ok(send_request(SITE, req, |_| Ok(())))
        })
    }

    /// Makes the server fail with `message`.
    pub fn fail(&self, message: &str) -> Result<(), Error> {
        const SITE: CallSite = CallSite::new("Calculator", "fail");
        let message = message.to_string();
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.fail_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_message(message.as_str());
            Ok(send_request(SITE, req, |_| Ok(())))
        })
    }

    /// Makes the server method panic with `message`.
    pub fn panic(&self, message: &str) -> Result<(), Error> {
        const SITE: CallSite = CallSite::new("Calculator", "panic");
        let message = message.to_string();
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.panic_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_message(message.as_str());
            Ok(send_request(SITE, req, |_| Ok(())))
        })
    }

    /// A new counter object in the server, starting at `start`.
    pub fn make_counter(&self, start: i64) -> Result<CounterClient, Error> {
        const SITE: CallSite = CallSite::new("Calculator", "makeCounter");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.make_counter_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_start(start);
            let conn = setup.conn().clone();
            let reply = send_request(SITE, req, |r| r.get_result());
            Ok(Box::pin(async move {
                let cap = reply.await?;
                Ok(CounterClient {
                    remote: Some(Remote::new(&conn, cap)?),
                })
            }))
        })
    }
}

/// A counter object in the peer. Dropping the handle calls its `destroy`
/// method (errors are logged, never raised).
#[derive(Debug)]
pub struct CounterClient {
    remote: Option<Remote<counter::Client>>,
}

impl CounterClient {
    fn remote(&self) -> &Remote<counter::Client> {
        self.remote.as_ref().expect("present until drop")
    }

    /// Adds `delta` on this thread's server thread; returns the new value.
    pub fn add(&self, delta: i64) -> Result<i64, Error> {
        const SITE: CallSite = CallSite::new("Counter", "add");
        self.remote().call(SITE, move |cap, setup| {
            let mut req = cap.add_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_delta(delta);
            Ok(send_request(SITE, req, |r| Ok(r.get_value())))
        })
    }

    /// The current value (runs on the server's loop).
    pub fn get(&self) -> Result<i64, Error> {
        const SITE: CallSite = CallSite::new("Counter", "get");
        self.remote().call(SITE, move |cap, _setup| {
            let req = cap.get_request();
            Ok(send_request(SITE, req, |r| Ok(r.get_value())))
        })
    }

    /// Destroys the counter now and reports the outcome.
    pub fn destroy(mut self) -> Result<(), Error> {
        let remote = self.remote.take().expect("present until drop");
        destroy_counter(&remote)
    }
}

fn destroy_counter(remote: &Remote<counter::Client>) -> Result<(), Error> {
    const SITE: CallSite = CallSite::new("Counter", "destroy");
    remote.call(SITE, move |cap, setup| {
        let mut req = cap.destroy_request();
        setup.context()?.fill(req.get().init_context());
        Ok(send_request(SITE, req, |_| Ok(())))
    })
}

impl Drop for CounterClient {
    fn drop(&mut self) {
        let Some(remote) = self.remote.take() else {
            return;
        };
        if remote.connection().is_disconnected() {
            return;
        }
        if remote.connection().event_loop().is_current() {
            // Cannot block the loop: the peer frees the object when the
            // capability is released instead.
            return;
        }
        // As the generated DestroyOnDrop: an error is never raised from a Drop.
        let _ = destroy_counter(&remote);
    }
}

/// A client's callback object, as the server holds it.
#[derive(Clone, Debug)]
pub struct CallbackClient {
    remote: Remote<callback::Client>,
}

impl CallbackClient {
    /// Wraps a received callback capability.
    pub fn from_remote(remote: Remote<callback::Client>) -> Self {
        CallbackClient { remote }
    }

    /// Calls the client back; runs on the client thread waiting in the call
    /// this thread is serving.
    pub fn step(&self, n: u32) -> Result<u32, Error> {
        const SITE: CallSite = CallSite::new("Callback", "step");
        self.remote.call(SITE, move |cap, setup| {
            let mut req = cap.step_request();
            let mut p = req.get();
            setup.context()?.fill(p.reborrow().init_context());
            p.set_n(n);
            Ok(send_request(SITE, req, |r| Ok(r.get_result())))
        })
    }
}

/// Serves a user's [`Callback`] to the peer.
struct CallbackServer {
    conn: WeakLoopConnection,
    imp: Arc<dyn Callback>,
}

impl CallbackServer {
    fn client(conn: &Rc<LoopConnection>, imp: Arc<dyn Callback>) -> callback::Client {
        mp_ipc::capnp_rpc::new_client(CallbackServer {
            conn: Rc::downgrade(conn),
            imp,
        })
    }
}

impl callback::Server for CallbackServer {
    fn step(
        self: Rc<Self>,
        params: callback::StepParams,
        mut results: callback::StepResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Callback", "step");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let n = p.get_n();
            let imp = self.imp.clone();
            let value = conn
                .dispatch(SITE, ctx, move || imp.step(n))
                .await?
                .map_err(capnp::Error::failed)?;
            results.get().set_result(value);
            Ok(())
        }
    }
}
