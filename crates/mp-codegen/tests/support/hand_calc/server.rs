//! Server adapters: capnp `Server` impls that read each request into Rust
//! values on the event loop, run the service method on the thread the
//! request's `Context` names (via [`LoopConnection::dispatch`]), and write
//! the reply back on the loop. Methods without a Context run on the loop.

use std::rc::Rc;
use std::sync::Arc;

use mp_ipc::codegen_support::{LoopConnection, ServerContext, WeakLoopConnection};
use mp_ipc::{CallSite, Remote};

use super::client::CallbackClient;
use super::service::{CalcService, CounterService, ThreadInfo};
use crate::calc_capnp::{calc_init, calculator, counter};

fn text(
    site: CallSite,
    field: &str,
    t: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<String, capnp::Error> {
    t?.to_string().map_err(|e| {
        capnp::Error::failed(format!("bad request: {site}: `{field}` is not UTF-8: {e}"))
    })
}

/// The bootstrap object a calculator process serves.
pub struct CalcInitServer {
    conn: WeakLoopConnection,
    service: Arc<CalcService>,
}

impl CalcInitServer {
    /// The bootstrap capability for `conn`.
    pub fn client(
        conn: &Rc<LoopConnection>,
        service: Arc<CalcService>,
    ) -> capnp::capability::Client {
        let init: calc_init::Client = mp_ipc::capnp_rpc::new_client(CalcInitServer {
            conn: Rc::downgrade(conn),
            service,
        });
        init.client
    }
}

impl calc_init::Server for CalcInitServer {
    fn construct(
        self: Rc<Self>,
        params: calc_init::ConstructParams,
        mut results: calc_init::ConstructResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        let result = (|| {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let theirs = params.get()?.get_thread_map()?;
            conn.set_peer_thread_map(theirs);
            results.get().set_thread_map(conn.thread_map_client());
            Ok(())
        })();
        std::future::ready(result)
    }

    fn make_calculator(
        self: Rc<Self>,
        params: calc_init::MakeCalculatorParams,
        mut results: calc_init::MakeCalculatorResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("CalcInit", "makeCalculator");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let service = self.service.clone();
            // The constructor runs on the caller's thread, as libmultiprocess does.
            let service = conn.dispatch(SITE, ctx, move || service).await?;
            let calc: calculator::Client = mp_ipc::capnp_rpc::new_client(CalculatorServer {
                conn: Rc::downgrade(&conn),
                service,
            });
            results.get().set_result(calc);
            Ok(())
        }
    }
}

/// Serves `Calculator` for one connection.
pub struct CalculatorServer {
    conn: WeakLoopConnection,
    service: Arc<CalcService>,
}

impl calculator::Server for CalculatorServer {
    fn add(
        self: Rc<Self>,
        params: calculator::AddParams,
        mut results: calculator::AddResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "add");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let (a, b) = (p.get_a(), p.get_b());
            let service = self.service.clone();
            let sum = conn
                .dispatch(SITE, ctx, move || service.add(a, b))
                .await?
                .map_err(capnp::Error::failed)?;
            results.get().set_result(sum);
            Ok(())
        }
    }

    fn add_on_loop(
        self: Rc<Self>,
        params: calculator::AddOnLoopParams,
        mut results: calculator::AddOnLoopResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "addOnLoop");
        let result = (|| {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let (a, b) = (p.get_a(), p.get_b());
            let sum = conn
                .run_on_loop(SITE, || self.service.add(a, b))?
                .map_err(capnp::Error::failed)?;
            results.get().set_result(sum);
            Ok(())
        })();
        std::future::ready(result)
    }

    fn where_am_i(
        self: Rc<Self>,
        params: calculator::WhereAmIParams,
        mut results: calculator::WhereAmIResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "whereAmI");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let here = conn.dispatch(SITE, ctx, ThreadInfo::here).await?;
            let mut r = results.get();
            r.set_thread_name(here.name.as_str());
            r.set_thread_number(here.number);
            Ok(())
        }
    }

    fn countdown(
        self: Rc<Self>,
        params: calculator::CountdownParams,
        mut results: calculator::CountdownResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "countdown");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let n = p.get_n();
            let callback = CallbackClient::from_remote(
                Remote::new(&conn, p.get_callback()?)
                    .map_err(|e| capnp::Error::failed(e.to_string()))?,
            );
            let service = self.service.clone();
            // The loop keeps a handle until the reply, so the server thread
            // does not drop the last one (which would post the drop back here).
            let _keep_home = callback.clone();
            let value = conn
                .dispatch(SITE, ctx, move || service.countdown(n, &callback))
                .await?
                .map_err(capnp::Error::failed)?;
            results.get().set_result(value);
            Ok(())
        }
    }

    fn sleep(
        self: Rc<Self>,
        params: calculator::SleepParams,
        _results: calculator::SleepResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "sleep");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let millis = p.get_millis();
            let service = self.service.clone();
            conn.dispatch(SITE, ctx, move || service.sleep(millis))
                .await
        }
    }

    fn fail(
        self: Rc<Self>,
        params: calculator::FailParams,
        _results: calculator::FailResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "fail");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let message = text(SITE, "message", p.get_message())?;
            let outcome: Result<(), String> =
                conn.dispatch(SITE, ctx, move || Err(message)).await?;
            outcome.map_err(capnp::Error::failed)
        }
    }

    fn panic(
        self: Rc<Self>,
        params: calculator::PanicParams,
        _results: calculator::PanicResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "panic");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let message = text(SITE, "message", p.get_message())?;
            conn.dispatch(SITE, ctx, move || -> () { panic!("{message}") })
                .await
        }
    }

    fn make_counter(
        self: Rc<Self>,
        params: calculator::MakeCounterParams,
        mut results: calculator::MakeCounterResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Calculator", "makeCounter");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let start = p.get_start();
            let service = conn
                .dispatch(SITE, ctx, move || CounterService::new(start))
                .await?;
            let counter: counter::Client = mp_ipc::capnp_rpc::new_client(CounterServer {
                conn: Rc::downgrade(&conn),
                service,
            });
            results.get().set_result(counter);
            Ok(())
        }
    }
}

/// Serves `Counter` objects made by `Calculator.makeCounter`.
pub struct CounterServer {
    conn: WeakLoopConnection,
    service: Arc<CounterService>,
}

impl counter::Server for CounterServer {
    fn add(
        self: Rc<Self>,
        params: counter::AddParams,
        mut results: counter::AddResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Counter", "add");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let delta = p.get_delta();
            let service = self.service.clone();
            let value = conn
                .dispatch(SITE, ctx, move || service.add(delta))
                .await?
                .map_err(capnp::Error::failed)?;
            results.get().set_value(value);
            Ok(())
        }
    }

    fn get(
        self: Rc<Self>,
        _params: counter::GetParams,
        mut results: counter::GetResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        results.get().set_value(self.service.get());
        std::future::ready(Ok(()))
    }

    fn destroy(
        self: Rc<Self>,
        params: counter::DestroyParams,
        _results: counter::DestroyResults,
    ) -> impl std::future::Future<Output = Result<(), capnp::Error>> + 'static {
        const SITE: CallSite = CallSite::new("Counter", "destroy");
        async move {
            let conn = LoopConnection::upgrade(&self.conn)?;
            let p = params.get()?;
            let ctx = ServerContext::read(SITE, p.has_context(), p.get_context())?;
            let service = self.service.clone();
            conn.dispatch(SITE, ctx, move || service.destroy()).await
        }
    }
}
