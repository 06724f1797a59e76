//! Call metrics, through the [`metrics`] facade: what each `Interface.method`
//! call costs and how it ends, on the side that makes it and on the side that
//! serves it. mp-ipc records; which recorder or exporter (if any) receives
//! the figures is the program's choice.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `mp_ipc_calls_total` | counter | `side`, `interface`, `method` |
//! | `mp_ipc_call_errors_total` | counter | the same, and `kind` ([`Error::kind`]) |
//! | `mp_ipc_call_seconds` | histogram | `side`, `interface`, `method` |
//! | `mp_ipc_calls_in_flight` | gauge | `side`, `interface`, `method` |
//!
//! `side` is `client` for a call this process made and `server` for one it
//! served. A call counts once in `calls_total` when it starts and once in
//! `call_seconds` when it ends, however it ends; `call_errors_total` counts
//! the ones that failed, by kind. A call that ends without an outcome (the
//! caller dropped its future, the peer sent `Finish`, the loop dropped it at
//! shutdown) is an error of kind `cancelled`.
//!
//! Every [`Measured`] ends exactly once, by [`Measured::end`] or by its
//! `Drop`, so `in_flight` goes back down for every call that went up,
//! whatever path the call took. Keeps invariant 5: the cache of handles
//! is per thread and read only there; what travels with a call to another
//! thread is an `Arc` of `Send` handles.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Label};
use rustc_hash::FxHashMap;

use crate::error::{CallSite, Error};

/// Calls started (counter).
pub const CALLS: &str = "mp_ipc_calls_total";
/// Calls that failed, by `kind` (counter).
pub const CALL_ERRORS: &str = "mp_ipc_call_errors_total";
/// Time from start to outcome, in seconds (histogram).
pub const CALL_SECONDS: &str = "mp_ipc_call_seconds";
/// Calls started and not yet ended (gauge).
pub const CALLS_IN_FLIGHT: &str = "mp_ipc_calls_in_flight";

/// The error kind of a call that ended without an outcome.
pub const CANCELLED: &str = "cancelled";

/// Which end of a call this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CallSide {
    /// This process made the call.
    Client,
    /// This process served it.
    Server,
}

impl CallSide {
    fn label(self) -> &'static str {
        match self {
            CallSide::Client => "client",
            CallSide::Server => "server",
        }
    }
}

/// One call site's handles on one side, registered with the recorder.
struct SiteMeters {
    calls: Counter,
    in_flight: Gauge,
    seconds: Histogram,
}

impl SiteMeters {
    fn register(site: CallSite, side: CallSide) -> SiteMeters {
        SiteMeters {
            calls: metrics::counter!(CALLS, labels(site, side)),
            in_flight: metrics::gauge!(CALLS_IN_FLIGHT, labels(site, side)),
            seconds: metrics::histogram!(CALL_SECONDS, labels(site, side)),
        }
    }
}

/// How many calls a thread's cache of handles serves before it registers
/// them again: a recorder that the address check below cannot tell from
/// the one before still gets every call site within this many calls.
const REFRESH_EVERY: u32 = 4096;

/// Each thread's handles per call site, for the recorder they were
/// registered with. Registering through the facade builds a key (a `Vec`
/// of labels) each time: four of them per call and side, with no
/// recorder at all, cost a mapped call about 1% on a 2-vCPU machine; a
/// cached handle with no recorder behind it costs a branch.
#[derive(Default)]
struct SiteCache {
    /// The address of the recorder the handles belong to: a different one
    /// (installed, or a thread's local recorder) empties the cache.
    recorder: usize,
    uses: u32,
    sites: FxHashMap<(&'static str, &'static str, CallSide), Arc<SiteMeters>>,
}

thread_local! {
    static SITES: RefCell<SiteCache> = RefCell::new(SiteCache::default());
}

