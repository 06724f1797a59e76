//! The environment's [`StatsController`]: reads every data source (the
//! environment's own figures, then each registered [`StatsSource`]) on
//! request, or periodically into the stats mbox.
//!
//! A periodic distribution is a timer of the environment's timer thread
//! (so it stops with the environment, invariant 1): its closure holds the
//! environment weakly and sends, with no lock held, `DistributionStarted`,
//! every quantity, then `DistributionFinished` to the stats mbox. The stats
//! mbox is an ordinary MPMC [`Mbox`]: subscribe an agent to
//! [`Quantity`] (and the two markers) on it.
//!
//! Lock order: the controller's own state is held only to arm or cancel
//! the timer, never while sources are read or quantities sent.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Error;
use crate::mbox::Mbox;
use crate::stats::{DistributionFinished, DistributionStarted, Quantity, Registry, StatsSource};
use crate::timer::{TimerHandle, Timers};

/// How often a periodic distribution runs unless set otherwise (as in
/// SObjectizer).
pub const DEFAULT_DISTRIBUTION_PERIOD: Duration = Duration::from_secs(2);

/// What the controller needs of its environment (the environment
/// implements it; the controller sits below it in the crate's stack).
pub(crate) trait StatsHost: Send + Sync + 'static {
    /// The environment's stats state.
    fn stats(&self) -> &StatsState;
    /// The environment's own figures.
    fn own_stats(&self) -> Vec<Quantity>;
    /// True once its shutdown has begun.
    fn is_stopping(&self) -> bool;
    /// Its timer thread.
    fn timers(&self) -> &Arc<Timers>;
}

/// What an environment keeps for its stats.
pub(crate) struct StatsState {
    pub(crate) registry: Registry,
    mbox: Mbox,
    distribution: Mutex<Distribution>,
}

struct Distribution {
    period: Duration,
    /// The periodic timer while distribution is on (dropping it cancels).
    timer: Option<TimerHandle>,
}

impl StatsState {
    pub(crate) fn new() -> StatsState {
        StatsState {
            registry: Registry::default(),
            mbox: Mbox::new(Some("mp-agents-stats".to_string())),
            distribution: Mutex::new(Distribution {
                period: DEFAULT_DISTRIBUTION_PERIOD,
                timer: None,
            }),
        }
    }
}

/// The run-time stats of one environment
/// ([`Environment::stats_controller`](crate::Environment::stats_controller)): SObjectizer's `stats_controller`.
///
/// Off by default: nothing is read and nothing sent until
/// [`turn_on`](Self::turn_on). Each distribution sends, to
/// [`mbox`](Self::mbox), a [`DistributionStarted`], one [`Quantity`] per
/// figure, and a [`DistributionFinished`]. The figures:
///
/// | prefix | suffix | what |
/// |---|---|---|
/// | `coop_repository` | `coop.reg.count` | cooperations registered and not yet finalised |
/// | `coop_repository` | `agent.count` | their agents |
/// | `mbox_repository` | `named_mbox.count` | named mboxes made so far |
/// | `timer_thread` | `single_shot.count`, `periodic.count` | timers armed (the distribution's own periodic timer included) |
/// | `mchain_repository` | `mchain.count` | chains made here and still alive (none once the shutdown began) |
/// | `disp/<kind>/<name>` | `agent.count` | agents bound to the dispatcher |
/// | `disp/<kind>/<name>` | `demands.count` | demands queued for its threads |
/// | `disp/<kind>/<name>` | `thread.count` | its threads (dispatchers whose threads come and go) |
///
/// `<kind>` is `ot` (one thread), `ao` (active object), `ag` (active
/// group; each group also as `disp/ag/<name>/<group>`), `tp`, `atp`
/// (thread pools), `prio_ot` and `prio_dt` (priority dispatchers; each
/// priority also as `.../p<N>`). `<name>` is the name the dispatcher was
/// made with (the default dispatcher's is `mp-agents-default`): give
/// dispatchers distinct names to tell them apart.
///
/// A figure is a value read at one moment. `demands.count` counts demands
/// queued and not started (on the single-threaded dispatchers: those sent
/// from other threads; a handler's sends to an agent of its own thread
/// are not counted). A distribution is read and sent from the
/// environment's timer thread.
pub struct StatsController<'a> {
    host: &'a dyn StatsHost,
    /// The same host, for the periodic timer (which must not keep the
    /// environment alive).
    weak: Weak<dyn StatsHost>,
}

