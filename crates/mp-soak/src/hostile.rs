//! The hostile half of the soak: a peer that speaks plain capnp-rpc (no
//! mp-ipc client code, so it can send what our client never would) to the
//! round's calculator child over a connection of its own, on the child's
//! listening path, and tries one of seven ways to make the child hold or do
//! too much — or, as the baseline the others are measured against, the
//! eighth kind, `none`: it does nothing for a while.
//!
//! Owns the raw peer ([`RawPeer`]), the attacks ([`Attack`]), how each must
//! end ([`Outcome`], or a reason it ended unexpectedly), the limits the
//! child's listener serves the hostile peer with ([`listen_options`]), and
//! the tally of outcomes ([`Tally`]). The attack's run, from its connect to
//! its hang-up, is the round's latency window (see [`crate::latency`]).
//! Every wait in it is bounded: an attack
//! runs under [`ATTACK_LIMIT`] on a current-thread tokio runtime of the
//! calling thread, and all of its sockets are closed before [`run`]
//! returns. Nothing the peer sends is unwrapped: every reply is checked,
//! and a reply that breaks the attack's rule is reported as unexpected.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::{twoparty, RpcSystem};
use mp_ipc::listener::ListenOptions;
use mp_ipc::proxy_capnp::{thread, thread_map};
use mp_ipc::{CallSite, Error, Limits};
use mp_test_calc::calc_capnp::{calc_init, calculator, callback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::latency::Window;
use crate::Rng;

/// Longest an attack may run, from its connect to its hang-up; past it the
/// attack is abandoned (its sockets closed) and counted as unexpected.
pub const ATTACK_LIMIT: Duration = Duration::from_secs(20);
/// How long a call whose `Context.thread` never resolves may wait on the
/// hostile connection (the child's listener has it shorter than the
/// default 30 s so that the attack ends within a round).
pub const CONTEXT_TIMEOUT: Duration = Duration::from_millis(250);
/// Most objects the child serves to the hostile connection at once (lower
/// than the default 65,536 so that hoarding meets the limit within a
/// round).
pub const HOARD_CAP: usize = 512;
/// Bound for "eventually" waits inside an attack (releases arriving, a
/// blocked thread serving again).
const PATIENCE: Duration = Duration::from_secs(5);

/// What the child's listener serves the hostile peer with: the default
/// limits but for [`CONTEXT_TIMEOUT`] and [`HOARD_CAP`].
pub fn listen_options() -> ListenOptions {
    ListenOptions {
        limits: Limits {
            context_timeout: CONTEXT_TIMEOUT,
            max_exported_objects: HOARD_CAP,
            ..Limits::default()
        },
        ..ListenOptions::default()
    }
}

/// One way of attacking the child; each round runs one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// The kind `none`: no connection, no attack; the hostile thread only
    /// holds the latency window open for as long as an attack does, so
    /// that the clients' latency without an attack is measured over the
    /// same part of the round.
    Baseline,
    /// A callback answering each `Callback.step` by calling
    /// `Calculator.countdown(n + 1)` back, alternating the two `Thread`
    /// handles of one server thread: must be refused naming
    /// `Limits::max_nesting`.
    DeepNesting,
    /// A thread blocked in `sleep`, many `countdown` calls carrying a
    /// callback queued behind it and cancelled at once: their parameters
    /// must be released and the thread must serve again.
    CancelFlood,
    /// Calls whose `Context.thread` is a promise never resolved: refused
    /// naming `Limits::context_timeout`, or abandoned by a hang-up.
    NeverResolvedThread,
    /// `makeThread` past the per-connection cap, all at once: the ones
    /// past it refused naming `Limits::max_threads`; hang-up with some of
    /// the threads blocked in a call.
    ThreadFlood,
    /// `makeCalculator` again and again, nothing released: refused naming
    /// `Limits::max_exported_objects`, the objects held still served.
    Hoarding,
    /// A 1 MiB thread name: refused naming `Limits::max_name_bytes`.
    LongName,
    /// Raw bytes on a fresh connection — garbage, a frame header
    /// announcing a huge message, or half a message — then silence until
    /// the peer closes.
    Garbage,
}

impl Attack {
    /// Every kind, in the order of the summary table (the baseline first).
    pub const ALL: [Attack; 8] = [
        Attack::Baseline,
        Attack::DeepNesting,
        Attack::CancelFlood,
        Attack::NeverResolvedThread,
        Attack::ThreadFlood,
        Attack::Hoarding,
        Attack::LongName,
        Attack::Garbage,
    ];

