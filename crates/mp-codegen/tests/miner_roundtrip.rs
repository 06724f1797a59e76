//! A mining-shaped schema of our own (`tests/data/schema/miner.capnp`)
//! through generated code: a blocking `waitTipChanged` that an `interrupt()`
//! from another client thread releases promptly, a wait that the tip moving
//! on ends, a template object with its own methods and `destroy`, structs
//! with schema defaults and `$Proxy.name` fields, an optional result, and a
//! server that disconnects while a generated client blocks (a disconnect
//! error, not a panic).

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mp_ipc::{Connection, EventLoop, Side};
use parking_lot::{Condvar, Mutex};

/// capnpc's code for `miner.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod miner_capnp {
    include!("data/miner_capnp.rs");
}

/// mp-codegen's code for `miner.capnp`.
#[allow(dead_code)]
mod miner_mp {
    include!("data/miner_mp.rs");
}

use miner_mp::{
    Miner, MinerClient, MinerInit, MinerInitClient, MinerInitServer, Template, TemplateOptions,
    TemplateSubmitResults, Tip,
};

#[derive(Default)]
struct Chain {
    height: i32,
    interrupted: bool,
}

#[derive(Default)]
struct Node {
    chain: Mutex<Chain>,
    changed: Condvar,
}

impl Node {
    fn tip_of(chain: &Chain) -> Tip {
        Tip {
            hash: chain.height.to_le_bytes().to_vec(),
            height: chain.height,
        }
    }
}

struct Init(Arc<Node>);

impl MinerInit for Init {
    fn make_miner(&self) -> Result<Arc<dyn Miner>, mp_ipc::Error> {
        Ok(Arc::new(NodeMiner(self.0.clone())))
    }
}

struct NodeMiner(Arc<Node>);

impl Miner for NodeMiner {
    fn tip(&self) -> Result<Option<Tip>, mp_ipc::Error> {
        let chain = self.0.chain.lock();
        Ok((chain.height > 0).then(|| Node::tip_of(&chain)))
    }

    fn wait_tip_changed(&self, current_tip: Vec<u8>, timeout: f64) -> Result<Tip, mp_ipc::Error> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout.min(3600.0));
        let mut chain = self.0.chain.lock();
        chain.interrupted = false;
        while Node::tip_of(&chain).hash == current_tip && !chain.interrupted {
            if self.0.changed.wait_until(&mut chain, deadline).timed_out() {
                break;
            }
        }
        Ok(Node::tip_of(&chain))
    }

    fn interrupt(&self) -> Result<(), mp_ipc::Error> {
        self.0.chain.lock().interrupted = true;
        self.0.changed.notify_all();
        Ok(())
    }

    fn advance(&self) -> Result<(), mp_ipc::Error> {
        self.0.chain.lock().height += 1;
        self.0.changed.notify_all();
        Ok(())
    }

    fn new_template(&self, options: TemplateOptions) -> Result<Arc<dyn Template>, mp_ipc::Error> {
        Ok(Arc::new(BlockTemplate {
            options,
            height: self.0.chain.lock().height + 1,
        }))
    }
}

struct BlockTemplate {
    options: TemplateOptions,
    height: i32,
}

impl Template for BlockTemplate {
    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        Ok(())
    }

    fn header(&self) -> Result<Vec<u8>, mp_ipc::Error> {
        Ok(self.height.to_be_bytes().to_vec())
    }

    fn fees(&self) -> Result<Vec<i64>, mp_ipc::Error> {
        Ok(if self.options.use_mempool {
            vec![
                100,
                250,
                i64::try_from(self.options.block_reserved_weight).unwrap(),
            ]
        } else {
            Vec::new()
        })
    }

    fn submit(
        &self,
        nonce: u32,
        coinbase: Vec<u8>,
    ) -> Result<TemplateSubmitResults, mp_ipc::Error> {
        Ok(if nonce % 2 == 0 && !coinbase.is_empty() {
            TemplateSubmitResults {
                reason: String::new(),
                result: true,
            }
        } else {
            TemplateSubmitResults {
                reason: "high-hash".into(),
                result: false,
            }
        })
    }
}

struct Setup {
    _loops: (EventLoop, EventLoop),
    server: Connection,
    node: Arc<Node>,
    miner: MinerClient,
}

