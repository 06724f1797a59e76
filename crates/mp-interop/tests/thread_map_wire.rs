//! Wire compatibility: our `ThreadMap` server, driven by the
//! `bitcoin-capnp-types` crate's own generated `thread_map` client.
//!
//! That crate is built against `capnp`/`capnp-rpc` 0.25 (we use 0.27), so its
//! client runs its own 0.25 `RpcSystem` on a tokio current-thread runtime on
//! one end of a socket pair, while our `mp_ipc::Connection` serves the other
//! end. Nothing is shared between the two but the bytes on the socket.

use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use bitcoin_capnp_types::proxy_capnp::{thread, thread_map};
use capnp_rpc_025::{rpc_twoparty_capnp::Side as TheirSide, twoparty::VatNetwork, RpcSystem};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Runs `body` on its own thread; fails if it panics or takes over 60 s.
fn with_watchdog<F: FnOnce() + Send + 'static>(body: F) {
    let (done_tx, done_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("interop-body".into())
        .spawn(move || {
            body();
            let _ = done_tx.send(());
        })
        .expect("spawning the test body");
    match done_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => handle.join().expect("test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
            unreachable!("the body ended without reporting");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: test body still running after 60 s")
        }
    }
}

/// What their client saw, reported back to the test thread.
struct Observed {
    first_name: String,
    limit_error: String,
    names_ok: usize,
}

/// Their side: capnp-rpc 0.25 client over `stream`, bootstrapping our
/// `ThreadMap` as `bitcoin_capnp_types`' `thread_map::Client`.
fn run_their_client(stream: UnixStream, max_threads: usize) -> Observed {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        stream.set_nonblocking(true).expect("non-blocking socket");
        let stream = tokio::net::UnixStream::from_std(stream).expect("tokio socket");
        let (reader, writer) = stream.into_split();
        let network = VatNetwork::new(
            futures::io::BufReader::new(reader.compat()),
            futures::io::BufWriter::new(writer.compat_write()),
            TheirSide::Client,
            Default::default(),
        );
        let mut rpc_system = RpcSystem::new(Box::new(network), None);
        let thread_map: thread_map::Client = rpc_system.bootstrap(TheirSide::Server);
        let disconnector = rpc_system.get_disconnector();
        let rpc_task = tokio::task::spawn_local(rpc_system);

        // makeThread("some name"), then getName on the result.
        let mut request = thread_map.make_thread_request();
        request.get().set_name("some name");
        let response = request.send().promise.await.expect("makeThread");
        let first: thread::Client = response
            .get()
            .expect("makeThread results")
            .get_result()
            .expect("makeThread result capability");
        let first_name = get_name(&first).await;

        // Fill the per-connection limit, keeping every Thread alive (a
        // released Thread frees its slot).
        let mut held = vec![first];
        for i in 1..max_threads {
            let mut request = thread_map.make_thread_request();
            request.get().set_name(format!("interop-{i}").as_str());
            let response = request
                .send()
                .promise
                .await
                .expect("makeThread under the limit");
            held.push(response.get().unwrap().get_result().unwrap());
        }
        // Every Thread still answers with its own name.
        let mut names_ok = 0;
        for (i, thread) in held.iter().enumerate() {
            let expected = if i == 0 {
                "some name".to_string()
            } else {
                format!("interop-{i}")
            };
            assert_eq!(get_name(thread).await, expected);
            names_ok += 1;
        }

        // One more is over the limit: their client gets an error.
        let mut request = thread_map.make_thread_request();
        request.get().set_name("one too many");
        let limit_error = match request.send().promise.await {
            Ok(_) => panic!("makeThread past the limit succeeded"),
            Err(e) => e.to_string(),
        };

        // Disconnect from their side.
        drop(held);
        drop(thread_map);
        disconnector.await.expect("their disconnect");
        let _ = rpc_task.await;
        Observed {
            first_name,
            limit_error,
            names_ok,
        }
    })
}

