//! A toy Bitcoin node implementing the generated `Init`, `Mining`,
//! `BlockTemplate`, `Echo` and `Rpc` traits: enough chain state for the
//! blocking calls a template provider relies on (`waitTipChanged`,
//! `createNewBlock` with cooldown, `waitNext`, each released by an
//! interrupt) and counters a test can check. Served by
//! `tests/bitcoin_core.rs` and by the `mining_tip` example's `--demo` mode.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::common_mp::BlockRef;
use crate::echo_mp::Echo;
use crate::init_mp::Init;
use crate::mining_mp::{
    BlockCheckOptions, BlockCreateOptions, BlockTemplate, BlockTemplateSubmitSolutionResults,
    BlockWaitOptions, CoinbaseTx, Mining, MiningCheckBlockResults, MiningSubmitBlockResults,
};
use crate::rpc_mp::Rpc;

/// The chain: a height, and interrupt generations so that an `interrupt`
/// releases the waits that began before it.
#[derive(Default)]
struct Chain {
    height: i32,
    interrupts: u64,
}

/// A toy node: a chain that grows by one block per accepted solution or
/// [`advance`](Self::advance), block templates, and counters a test can read.
#[derive(Default)]
pub struct ToyNode {
    chain: Mutex<Chain>,
    changed: Condvar,
    echo_destroyed: AtomicUsize,
    templates_destroyed: AtomicUsize,
    /// Names of the server threads `executeRpc` ran on.
    rpc_threads: Mutex<Vec<String>>,
}

impl ToyNode {
    /// A node at height 0 (in initial block download until height 2).
    pub fn new() -> Arc<ToyNode> {
        Arc::new(ToyNode::default())
    }

    /// The `Init` object to serve (see [`InitServer::bootstrap`]).
    ///
    /// [`InitServer::bootstrap`]: crate::init_mp::InitServer::bootstrap
    pub fn init(self: &Arc<Self>) -> Arc<dyn Init> {
        Arc::new(NodeInit(self.clone()))
    }

    /// How many `Echo` objects clients have destroyed.
    pub fn echo_destroyed(&self) -> usize {
        self.echo_destroyed.load(Ordering::SeqCst)
    }

    /// How many block templates clients have destroyed.
    pub fn templates_destroyed(&self) -> usize {
        self.templates_destroyed.load(Ordering::SeqCst)
    }

    /// The names of the threads `Rpc.executeRpc` ran on, in call order.
    pub fn rpc_threads(&self) -> Vec<String> {
        self.rpc_threads.lock().clone()
    }

    fn tip(chain: &Chain) -> BlockRef {
        BlockRef {
            hash: [chain.height as u8; 32].to_vec(),
            height: chain.height,
        }
    }

    /// Adds a block, ending waits for a new tip.
    pub fn advance(&self) {
        self.chain.lock().height += 1;
        self.changed.notify_all();
    }

    /// Releases every wait in progress, as `Mining.interrupt` does.
    pub fn interrupt(&self) {
        self.chain.lock().interrupts += 1;
        self.changed.notify_all();
    }

    /// Waits until `done` holds, the deadline passes, an interrupt comes, or
    /// the caller gives up on the call being served (its `CancelToken`,
    /// looked at every [`CANCEL_CHECK`]); true if `done` held.
    fn wait(&self, timeout: f64, done: impl Fn(&Chain) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let token = mp_ipc::CancelToken::current();
        let mut chain = self.chain.lock();
        let generation = chain.interrupts;
        while !done(&chain) && chain.interrupts == generation {
            if token.as_ref().is_some_and(|t| t.is_cancelled()) {
                break;
            }
            let wake = match &token {
                Some(_) => deadline.min(Instant::now() + CANCEL_CHECK),
                None => deadline,
            };
            let _ = self.changed.wait_until(&mut chain, wake);
            if Instant::now() >= deadline {
                break;
            }
        }
        done(&chain)
    }
}

/// How often a blocked wait looks at its call's cancel token.
const CANCEL_CHECK: Duration = Duration::from_millis(10);

struct NodeInit(Arc<ToyNode>);

impl Init for NodeInit {
    fn make_echo(&self) -> Result<Arc<dyn Echo>, mp_ipc::Error> {
        Ok(Arc::new(NodeEcho(self.0.clone())))
    }

    fn make_mining_old2(&self) -> Result<(), mp_ipc::Error> {
        Err("makeMiningOld2 is no longer supported".into())
    }

    fn make_mining(&self) -> Result<Arc<dyn Mining>, mp_ipc::Error> {
        Ok(Arc::new(NodeMining(self.0.clone())))
    }

    fn make_rpc(&self) -> Result<Arc<dyn Rpc>, mp_ipc::Error> {
        Ok(Arc::new(NodeRpc(self.0.clone())))
    }
}

