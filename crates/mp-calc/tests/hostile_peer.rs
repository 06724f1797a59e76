//! Each way a hostile peer could make the server hold or do too much, tried
//! with a raw capnp-rpc peer (no mp-ipc client code): the attacker gets an
//! error or is disconnected, the process survives (no panic anywhere), its
//! resident memory stays under the bound each test states, and a second,
//! well-behaved client keeps getting answers during and after the attack.
//!
//! Every test runs alone under the watchdog (`hostile::guarded`); waits are
//! bounded polls, nothing asserts a timing.

mod common;
mod hostile;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::eventually;
use hostile::*;
use mp_calc::calc_capnp::{calculator, callback};
use mp_ipc::proxy_capnp::thread;
use mp_ipc::{CallSite, Limits, ProcessLimits};

use hostile::RefusingThreadMap;

const SLEEP: CallSite = CallSite::new("Calculator", "sleep");
const FAIL: CallSite = CallSite::new("Calculator", "fail");

/// `Calculator.sleep(millis)` on `thread`, sent; the promise of its reply.
fn raw_sleep(
    calc: &calculator::Client,
    thread: &thread::Client,
    millis: u32,
) -> impl std::future::Future<Output = Result<(), capnp::Error>> {
    let mut req = calc.sleep_request();
    req.get().init_context().set_thread(thread.clone());
    req.get().set_millis(millis);
    let promise = req.send().promise;
    async move { promise.await.map(drop) }
}

/// `Calculator.fail(message)` on `thread`, sent; the promise of its reply.
fn raw_fail(
    calc: &calculator::Client,
    thread: &thread::Client,
    message: &str,
) -> impl std::future::Future<Output = Result<(), capnp::Error>> {
    let mut req = calc.fail_request();
    req.get().init_context().set_thread(thread.clone());
    req.get().set_message(message);
    let promise = req.send().promise;
    async move { promise.await.map(drop) }
}

/// Lets the raw peer's session run for a moment (messages out, replies in).
async fn pump() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

// ---------------------------------------------------------------------------
// Calls cancelled before they start cannot escape the queue bound, and their
// parameters are dropped at once.
// ---------------------------------------------------------------------------

