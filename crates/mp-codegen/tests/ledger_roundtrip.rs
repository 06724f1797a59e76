//! The constructs of Bitcoin Core's wallet, chain and node schemas, through
//! `ledger.capnp` and `shared.capnp` (`tests/data/schema`): lists of
//! interfaces returned and passed (and called back), interfaces inside
//! structs and inside generic structs, nested generic lists, lists of
//! lists, a recursive struct with optional and C++-named fields, `Void`
//! and implicit parameters, `$Proxy.name` on a method and a thread map
//! passed outside `construct`. A generated client calls a generated server
//! over a socket pair, one method per construct.

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use mp_ipc::{Connection, EventLoop, Side};

/// capnpc's code for `ledger.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod ledger_capnp {
    include!("data/ledger_capnp.rs");
}

/// capnpc's code for `shared.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod shared_capnp {
    include!("data/shared_capnp.rs");
}

/// mp-codegen's code for `ledger.capnp`.
#[allow(dead_code)]
mod ledger_mp {
    include!("data/ledger_mp.rs");
}

/// mp-codegen's code for `shared.capnp`.
#[allow(dead_code)]
mod shared_mp {
    include!("data/shared_mp.rs");
}

use ledger_mp::{
    Account, Chain, ChainClient, ChainClientClient, ChainFindBlockResults, ChainProxyClient,
    Destination, FoundBlockParam, FoundBlockResult, Handler, Ledger, LedgerCallError, LedgerClient,
    LedgerRejectError, LedgerServer, LedgerWalkResults, Migration, Notifications,
    NotificationsClient, Output, OutputLabel, OutputSpend, OutputWhich, Rejection, RpcError,
    WalletLoader,
};
use shared_mp::{Block, Expected, Pair, PairInt64};

/// An account of the server's, counting its `destroy` calls.
struct Held {
    name: &'static str,
    balance: i64,
    destroyed: Arc<AtomicUsize>,
}

impl Account for Held {
    fn name(&self) -> Result<String, mp_ipc::Error> {
        Ok(self.name.into())
    }

    fn balance(&self) -> Result<i64, mp_ipc::Error> {
        Ok(self.balance)
    }

    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An account of the client's: answers only on the thread that made the
/// call it is asked from (callbacks run on the waiting thread).
struct Mine {
    name: String,
    balance: i64,
    thread: ThreadId,
}

impl Account for Mine {
    fn name(&self) -> Result<String, mp_ipc::Error> {
        self.on_thread()?;
        Ok(self.name.clone())
    }

    fn balance(&self) -> Result<i64, mp_ipc::Error> {
        self.on_thread()?;
        Ok(self.balance)
    }
}

impl Mine {
    fn on_thread(&self) -> Result<(), mp_ipc::Error> {
        if std::thread::current().id() == self.thread {
            Ok(())
        } else {
            Err("callback ran on another thread".into())
        }
    }
}

struct Books {
    accounts: Vec<Arc<dyn Account>>,
    chain: Arc<Registry>,
}

type History = Vec<Pair<String, Vec<Pair<Vec<u8>, PairInt64<String>>>>>;

impl Ledger for Books {
    fn accounts(&self) -> Result<Vec<Arc<dyn Account>>, mp_ipc::Error> {
        Ok(self.accounts.clone())
    }

    fn open(&self, name: String) -> Result<shared_mp::Result<Arc<dyn Account>>, mp_ipc::Error> {
        for account in &self.accounts {
            if account.name()? == name {
                return Ok(shared_mp::Result {
                    value: Some(account.clone()),
                    error: String::new(),
                });
            }
        }
        Ok(shared_mp::Result {
            value: None,
            error: format!("no account {name}"),
        })
    }

    fn migrate(&self, name: String) -> Result<Migration, mp_ipc::Error> {
        let first = self.accounts.first().ok_or("no accounts")?.clone();
        Ok(Migration {
            account: first,
            note: format!("migrated {name}"),
            backups: self.accounts.clone(),
        })
    }

