//! What a hostile or buggy peer sends gets a clear error — never a panic on
//! the server, never a hang — and the server keeps serving its other
//! clients.
//!
//! Servers run in this process (`mp_calc::serve` on one end of a
//! socketpair). The misbehaving peer is driven with raw capnp-rpc (a tokio
//! current-thread runtime + `LocalSet` on the test thread), building requests
//! by hand with the generated types, so it can send what the mp-ipc client
//! never would: no `Context`, a `Thread` from elsewhere, a null thread, junk
//! bytes, a `makeThread` flood. After each offence a well-behaved client
//! (`mp_calc::connect`, a separate connection to the same server loop) must
//! still get correct answers.
//!
//! Every test holds one lock (so thread counts and the panic log are not
//! disturbed by the other tests in this binary), records every panic in the
//! process while it runs and fails if there was one, and runs under the
//! watchdog. Nothing asserts timings; waits are bounded polls.

mod common;
mod hostile;

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use capnp::capability::FromClientHook;
use capnp_rpc::rpc_twoparty_capnp::Side;
use common::{eventually, thread_count};
use hostile::*;
use mp_ipc::proxy_capnp::{thread, thread_map};
use mp_ipc::{Connection, Limits};

// ---------------------------------------------------------------------------
// 1. A request without a Context where one is needed.
// ---------------------------------------------------------------------------

#[test]
fn request_without_context_is_a_bad_request() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;

            // makeCalculator itself needs a Context.
            let e = refused(
                peer.make_calculator(Ctx::Missing).await,
                "makeCalculator without Context",
            );
            assert_eq!(e.kind, capnp::ErrorKind::Failed);
            assert_bad_request(MAKE_CALC, e, "no Context");

            let calc = peer.calculator().await;
            let e = refused(
                raw_add(&calc, Ctx::Missing, 1, 2).await,
                "add without Context",
            );
            assert!(e.to_string().contains("request has no Context"), "{e}");
            assert_bad_request(ADD, e, "Calculator.add: request has no Context");
            let e = refused(
                raw_where_am_i(&calc, Ctx::Missing).await,
                "whereAmI without Context",
            );
            assert_bad_request(WHERE, e, "no Context");

            // The offending connection itself is still served...
            let thread = peer.make_thread("raw-after").await.expect("makeThread");
            assert_eq!(raw_add(&calc, Ctx::Thread(thread), 1, 2).await.unwrap(), 3);
            // ... and so is everyone else.
            well_behaved_client_works(&server_loop, &client_loop);
            assert!(!server.is_disconnected());
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// 2. A Context naming a Thread this connection did not make.
// ---------------------------------------------------------------------------

#[test]
fn thread_from_another_connection_is_an_invalid_thread_handle() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server_a, stream_a) = serve_pair(&server_loop);
        let (server_b, stream_b) = serve_pair(&server_loop);
        run_local(async {
            let a = RawPeer::connect(stream_a).await;
            let b = RawPeer::connect(stream_b).await;
            // A real server thread, made by the same server process — but for
            // connection A.
            let thread_a = a.make_thread("made-for-a").await.expect("makeThread on A");
            assert_eq!(raw_get_name(&thread_a).await.unwrap(), "made-for-a");

            let calc_b = b.calculator().await;
            let e = refused(
                raw_add(&calc_b, Ctx::Thread(thread_a.clone()), 2, 2).await,
                "add on another connection's Thread",
            );
            assert_bad_request(ADD, e, "invalid thread handle");
            let e = refused(
                b.make_calculator(Ctx::Thread(thread_a.clone())).await,
                "makeCalculator on another connection's Thread",
            );
            assert_bad_request(MAKE_CALC, e, "invalid thread handle");

            // A capability the server did make on this connection, but not a
            // Thread: its own ThreadMap, passed off as one.
            let not_a_thread: thread::Client = b.thread_map.client.clone().cast_to();
            let e = refused(
                raw_add(&calc_b, Ctx::Thread(not_a_thread), 2, 2).await,
                "add on a ThreadMap posing as a Thread",
            );
            assert_bad_request(ADD, e, "invalid thread handle");

            // Both connections still work with their own threads.
            let thread_b = b.make_thread("made-for-b").await.unwrap();
            assert_eq!(
                raw_add(&calc_b, Ctx::Thread(thread_b), 2, 2).await.unwrap(),
                4
            );
            let calc_a = a.calculator().await;
            assert_eq!(
                raw_add(&calc_a, Ctx::Thread(thread_a), 3, 3).await.unwrap(),
                6
            );
            well_behaved_client_works(&server_loop, &client_loop);
            a.hang_up().await;
            b.hang_up().await;
        });
        assert!(server_a.wait_disconnected_timeout(PATIENCE));
        assert!(server_b.wait_disconnected_timeout(PATIENCE));
    });
}

