//! Bitcoin Core's published IPC schemas (`init`, `mining`, `echo`, as
//! shipped in `bitcoin-capnp-types`) through code this workspace's
//! generator wrote at build time: generated clients against a small Rust
//! node implementing the generated traits, over a socketpair. Shows every
//! mapping those schemas use — the thread-map exchange, interfaces returned
//! from `Init`, structs with defaults and `$Proxy.name`, `result`/`hasResult`,
//! several results, lists of `Data` and `Int64`, nullable interface results
//! — and the behaviour a template provider relies on: a blocked
//! `waitTipChanged`/`waitNext`/`createNewBlock` released promptly by an
//! `interrupt` from another thread, `destroy` on drop, and a disconnect
//! error (not a panic) when the node goes away mid-call.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mp_interop::common_mp::BlockRef;
use mp_interop::echo_mp::Echo;
use mp_interop::init_mp::{Init, InitClient, InitServer};
use mp_interop::mining_mp::{
    BlockCheckOptions, BlockCreateOptions, BlockTemplate, BlockTemplateSubmitSolutionResults,
    BlockWaitOptions, CoinbaseTx, Mining, MiningCheckBlockResults, MiningSubmitBlockResults,
};
use mp_interop::rpc_mp::Rpc;
use mp_ipc::{Connection, EventLoop, Side};
use parking_lot::{Condvar, Mutex};

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

/// The node's chain: a height, and interrupt generations so that an
/// `interrupt` releases the waits that began before it.
#[derive(Default)]
struct Chain {
    height: i32,
    interrupts: u64,
}

#[derive(Default)]
struct Node {
    chain: Mutex<Chain>,
    changed: Condvar,
    echo_destroyed: AtomicUsize,
    templates_destroyed: AtomicUsize,
    /// Names of the server threads `executeRpc` ran on.
    rpc_threads: Mutex<Vec<String>>,
}

impl Node {
    fn tip(chain: &Chain) -> BlockRef {
        BlockRef {
            hash: [chain.height as u8; 32].to_vec(),
            height: chain.height,
        }
    }

    fn advance(&self) {
        self.chain.lock().height += 1;
        self.changed.notify_all();
    }

    fn interrupt(&self) {
        self.chain.lock().interrupts += 1;
        self.changed.notify_all();
    }

    /// Waits until `done` holds, the deadline passes, or an interrupt comes;
    /// true if `done` held.
    fn wait(&self, timeout: f64, done: impl Fn(&Chain) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let mut chain = self.chain.lock();
        let generation = chain.interrupts;
        while !done(&chain) && chain.interrupts == generation {
            if self.changed.wait_until(&mut chain, deadline).timed_out() {
                break;
            }
        }
        done(&chain)
    }
}

struct NodeInit(Arc<Node>);

impl Init for NodeInit {
    fn make_echo(&self) -> Result<Arc<dyn Echo>, String> {
        Ok(Arc::new(NodeEcho(self.0.clone())))
    }

    fn make_mining_old2(&self) -> Result<(), String> {
        Err("makeMiningOld2 is no longer supported".into())
    }

    fn make_mining(&self) -> Result<Arc<dyn Mining>, String> {
        Ok(Arc::new(NodeMining(self.0.clone())))
    }

    fn make_rpc(&self) -> Result<Arc<dyn Rpc>, String> {
        Ok(Arc::new(NodeRpc(self.0.clone())))
    }
}

struct NodeEcho(Arc<Node>);

impl Echo for NodeEcho {
    fn destroy(&self) -> Result<(), String> {
        self.0.echo_destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn echo(&self, echo: String) -> Result<String, String> {
        Ok(echo)
    }
}

struct NodeRpc(Arc<Node>);

impl Rpc for NodeRpc {
    fn execute_rpc(&self, request: String, uri: String, user: String) -> Result<String, String> {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        self.0.rpc_threads.lock().push(name);
        Ok(format!("{user}@{uri}: {request}"))
    }
}

struct NodeMining(Arc<Node>);

impl Mining for NodeMining {
    fn is_test_chain(&self) -> Result<bool, String> {
        Ok(true)
    }

    fn is_initial_block_download(&self) -> Result<bool, String> {
        Ok(self.0.chain.lock().height < 2)
    }

    fn get_tip(&self) -> Result<Option<BlockRef>, String> {
        let chain = self.0.chain.lock();
        Ok((chain.height > 0).then(|| Node::tip(&chain)))
    }

    fn wait_tip_changed(&self, current_tip: Vec<u8>, timeout: f64) -> Result<BlockRef, String> {
        self.0
            .wait(timeout, |chain| Node::tip(chain).hash != current_tip);
        Ok(Node::tip(&self.0.chain.lock()))
    }

    fn create_new_block(
        &self,
        options: BlockCreateOptions,
        cooldown: bool,
    ) -> Result<Option<Arc<dyn BlockTemplate>>, String> {
        // With `cooldown`, wait for a tip above height 0 (as Bitcoin Core
        // waits out IBD); an interrupt ends the wait with no template.
        if cooldown && !self.0.wait(3600.0, |chain| chain.height > 0) {
            return Ok(None);
        }
        let height = self.0.chain.lock().height + 1;
        Ok(Some(Arc::new(Template {
            node: self.0.clone(),
            options,
            height,
        })))
    }

