//! The code generated with `skip_unsupported` for
//! `tests/data/schema/unmappable.capnp` (`tests/data/unmappable_mp.rs`, kept
//! in step by the golden tests) compiles and serves: the method that maps
//! round-trips, and a peer calling a left-out method through raw capnp gets
//! capnp's "unimplemented" error naming `Interface.method` and the reason —
//! never silence or a hang.

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use mp_ipc::{capnp, CallSite, Connection, EventLoop, Side};

/// capnpc's types for `unmappable.capnp`, where the generated code expects them.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod unmappable_capnp {
    include!("data/unmappable_capnp.rs");
}

/// The generated adapters under test.
#[allow(dead_code)]
mod unmappable_mp {
    include!("data/unmappable_mp.rs");
}

use unmappable_capnp::plotter;
use unmappable_mp::{Plotter, PlotterClient, PlotterServer, Point};

/// Implements all that is left of `Plotter`: `ok`.
struct Sum;

impl Plotter for Sum {
    fn ok(&self, n: i32, at: Point) -> Result<i32, String> {
        Ok(n + at.x + at.y)
    }
}

fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("watchdog: test did not finish in 30 s"),
    }
}

/// A generated `PlotterServer` as the bootstrap of one end of a socket
/// pair, and a client of it on the other.
fn pair(server_loop: &EventLoop, client_loop: &EventLoop) -> (Connection, PlotterClient) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = Connection::builder(server_loop)
        .serve(|conn| PlotterServer::bootstrap(conn, Arc::new(Sum)))
        .open(a, Side::Server)
        .unwrap();
    let conn = Connection::builder(client_loop)
        .open(b, Side::Client)
        .unwrap();
    let remote = conn.bootstrap::<plotter::Client>().unwrap();
    (server, PlotterClient::from_remote(remote))
}

/// Sends `build`'s request raw and returns capnp's own error, if any.
fn raw_error<F, Fut, T>(
    client: &PlotterClient,
    method: &'static str,
    build: F,
) -> Option<capnp::Error>
where
    F: FnOnce(&plotter::Client) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, capnp::Error>> + 'static,
{
    client
        .remote()
        .call(CallSite::new("Plotter", method), move |cap, _setup| {
            let reply = build(cap);
            Ok(Box::pin(async move {
                // The raw outcome, not mp-ipc's classification of it.
                Ok(reply.await.err().map(|e| (e.kind, e.extra)))
            }))
        })
        .unwrap()
        .map(|(kind, extra)| capnp::Error { kind, extra })
}

#[test]
fn the_mapped_method_round_trips() {
    watchdog(|| {
        let (s, c) = (
            EventLoop::new("server-loop").unwrap(),
            EventLoop::new("client-loop").unwrap(),
        );
        let (_server, plotter) = pair(&s, &c);
        assert_eq!(plotter.ok(1, &Point { x: 20, y: 300 }).unwrap(), 321);
        assert_eq!(
            futures::executor::block_on(plotter.ok_async(-1, &Point::default())).unwrap(),
            -1
        );
    });
}

#[test]
fn a_left_out_method_is_answered_unimplemented_naming_it() {
    watchdog(|| {
        let (s, c) = (
            EventLoop::new("server-loop").unwrap(),
            EventLoop::new("client-loop").unwrap(),
        );
        let (_server, plotter) = pair(&s, &c);
        // Each left-out method, through capnp's own request (params left at
        // their defaults: the server does not read them).
        let errors = [
            (
                "plot",
                "field `where`: struct unmappable.capnp:Shape: a union beside other fields in a generic struct is not supported",
                raw_error(&plotter, "plot", |cap| cap.plot_request().send().promise),
            ),
            (
                "pick",
                "field `grids`: AnyPointer is not supported",
                raw_error(&plotter, "pick", |cap| cap.pick_request().send().promise),
            ),
            (
                "tryIt",
                "field `error`: `$Proxy.exception` is only supported on pointer types (Text, Data, lists, structs): a set pointer says the exception was thrown",
                raw_error(&plotter, "tryIt", |cap| cap.try_it_request().send().promise),
            ),
            (
                "plotAll",
                "field `sinks`: struct unmappable.capnp:Plotter.Sink is not declared at the top level of a file",
                raw_error(&plotter, "plotAll", |cap| {
                    cap.plot_all_request().send().promise
                }),
            ),
        ];
        for (method, reason, error) in errors {
            let error = error.unwrap_or_else(|| panic!("Plotter.{method} succeeded"));
            assert_eq!(error.kind, capnp::ErrorKind::Unimplemented, "{error:?}");
            assert!(
                error.extra.contains(&format!(
                    "Plotter.{method} is not generated by mp-codegen: {reason}"
                )),
                "{error:?}"
            );
        }
        // mp-ipc's own classification of that error names the call site.
        let err = plotter
            .remote()
            .call(CallSite::new("Plotter", "plot"), |cap, _setup| {
                let req = cap.plot_request();
                Ok(mp_ipc::send_request(
                    CallSite::new("Plotter", "plot"),
                    req,
                    |_| Ok(()),
                ))
            })
            .unwrap_err();
        match err {
            mp_ipc::Error::BadRequest { site, message } => {
                assert_eq!(site.to_string(), "Plotter.plot");
                assert!(
                    message.starts_with(
                        "not implemented by the peer: Plotter.plot is not generated by mp-codegen"
                    ),
                    "{message}"
                );
            }
            other => panic!("expected BadRequest, got {other:?}"),
        }
        // The connection goes on.
        assert_eq!(plotter.ok(2, &Point { x: 0, y: 0 }).unwrap(), 2);
    });
}