#[test]
fn thread_served_by_the_client_is_an_invalid_thread_handle() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let asked = Rc::new(std::cell::Cell::new(0));
            let forged: thread::Client = capnp_rpc::new_client(ForeignThread {
                asked: asked.clone(),
            });
            let calc = peer.calculator().await;
            let e = refused(
                raw_add(&calc, Ctx::Thread(forged.clone()), 5, 5).await,
                "add on a client-served Thread",
            );
            assert_bad_request(ADD, e, "invalid thread handle");
            let e = refused(
                raw_where_am_i(&calc, Ctx::Thread(forged.clone())).await,
                "whereAmI on a client-served Thread",
            );
            assert_bad_request(WHERE, e, "invalid thread handle");
            let e = refused(
                peer.make_calculator(Ctx::Thread(forged)).await,
                "makeCalculator on a client-served Thread",
            );
            assert_bad_request(MAKE_CALC, e, "invalid thread handle");
            // The server refused by identity; it never called the forged Thread.
            assert_eq!(asked.get(), 0);

            let thread = peer.make_thread("real").await.unwrap();
            assert_eq!(raw_add(&calc, Ctx::Thread(thread), 5, 5).await.unwrap(), 10);
            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// 3. A null thread: refused without a pool, run on the pool once there is one.
// ---------------------------------------------------------------------------

#[test]
fn null_thread_needs_a_pool() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let calc = peer.calculator().await;
            let e = refused(
                raw_add(&calc, Ctx::NullThread, 20, 22).await,
                "refused without a pool",
            );
            assert_bad_request(ADD, e, "no thread specified and no pool configured");
            let e = refused(
                peer.make_calculator(Ctx::NullThread).await,
                "refused without a pool",
            );
            assert_bad_request(MAKE_CALC, e, "no thread specified and no pool configured");

            // A pool larger than the limit is refused, naming the limit, and
            // none of it is started.
            let max_pool = Limits::default().max_pool;
            let e = refused(peer.make_pool(max_pool + 1).await, "over the pool limit");
            assert_limit_reached(MAKE_POOL, e, &format!("the limit is {max_pool}"));
            let e = refused(
                raw_add(&calc, Ctx::NullThread, 20, 22).await,
                "still no pool",
            );
            assert_bad_request(ADD, e, "no pool configured");

            peer.make_pool(2).await.expect("makePool(2)");
            assert_eq!(raw_add(&calc, Ctx::NullThread, 20, 22).await.unwrap(), 42);
            let (name, _) = raw_where_am_i(&calc, Ctx::NullThread).await.unwrap();
            assert!(
                name.starts_with("calc-server-pool-"),
                "ran on `{name}`, not a pool thread"
            );
            // A calculator can be made on the pool too.
            let pooled = peer
                .make_calculator(Ctx::NullThread)
                .await
                .expect("makeCalculator on the pool");
            assert_eq!(raw_add(&pooled, Ctx::NullThread, -1, 1).await.unwrap(), 0);

            // The pool belongs to this connection: another one still has none.
            let (other_server, other_stream) = serve_pair(&server_loop);
            let other = RawPeer::connect(other_stream).await;
            let other_calc = other.calculator().await;
            let e = refused(
                raw_add(&other_calc, Ctx::NullThread, 1, 1).await,
                "no pool there",
            );
            assert_bad_request(ADD, e, "no thread specified and no pool configured");
            other.hang_up().await;
            assert!(other_server.wait_disconnected_timeout(PATIENCE));

            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// 4. Garbage bytes on the socket.
// ---------------------------------------------------------------------------

