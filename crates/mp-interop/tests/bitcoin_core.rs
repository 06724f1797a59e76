//! Bitcoin Core's published IPC schemas (`init`, `mining`, `echo`, as
//! shipped in `bitcoin-capnp-types`) through code this workspace's
//! generator wrote at build time: generated clients against a small Rust
//! node implementing the generated traits (`mp_interop::toy_node`), over a
//! socketpair. Shows every
//! mapping those schemas use — the thread-map exchange, interfaces returned
//! from `Init`, structs with defaults and `$Proxy.name`, `result`/`hasResult`,
//! several results, lists of `Data` and `Int64`, nullable interface results
//! — and the behaviour a template provider relies on: a blocked
//! `waitTipChanged`/`waitNext`/`createNewBlock` released promptly by an
//! `interrupt` from another thread, `destroy` on drop, and a disconnect
//! error (not a panic) when the node goes away mid-call.

use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mp_interop::init_mp::{InitClient, InitServer};
use mp_interop::mining_mp::{
    BlockCheckOptions, BlockCreateOptions, BlockWaitOptions, MiningSubmitBlockResults,
};
use mp_interop::toy_node::ToyNode;
use mp_ipc::{Connection, EventLoop, Side};

fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ended without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("watchdog: test did not finish in 60 s"),
    }
}

struct Setup {
    _loops: (EventLoop, EventLoop),
    server: Connection,
    node: Arc<ToyNode>,
    init: InitClient,
}

fn setup() -> Setup {
    let server_loop = EventLoop::new("bitcoin-node").unwrap();
    let client_loop = EventLoop::new("bitcoin-mine").unwrap();
    let node = ToyNode::new();
    let (a, b) = UnixStream::pair().unwrap();
    let served = node.clone();
    let server = Connection::builder(&server_loop)
        .name("node")
        .serve(move |conn| InitServer::bootstrap(conn, served.init()))
        .open(a, Side::Server)
        .unwrap();
    let conn = Connection::builder(&client_loop)
        .name("miner")
        .open(b, Side::Client)
        .unwrap();
    let init = InitClient::connect(&conn).unwrap();
    Setup {
        _loops: (server_loop, client_loop),
        server,
        node,
        init,
    }
}