    /// Its name in the summary table.
    pub fn label(self) -> &'static str {
        match self {
            Attack::Baseline => "none",
            Attack::DeepNesting => "deep nesting",
            Attack::CancelFlood => "cancel flood",
            Attack::NeverResolvedThread => "never-resolved Context.thread",
            Attack::ThreadFlood => "makeThread flood",
            Attack::Hoarding => "hoarding returned objects",
            Attack::LongName => "1 MiB thread name",
            Attack::Garbage => "garbage bytes",
        }
    }

    /// Its place in [`Attack::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Picks attacks at random, each kind (`none` too) once per eight rounds
/// (a shuffled bag), so that a short soak meets every kind.
#[derive(Default)]
pub struct AttackBag(Vec<Attack>);

impl AttackBag {
    /// The next attack.
    pub fn next(&mut self, rng: &mut Rng) -> Attack {
        if self.0.is_empty() {
            self.0 = Attack::ALL.to_vec();
            for i in (1..self.0.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                self.0.swap(i, j);
            }
        }
        self.0.pop().unwrap_or(Attack::Garbage)
    }
}

/// How an attack ended, when it ended as it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The child refused it with the error the attack must meet.
    Refused,
    /// The child closed the connection.
    Disconnected,
    /// It ran to its end without a refusal, and the child kept serving.
    Completed,
}

/// An attack's end: an [`Outcome`], or why it was unexpected (a reply
/// that breaks the attack's rule, a hang past [`ATTACK_LIMIT`]).
pub type Verdict = Result<Outcome, String>;

/// Attacks run per kind, and how they ended.
#[derive(Default)]
pub struct Tally {
    /// Per kind: refused, disconnected, completed, unexpected.
    counts: [[u64; 4]; Attack::ALL.len()],
}

impl Tally {
    /// Counts one attack of `attack` that ended with `verdict`.
    pub fn record(&mut self, attack: Attack, verdict: &Verdict) {
        let column = match verdict {
            Ok(Outcome::Refused) => 0,
            Ok(Outcome::Disconnected) => 1,
            Ok(Outcome::Completed) => 2,
            Err(_) => 3,
        };
        self.counts[attack.index()][column] += 1;
    }