/// Writes `prefix` then `garbage` to a fresh served connection, keeps the
/// socket open, and checks that the server tells the peer why in an RPC
/// `Abort` message (its reason containing `reason`), drops the connection
/// and closes its end, while another client keeps working.
fn server_drops_garbage(prefix: &[u8], garbage: &[u8], reason: &str) {
    let (server_loop, client_loop) = loops();
    let (server, mut peer) = serve_pair(&server_loop);
    // A normal client already connected before the garbage arrives.
    let (bystander_server, bystander_stream) = serve_pair(&server_loop);
    let bystander = mp_calc::connect(&client_loop, bystander_stream).expect("bystander connects");
    let bystander_calc = bystander.make_calculator().unwrap();
    assert_eq!(bystander_calc.add(1, 1).unwrap(), 2);

    for chunk in [prefix, garbage] {
        match peer.write_all(chunk) {
            Ok(()) => {}
            // The server may hang up on the first bad bytes before the rest
            // is written.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                break
            }
            Err(e) => panic!("writing to the server: {e}"),
        }
    }
    // The socket stays open: the server must hang up because of what it
    // read, not because the peer went away.
    assert!(
        server.wait_disconnected_timeout(PATIENCE),
        "the server did not drop a connection that sent garbage"
    );
    // The server closed its end: reading reaches end of file (or a reset,
    // when our junk was left unread), after its last words.
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sink = Vec::new();
    match peer.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server's end of a garbage connection stayed open: {e}"),
    }
    let why = abort_reason(&sink).expect("the server sent an Abort message before hanging up");
    assert!(
        why.contains(reason),
        "Abort reason `{why}` lacks `{reason}`"
    );

    // The existing client and a new one keep working.
    assert_eq!(bystander_calc.add(2, 3).unwrap(), 5);
    assert_eq!(bystander_calc.add_on_loop(4, 5).unwrap(), 9);
    assert!(!bystander_server.is_disconnected());
    well_behaved_client_works(&server_loop, &client_loop);
    drop((bystander_calc, bystander));
    assert!(bystander_server.wait_disconnected_timeout(PATIENCE));
}

/// The reason of the first RPC `Abort` message in `bytes` (a stream of
/// capnp messages as the server wrote them).
fn abort_reason(mut bytes: &[u8]) -> Option<String> {
    use capnp_rpc::rpc_capnp::message;
    while !bytes.is_empty() {
        let msg = capnp::serialize::read_message(&mut bytes, capnp::message::ReaderOptions::new())
            .ok()?;
        let root = msg.get_root::<message::Reader>().ok()?;
        if let Ok(message::Abort(Ok(exception))) = root.which() {
            return exception.get_reason().ok()?.to_string().ok();
        }
    }
    None
}

/// Deterministic junk (xorshift).
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn garbage_huge_segment_count() {
    guarded(|| {
        // Segment count - 1 = 0xFFFF_FFFE: four billion segments announced.
        let mut header = 0xFFFF_FFFEu32.to_le_bytes().to_vec();
        header.extend_from_slice(&8u32.to_le_bytes());
        server_drops_garbage(&header, &junk(4096, 1), "at most 511 are allowed");
    });
}

#[test]
fn garbage_huge_segment_size() {
    guarded(|| {
        // One segment of 0x7FFF_FFFF words (16 GiB): over the traversal
        // limit, so it must be refused before anything is allocated.
        let mut header = 0u32.to_le_bytes().to_vec();
        header.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        server_drops_garbage(
            &header,
            &junk(4096, 2),
            "exceeds the limit of 67108864 bytes",
        );
    });
}

#[test]
fn garbage_in_a_well_framed_message() {
    guarded(|| {
        // A correct frame (one segment of 64 words) whose content is junk:
        // the root pointer is a far pointer into a segment that does not
        // exist.
        let mut frame = 0u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&64u32.to_le_bytes());
        let far_to_nowhere: u64 = 2 | (8 << 3) | (77u64 << 32);
        frame.extend_from_slice(&far_to_nowhere.to_le_bytes());
        frame.extend_from_slice(&junk(63 * 8, 3));
        server_drops_garbage(&frame, &junk(1024, 4), "Invalid segment id 77");
    });
}

#[test]
fn garbage_after_a_valid_bootstrap() {
    guarded(|| {
        // A well-formed Bootstrap message first (the session is live and the
        // server has exported its bootstrap object), then junk.
        let mut message = capnp::message::Builder::new_default();
        {
            let root = message.init_root::<capnp_rpc::rpc_capnp::message::Builder>();
            root.init_bootstrap().set_question_id(0);
        }
        let mut bytes = Vec::new();
        capnp::serialize::write_message(&mut bytes, &message).unwrap();
        let mut garbage = 0x0000_0003u32.to_le_bytes().to_vec(); // four segments
        garbage.extend_from_slice(&junk(4096, 5));
        server_drops_garbage(&bytes, &garbage, "exceeds the limit of 67108864 bytes");
    });
}