/// The handles for `site` on `side`, from this thread's cache.
fn site_meters(site: CallSite, side: CallSide) -> Arc<SiteMeters> {
    let recorder =
        metrics::with_recorder(|r| r as *const dyn metrics::Recorder as *const () as usize);
    let fresh = || Arc::new(SiteMeters::register(site, side));
    SITES
        .try_with(|cache| {
            // Busy only if registering with the recorder made a call on
            // this thread: that call's handles are made without the cache.
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return fresh();
            };
            cache.uses += 1;
            if cache.recorder != recorder || cache.uses >= REFRESH_EVERY {
                cache.sites.clear();
                cache.recorder = recorder;
                cache.uses = 0;
            }
            cache
                .sites
                .entry((site.interface, site.method, side))
                .or_insert_with(fresh)
                .clone()
        })
        // The thread is exiting: no cache, the handles are made here.
        .unwrap_or_else(|_| fresh())
}

/// One call being measured: started when made, ended once with its outcome.
pub(crate) struct Measured {
    site: CallSite,
    side: CallSide,
    meters: Arc<SiteMeters>,
    started: Instant,
    ended: bool,
}

impl Measured {
    /// Counts the call and puts it in flight.
    pub(crate) fn start(site: CallSite, side: CallSide) -> Measured {
        let meters = site_meters(site, side);
        meters.calls.increment(1);
        meters.in_flight.increment(1.0);
        Measured {
            site,
            side,
            meters,
            started: Instant::now(),
            ended: false,
        }
    }

    /// Ends the call: `failure` is the error kind if it failed.
    pub(crate) fn end(mut self, failure: Option<&'static str>) {
        self.finish(failure);
    }

    fn finish(&mut self, failure: Option<&'static str>) {
        self.ended = true;
        let (site, side) = (self.site, self.side);
        self.meters
            .seconds
            .record(self.started.elapsed().as_secs_f64());
        self.meters.in_flight.decrement(1.0);
        // Failures are rare: their counter is registered each time.
        if let Some(kind) = failure {
            let mut labels = labels(site, side);
            labels.push(Label::from_static_parts("kind", kind));
            metrics::counter!(CALL_ERRORS, labels).increment(1);
        }
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if !self.ended {
            self.finish(Some(CANCELLED));
        }
    }
}

/// The labels of a call's metrics (a `Vec`, which is what a `metrics` key
/// holds: built once per record, never cloned).
fn labels(site: CallSite, side: CallSide) -> Vec<Label> {
    let mut labels = Vec::with_capacity(4);
    labels.extend([
        Label::from_static_parts("side", side.label()),
        Label::from_static_parts("interface", site.interface),
        Label::from_static_parts("method", site.method),
    ]);
    labels
}

/// The error kind of a call served here that failed with `e`: the kind the
/// caller will see ([`Error::from_capnp`]), except that what the caller
/// sees as `remote` is, on this side, a method that `failed`.
pub(crate) fn served_error_kind(site: CallSite, e: &capnp::Error) -> &'static str {
    match Error::from_capnp(site, e.clone()).kind() {
        "remote" => "failed",
        kind => kind,
    }
}

/// A call being served here, measured (side `server`): started before its
/// parameters are read, ended with the outcome of writing its results.
/// Dropped unended (the peer's `Finish`, a disconnect), it counts as
/// cancelled.
pub struct ServedCall(Measured);

impl ServedCall {
    /// Starts measuring a call of `site` served here.
    pub fn start(site: CallSite) -> ServedCall {
        ServedCall(Measured::start(site, CallSide::Server))
    }

    /// Ends it with `outcome`, which it hands back.
    pub fn end(self, outcome: Result<(), capnp::Error>) -> Result<(), capnp::Error> {
        let site = self.0.site;
        self.0
            .end(outcome.as_ref().err().map(|e| served_error_kind(site, e)));
        outcome
    }
}

/// Measures a served call's whole future: `served` is the generated server
/// method's body, from reading its parameters to writing its results. The
/// measurement starts now, not when the future is first polled.
pub fn served<F>(
    site: CallSite,
    served: F,
) -> impl std::future::Future<Output = Result<(), capnp::Error>>
where
    F: std::future::Future<Output = Result<(), capnp::Error>>,
{
    let measured = ServedCall::start(site);
    async move { measured.end(served.await) }
}