    fn history(&self, mut entries: History) -> Result<History, mp_ipc::Error> {
        entries.reverse();
        Ok(entries)
    }

    fn transpose(&self, rows: Vec<Vec<i32>>) -> Result<Vec<Vec<i32>>, mp_ipc::Error> {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        Ok((0..width)
            .map(|c| rows.iter().filter_map(|r| r.get(c).copied()).collect())
            .collect())
    }

    fn walk(&self, tip: Block) -> Result<LedgerWalkResults, mp_ipc::Error> {
        // Reverse the chain: the last block becomes the head.
        let mut reversed: Option<Box<Block>> = None;
        let mut length = 0;
        let mut next = Some(Box::new(tip));
        while let Some(mut block) = next {
            next = block.next_block.take();
            block.next_block = reversed;
            reversed = Some(block);
            length += 1;
        }
        Ok(LedgerWalkResults {
            result: *reversed.ok_or("empty chain")?,
            length,
        })
    }

    fn ping(&self) -> Result<bool, mp_ipc::Error> {
        Ok(true)
    }

    fn get_version_number(&self) -> Result<i32, mp_ipc::Error> {
        Ok(7)
    }

    fn settle(&self, accounts: Vec<ledger_mp::AccountClient>) -> Result<i64, mp_ipc::Error> {
        accounts.iter().map(|a| a.balance()).sum()
    }

    fn store(&self, migration: Migration) -> Result<String, mp_ipc::Error> {
        let backups: Result<Vec<String>, mp_ipc::Error> =
            migration.backups.iter().map(|b| b.name()).collect();
        Ok(format!(
            "{}: {} [{}]",
            migration.account.name()?,
            migration.note,
            backups?.join(",")
        ))
    }

    fn call(&self, command: String) -> Result<String, LedgerCallError> {
        match command.as_str() {
            "ok" => Ok("done".into()),
            "rpc" => Err(LedgerCallError::RpcError(RpcError {
                code: -32601,
                message: "no such method".into(),
            })),
            "type" => Err(LedgerCallError::TypeError("expected a number".into())),
            "help" => Err(LedgerCallError::HelpResult("call <command>".into())),
            "fail" => Err(LedgerCallError::Error("thrown".into())),
            other => Err(format!("unknown command {other}").into()),
        }
    }

    fn attach(&self, label: String) -> Result<String, mp_ipc::Error> {
        Ok(format!("attached {label}"))
    }

    fn chain(&self) -> Result<Arc<dyn Chain>, mp_ipc::Error> {
        Ok(self.chain.clone())
    }

    fn loader(&self) -> Result<Arc<dyn WalletLoader>, mp_ipc::Error> {
        Ok(Arc::new(Loader {
            accounts: self.accounts.clone(),
        }))
    }

    fn start(&self, client: ChainClientClient) -> Result<String, mp_ipc::Error> {
        client.load()
    }

    fn call_fn(&self) -> Result<String, mp_ipc::Error> {
        Ok("callFn".into())
    }

    fn call_fn_async(&self) -> Result<String, mp_ipc::Error> {
        Ok("callFnAsync".into())
    }

    fn pay(&self, mut outputs: Vec<Output>) -> Result<Vec<Output>, mp_ipc::Error> {
        outputs.reverse();
        for output in &mut outputs {
            if let OutputWhich::To(Destination::Holder(holder)) = &output.which {
                output.which = OutputWhich::To(Destination::Address(holder.name()?));
            }
        }
        Ok(outputs)
    }

    fn describe(&self, name: String) -> Result<Expected<String, RpcError>, mp_ipc::Error> {
        for account in &self.accounts {
            if account.name()? == name {
                return Ok(Expected::Value(format!("{name}: {}", account.balance()?)));
            }
        }
        Ok(Expected::Error(RpcError {
            code: -18,
            message: format!("no account {name}"),
        }))
    }