    fn check_block(
        &self,
        block: Vec<u8>,
        options: BlockCheckOptions,
    ) -> Result<MiningCheckBlockResults, String> {
        let valid = !options.check_pow || block.first() == Some(&0);
        Ok(MiningCheckBlockResults {
            reason: if valid { "" } else { "high-hash" }.into(),
            debug: format!("merkle checked: {}", options.check_merkle_root),
            result: valid,
        })
    }

    fn interrupt(&self) -> Result<(), String> {
        self.0.interrupt();
        Ok(())
    }

    fn submit_block(&self, block: Vec<u8>) -> Result<MiningSubmitBlockResults, String> {
        if block.is_empty() {
            return Ok(MiningSubmitBlockResults {
                reason: "empty".into(),
                debug: String::new(),
                result: false,
            });
        }
        self.0.advance();
        Ok(MiningSubmitBlockResults {
            reason: String::new(),
            debug: String::new(),
            result: true,
        })
    }

    fn get_transactions_by_tx_id(&self, txids: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        // "Transactions" are their ids reversed; an unknown (empty) id gives
        // an empty entry, as Bitcoin Core does for a missing transaction.
        Ok(txids
            .into_iter()
            .map(|mut id| {
                id.reverse();
                id
            })
            .collect())
    }

    fn get_transactions_by_witness_id(&self, wtxids: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        self.get_transactions_by_tx_id(wtxids)
    }
}

struct Template {
    node: Arc<Node>,
    options: BlockCreateOptions,
    height: i32,
}

impl BlockTemplate for Template {
    fn destroy(&self) -> Result<(), String> {
        self.node.templates_destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn get_block_header(&self) -> Result<Vec<u8>, String> {
        Ok(self.height.to_le_bytes().to_vec())
    }

    fn get_block(&self) -> Result<Vec<u8>, String> {
        Ok(vec![0xab; 200])
    }

    fn get_tx_fees(&self) -> Result<Vec<i64>, String> {
        Ok(if self.options.use_mempool {
            vec![1_000, -1, i64::MAX]
        } else {
            Vec::new()
        })
    }

    fn get_tx_sigops(&self) -> Result<Vec<i64>, String> {
        Ok(vec![
            self.options.coinbase_output_max_additional_sigops as i64,
        ])
    }

    fn get_coinbase_tx(&self) -> Result<CoinbaseTx, String> {
        Ok(CoinbaseTx {
            version: 2,
            sequence: u32::MAX,
            script_sig_prefix: self.height.to_le_bytes().to_vec(),
            witness: vec![0; 32],
            block_reward_remaining: 312_500_000,
            required_outputs: vec![vec![0x6a, 0x24], Vec::new()],
            lock_time: self.height as u32 - 1,
        })
    }

    fn get_coinbase_merkle_path(&self) -> Result<Vec<Vec<u8>>, String> {
        Ok(vec![vec![1; 32], vec![2; 32]])
    }

    fn submit_solution_old7(
        &self,
        _version: u32,
        _timestamp: u32,
        _nonce: u32,
        _coinbase: Vec<u8>,
    ) -> Result<bool, String> {
        Err("submitSolutionOld7 is deprecated".into())
    }

    fn wait_next(
        &self,
        options: BlockWaitOptions,
    ) -> Result<Option<Arc<dyn BlockTemplate>>, String> {
        let height = self.height;
        if self
            .node
            .wait(options.timeout, |chain| chain.height + 1 > height)
        {
            let height = self.node.chain.lock().height + 1;
            Ok(Some(Arc::new(Template {
                node: self.node.clone(),
                options: BlockCreateOptions::default(),
                height,
            })))
        } else {
            // Bitcoin Core returns nullptr on timeout or interrupt.
            Ok(None)
        }
    }

    fn interrupt_wait(&self) -> Result<(), String> {
        self.node.interrupt();
        Ok(())
    }

    fn submit_solution(
        &self,
        version: u32,
        timestamp: u32,
        nonce: u32,
        coinbase: Vec<u8>,
    ) -> Result<BlockTemplateSubmitSolutionResults, String> {
        let ok = version >= 0x2000_0000 && timestamp > 0 && nonce % 2 == 0 && !coinbase.is_empty();
        if ok {
            self.node.advance();
        }
        Ok(BlockTemplateSubmitSolutionResults {
            reason: if ok { "" } else { "bad-solution" }.into(),
            debug: format!("nonce {nonce}"),
            result: ok,
        })
    }
}

struct Setup {
    _loops: (EventLoop, EventLoop),
    server: Connection,
    node: Arc<Node>,
    init: InitClient,
}

fn setup() -> Setup {
    let server_loop = EventLoop::new("bitcoin-node").unwrap();
    let client_loop = EventLoop::new("bitcoin-mine").unwrap();
    let node = Arc::new(Node::default());
    let (a, b) = UnixStream::pair().unwrap();
    let served = node.clone();
    let server = Connection::builder(&server_loop)
        .name("node")
        .serve(move |conn| InitServer::bootstrap(conn, Arc::new(NodeInit(served))))
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
        assert_eq!(s.node.echo_destroyed.load(Ordering::SeqCst), 0);
        drop(copy); // the last handle: `destroy` runs before drop returns
        assert_eq!(s.node.echo_destroyed.load(Ordering::SeqCst), 1);

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
        let mut threads = s.node.rpc_threads.lock().clone();
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
        assert_eq!(template.get_tx_fees().unwrap(), [1_000, -1, i64::MAX]);
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

        assert_eq!(s.node.templates_destroyed.load(Ordering::SeqCst), 0);
        drop((template, next, empty));
        assert_eq!(s.node.templates_destroyed.load(Ordering::SeqCst), 3);
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