async fn get_name(thread: &thread::Client) -> String {
    let response = thread
        .get_name_request()
        .send()
        .promise
        .await
        .expect("getName");
    response
        .get()
        .expect("getName results")
        .get_result()
        .expect("getName text")
        .to_string()
        .expect("getName UTF-8")
}

#[test]
fn bitcoin_capnp_types_thread_map_client_drives_our_server() {
    with_watchdog(|| {
        let max_threads = mp_ipc::Limits::default().max_threads;
        let event_loop = mp_ipc::EventLoop::new("interop").expect("event loop");
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let conn = mp_ipc::Connection::builder(&event_loop)
            .name("interop-server")
            .serve(|conn| conn.thread_map_client().client)
            .open(ours, mp_ipc::Side::Server)
            .expect("our server connection");

        let observed = std::thread::Builder::new()
            .name("their-client".into())
            .spawn(move || run_their_client(theirs, max_threads))
            .expect("spawning their client")
            .join()
            .expect("their client panicked");

        assert_eq!(observed.first_name, "some name");
        assert_eq!(observed.names_ok, max_threads);
        eprintln!(
            "over-limit makeThread error seen by their client: {}",
            observed.limit_error
        );
        assert!(
            observed.limit_error.contains("makeThread")
                && observed.limit_error.contains(&max_threads.to_string()),
            "unexpected over-limit error: {}",
            observed.limit_error
        );

        assert!(
            conn.wait_disconnected_timeout(Duration::from_secs(10)),
            "our server connection did not notice their client disconnecting"
        );
        assert!(conn.is_disconnected());
    });
}

#[test]
fn their_proxy_type_ids_equal_ours() {
    use capnp_025::traits::HasTypeId as TheirHasTypeId;
    use mp_ipc::capnp::traits::HasTypeId as OurHasTypeId;
    use mp_ipc::proxy_capnp as ours;

    assert_eq!(
        <thread_map::Client as TheirHasTypeId>::TYPE_ID,
        <ours::thread_map::Client as OurHasTypeId>::TYPE_ID
    );
    assert_eq!(
        <thread::Client as TheirHasTypeId>::TYPE_ID,
        <ours::thread::Client as OurHasTypeId>::TYPE_ID
    );
    assert_eq!(
        <bitcoin_capnp_types::proxy_capnp::context::Reader<'static> as TheirHasTypeId>::TYPE_ID,
        <ours::context::Reader<'static> as OurHasTypeId>::TYPE_ID
    );
}

/// A `ThreadMap` their side hands to `CalcInit.construct`; never called.
struct UnusedThreadMap;
impl thread_map::Server for UnusedThreadMap {}