    fn init_thread_map(&self) -> Result<(), mp_ipc::Error> {
        Ok(())
    }

    fn reject(&self, tip: Block, reason: String) -> Result<(), LedgerRejectError> {
        Err(LedgerRejectError::Error(Rejection {
            hashes: vec![tip.hash.clone()],
            notes: vec![format!("height {:?}", tip.height)],
            reason,
            tip,
        }))
    }

    fn weigh(
        &self,
        p: i32,
        conn: i32,
        cap: i32,
        req: i32,
        imp: i32,
        r: i32,
    ) -> Result<i32, mp_ipc::Error> {
        Ok(p + 2 * conn + 3 * cap + 4 * req + 5 * imp + 6 * r)
    }
}

/// The server's chain.
#[derive(Default)]
struct Registry {
    callbacks: Arc<Callbacks>,
}

/// The registered callbacks, by registration.
#[derive(Default)]
struct Callbacks {
    next: AtomicUsize,
    list: parking_lot::Mutex<Vec<(usize, NotificationsClient)>>,
}

impl Chain for Registry {
    fn handle_notifications(
        &self,
        notifications: NotificationsClient,
    ) -> Result<Arc<dyn Handler>, mp_ipc::Error> {
        let id = self.callbacks.next.fetch_add(1, Ordering::SeqCst);
        self.callbacks.list.lock().push((id, notifications));
        Ok(Arc::new(Registration {
            id,
            callbacks: self.callbacks.clone(),
        }))
    }

    fn notify(&self, height: i32) -> Result<i32, mp_ipc::Error> {
        let callbacks: Vec<NotificationsClient> = self
            .callbacks
            .list
            .lock()
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for callback in &callbacks {
            callback
                .block_connected(height)
                .map_err(|e| e.to_string())?;
        }
        Ok(callbacks.len() as i32)
    }

    fn forget(&self) -> Result<i32, mp_ipc::Error> {
        // Runs on the event loop: the clients are dropped there.
        let gone = std::mem::take(&mut *self.callbacks.list.lock());
        Ok(gone.len() as i32)
    }

    fn find_block(
        &self,
        hash: Vec<u8>,
        block: FoundBlockParam,
    ) -> Result<ChainFindBlockResults, mp_ipc::Error> {
        let found = !hash.is_empty();
        Ok(ChainFindBlockResults {
            block: FoundBlockResult {
                height: if block.want_height {
                    hash.len() as i32
                } else {
                    -1
                },
                hash: if block.want_hash { hash } else { Vec::new() },
                found,
            },
            result: found,
        })
    }
}

/// One registered callback: going (on `destroy`, or when the peer lets the
/// handler go) unregisters it, dropping the server's client of it.
struct Registration {
    id: usize,
    callbacks: Arc<Callbacks>,
}

impl Handler for Registration {
    fn disconnect(&self) -> Result<(), mp_ipc::Error> {
        self.unregister();
        Ok(())
    }
}

impl Registration {
    fn unregister(&self) {
        let gone: Vec<_> = {
            let mut list = self.callbacks.list.lock();
            let (gone, kept) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|(id, _)| *id == self.id);
            *list = kept;
            gone
        };
        // Dropped here, outside the lock: each sends its `destroy`.
        drop(gone);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The server's wallet loader: a `ChainClient` too.
struct Loader {
    accounts: Vec<Arc<dyn Account>>,
}

impl ChainClient for Loader {
    fn load(&self) -> Result<String, mp_ipc::Error> {
        Ok(format!("loaded {} wallets", self.accounts.len()))
    }
}

impl WalletLoader for Loader {
    fn create_wallet(&self, name: String) -> Result<Arc<dyn Account>, mp_ipc::Error> {
        Ok(Arc::new(Mine {
            name,
            balance: 0,
            thread: std::thread::current().id(),
        }))
    }