    /// Attacks run, all kinds (`none` included: one per round).
    pub fn ran(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Attacks that ended unexpectedly, all kinds.
    pub fn unexpected(&self) -> u64 {
        self.counts.iter().map(|c| c[3]).sum()
    }

    /// The summary table's rows: a total, then one per kind.
    pub fn rows(&self) -> Vec<String> {
        let row = |label: &str, c: [u64; 4]| {
            format!(
                "| {label} | {} / {} / {} / {} / {} |",
                c.iter().sum::<u64>(),
                c[0],
                c[1],
                c[2],
                c[3]
            )
        };
        let mut total = [0; 4];
        for c in &self.counts {
            for (t, v) in total.iter_mut().zip(c) {
                *t += v;
            }
        }
        let mut rows = vec![row(
            "hostile attacks, all kinds (none included): ran / refused with an error / disconnected / completed / unexpected",
            total,
        )];
        rows.extend(
            Attack::ALL
                .iter()
                .map(|a| row(&format!("hostile: {}", a.label()), self.counts[a.index()])),
        );
        rows
    }
}

/// Runs `attack` against the calculator listening on `path`, on the
/// calling thread, and hangs up. Bounded by [`ATTACK_LIMIT`]. `window` is
/// open from just before its connect to just after its sockets are closed;
/// for [`Attack::Baseline`] it is open for `baseline`, and nothing
/// connects.
pub fn run(path: &Path, attack: Attack, seed: u64, window: &Window, baseline: Duration) -> Verdict {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not build the raw peer's runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let mut rng = Rng(seed | 1);
    let mut opened = None;
    let verdict = local.block_on(&runtime, async {
        opened = Some(window.open());
        let attack_run = async {
            match attack {
                Attack::Baseline => {
                    tokio::time::sleep(baseline).await;
                    Ok(Outcome::Completed)
                }
                Attack::DeepNesting => deep_nesting(path).await,
                Attack::CancelFlood => cancel_flood(path, &mut rng).await,
                Attack::NeverResolvedThread => never_resolved_thread(path, &mut rng).await,
                Attack::ThreadFlood => thread_flood(path, &mut rng).await,
                Attack::Hoarding => hoarding(path).await,
                Attack::LongName => long_name(path).await,
                Attack::Garbage => garbage(path, &mut rng).await,
            }
        };
        match tokio::time::timeout(ATTACK_LIMIT, attack_run).await {
            Ok(verdict) => verdict,
            Err(_) => Err(format!("HANG: did not end within {ATTACK_LIMIT:?}")),
        }
    });
    // Dropping the set and the runtime drops every task the attack left
    // (its RPC session among them): its sockets are closed here.
    drop(local);
    drop(runtime);
    if let Some(opened) = opened {
        window.close(opened);
    }
    verdict
}

// ---------------------------------------------------------------------------
// The raw peer.
// ---------------------------------------------------------------------------

/// A `ThreadMap` the raw peer offers in `construct`; it refuses everything.
struct RefusingThreadMap;
impl thread_map::Server for RefusingThreadMap {}

/// A raw capnp-rpc session with the child's calculator, set up the way
/// every client must (`CalcInit.construct`). Lives inside [`run`].
struct RawPeer {
    /// The child's bootstrap object.
    init: calc_init::Client,
    /// The child's `ThreadMap`, from `construct`.
    thread_map: thread_map::Client,
    /// The task driving the RPC system; aborting it ends the session.
    rpc_task: tokio::task::JoinHandle<()>,
}

impl RawPeer {
    /// Connects to `path` and exchanges thread maps.
    async fn connect(path: &Path) -> Result<RawPeer, String> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| format!("connecting to {}: {e}", path.display()))?;
        let (reader, writer) = stream.into_split();
        let network = twoparty::VatNetwork::new(
            futures::io::BufReader::new(reader.compat()),
            futures::io::BufWriter::new(writer.compat_write()),
            Side::Client,
            capnp::message::ReaderOptions::new(),
        );
        let mut rpc = RpcSystem::new(Box::new(network), None);
        let init: calc_init::Client = rpc.bootstrap(Side::Server);
        let rpc_task = tokio::task::spawn_local(async move {
            let _ = rpc.await;
        });
        let mut req = init.construct_request();
        req.get()
            .set_thread_map(capnp_rpc::new_client(RefusingThreadMap));
        let thread_map = async {
            let reply = req.send().promise.await?;
            reply.get()?.get_thread_map()
        }
        .await
        .map_err(|e| format!("CalcInit.construct: {e}"))?;
        Ok(RawPeer {
            init,
            thread_map,
            rpc_task,
        })
    }

    /// `ThreadMap.makeThread(name)`.
    async fn make_thread(&self, name: &str) -> Result<thread::Client, capnp::Error> {
        let mut req = self.thread_map.make_thread_request();
        req.get().set_name(name);
        let reply = req.send().promise.await?;
        reply.get()?.get_result()
    }

    /// `CalcInit.makeCalculator` with `thread` as its context.
    async fn make_calculator(
        &self,
        thread: &thread::Client,
    ) -> Result<calculator::Client, capnp::Error> {
        self.make_calculator_sent(thread).await
    }

    /// Sends `CalcInit.makeCalculator` now; the reply when awaited.
    fn make_calculator_sent(
        &self,
        thread: &thread::Client,
    ) -> impl Future<Output = Result<calculator::Client, capnp::Error>> {
        let mut req = self.init.make_calculator_request();
        req.get().init_context().set_thread(thread.clone());
        let promise = req.send().promise;
        async move { promise.await?.get()?.get_result() }
    }

    /// A thread made by this connection and a calculator on it; an
    /// unexpected verdict if the child refuses either.
    async fn thread_and_calculator(
        &self,
        name: &str,
    ) -> Result<(thread::Client, calculator::Client), String> {
        let thread = self
            .make_thread(name)
            .await
            .map_err(|e| format!("makeThread refused to a hostile peer under its cap: {e}"))?;
        let calc = self
            .make_calculator(&thread)
            .await
            .map_err(|e| format!("makeCalculator refused to a hostile peer under its cap: {e}"))?;
        Ok((thread, calc))
    }

    /// Ends the session: the RPC system and its socket are dropped.
    async fn hang_up(self) {
        self.rpc_task.abort();
        let _ = self.rpc_task.await;
    }
}