/// Repeats `release` until `blocked` has returned, in case the first call
/// landed before the wait began.
fn release_until_done<T>(blocked: &std::thread::JoinHandle<T>, release: impl Fn()) {
    while !blocked.is_finished() {
        release();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn echo_and_rpc_round_trip_and_echo_is_destroyed_on_drop() {
    watchdog(|| {
        let s = setup();
        let echo = s.init.make_echo().unwrap();
        assert_eq!(echo.echo("héllo ₿").unwrap(), "héllo ₿");
        assert_eq!(echo.echo("").unwrap(), "");
        let copy = echo.clone();
        drop(echo);
        assert_eq!(s.node.echo_destroyed(), 0);
        drop(copy); // the last handle: `destroy` runs before drop returns
        assert_eq!(s.node.echo_destroyed(), 1);

        // executeRpc from four client threads, each on its own server thread.
        let rpc = s.init.make_rpc().unwrap();
        let callers: Vec<_> = (0..4)
            .map(|i| {
                let rpc = rpc.clone();
                std::thread::Builder::new()
                    .name(format!("rpc-caller-{i}"))
                    .spawn(move || {
                        rpc.execute_rpc(&format!("getblockcount {i}"), "/", "miner")
                            .unwrap()
                    })
                    .unwrap()
            })
            .collect();
        for (i, caller) in callers.into_iter().enumerate() {
            assert_eq!(
                caller.join().unwrap(),
                format!("miner@/: getblockcount {i}")
            );
        }
        let mut threads = s.node.rpc_threads();
        threads.sort();
        threads.dedup();
        assert_eq!(threads.len(), 4, "{threads:?}");
    });
}

#[test]
fn deprecated_method_error_names_the_method() {
    watchdog(|| {
        let s = setup();
        let err = s.init.make_mining_old2().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Init.makeMiningOld2"), "{text}");
        assert!(text.contains("no longer supported"), "{text}");
        // The connection goes on serving.
        assert!(s.init.make_mining().unwrap().is_test_chain().unwrap());
    });
}

#[test]
fn mining_methods_map_structs_lists_and_several_results() {
    watchdog(|| {
        let s = setup();
        let mining = s.init.make_mining().unwrap();
        assert!(mining.is_test_chain().unwrap());
        assert!(mining.is_initial_block_download().unwrap());
        assert_eq!(mining.get_tip().unwrap(), None);

        assert_eq!(
            mining.submit_block(&[]).unwrap(),
            MiningSubmitBlockResults {
                reason: "empty".into(),
                debug: String::new(),
                result: false
            }
        );
        assert!(mining.submit_block(&[1, 2, 3]).unwrap().result);
        let tip = mining.get_tip().unwrap().expect("a tip after a block");
        assert_eq!(tip.height, 1);
        assert_eq!(tip.hash, [1u8; 32]);

        let checked = mining
            .check_block(&[7], &BlockCheckOptions::default())
            .unwrap();
        assert_eq!(checked.reason, "high-hash");
        assert_eq!(checked.debug, "merkle checked: true");
        let relaxed = BlockCheckOptions {
            check_pow: false,
            check_merkle_root: false,
        };
        let checked = mining.check_block(&[7], &relaxed).unwrap();
        assert!(checked.result);
        assert_eq!(checked.debug, "merkle checked: false");

        let ids = vec![vec![1, 2, 3], Vec::new(), vec![9; 32]];
        assert_eq!(
            mining.get_transactions_by_tx_id(&ids).unwrap(),
            [vec![3, 2, 1], Vec::new(), vec![9; 32]]
        );
        assert!(mining
            .get_transactions_by_witness_id(&[])
            .unwrap()
            .is_empty());
    });
}

#[test]
fn block_templates_carry_defaults_and_are_destroyed_on_drop() {
    watchdog(|| {
        let s = setup();
        let mining = s.init.make_mining().unwrap();
        // Schema defaults from mining.capnp's constants.
        let defaults = BlockCreateOptions::default();
        assert!(defaults.use_mempool);
        assert_eq!(defaults.block_reserved_weight, 8000);
        assert_eq!(defaults.coinbase_output_max_additional_sigops, 400);
        let wait = BlockWaitOptions::default();
        assert_eq!(wait.timeout, f64::MAX);
        assert_eq!(wait.fee_threshold, 2_100_000_000_000_000);

        let template = mining
            .create_new_block(&defaults, false)
            .unwrap()
            .expect("no cooldown: a template at once");
        assert_eq!(template.get_block_header().unwrap(), 1i32.to_le_bytes());
        assert_eq!(template.get_block().unwrap().len(), 200);
        assert_eq!(template.get_tx_fees().unwrap(), [-1_250, 1_000, 250]);
        assert_eq!(template.get_tx_sigops().unwrap(), [400]);
        let coinbase = template.get_coinbase_tx().unwrap();
        assert_eq!(coinbase.sequence, u32::MAX);
        assert_eq!(coinbase.required_outputs, [vec![0x6a, 0x24], Vec::new()]);
        assert_eq!(coinbase.lock_time, 0);
        assert_eq!(template.get_coinbase_merkle_path().unwrap().len(), 2);
        let err = template.submit_solution_old7(0, 0, 0, &[]).unwrap_err();
        assert!(
            err.to_string().contains("BlockTemplate.submitSolutionOld7"),
            "{err}"
        );

        let rejected = template.submit_solution(1, 1, 2, &[1]).unwrap();
        assert_eq!(rejected.reason, "bad-solution");
        let accepted = template.submit_solution(0x2000_0000, 1, 2, &[1]).unwrap();
        assert!(accepted.result, "{accepted:?}");
        assert_eq!(accepted.debug, "nonce 2");

        // The tip moved on: waitNext returns the next template at once.
        let next = template
            .wait_next(&BlockWaitOptions::default())
            .unwrap()
            .expect("a new template after the tip moved");
        assert_eq!(next.get_block_header().unwrap(), 2i32.to_le_bytes());
        // Nothing new within a short timeout: null on the wire, None here.
        assert!(next
            .wait_next(&BlockWaitOptions {
                timeout: 0.05,
                ..BlockWaitOptions::default()
            })
            .unwrap()
            .is_none());

        let empty = mining
            .create_new_block(
                &BlockCreateOptions {
                    use_mempool: false,
                    ..defaults
                },
                true,
            )
            .unwrap()
            .unwrap();
        assert!(empty.get_tx_fees().unwrap().is_empty());

        assert_eq!(s.node.templates_destroyed(), 0);
        drop((template, next, empty));
        assert_eq!(s.node.templates_destroyed(), 3);
    });
}

#[test]
fn interrupt_from_another_thread_releases_each_blocking_call() {
    watchdog(|| {
        let s = setup();
        let mining = s.init.make_mining().unwrap();

        // waitTipChanged on the current tip, released by Mining.interrupt
        // (no Context: it runs on the node's event loop, never queued
        // behind the blocked call's server thread).
        let tip = mining.wait_tip_changed(&[], 0.0).unwrap();
        let waiter = mining.clone();
        let blocked = std::thread::spawn(move || waiter.wait_tip_changed(&tip.hash, 3600.0));
        release_until_done(&blocked, || mining.interrupt().unwrap());
        assert_eq!(blocked.join().unwrap().unwrap().height, 0);

        // createNewBlock with cooldown at height 0 waits; interrupted, it
        // returns no template.
        let waiter = mining.clone();
        let blocked = std::thread::spawn(move || {
            waiter
                .create_new_block(&BlockCreateOptions::default(), true)
                .map(|t| t.is_none())
        });
        release_until_done(&blocked, || mining.interrupt().unwrap());
        assert!(
            blocked.join().unwrap().unwrap(),
            "an interrupted cooldown gives None"
        );

        // waitNext, released by BlockTemplate.interruptWait.
        let template = mining
            .create_new_block(&BlockCreateOptions::default(), false)
            .unwrap()
            .unwrap();
        let waiter = template.clone();
        let blocked = std::thread::spawn(move || {
            waiter
                .wait_next(&BlockWaitOptions::default())
                .map(|t| t.is_none())
        });
        release_until_done(&blocked, || template.interrupt_wait().unwrap());
        assert!(
            blocked.join().unwrap().unwrap(),
            "an interrupted waitNext gives None"
        );

        // A wait ended by a new block rather than an interrupt.
        let tip = mining.wait_tip_changed(&[], 0.0).unwrap();
        let waiter = mining.clone();
        let blocked = std::thread::spawn(move || waiter.wait_tip_changed(&tip.hash, 3600.0));
        release_until_done(&blocked, || s.node.advance());
        assert!(blocked.join().unwrap().unwrap().height >= 1);
    });
}

/// The blocking mining calls take a deadline instead of a separate
/// interrupt call: past it the call fails naming the method, the node is
/// sent `Finish` (the toy node stops waiting when its cancel token fires),
/// and the same thread's next call runs at once on its server thread.
#[test]
fn a_deadline_ends_each_blocking_mining_call_without_an_interrupt() {
    watchdog(|| {
        let s = setup();
        let mining = s.init.make_mining().unwrap();
        let timeout = Some(Duration::from_millis(50));
        let tip = mining.wait_tip_changed(&[], 0.0).unwrap();
        match mining
            .with_timeout(timeout)
            .wait_tip_changed(&tip.hash, 3600.0)
        {
            Err(mp_ipc::Error::DeadlineExceeded { site, .. }) => {
                assert_eq!(site, mp_ipc::CallSite::new("Mining", "waitTipChanged"))
            }
            other => panic!("expected the deadline to pass, got {other:?}"),
        }
        // Mapped to the same server thread: it would queue behind the
        // hour-long wait had the cancel not ended it.
        assert_eq!(mining.wait_tip_changed(&[], 0.0).unwrap().hash, tip.hash);

        let template = mining
            .create_new_block(&BlockCreateOptions::default(), false)
            .unwrap()
            .unwrap();
        match template
            .with_timeout(timeout)
            .wait_next(&BlockWaitOptions::default())
        {
            Err(mp_ipc::Error::DeadlineExceeded { site, .. }) => {
                assert_eq!(site, mp_ipc::CallSite::new("BlockTemplate", "waitNext"))
            }
            other => panic!("expected the deadline to pass, got {other:?}"),
        }
        assert!(mining.is_test_chain().is_ok());
    });
}

#[test]
fn node_disconnecting_during_a_blocked_wait_gives_a_disconnect_error() {
    watchdog(|| {
        let s = setup();
        let mining = s.init.make_mining().unwrap();
        let tip = mining.wait_tip_changed(&[], 0.0).unwrap();
        let waiter = mining.clone();
        let (started_tx, started_rx) = mpsc::channel();
        let blocked = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            waiter.wait_tip_changed(&tip.hash, 3600.0)
        });
        started_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.server.close();
        let err = blocked.join().unwrap().unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
        // Later calls fail the same way; the node's own wait is released so
        // its server thread can finish.
        s.node.interrupt();
        let err = mining.is_test_chain().unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
    });
}