fn setup() -> Setup {
    let server_loop = EventLoop::new("node-loop").unwrap();
    let client_loop = EventLoop::new("miner-loop").unwrap();
    let node = Arc::new(Node::default());
    let (a, b) = UnixStream::pair().unwrap();
    let served = node.clone();
    let server = Connection::builder(&server_loop)
        .name("node")
        .serve(move |conn| MinerInitServer::bootstrap(conn, Arc::new(Init(served))))
        .open(a, Side::Server)
        .unwrap();
    let conn = Connection::builder(&client_loop)
        .name("miner")
        .open(b, Side::Client)
        .unwrap();
    let init = MinerInitClient::connect(&conn).unwrap();
    let miner = init.make_miner().unwrap();
    Setup {
        _loops: (server_loop, client_loop),
        server,
        node,
        miner,
    }
}

#[test]
fn optional_tip_and_waits_ended_by_a_new_tip() {
    watchdog(|| {
        let s = setup();
        assert_eq!(s.miner.tip().unwrap(), None);
        s.miner.advance().unwrap();
        let tip = s.miner.tip().unwrap().expect("a tip at height 1");
        assert_eq!(tip.height, 1);
        // A wait on an old tip returns at once.
        assert_eq!(s.miner.wait_tip_changed(&[9, 9], 60.0).unwrap(), tip);
        // A wait on the current tip ends when another thread moves it on.
        let waiter = s.miner.clone();
        let current = tip.hash.clone();
        let blocked = std::thread::spawn(move || waiter.wait_tip_changed(&current, 60.0));
        std::thread::sleep(Duration::from_millis(50));
        s.miner.advance().unwrap();
        assert_eq!(blocked.join().unwrap().unwrap().height, 2);
        // A short timeout ends a wait too.
        let now = s.miner.tip().unwrap().unwrap();
        assert_eq!(s.miner.wait_tip_changed(&now.hash, 0.05).unwrap(), now);
    });
}

#[test]
fn interrupt_from_another_thread_releases_a_blocked_wait_promptly() {
    watchdog(|| {
        let s = setup();
        let tip = s.miner.wait_tip_changed(&[], 0.0).unwrap();
        let waiter = s.miner.clone();
        let started = Instant::now();
        let blocked = std::thread::spawn(move || waiter.wait_tip_changed(&tip.hash, 3600.0));
        std::thread::sleep(Duration::from_millis(100));
        // `interrupt` has no Context: it runs on the node's event loop, so it
        // is not queued behind the blocked call's server thread. (Repeated in
        // case the first one landed before the wait began.)
        while !blocked.is_finished() {
            s.miner.interrupt().unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let released = blocked.join().unwrap().unwrap();
        assert_eq!(released.height, 0);
        assert!(started.elapsed() < Duration::from_secs(30));
    });
}

#[test]
fn template_objects_with_struct_options_and_destroy() {
    watchdog(|| {
        let s = setup();
        let defaults = TemplateOptions::default();
        assert!(defaults.use_mempool);
        assert_eq!(defaults.block_reserved_weight, 8000);
        let template = s.miner.new_template(&defaults).unwrap();
        assert_eq!(template.header().unwrap(), 1i32.to_be_bytes());
        assert_eq!(template.fees().unwrap(), [100, 250, 8000]);
        assert_eq!(
            template.submit(2, &[1]).unwrap(),
            TemplateSubmitResults {
                reason: String::new(),
                result: true
            }
        );
        assert_eq!(template.submit(3, &[1]).unwrap().reason, "high-hash");
        template.destroy().unwrap();
        let empty = s
            .miner
            .new_template(&TemplateOptions {
                use_mempool: false,
                ..TemplateOptions::default()
            })
            .unwrap();
        assert!(empty.fees().unwrap().is_empty());
    });
}

#[test]
fn a_server_that_disconnects_during_a_blocked_call_gives_a_disconnect_error() {
    watchdog(|| {
        let s = setup();
        let tip = s.miner.wait_tip_changed(&[], 0.0).unwrap();
        let waiter = s.miner.clone();
        // The server thread gives up by itself after 5 s at the latest.
        let blocked = std::thread::spawn(move || waiter.wait_tip_changed(&tip.hash, 5.0));
        std::thread::sleep(Duration::from_millis(100));
        let closed = Instant::now();
        s.server.close();
        let err = blocked.join().unwrap().unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
        assert!(
            closed.elapsed() < Duration::from_secs(4),
            "returned before the server's wait ended"
        );
        // Let the server thread, still in the method, finish.
        NodeMiner(s.node.clone()).interrupt().unwrap();
        let err = s.miner.tip().unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
    });
}