/// `Calculator.add(a, b)` on `thread`.
async fn add(
    calc: &calculator::Client,
    thread: &thread::Client,
    a: i64,
    b: i64,
) -> Result<i64, capnp::Error> {
    let mut req = calc.add_request();
    req.get().init_context().set_thread(thread.clone());
    req.get().set_a(a);
    req.get().set_b(b);
    Ok(req.send().promise.await?.get()?.get_result())
}

/// `Calculator.sleep(millis)` on `thread`, sent now; the reply when awaited.
fn sleep_sent(
    calc: &calculator::Client,
    thread: &thread::Client,
    millis: u32,
) -> impl Future<Output = Result<(), capnp::Error>> {
    let mut req = calc.sleep_request();
    req.get().init_context().set_thread(thread.clone());
    req.get().set_millis(millis);
    let promise = req.send().promise;
    async move { promise.await.map(drop) }
}

/// The attacked thread still answers a plain call correctly.
async fn still_serves(calc: &calculator::Client, thread: &thread::Client) -> Result<(), String> {
    match add(calc, thread, 20, 22).await {
        Ok(42) => Ok(()),
        Ok(other) => Err(format!("after the attack, 20 + 22 = {other}")),
        Err(e) => Err(format!("after the attack, a plain call failed: {e}")),
    }
}

/// Lets the session run for a moment (messages out, replies in).
async fn pump() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// A refusal the attack must meet: a limit or bad-request error whose
/// message names `limit`. Anything else is unexpected.
fn refused_naming(site: CallSite, e: capnp::Error, limit: &str) -> Verdict {
    let raw = e.to_string();
    match Error::from_capnp(site, e) {
        Error::LimitReached { message, .. } | Error::BadRequest { message, .. }
            if message.contains(limit) =>
        {
            Ok(Outcome::Refused)
        }
        _ => Err(format!(
            "{site}: expected a refusal naming {limit}, got `{raw}`"
        )),
    }
}

// ---------------------------------------------------------------------------
// 1. Deep nesting through both Thread handles of one server thread.
// ---------------------------------------------------------------------------

/// Answers each `step` by calling `countdown(n + 1)` back into the child,
/// naming alternately the `Thread` from `makeThread` and the
/// `callbackThread` the child sent with the step: two handles of one
/// server thread.
struct Reentrant {
    calc: calculator::Client,
    made: thread::Client,
    /// This callback's own capability (set after it is made, cleared when
    /// the attack ends, to break the cycle).
    me: RefCell<Option<callback::Client>>,
    /// The deepest `n` seen.
    deepest: Rc<Cell<u32>>,
}

impl callback::Server for Reentrant {
    async fn step(
        self: Rc<Self>,
        params: callback::StepParams,
        mut results: callback::StepResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let n = p.get_n();
        self.deepest.set(self.deepest.get().max(n));
        let thread = if n % 2 == 0 {
            self.made.clone()
        } else {
            p.get_context()?.get_callback_thread()?
        };
        let me = self
            .me
            .borrow()
            .clone()
            .ok_or_else(|| capnp::Error::failed("the attack is over".into()))?;
        let mut req = self.calc.countdown_request();
        req.get().init_context().set_thread(thread);
        req.get().set_n(n + 1);
        req.get().set_callback(me);
        let reply = req.send().promise.await?;
        results.get().set_result(reply.get()?.get_result());
        Ok(())
    }
}

async fn deep_nesting(path: &Path) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let (made, calc) = peer.thread_and_calculator("reentrant").await?;
    let deepest = Rc::new(Cell::new(0));
    let reentrant = Rc::new(Reentrant {
        calc: calc.clone(),
        made: made.clone(),
        me: RefCell::new(None),
        deepest: deepest.clone(),
    });
    let cb: callback::Client = capnp_rpc::new_client_from_rc(reentrant.clone());
    *reentrant.me.borrow_mut() = Some(cb.clone());
    let mut req = calc.countdown_request();
    req.get().init_context().set_thread(made.clone());
    req.get().set_n(0);
    req.get().set_callback(cb);
    let result =
        async { Ok::<_, capnp::Error>(req.send().promise.await?.get()?.get_result()) }.await;
    *reentrant.me.borrow_mut() = None;
    let verdict = match result {
        Ok(n) => Err(format!(
            "nesting to {n} succeeded: it must be refused at Limits::max_nesting"
        )),
        Err(e) if e.to_string().contains("Limits::max_nesting") => Ok(Outcome::Refused),
        Err(e) => Err(format!(
            "ended at step {} with `{e}`, not an error naming Limits::max_nesting",
            deepest.get()
        )),
    };
    let verdict = match verdict {
        Ok(outcome) => still_serves(&calc, &made).await.map(|()| outcome),
        Err(e) => Err(e),
    };
    peer.hang_up().await;
    verdict
}