impl std::fmt::Debug for StatsController<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsController")
            .field("on", &self.is_on())
            .field("period", &self.distribution_period())
            .finish()
    }
}

impl<'a> StatsController<'a> {
    pub(crate) fn new(host: &'a dyn StatsHost, weak: Weak<dyn StatsHost>) -> StatsController<'a> {
        StatsController { host, weak }
    }

    fn state(&self) -> &'a StatsState {
        self.host.stats()
    }

    /// The MPMC mbox distributions are sent to.
    pub fn mbox(&self) -> Mbox {
        self.state().mbox.clone()
    }

    /// Starts periodic distribution (the first one period from now); does
    /// nothing if it is on already. Refused once the shutdown has begun.
    pub fn turn_on(&self) -> Result<(), Error> {
        if self.host.is_stopping() {
            return Err(Error::Stopped);
        }
        let mut dist = self.state().distribution.lock();
        if dist.timer.is_none() {
            dist.timer = Some(arm(self.host, &self.weak, dist.period));
        }
        Ok(())
    }

    /// Stops periodic distribution (a distribution being sent right now
    /// still finishes).
    pub fn turn_off(&self) {
        let timer = self.state().distribution.lock().timer.take();
        drop(timer);
    }

    /// Whether periodic distribution is on.
    pub fn is_on(&self) -> bool {
        self.state().distribution.lock().timer.is_some()
    }

    /// Sets the time between distributions (re-arming the timer if
    /// distribution is on). A zero period is refused.
    pub fn set_distribution_period(&self, period: Duration) -> Result<(), Error> {
        if period.is_zero() {
            return Err(Error::ZeroDistributionPeriod);
        }
        let mut dist = self.state().distribution.lock();
        dist.period = period;
        if dist.timer.is_some() {
            let old = dist.timer.replace(arm(self.host, &self.weak, period));
            drop(dist);
            drop(old);
        }
        Ok(())
    }

    /// The time between distributions.
    pub fn distribution_period(&self) -> Duration {
        self.state().distribution.lock().period
    }

    /// Every figure now, read on this thread (distribution need not be
    /// on): the environment's own first, then each source's in the order
    /// they were made.
    pub fn snapshot(&self) -> Vec<Quantity> {
        snapshot(self.host)
    }

    /// Takes a [`snapshot`](Self::snapshot) and records each figure as a
    /// gauge through the `metrics` facade (see [`metric_name`](crate::metric_name));
    /// returns the snapshot. A periodic distribution does this too.
    pub fn record_metrics(&self) -> Vec<Quantity> {
        let quantities = snapshot(self.host);
        crate::agent_metrics::record(&quantities);
        quantities
    }

    /// Adds a data source of your own (a dispatcher you wrote, ...). It is
    /// held weakly: it reports as long as something else keeps it alive.
    pub fn add_source(&self, source: Weak<dyn StatsSource>) {
        self.state().registry.add(source);
    }
}

/// A periodic timer that distributes the stats of `host` (`weak`).
fn arm(host: &dyn StatsHost, weak: &Weak<dyn StatsHost>, period: Duration) -> TimerHandle {
    let weak = weak.clone();
    host.timers().add(
        period,
        Some(period),
        Box::new(move || {
            if let Some(host) = weak.upgrade() {
                distribute(&*host);
            }
        }),
    )
}

/// One distribution: the markers around every quantity, to the mbox.
fn distribute(host: &dyn StatsHost) {
    let quantities = snapshot(host);
    crate::agent_metrics::record(&quantities);
    let mbox = host.stats().mbox.clone();
    mbox.send(DistributionStarted);
    for quantity in quantities {
        mbox.send(quantity);
    }
    mbox.send(DistributionFinished);
}

fn snapshot(host: &dyn StatsHost) -> Vec<Quantity> {
    let mut out = host.own_stats();
    for source in host.stats().registry.live() {
        source.report(&mut out);
    }
    out
}