// ---------------------------------------------------------------------------
// 5. A makeThread flood.
// ---------------------------------------------------------------------------

#[test]
fn make_thread_flood_is_capped_and_released() {
    guarded(|| {
        let max = Limits::default().max_threads;
        assert_eq!(max, 64);
        let extra = 100;
        // Slack for threads the test harness itself may start meanwhile.
        let slack = 16;
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        let start = thread_count();
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let before = thread_count();
            // All at once, pipelined: the server sees them back to back.
            let names: Vec<String> = (0..max + extra).map(|i| format!("flood-{i}")).collect();
            let results =
                futures::future::join_all(names.iter().map(|n| peer.make_thread(n))).await;
            let mut made = Vec::new();
            let mut refused = 0;
            for (i, result) in results.into_iter().enumerate() {
                match result {
                    Ok(thread) => made.push((i, thread)),
                    Err(e) => {
                        refused += 1;
                        assert_limit_reached(
                            MAKE_THREAD,
                            e,
                            &format!("already has {max} server threads (Limits::max_threads)"),
                        );
                    }
                }
            }
            assert_eq!(made.len(), max, "exactly the cap is granted");
            assert_eq!(refused, extra);
            assert!(
                made.iter().enumerate().all(|(k, (i, _))| k == *i),
                "the first {max} are granted"
            );
            let during = thread_count();
            assert!(
                during <= before + max + slack,
                "threads went from {before} to {during}: more than the cap of {max} were started"
            );
            assert!(
                during + slack >= before + max,
                "the {max} granted threads exist ({before} -> {during})"
            );

            // The granted threads work.
            let (_, first) = &made[0];
            assert_eq!(raw_get_name(first).await.unwrap(), "flood-0");
            let calc = peer
                .make_calculator(Ctx::Thread(first.clone()))
                .await
                .expect("makeCalculator");
            let (_, last) = &made[max - 1];
            assert_eq!(
                raw_add(&calc, Ctx::Thread(last.clone()), 6, 7)
                    .await
                    .unwrap(),
                13
            );
            // Other connections have their own cap and are unaffected.
            well_behaved_client_works(&server_loop, &client_loop);

            // The cap counts live threads: release some, and makeThread
            // works again (the release travels to the server, so poll).
            made.truncate(max - 4);
            let mut again = None;
            for _ in 0..1000 {
                match peer.make_thread("after-release").await {
                    Ok(t) => {
                        again = Some(t);
                        break;
                    }
                    Err(e) => {
                        assert_limit_reached(MAKE_THREAD, e, "(Limits::max_threads)");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            let again = again.expect("makeThread works again once threads are released");
            assert_eq!(raw_get_name(&again).await.unwrap(), "after-release");

            drop((made, again, calc));
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
        // The reaper joins the workers asynchronously.
        let mut now = thread_count();
        assert!(
            eventually(PATIENCE, || {
                now = thread_count();
                now <= start + 2
            }),
            "threads did not return near {start} after the flooding connection closed (now {now})"
        );
        well_behaved_client_works(&server_loop, &client_loop);
    });
}

// ---------------------------------------------------------------------------
// 6. Thread.getName on a Thread the client made.
// ---------------------------------------------------------------------------

#[test]
fn get_name_returns_the_name_given_to_make_thread() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let short = peer.make_thread("worker-one").await.unwrap();
            assert_eq!(raw_get_name(&short).await.unwrap(), "worker-one");
            // Longer than the 15 bytes Linux keeps for an OS thread name, and
            // not ASCII: the full name is kept.
            let long_name = "a-rather-long-server-thread-name-für-tests";
            let long = peer.make_thread(long_name).await.unwrap();
            assert_eq!(raw_get_name(&long).await.unwrap(), long_name);
            assert_eq!(raw_get_name(&short).await.unwrap(), "worker-one");

            // Calls naming the thread run on it.
            let calc = peer
                .make_calculator(Ctx::Thread(short.clone()))
                .await
                .unwrap();
            let (name1, number1) = raw_where_am_i(&calc, Ctx::Thread(short.clone()))
                .await
                .unwrap();
            let (name2, number2) = raw_where_am_i(&calc, Ctx::Thread(short.clone()))
                .await
                .unwrap();
            assert_eq!(name1, "worker-one");
            assert_eq!((name2, number2), (name1, number1));
            let (name3, number3) = raw_where_am_i(&calc, Ctx::Thread(long)).await.unwrap();
            assert_eq!(name3, long_name);
            assert_ne!(number3, number1);

            // An empty name is a name too.
            let unnamed = peer.make_thread("").await.unwrap();
            assert_eq!(raw_get_name(&unnamed).await.unwrap(), "");

            // A name that is not UTF-8 is a bad request.
            let e = refused(
                peer.make_thread_raw_name(b"bad-\xff-name").await,
                "makeThread with a non-UTF-8 name",
            );
            assert_bad_request(MAKE_THREAD, e, "not UTF-8");

            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

#[test]
fn thread_name_with_a_nul_byte_is_a_bad_request() {
    guarded(|| {
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            // Valid UTF-8, but no OS thread can be called this.
            let e = refused(
                peer.make_thread("nul\0inside").await,
                "makeThread with a NUL in the name",
            );
            assert_bad_request(MAKE_THREAD, e, "NUL");
            // The connection is still served.
            let t = peer
                .make_thread("fine")
                .await
                .expect("makeThread after the refusal");
            assert_eq!(raw_get_name(&t).await.unwrap(), "fine");
            let calc = peer.make_calculator(Ctx::Thread(t.clone())).await.unwrap();
            assert_eq!(raw_add(&calc, Ctx::Thread(t), 8, 9).await.unwrap(), 17);
            assert!(!server.is_disconnected());
            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// A buggy adapter: a server method that panics outside `dispatch`.
// ---------------------------------------------------------------------------

/// A `ThreadMap` adapter with a bug: `makePool` panics right on the event
/// loop, inside capnp-rpc's dispatch, where no `catch_unwind` of the
/// adapter's own protects it.
struct PanickingThreadMap;

const ADAPTER_BUG: &str = "adapter bug: makePool panics on the event loop";

impl thread_map::Server for PanickingThreadMap {
    fn make_pool(
        self: Rc<Self>,
        _params: thread_map::MakePoolParams,
        _results: thread_map::MakePoolResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        panic!("{ADAPTER_BUG}");
        #[allow(unreachable_code)]
        std::future::ready(Ok(()))
    }
}

#[test]
fn a_panic_on_the_loop_ends_only_that_session_and_is_reported() {
    guarded_expecting_panic(ADAPTER_BUG, || {
        let (server_loop, client_loop) = loops();
        let (a, b) = UnixStream::pair().expect("socketpair");
        let buggy = Connection::builder(&server_loop)
            .name("buggy-server")
            .serve(|_conn| {
                let map: thread_map::Client = capnp_rpc::new_client(PanickingThreadMap);
                map.client
            })
            .open(a, Side::Server)
            .expect("serve the buggy adapter");
        let (tx, rx) = std::sync::mpsc::channel();
        let hook = buggy
            .on_disconnect(move || {
                let _ = tx.send(());
            })
            .expect("on_disconnect")
            .expect("still connected");
        // A healthy calculator session on the same loop, open throughout.
        let (bystander_server, bystander_stream) = serve_pair(&server_loop);
        let bystander = mp_calc::connect(&client_loop, bystander_stream).expect("bystander");
        let bystander_calc = bystander.make_calculator().unwrap();

        run_local(async {
            let (map, task) = raw_bootstrap::<thread_map::Client>(b);
            let mut req = map.make_pool_request();
            req.get().set_count(1);
            let e = refused(req.send().promise.await, "the call cannot succeed");
            assert_eq!(e.kind, capnp::ErrorKind::Disconnected, "{e}");
            task.abort();
            let _ = task.await;
        });
        // The server side learns its session is over: disconnect callbacks
        // run and waiters wake (before the fix this waited forever).
        assert!(
            buggy.wait_disconnected_timeout(PATIENCE),
            "a session that panicked never reported its disconnect"
        );
        rx.recv_timeout(PATIENCE)
            .expect("the disconnect callback ran");
        assert!(!hook.remove(), "the callback already ran");

        // The loop and everyone else on it are fine.
        assert_eq!(bystander_calc.add(20, 22).unwrap(), 42);
        assert!(!bystander_server.is_disconnected());
        well_behaved_client_works(&server_loop, &client_loop);
        drop((bystander_calc, bystander));
        assert!(bystander_server.wait_disconnected_timeout(PATIENCE));
    });
}