struct NodeEcho(Arc<ToyNode>);

impl Echo for NodeEcho {
    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        self.0.echo_destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn echo(&self, echo: String) -> Result<String, mp_ipc::Error> {
        Ok(echo)
    }
}

struct NodeRpc(Arc<ToyNode>);

impl Rpc for NodeRpc {
    fn execute_rpc(
        &self,
        request: String,
        uri: String,
        user: String,
    ) -> Result<String, mp_ipc::Error> {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        self.0.rpc_threads.lock().push(name);
        Ok(format!("{user}@{uri}: {request}"))
    }
}

struct NodeMining(Arc<ToyNode>);

impl Mining for NodeMining {
    fn is_test_chain(&self) -> Result<bool, mp_ipc::Error> {
        Ok(true)
    }

    fn is_initial_block_download(&self) -> Result<bool, mp_ipc::Error> {
        Ok(self.0.chain.lock().height < 2)
    }

    fn get_tip(&self) -> Result<Option<BlockRef>, mp_ipc::Error> {
        let chain = self.0.chain.lock();
        Ok((chain.height > 0).then(|| ToyNode::tip(&chain)))
    }

    fn wait_tip_changed(
        &self,
        current_tip: Vec<u8>,
        timeout: f64,
    ) -> Result<BlockRef, mp_ipc::Error> {
        self.0
            .wait(timeout, |chain| ToyNode::tip(chain).hash != current_tip);
        Ok(ToyNode::tip(&self.0.chain.lock()))
    }

    fn create_new_block(
        &self,
        options: BlockCreateOptions,
        cooldown: bool,
    ) -> Result<Option<Arc<dyn BlockTemplate>>, mp_ipc::Error> {
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
    ) -> Result<MiningCheckBlockResults, mp_ipc::Error> {
        let valid = !options.check_pow || block.first() == Some(&0);
        Ok(MiningCheckBlockResults {
            reason: if valid { "" } else { "high-hash" }.into(),
            debug: format!("merkle checked: {}", options.check_merkle_root),
            result: valid,
        })
    }

    fn interrupt(&self) -> Result<(), mp_ipc::Error> {
        self.0.interrupt();
        Ok(())
    }

    fn submit_block(&self, block: Vec<u8>) -> Result<MiningSubmitBlockResults, mp_ipc::Error> {
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

    fn get_transactions_by_tx_id(
        &self,
        txids: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, mp_ipc::Error> {
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

    fn get_transactions_by_witness_id(
        &self,
        wtxids: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, mp_ipc::Error> {
        self.get_transactions_by_tx_id(wtxids)
    }
}

struct Template {
    node: Arc<ToyNode>,
    options: BlockCreateOptions,
    height: i32,
}

impl BlockTemplate for Template {
    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        self.node.templates_destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn get_block_header(&self) -> Result<Vec<u8>, mp_ipc::Error> {
        Ok(self.height.to_le_bytes().to_vec())
    }

    fn get_block(&self) -> Result<Vec<u8>, mp_ipc::Error> {
        Ok(vec![0xab; 200])
    }

    fn get_tx_fees(&self) -> Result<Vec<i64>, mp_ipc::Error> {
        Ok(if self.options.use_mempool {
            // Bitcoin Core lists the coinbase first, with minus the total.
            vec![-1_250, 1_000, 250]
        } else {
            Vec::new()
        })
    }

    fn get_tx_sigops(&self) -> Result<Vec<i64>, mp_ipc::Error> {
        Ok(vec![
            self.options.coinbase_output_max_additional_sigops as i64,
        ])
    }

    fn get_coinbase_tx(&self) -> Result<CoinbaseTx, mp_ipc::Error> {
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

    fn get_coinbase_merkle_path(&self) -> Result<Vec<Vec<u8>>, mp_ipc::Error> {
        Ok(vec![vec![1; 32], vec![2; 32]])
    }

    fn submit_solution_old7(
        &self,
        _version: u32,
        _timestamp: u32,
        _nonce: u32,
        _coinbase: Vec<u8>,
    ) -> Result<bool, mp_ipc::Error> {
        Err("submitSolutionOld7 is deprecated".into())
    }

    fn wait_next(
        &self,
        options: BlockWaitOptions,
    ) -> Result<Option<Arc<dyn BlockTemplate>>, mp_ipc::Error> {
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

    fn interrupt_wait(&self) -> Result<(), mp_ipc::Error> {
        self.node.interrupt();
        Ok(())
    }

    fn submit_solution(
        &self,
        version: u32,
        timestamp: u32,
        nonce: u32,
        coinbase: Vec<u8>,
    ) -> Result<BlockTemplateSubmitSolutionResults, mp_ipc::Error> {
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