// ---------------------------------------------------------------------------
// 2. A flood of calls cancelled while their thread is blocked.
// ---------------------------------------------------------------------------

/// A callback passed as a call's parameter; counts its release (the child
/// dropping its reference releases it here).
struct Tracked(Rc<Cell<usize>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

impl callback::Server for Tracked {}

async fn cancel_flood(path: &Path, rng: &mut Rng) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let (thread, calc) = peer.thread_and_calculator("flooded").await?;
    let blocker = sleep_sent(&calc, &thread, 50 + rng.below(150) as u32);
    // Under `Limits::max_queued_calls` (1024) with the blocker: none of
    // these is refused.
    let count = 64 + rng.below(449) as usize;
    let released = Rc::new(Cell::new(0));
    let flood: Vec<_> = (0..count)
        .map(|_| {
            let mut req = calc.countdown_request();
            req.get().init_context().set_thread(thread.clone());
            req.get().set_n(1);
            req.get()
                .set_callback(capnp_rpc::new_client(Tracked(released.clone())));
            req.send().promise
        })
        .collect();
    pump().await;
    // Cancel them all at once (capnp-rpc sends a `Finish` for each).
    drop(flood);
    let verdict = async {
        blocker
            .await
            .map_err(|e| format!("the blocking sleep failed: {e}"))?;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while released.get() < count && tokio::time::Instant::now() < deadline {
            pump().await;
        }
        if released.get() < count {
            return Err(format!(
                "{} of {count} cancelled calls' callbacks released within {PATIENCE:?}",
                released.get()
            ));
        }
        still_serves(&calc, &thread).await?;
        Ok(Outcome::Completed)
    }
    .await;
    peer.hang_up().await;
    verdict
}

// ---------------------------------------------------------------------------
// 3. Calls whose Context.thread is a promise never resolved.
// ---------------------------------------------------------------------------

async fn never_resolved_thread(path: &Path, rng: &mut Rng) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let (thread, calc) = peer.thread_and_calculator("real").await?;
    let never: thread::Client =
        capnp_rpc::new_future_client(futures::future::pending::<capnp::Result<thread::Client>>());
    let parked: Vec<_> = (0..2 + rng.below(5))
        .map(|_| sleep_sent(&calc, &never, 0))
        .collect();
    if rng.below(3) == 0 {
        // Hang up with the calls still parked: the child must drop them.
        pump().await;
        drop(parked);
        peer.hang_up().await;
        return Ok(Outcome::Completed);
    }
    let verdict = async {
        for outcome in futures::future::join_all(parked).await {
            match outcome {
                Ok(()) => return Err("a call on a never-resolved thread succeeded".to_string()),
                Err(e) => refused_naming(
                    CallSite::new("Calculator", "sleep"),
                    e,
                    "Limits::context_timeout",
                )?,
            };
        }
        still_serves(&calc, &thread).await?;
        Ok(Outcome::Refused)
    }
    .await;
    peer.hang_up().await;
    verdict
}

// ---------------------------------------------------------------------------
// 4. makeThread past the per-connection cap.
// ---------------------------------------------------------------------------

async fn thread_flood(path: &Path, rng: &mut Rng) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let cap = listen_options().limits.max_threads;
    let asked = cap + 8 + rng.below(24) as usize;
    let replies = futures::future::join_all((0..asked).map(|i| {
        let mut req = peer.thread_map.make_thread_request();
        req.get().set_name(format!("flood-{i}").as_str());
        let promise = req.send().promise;
        async move { promise.await?.get()?.get_result() }
    }))
    .await;
    let mut threads = Vec::new();
    let mut refused = 0;
    let site = CallSite::new("ThreadMap", "makeThread");
    let verdict = async {
        for reply in replies {
            match reply {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    refused_naming(site, e, "Limits::max_threads")?;
                    refused += 1;
                }
            }
        }
        if threads.len() > cap {
            return Err(format!(
                "{} threads made past a cap of {cap}",
                threads.len()
            ));
        }
        if refused == 0 {
            return Err(format!("{asked} makeThread calls, none refused"));
        }
        let first = threads
            .first()
            .ok_or("every makeThread refused, even under the cap")?;
        let calc = peer
            .make_calculator(first)
            .await
            .map_err(|e| format!("makeCalculator on a flooded connection: {e}"))?;
        still_serves(&calc, first).await?;
        // Hang up with a few threads blocked in a call: they count until
        // they return, then stop.
        let sleeping: Vec<_> = threads
            .iter()
            .take(4)
            .map(|t| sleep_sent(&calc, t, 10 + rng.below(90) as u32))
            .collect();
        pump().await;
        drop(sleeping);
        Ok(Outcome::Refused)
    }
    .await;
    drop(threads);
    peer.hang_up().await;
    verdict
}