    fn wallets(&self) -> Result<Vec<Arc<dyn Account>>, mp_ipc::Error> {
        Ok(self.accounts.clone())
    }
}

fn block(height: i32, next: Option<Block>) -> Block {
    Block {
        hash: vec![height as u8; 4],
        height: (height % 2 == 0).then_some(height),
        next_block: next.map(Box::new),
        n_version: height * 10,
        uri: format!("block/{height}"),
    }
}

/// Runs `body` with a client of a served `Books` holding "alice" (5) and
/// "bob" (7); returns how many `destroy` calls the server's accounts got.
fn with_ledger(body: impl FnOnce(&LedgerClient) + Send + 'static) -> usize {
    let destroyed = Arc::new(AtomicUsize::new(0));
    let count = destroyed.clone();
    watchdog(move || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let accounts: Vec<Arc<dyn Account>> = [("alice", 5), ("bob", 7)]
            .into_iter()
            .map(|(name, balance)| {
                Arc::new(Held {
                    name,
                    balance,
                    destroyed: destroyed.clone(),
                }) as Arc<dyn Account>
            })
            .collect();
        let _server = Connection::builder(&server_loop)
            .serve(move |conn| {
                LedgerServer::bootstrap(
                    conn,
                    Arc::new(Books {
                        accounts: accounts.clone(),
                        chain: Arc::new(Registry::default()),
                    }),
                )
            })
            .open(a, Side::Server)
            .unwrap();
        let conn = Connection::builder(&client_loop)
            .open(b, Side::Client)
            .unwrap();
        let ledger = LedgerClient::connect(&conn).unwrap();
        body(&ledger);
        drop(ledger);
        conn.close();
    });
    count.load(Ordering::SeqCst)
}

#[test]
fn a_list_of_interfaces_is_returned_and_each_called_then_destroyed() {
    let destroyed = with_ledger(|ledger| {
        let accounts = ledger.accounts().unwrap();
        let names: Vec<String> = accounts.iter().map(|a| a.name().unwrap()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(accounts[1].balance().unwrap(), 7);
        drop(accounts);
    });
    assert_eq!(destroyed, 2, "each dropped client sends its destroy");
}

#[test]
fn an_interface_in_a_generic_struct_or_its_absence() {
    with_ledger(|ledger| {
        let found = ledger.open("bob").unwrap();
        assert_eq!(found.error, "");
        let bob = found.value.expect("bob is there");
        assert_eq!(bob.balance().unwrap(), 7);
        let missing = ledger.open("carol").unwrap();
        assert!(missing.value.is_none());
        assert_eq!(missing.error, "no account carol");
    });
}

#[test]
fn an_interface_in_a_struct_both_ways() {
    with_ledger(|ledger| {
        let migration = ledger.migrate("w1").unwrap();
        assert_eq!(migration.note, "migrated w1");
        assert_eq!(migration.account.name().unwrap(), "alice");
        let backups: Vec<i64> = migration
            .backups
            .iter()
            .map(|b| b.balance().unwrap())
            .collect();
        assert_eq!(backups, [5, 7]);
        let thread = std::thread::current().id();
        let mine = |name: &str| -> Arc<dyn Account> {
            Arc::new(Mine {
                name: name.into(),
                balance: 1,
                thread,
            })
        };
        // The server calls back into the client's objects, on this thread.
        let sent = Migration {
            account: mine("mine"),
            note: "kept".into(),
            backups: vec![mine("b1"), mine("b2")],
        };
        assert_eq!(ledger.store(&sent).unwrap(), "mine: kept [b1,b2]");
        // A received object passed back is called where it lives.
        assert_eq!(
            ledger.store(&migration).unwrap(),
            "alice: migrated w1 [alice,bob]"
        );
    });
}

#[test]
fn a_list_of_interfaces_is_passed_and_called_back() {
    with_ledger(|ledger| {
        let thread = std::thread::current().id();
        let accounts: Vec<Arc<dyn Account>> = (1..=3)
            .map(|balance| {
                Arc::new(Mine {
                    name: format!("m{balance}"),
                    balance,
                    thread,
                }) as Arc<dyn Account>
            })
            .collect();
        assert_eq!(ledger.settle(&accounts).unwrap(), 6);
        assert_eq!(ledger.settle(&[]).unwrap(), 0);
    });
}

#[test]
fn nested_generic_lists_and_lists_of_lists_round_trip() {
    with_ledger(|ledger| {
        let entry = |k: &str, n: usize| Pair {
            key: k.to_string(),
            value: (0..n)
                .map(|i| Pair {
                    key: vec![i as u8; i],
                    value: PairInt64 {
                        key: format!("{k}{i}"),
                        value: -(i as i64),
                    },
                })
                .collect::<Vec<_>>(),
        };
        let history = vec![entry("a", 0), entry("b", 1), entry("c", 3)];
        let mut expected = history.clone();
        expected.reverse();
        assert_eq!(ledger.history(&history).unwrap(), expected);
        assert_eq!(
            ledger.transpose(&[vec![1, 2, 3], vec![4, 5, 6]]).unwrap(),
            vec![vec![1, 4], vec![2, 5], vec![3, 6]]
        );
        assert_eq!(ledger.transpose(&[]).unwrap(), Vec::<Vec<i32>>::new());
    });
}

#[test]
fn a_recursive_struct_with_optional_and_native_named_fields() {
    with_ledger(|ledger| {
        let chain = block(1, Some(block(2, Some(block(3, None)))));
        let walked = ledger.walk(&chain).unwrap();
        assert_eq!(walked.length, 3);
        assert_eq!(
            walked.result,
            block(3, Some(block(2, Some(block(1, None)))))
        );
        // Absent and present optional fields survive the wire as they are.
        assert_eq!(walked.result.height, None);
        assert_eq!(walked.result.next_block.as_ref().unwrap().height, Some(2));
        assert_eq!(walked.result.n_version, 30);
        assert_eq!(walked.result.uri, "block/3");
    });
}

#[test]
fn void_implicit_and_renamed_members_and_a_thread_map_parameter() {
    with_ledger(|ledger| {
        assert!(ledger.ping().unwrap());
        assert_eq!(ledger.get_version_number().unwrap(), 7);
        assert_eq!(ledger.attach("x").unwrap(), "attached x");
    });
}

#[test]
fn each_exception_result_is_a_variant_the_caller_can_match() {
    with_ledger(|ledger| {
        assert_eq!(ledger.call("ok").unwrap(), "done");
        match ledger.call("rpc") {
            Err(LedgerCallError::RpcError(e)) => assert_eq!(
                e,
                RpcError {
                    code: -32601,
                    message: "no such method".into(),
                }
            ),
            other => panic!("expected an rpcError, got {other:?}"),
        }
        match ledger.call("type") {
            Err(LedgerCallError::TypeError(e)) => assert_eq!(e, "expected a number"),
            other => panic!("expected a typeError, got {other:?}"),
        }
        match ledger.call("help") {
            Err(LedgerCallError::HelpResult(e)) => assert_eq!(e, "call <command>"),
            other => panic!("expected a helpResult, got {other:?}"),
        }
        match ledger.call("fail") {
            Err(LedgerCallError::Error(e)) => assert_eq!(e, "thrown"),
            other => panic!("expected an error, got {other:?}"),
        }
        // An error that is none of them fails the call: a remote failure
        // with the implementation's message, not a disconnect.
        match ledger.call("nope") {
            Err(LedgerCallError::Failed(e @ mp_ipc::Error::Remote { .. })) => {
                assert!(e.to_string().contains("unknown command nope"), "{e}")
            }
            other => panic!("expected a failed call, got {other:?}"),
        }
        let shown = ledger.call("type").unwrap_err().to_string();
        assert_eq!(shown, "Ledger.call typeError: expected a number");
        // The async form gives the same.
        match futures::executor::block_on(ledger.call_async("help")) {
            Err(LedgerCallError::HelpResult(e)) => assert_eq!(e, "call <command>"),
            other => panic!("expected a helpResult, got {other:?}"),
        }
    });
}

#[test]
fn a_large_struct_thrown_alone_comes_back_whole() {
    with_ledger(|ledger| {
        let tip = block(4, Some(block(5, None)));
        let expected = Rejection {
            reason: "stale".into(),
            tip: tip.clone(),
            hashes: vec![tip.hash.clone()],
            notes: vec!["height Some(4)".into()],
        };
        match ledger.reject(&tip, "stale") {
            Err(LedgerRejectError::Error(e)) => assert_eq!(e, expected),
            other => panic!("expected an error result, got {:?}", other.err()),
        }
        match futures::executor::block_on(ledger.reject_async(&tip, "stale")) {
            Err(LedgerRejectError::Error(e)) => assert_eq!(e, expected),
            other => panic!("expected an error result, got {:?}", other.err()),
        }
    });
}

/// A callback of the client's: records each call (and on which thread it
/// ran) and says when its `destroy` arrives.
struct Seen {
    heights: parking_lot::Mutex<Vec<(i32, ThreadId)>>,
    destroyed: std::sync::mpsc::SyncSender<ThreadId>,
}

impl Notifications for Seen {
    fn block_connected(&self, height: i32) -> Result<(), mp_ipc::Error> {
        self.heights
            .lock()
            .push((height, std::thread::current().id()));
        Ok(())
    }

    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        let _ = self.destroyed.try_send(std::thread::current().id());
        Ok(())
    }
}

fn new_seen() -> (Arc<Seen>, std::sync::mpsc::Receiver<ThreadId>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    (
        Arc::new(Seen {
            heights: parking_lot::Mutex::new(Vec::new()),
            destroyed: tx,
        }),
        rx,
    )
}

#[test]
fn a_callback_registered_through_a_handler_is_destroyed_before_the_handler_destroy_returns() {
    with_ledger(|ledger| {
        // `Chain`'s client is `ChainProxyClient`: `ChainClient` is an
        // interface of the same file.
        let chain: ChainProxyClient = ledger.chain().unwrap();
        let (seen, destroyed) = new_seen();
        let handler = chain.handle_notifications(seen.clone()).unwrap();
        assert_eq!(chain.notify(5).unwrap(), 1);
        assert_eq!(chain.notify(6).unwrap(), 1);
        let me = std::thread::current().id();
        assert_eq!(
            *seen.heights.lock(),
            [(5, me), (6, me)],
            "callbacks run on the waiting thread"
        );
        // The server drops the registration on the thread `destroy` runs
        // on, before it replies: the callback's own `destroy` has come
        // back to this thread by the time this returns.
        handler.destroy().unwrap();
        assert_eq!(
            destroyed.try_recv(),
            Ok(me),
            "the callback was destroyed, on this thread, before the handler's destroy returned"
        );
        assert_eq!(chain.notify(7).unwrap(), 0, "unregistered");
        // Dropping the handler's client instead does the same.
        let (seen, destroyed) = new_seen();
        let handler = chain.handle_notifications(seen).unwrap();
        drop(handler);
        assert_eq!(destroyed.try_recv(), Ok(me));
        assert_eq!(chain.notify(8).unwrap(), 0);
    });
}

#[test]
fn a_callback_dropped_on_the_event_loop_still_gets_its_destroy() {
    with_ledger(|ledger| {
        let chain = ledger.chain().unwrap();
        let (seen, destroyed) = new_seen();
        let handler = chain.handle_notifications(seen).unwrap();
        // `forget` runs on the server's event loop and drops the callback's
        // client there: its `destroy` is sent without waiting.
        assert_eq!(chain.forget().unwrap(), 1);
        assert!(
            destroyed.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the callback's destroy arrived"
        );
        drop(handler);
        assert_eq!(chain.notify(1).unwrap(), 0);
    });
}

/// A `ChainClient` of the client's own, passed where the base is wanted.
struct Mine2;

impl ChainClient for Mine2 {
    fn load(&self) -> Result<String, mp_ipc::Error> {
        Ok("mine loaded".into())
    }
}

fn load_through(client: &dyn ChainClient) -> String {
    client.load().unwrap()
}

#[test]
fn a_derived_interface_serves_and_calls_its_base_methods_and_passes_as_its_base() {
    with_ledger(|ledger| {
        let loader = ledger.loader().unwrap();
        // A base method on the derived client, and a derived one.
        assert_eq!(loader.load().unwrap(), "loaded 2 wallets");
        assert_eq!(
            loader.create_wallet("carol").unwrap().name().unwrap(),
            "carol"
        );
        let names: Vec<String> = loader
            .wallets()
            .unwrap()
            .iter()
            .map(|w| w.name().unwrap())
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        // The derived client implements the base trait.
        assert_eq!(load_through(&loader), "loaded 2 wallets");
        // Passed where a `ChainClient` is wanted: the server calls it back.
        assert_eq!(
            ledger.start(Arc::new(loader.clone())).unwrap(),
            "loaded 2 wallets"
        );
        assert_eq!(ledger.start(Arc::new(Mine2)).unwrap(), "mine loaded");
    });
}

#[test]
fn an_output_parameter_whose_result_type_differs_from_its_parameter_type() {
    with_ledger(|ledger| {
        let chain = ledger.chain().unwrap();
        let found = chain
            .find_block(
                b"abc",
                &FoundBlockParam {
                    want_hash: true,
                    want_height: true,
                },
            )
            .unwrap();
        assert_eq!(
            found,
            ChainFindBlockResults {
                block: FoundBlockResult {
                    hash: b"abc".to_vec(),
                    height: 3,
                    found: true,
                },
                result: true,
            }
        );
        let missing = chain
            .find_block(
                b"",
                &FoundBlockParam {
                    want_hash: false,
                    want_height: true,
                },
            )
            .unwrap();
        assert!(!missing.result && !missing.block.found);
        assert_eq!(missing.block.height, 0);
    });
}

#[test]
fn names_that_collide_with_generated_ones_are_kept_apart() {
    with_ledger(|ledger| {
        assert_eq!(ledger.call_fn().unwrap(), "callFn");
        assert_eq!(ledger.call_fn_async().unwrap(), "callFnAsync");
        // `callFn`'s async variant yields its name to the declared method.
        assert_eq!(
            futures::executor::block_on(ledger.call_fn_async_()).unwrap(),
            "callFn"
        );
        assert_eq!(
            futures::executor::block_on(ledger.call_fn_async_async()).unwrap(),
            "callFnAsync"
        );
        // Parameters named like the generated code's locals.
        assert_eq!(
            ledger.weigh(1, 2, 3, 4, 5, 6).unwrap(),
            1 + 4 + 9 + 16 + 25 + 36
        );
    });
}

#[test]
fn unions_and_groups_map_to_enums_and_structs_both_ways() {
    with_ledger(|ledger| {
        let thread = std::thread::current().id();
        let output = |amount: i64, which: OutputWhich, spend: OutputSpend| Output {
            amount,
            label: OutputLabel {
                text: format!("out{amount}"),
                color: amount as u8,
            },
            spend,
            which,
        };
        let sent = vec![
            output(
                1,
                OutputWhich::To(Destination::Address("addr".into())),
                OutputSpend::Now,
            ),
            output(
                2,
                OutputWhich::To(Destination::Script(vec![0x51, 0x87])),
                OutputSpend::After(144),
            ),
            output(3, OutputWhich::To(Destination::Burn), OutputSpend::Now),
            output(4, OutputWhich::Change, OutputSpend::After(0)),
            // An object in a union: the server asks it its name (a callback
            // to this thread) and answers with an address.
            output(
                5,
                OutputWhich::To(Destination::Holder(Arc::new(Mine {
                    name: "mine".into(),
                    balance: 0,
                    thread,
                }))),
                OutputSpend::Now,
            ),
        ];
        let back = ledger.pay(&sent).unwrap();
        let amounts: Vec<i64> = back.iter().map(|o| o.amount).collect();
        assert_eq!(amounts, [5, 4, 3, 2, 1]);
        let labels: Vec<(String, u8)> = back
            .iter()
            .map(|o| (o.label.text.clone(), o.label.color))
            .collect();
        assert_eq!(labels[0], ("out5".to_string(), 5));
        assert_eq!(labels[4], ("out1".to_string(), 1));
        let whiches: Vec<String> = back
            .iter()
            .map(|o| match &o.which {
                OutputWhich::To(Destination::Address(a)) => format!("address {a}"),
                OutputWhich::To(Destination::Script(s)) => format!("script {s:?}"),
                OutputWhich::To(Destination::Burn) => "burn".into(),
                OutputWhich::To(Destination::Holder(_)) => "holder".into(),
                OutputWhich::Change => "change".into(),
            })
            .collect();
        assert_eq!(
            whiches,
            [
                "address mine",
                "change",
                "burn",
                "script [81, 135]",
                "address addr"
            ]
        );
        let spends: Vec<OutputSpend> = back.iter().map(|o| o.spend.clone()).collect();
        assert_eq!(
            spends,
            [
                OutputSpend::Now,
                OutputSpend::After(0),
                OutputSpend::Now,
                OutputSpend::After(144),
                OutputSpend::Now
            ]
        );
        // A plain union's default is its first member; a group's, its fields'.
        assert_eq!(OutputSpend::default(), OutputSpend::Now);
        assert_eq!(OutputLabel::default().color, 7);
    });
}

#[test]
fn a_generic_union_is_a_generic_enum() {
    with_ledger(|ledger| {
        assert_eq!(
            ledger.describe("bob").unwrap(),
            Expected::Value("bob: 7".into())
        );
        assert_eq!(
            ledger.describe("carol").unwrap(),
            Expected::Error(RpcError {
                code: -18,
                message: "no account carol".into(),
            })
        );
    });
}

#[test]
fn a_thread_map_exchanged_by_a_method_other_than_construct() {
    watchdog(|| {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let _server = Connection::builder(&server_loop)
            .serve(|conn| {
                LedgerServer::bootstrap(
                    conn,
                    Arc::new(Books {
                        accounts: Vec::new(),
                        chain: Arc::new(Registry::default()),
                    }),
                )
            })
            .open(a, Side::Server)
            .unwrap();
        let conn = Connection::builder(&client_loop)
            .open(b, Side::Client)
            .unwrap();
        // The bootstrap object taken as is: no `construct`, no thread maps.
        let ledger =
            LedgerClient::from_remote(conn.bootstrap::<ledger_capnp::ledger::Client>().unwrap());
        let before = ledger.ping().unwrap_err().to_string();
        assert!(before.contains("ThreadMap"), "{before}");
        ledger.init_thread_map().unwrap();
        // Now calls map to server threads, and callbacks come back here.
        assert!(ledger.ping().unwrap());
        let mine: Arc<dyn Account> = Arc::new(Mine {
            name: "m".into(),
            balance: 4,
            thread: std::thread::current().id(),
        });
        assert_eq!(ledger.settle(&[mine]).unwrap(), 4);
        drop(ledger);
        conn.close();
    });
}