/// Context-carrying calls: their client sends their generated `Context`
/// (holding a `Thread` our server made) to our `mp-test-calc` server, and the
/// call runs on that thread. mp-test-calc's methods have no types in
/// `bitcoin-capnp-types`, so their side makes untyped calls with our
/// interface ids, building params and reading results with their generated
/// structs of the same layout (`Init.construct`: one capability pointer;
/// `Init.makeEcho`: `(context) -> (result :Interface)`; `Echo.echo`'s
/// results: pointer 0 is Text, like `whereAmI`'s `threadName`).
#[test]
fn their_context_runs_our_call_on_their_named_thread() {
    with_watchdog(|| {
        use bitcoin_capnp_types::{echo_capnp::echo, init_capnp::init};
        use capnp_025::{any_pointer, capability::Client as TheirClient};
        use mp_ipc::capnp::traits::HasTypeId as OurHasTypeId;
        use mp_test_calc::calc_capnp::{calc_init, calculator};

        const CALC_INIT: u64 = <calc_init::Client as OurHasTypeId>::TYPE_ID;
        const CALCULATOR: u64 = <calculator::Client as OurHasTypeId>::TYPE_ID;
        // Method ordinals in calc.capnp.
        const CONSTRUCT: u16 = 0;
        const MAKE_CALCULATOR: u16 = 1;
        const WHERE_AM_I: u16 = 2;

        let event_loop = mp_ipc::EventLoop::new("interop-calc").expect("event loop");
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let conn = mp_test_calc::serve(&event_loop, ours).expect("our calc server");

        let where_am_i = std::thread::Builder::new()
            .name("their-client".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    theirs.set_nonblocking(true).expect("non-blocking socket");
                    let stream = tokio::net::UnixStream::from_std(theirs).expect("tokio socket");
                    let (reader, writer) = stream.into_split();
                    let network = VatNetwork::new(
                        futures::io::BufReader::new(reader.compat()),
                        futures::io::BufWriter::new(writer.compat_write()),
                        TheirSide::Client,
                        Default::default(),
                    );
                    let mut rpc_system = RpcSystem::new(Box::new(network), None);
                    let calc_init: TheirClient = rpc_system.bootstrap(TheirSide::Server);
                    let disconnector = rpc_system.get_disconnector();
                    let rpc_task = tokio::task::spawn_local(rpc_system);

                    // CalcInit.construct(threadMap) -> our ThreadMap.
                    let mut request = calc_init.new_call::<any_pointer::Owned, any_pointer::Owned>(
                        CALC_INIT, CONSTRUCT, None,
                    );
                    let their_map: thread_map::Client = capnp_rpc_025::new_client(UnusedThreadMap);
                    request
                        .get()
                        .init_as::<init::construct_params::Builder>()
                        .set_thread_map(their_map);
                    let response = request.send().promise.await.expect("construct");
                    let thread_map = response
                        .get()
                        .unwrap()
                        .get_as::<init::construct_results::Reader>()
                        .unwrap()
                        .get_thread_map()
                        .expect("our ThreadMap");

                    // makeThread("some name") with their generated client.
                    let mut request = thread_map.make_thread_request();
                    request.get().set_name("some name");
                    let response = request.send().promise.await.expect("makeThread");
                    let thread: thread::Client = response.get().unwrap().get_result().unwrap();

                    // makeCalculator(context{thread}) -> Calculator.
                    let mut request = calc_init.new_call::<any_pointer::Owned, any_pointer::Owned>(
                        CALC_INIT,
                        MAKE_CALCULATOR,
                        None,
                    );
                    request
                        .get()
                        .init_as::<init::make_echo_params::Builder>()
                        .init_context()
                        .set_thread(thread.clone());
                    let response = request.send().promise.await.expect("makeCalculator");
                    let calculator: TheirClient = response
                        .get()
                        .unwrap()
                        .get_as::<init::make_echo_results::Reader>()
                        .unwrap()
                        .get_result()
                        .expect("Calculator")
                        .client;

                    // whereAmI(context{thread}) -> (threadName, threadNumber).
                    let mut request = calculator
                        .new_call::<any_pointer::Owned, any_pointer::Owned>(
                            CALCULATOR, WHERE_AM_I, None,
                        );
                    request
                        .get()
                        .init_as::<init::make_echo_params::Builder>()
                        .init_context()
                        .set_thread(thread.clone());
                    let response = request.send().promise.await.expect("whereAmI");
                    let name = response
                        .get()
                        .unwrap()
                        .get_as::<echo::echo_results::Reader>()
                        .unwrap()
                        .get_result()
                        .expect("threadName")
                        .to_string()
                        .expect("threadName UTF-8");

                    drop((thread, thread_map, calculator, calc_init));
                    disconnector.await.expect("their disconnect");
                    let _ = rpc_task.await;
                    name
                })
            })
            .expect("spawning their client")
            .join()
            .expect("their client panicked");

        eprintln!("whereAmI with their Context ran on: {where_am_i}");
        assert_eq!(where_am_i, "some name");
        assert!(conn.wait_disconnected_timeout(Duration::from_secs(10)));
    });
}