// ---------------------------------------------------------------------------
// 5. Hoarding returned objects.
// ---------------------------------------------------------------------------

async fn hoarding(path: &Path) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let (thread, first) = peer.thread_and_calculator("hoarder").await?;
    let mut held = vec![first];
    let mut refusal = None;
    // In pipelined batches, until refused (the thread map, the thread and
    // the calculators all count, so the cap is met under HOARD_CAP
    // calculators).
    while refusal.is_none() && held.len() <= HOARD_CAP {
        let batch: Vec<_> = (0..32)
            .map(|_| peer.make_calculator_sent(&thread))
            .collect();
        for reply in futures::future::join_all(batch).await {
            match reply {
                Ok(calc) => held.push(calc),
                Err(e) => refusal = Some(e),
            }
        }
    }
    let verdict = async {
        let e = refusal.ok_or(format!(
            "{} objects handed out past a cap of {HOARD_CAP}",
            held.len()
        ))?;
        let outcome = refused_naming(
            CallSite::new("CalcInit", "makeCalculator"),
            e,
            "Limits::max_exported_objects",
        )?;
        // The objects held are still served.
        for calc in [held.first(), held.last()].into_iter().flatten() {
            still_serves(calc, &thread).await?;
        }
        Ok(outcome)
    }
    .await;
    // Hang up holding them all.
    peer.hang_up().await;
    drop(held);
    verdict
}

// ---------------------------------------------------------------------------
// 6. A 1 MiB thread name.
// ---------------------------------------------------------------------------

async fn long_name(path: &Path) -> Verdict {
    let peer = RawPeer::connect(path).await?;
    let verdict = async {
        let outcome = match peer.make_thread(&"n".repeat(1 << 20)).await {
            Ok(_) => return Err("a 1 MiB thread name was accepted".to_string()),
            Err(e) => refused_naming(
                CallSite::new("ThreadMap", "makeThread"),
                e,
                "Limits::max_name_bytes",
            )?,
        };
        let (thread, calc) = peer.thread_and_calculator("after-long-name").await?;
        still_serves(&calc, &thread).await?;
        Ok(outcome)
    }
    .await;
    peer.hang_up().await;
    verdict
}

// ---------------------------------------------------------------------------
// 7. Raw bytes that are not a session.
// ---------------------------------------------------------------------------

async fn garbage(path: &Path, rng: &mut Rng) -> Verdict {
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| format!("connecting to {}: {e}", path.display()))?;
    let bytes = match rng.below(3) {
        // Anything at all.
        0 => {
            let len = 1 + rng.below(64 << 10) as usize;
            random_bytes(rng, len)
        }
        // One segment of 2^28 words (2 GiB) announced, nothing after.
        1 => [0u32.to_le_bytes(), (1u32 << 28).to_le_bytes()].concat(),
        // One segment of 1 MiB announced, half of it sent.
        _ => {
            let mut frame = [0u32.to_le_bytes(), (1u32 << 17).to_le_bytes()].concat();
            frame.extend(random_bytes(rng, 512 << 10));
            frame
        }
    };
    let moment = Duration::from_millis(100 + rng.below(200));
    // A child that stops reading makes the write wait: that is
    // backpressure, not a failure, so the write gets the moment too.
    match tokio::time::timeout(moment, stream.write_all(&bytes)).await {
        Err(_) => return Ok(Outcome::Completed),
        Ok(Err(_)) => return Ok(Outcome::Disconnected),
        Ok(Ok(())) => {}
    }
    // Silence; the child may answer (an abort message) and close.
    let deadline = tokio::time::Instant::now() + moment;
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Err(_) => return Ok(Outcome::Completed),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(Outcome::Disconnected),
            Ok(Ok(_)) => {}
        }
    }
}

/// `len` bytes from `rng`.
fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len.div_ceil(8))
        .flat_map(|_| rng.next().to_le_bytes())
        .take(len)
        .collect()
}