/// A callback the raw peer passes as a call's parameter; the server drops
/// its reference when it drops the call's parameters, which releases it
/// here (counted).
struct Tracked(Rc<Cell<usize>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

impl callback::Server for Tracked {}

#[test]
fn cancelled_calls_keep_their_place_and_drop_their_parameters() {
    guarded(|| {
        let max_queued = 32;
        let limits = Limits {
            max_queued_calls: max_queued,
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair_with(&server_loop, limits);
        let rss_before = rss_bytes();
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let thread = peer.make_thread("victim").await.expect("makeThread");
            let calc = peer
                .make_calculator(Ctx::Thread(thread.clone()))
                .await
                .expect("makeCalculator");
            // Block the thread for long enough that everything below
            // happens while it is blocked.
            let blocked = Rc::new(Cell::new(true));
            let blocker = {
                let call = raw_sleep(&calc, &thread, 5000);
                let blocked = blocked.clone();
                tokio::task::spawn_local(async move {
                    let result = call.await;
                    blocked.set(false);
                    result
                })
            };
            // Fill the rest of the queue with calls whose parameters hold a
            // capability of ours.
            let released = Rc::new(Cell::new(0));
            let mut queued = Vec::new();
            for _ in 0..max_queued - 1 {
                let mut req = calc.countdown_request();
                req.get().init_context().set_thread(thread.clone());
                req.get().set_n(1);
                req.get()
                    .set_callback(capnp_rpc::new_client(Tracked(released.clone())));
                queued.push(req.send().promise);
            }
            pump().await;
            let e = refused(
                raw_fail(&calc, &thread, "one more").await,
                "a call on a thread whose queue is full",
            );
            assert_limit_reached(FAIL, e, "(Limits::max_queued_calls)");
            // Cancel them all (capnp-rpc sends `Finish` for each): their
            // parameters are dropped at once, so our callbacks are released
            // while the thread is still blocked.
            drop(queued);
            for _ in 0..1000 {
                if released.get() == max_queued - 1 || !blocked.get() {
                    break;
                }
                pump().await;
            }
            assert_eq!(
                released.get(),
                max_queued - 1,
                "every cancelled call's parameters are dropped"
            );
            assert!(
                blocked.get(),
                "the parameters were dropped before the thread reached the cancelled calls"
            );
            // The cancelled calls still hold their places until the thread
            // reaches them.
            let e = refused(
                raw_fail(&calc, &thread, "still full").await,
                "a call on a thread whose queue is full of cancelled calls",
            );
            assert_limit_reached(FAIL, e, "(Limits::max_queued_calls)");
            // Another client is served meanwhile.
            well_behaved_client_works(&server_loop, &client_loop);
            blocker
                .await
                .expect("blocker task")
                .expect("the blocking call completes");
            // Once the thread has passed the cancelled jobs, it serves again.
            let mut served = false;
            for _ in 0..500 {
                match raw_add(&calc, Ctx::Thread(thread.clone()), 1, 2).await {
                    Ok(3) => {
                        served = true;
                        break;
                    }
                    _ => pump().await,
                }
            }
            assert!(served, "the thread serves again after its queue drained");
            peer.hang_up().await;
        });
        assert_rss_grew_less_than(rss_before, 64 << 20);
        well_behaved_client_works(&server_loop, &client_loop);
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// A Context naming a promise the peer never resolves: counted, timed out.
// ---------------------------------------------------------------------------

#[test]
fn a_context_thread_that_never_resolves_times_out_and_counts() {
    guarded(|| {
        let limits = Limits {
            context_timeout: Duration::from_millis(300),
            max_calls_in_flight: 8,
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair_with(&server_loop, limits);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let calc = peer.calculator().await;
            let never: thread::Client =
                capnp_rpc::new_future_client(futures::future::pending::<capnp::Result<_>>());
            // Twenty calls parked on the promise: the first eight count in
            // flight and time out; the rest are refused at once.
            let calls: Vec<_> = (0..20).map(|_| raw_sleep(&calc, &never, 0)).collect();
            let outcomes = futures::future::join_all(calls).await;
            let mut timed_out = 0;
            let mut over = 0;
            for outcome in outcomes {
                let e = refused(outcome, "a call on a never-resolved thread");
                let text = e.to_string();
                if text.contains("Limits::context_timeout") {
                    timed_out += 1;
                } else {
                    assert_limit_reached(SLEEP, e, "(Limits::max_calls_in_flight)");
                    over += 1;
                }
            }
            assert_eq!(timed_out, 8, "each call in flight times out");
            assert_eq!(over, 12);
            // Nothing stays counted: calls are served again.
            let thread = peer.make_thread("after").await.expect("makeThread");
            assert_eq!(raw_add(&calc, Ctx::Thread(thread), 2, 2).await.unwrap(), 4);
            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// Threads: a thread blocked in a call counts until it returns, even after
// its connection closed; the process-wide cap holds across reconnects.
// ---------------------------------------------------------------------------

#[test]
fn threads_of_closed_connections_count_until_they_return() {
    guarded(|| {
        let per_conn = 4;
        let limits = Limits {
            max_threads: per_conn,
            ..Limits::default()
        };
        let before = ProcessLimits::current();
        let (server_loop, client_loop) = loops();
        // A well-behaved client maps its thread before the attack.
        let (good_server, good_stream) = serve_pair(&server_loop);
        let good = mp_calc::connect(&client_loop, good_stream).expect("connect");
        let good_calc = good.make_calculator().expect("makeCalculator");
        assert_eq!(good_calc.add(1, 1).unwrap(), 2);
        // Room for exactly two rounds of the attack.
        let base = ProcessLimits::server_threads();
        ProcessLimits {
            max_server_threads: base + 2 * per_conn,
            ..before
        }
        .apply();

        let mut refusals = Vec::new();
        for round in 0..3 {
            let (server, stream) = serve_pair_with(&server_loop, limits);
            let refusal = run_local(async {
                let peer = RawPeer::connect(stream).await;
                let mut sleeping = Vec::new();
                let mut refusal = None;
                for i in 0..per_conn {
                    match peer.make_thread(&format!("r{round}-{i}")).await {
                        Ok(thread) => {
                            let calc = peer
                                .make_calculator(Ctx::Thread(thread.clone()))
                                .await
                                .expect("makeCalculator");
                            sleeping.push(raw_sleep(&calc, &thread, 5000));
                        }
                        Err(e) => {
                            refusal = Some(e);
                            break;
                        }
                    }
                }
                pump().await;
                // Hang up with every thread blocked in its call.
                drop(sleeping);
                peer.hang_up().await;
                refusal
            });
            assert!(server.wait_disconnected_timeout(PATIENCE));
            refusals.push(refusal);
            // The well-behaved client is served during the attack.
            assert_eq!(good_calc.add(round, 1).unwrap(), round + 1);
        }
        assert!(refusals[0].is_none() && refusals[1].is_none());
        let e = refusals[2]
            .take()
            .expect("the third round is refused: the closed rounds' threads still run");
        assert_limit_reached(
            CallSite::new("ThreadMap", "makeThread"),
            e,
            "(ProcessLimits::max_server_threads)",
        );
        // Once the blocked calls return, the threads stop and are released.
        assert!(
            eventually(PATIENCE, || ProcessLimits::server_threads() <= base),
            "server threads: {} (base {base})",
            ProcessLimits::server_threads()
        );
        before.apply();
        assert_eq!(good_calc.add(2, 2).unwrap(), 4);
        well_behaved_client_works(&server_loop, &client_loop);
        drop((good_calc, good));
        assert!(good_server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// Text this side stores and echoes is capped.
// ---------------------------------------------------------------------------

#[test]
fn a_long_thread_name_is_refused() {
    guarded(|| {
        let max = Limits::default().max_name_bytes;
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair(&server_loop);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let e = refused(
                peer.make_thread(&"n".repeat(1 << 20)).await,
                "a 1 MiB thread name",
            );
            assert_bad_request(
                CallSite::new("ThreadMap", "makeThread"),
                e,
                &format!("longer than {max} (Limits::max_name_bytes)"),
            );
            let ok = peer
                .make_thread(&"n".repeat(max))
                .await
                .expect("a name at the limit is fine");
            assert_eq!(raw_get_name(&ok).await.unwrap().len(), max);
            well_behaved_client_works(&server_loop, &client_loop);
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// Objects a peer never releases are bounded.
// ---------------------------------------------------------------------------

#[test]
fn objects_the_peer_never_releases_are_bounded() {
    guarded(|| {
        let max = 100;
        let limits = Limits {
            max_exported_objects: max,
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair_with(&server_loop, limits);
        run_local(async {
            let peer = RawPeer::connect(stream).await;
            let thread = peer.make_thread("hoarder").await.expect("makeThread");
            let mut held = Vec::new();
            let mut refusal = None;
            for _ in 0..max + 10 {
                match peer.make_calculator(Ctx::Thread(thread.clone())).await {
                    Ok(calc) => held.push(calc),
                    Err(e) => {
                        refusal = Some(e);
                        break;
                    }
                }
            }
            assert_eq!(held.len(), max, "exactly the limit is handed out");
            assert_limit_reached(
                CallSite::new("CalcInit", "makeCalculator"),
                refusal.expect("past the limit is refused"),
                "(Limits::max_exported_objects)",
            );
            // Held objects still work, and another client is unaffected.
            assert_eq!(
                raw_add(&held[0], Ctx::Thread(thread.clone()), 1, 1)
                    .await
                    .unwrap(),
                2
            );
            well_behaved_client_works(&server_loop, &client_loop);
            // Releasing frees places (the release travels to the server).
            held.truncate(max - 5);
            let mut again = None;
            for _ in 0..500 {
                match peer.make_calculator(Ctx::Thread(thread.clone())).await {
                    Ok(calc) => {
                        again = Some(calc);
                        break;
                    }
                    Err(_) => pump().await,
                }
            }
            let again = again.expect("makeCalculator works again after releases");
            assert_eq!(
                raw_add(&again, Ctx::Thread(thread.clone()), 2, 3)
                    .await
                    .unwrap(),
                5
            );
            drop((held, again));
            peer.hang_up().await;
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

// ---------------------------------------------------------------------------
// The transport: a peer that never reads, sockets that send nothing or half
// a message.
// ---------------------------------------------------------------------------

#[test]
fn a_peer_that_never_reads_is_paused_not_buffered() {
    guarded(|| {
        let max_unwritten = 256 << 10;
        let limits = Limits {
            max_unwritten_bytes: max_unwritten,
            max_name_bytes: 4096,
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair_with(&server_loop, limits);
        let rss_before = rss_bytes();
        run_local(async {
            let (init, task, gate) =
                raw_bootstrap_gated::<mp_calc::calc_capnp::calc_init::Client>(stream);
            let mut req = init.construct_request();
            req.get()
                .set_thread_map(capnp_rpc::new_client(RefusingThreadMap));
            let reply = req.send().promise.await.expect("construct");
            let thread_map = reply.get().unwrap().get_thread_map().unwrap();
            let mut req = thread_map.make_thread_request();
            req.get().set_name("n".repeat(4096).as_str());
            let thread = req
                .send()
                .promise
                .await
                .unwrap()
                .get()
                .unwrap()
                .get_result()
                .unwrap();
            // Stop reading, then ask for 4 KiB replies far past the bound:
            // 4,000 of them would be 16 MiB queued.
            gate.shut();
            let calls: Vec<_> = (0..4_000)
                .map(|_| thread.get_name_request().send().promise)
                .collect();
            let mut paused = false;
            for _ in 0..500 {
                pump().await;
                let stats = server.stats().expect("stats");
                if stats.reading_paused {
                    paused = true;
                    break;
                }
            }
            assert!(paused, "the server stops reading a peer that does not read");
            let stats = server.stats().unwrap();
            // One reply of slack: the pause starts once the bound is passed.
            assert!(
                stats.peak_unwritten_bytes <= max_unwritten + 16 * 1024,
                "{stats:?}"
            );
            // The process holds both sides: the attacker's own 4,000 calls
            // in flight and the server's bounded queue.
            assert_rss_grew_less_than(rss_before, 96 << 20);
            // Others are served meanwhile.
            well_behaved_client_works(&server_loop, &client_loop);
            // Once the peer reads, every call is answered.
            gate.open();
            let replies = futures::future::join_all(calls).await;
            assert!(replies.iter().all(|r| r.is_ok()), "every call answered");
            assert!(!server.stats().unwrap().reading_paused);
            task.abort();
        });
        assert!(server.wait_disconnected_timeout(PATIENCE));
    });
}

#[test]
fn a_peer_that_stops_reading_for_good_is_disconnected() {
    guarded(|| {
        let limits = Limits {
            max_unwritten_bytes: 64 << 10,
            write_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let (server, stream) = serve_pair_with(&server_loop, limits);
        run_local(async {
            let (init, task, gate) =
                raw_bootstrap_gated::<mp_calc::calc_capnp::calc_init::Client>(stream);
            let mut req = init.construct_request();
            req.get()
                .set_thread_map(capnp_rpc::new_client(RefusingThreadMap));
            let reply = req.send().promise.await.expect("construct");
            let thread_map = reply.get().unwrap().get_thread_map().unwrap();
            gate.shut();
            let calls: Vec<_> = (0..20_000)
                .map(|i| {
                    let mut req = thread_map.make_thread_request();
                    req.get().set_name(format!("t{i}").as_str());
                    req.send().promise
                })
                .collect();
            // The peer holds the socket open but never reads again.
            for _ in 0..1000 {
                if server.is_disconnected() {
                    break;
                }
                pump().await;
            }
            assert!(
                server.is_disconnected(),
                "the server closes a connection whose peer reads nothing for write_timeout"
            );
            drop(calls);
            well_behaved_client_works(&server_loop, &client_loop);
            task.abort();
        });
    });
}

#[test]
fn half_a_message_does_not_hold_memory_or_the_connection() {
    guarded(|| {
        let limits = Limits {
            frame_timeout: Some(Duration::from_millis(500)),
            ..Limits::default()
        };
        let (server_loop, client_loop) = loops();
        let rss_before = rss_bytes();
        let mut held = Vec::new();
        for _ in 0..16 {
            let (server, mut peer) = serve_pair_with(&server_loop, limits);
            // A frame announcing one segment of 60 MiB, then 4 KiB of it.
            let mut frame = 0u32.to_le_bytes().to_vec();
            frame.extend_from_slice(&((60u32 << 20) / 8).to_le_bytes());
            frame.extend_from_slice(&[0u8; 4096]);
            std::io::Write::write_all(&mut peer, &frame).unwrap();
            held.push((server, peer));
        }
        // Sixteen announced 60 MiB frames: 960 MiB if allocated up front.
        std::thread::sleep(Duration::from_millis(100));
        assert_rss_grew_less_than(rss_before, 128 << 20);
        well_behaved_client_works(&server_loop, &client_loop);
        for (server, _peer) in &held {
            assert!(
                server.wait_disconnected_timeout(PATIENCE),
                "half a message is timed out"
            );
        }
        assert!(
            eventually(PATIENCE, || ProcessLimits::buffered_bytes() == 0),
            "the reservations are given back: {}",
            ProcessLimits::buffered_bytes()
        );
        well_behaved_client_works(&server_loop, &client_loop);
    });
}

#[test]
fn silent_sockets_cannot_hold_the_listener_s_slots() {
    guarded(|| {
        use mp_ipc::listener::{connect_path, ListenOptions, Listener};
        let dir = std::env::temp_dir().join(format!("mp-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("silent.sock");
        let _ = std::fs::remove_file(&path);
        let (server_loop, client_loop) = loops();
        let service = std::sync::Arc::new(mp_calc::CalcInitService);
        let options = ListenOptions {
            max_connections: Some(4),
            limits: Limits {
                handshake_timeout: Some(Duration::from_millis(300)),
                ..Limits::default()
            },
            ..ListenOptions::default()
        };
        let listener = Listener::bind(&server_loop, &path, options, move |conn| {
            mp_calc::CalcInitServer::bootstrap(conn, service.clone())
        })
        .unwrap();
        // Every slot taken by a socket that sends 4 bytes and nothing more.
        let mut silent = Vec::new();
        for _ in 0..4 {
            let mut s = connect_path(&path).unwrap();
            std::io::Write::write_all(&mut s, &[0, 0, 0, 0]).unwrap();
            silent.push(s);
        }
        // A well-behaved client still gets in once they time out.
        let init = mp_calc::connect(&client_loop, connect_path(&path).unwrap()).unwrap();
        let calc = init
            .make_calculator()
            .expect("served despite the silent sockets");
        assert_eq!(calc.add(20, 22).unwrap(), 42);
        // The silent sockets were closed by the server.
        for mut s in silent {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut sink);
        }
        drop((calc, init, listener));
        let _ = std::fs::remove_dir_all(&dir);
    });
}
