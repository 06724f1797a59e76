//! Run-time statistics (SObjectizer's run-time monitoring): the messages a
//! distribution sends, the [`StatsSource`] contract every data source
//! keeps, and the registry of sources an environment reads.
//!
//! A data source reports [`Quantity`]s — a prefix naming the source
//! (`coop_repository`, `timer_thread`, `disp/ot/<name>`, …), a suffix
//! naming the figure (`agent.count`, `demands.count`, …) and the value
//! *now*. The environment's [`StatsController`](crate::StatsController)
//! reads every source, either on request
//! ([`snapshot`](crate::StatsController::snapshot)) or periodically, then
//! sending [`DistributionStarted`], each quantity and
//! [`DistributionFinished`] to its stats mbox.
//!
//! The registry holds sources by `Weak`: a dispatcher is never kept alive
//! by being observed (invariant 1: it still shuts down with its last user),
//! and a dead entry is pruned at the next read. A read holds each source
//! only while it reports; should the source's last user let go meanwhile,
//! the source is dropped on the reading thread (for a dispatcher that only
//! closes its workers' mailboxes: the reaper joins them). A source's `report` is
//! called with no lock of the registry held, and must only take its own
//! locks briefly (it runs on the environment's timer thread during a
//! periodic distribution).
//!
//! This module is at the bottom of the crate's stack: it imports nothing of
//! the crate.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// One figure of one data source, as sent to the stats mbox.
///
/// Its full name is `prefix/suffix`, e.g. `disp/ot/DEFAULT/demands.count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    /// The data source: `coop_repository`, `mbox_repository`,
    /// `timer_thread`, `mchain_repository`, or a dispatcher
    /// (`disp/<kind>/<name>`, with a further part for one of its threads
    /// or priorities).
    pub prefix: String,
    /// The figure: `coop.reg.count`, `agent.count`, `thread.count`,
    /// `demands.count`, `named_mbox.count`, `single_shot.count`,
    /// `periodic.count`, `mchain.count`.
    pub suffix: &'static str,
    /// Its value when it was read.
    pub value: usize,
}

impl Quantity {
    /// A quantity of `prefix` called `suffix`.
    pub fn new(prefix: impl Into<String>, suffix: &'static str, value: usize) -> Quantity {
        Quantity {
            prefix: prefix.into(),
            suffix,
            value,
        }
    }

    /// Its full name, `prefix/suffix`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.prefix, self.suffix)
    }
}

/// Sent to the stats mbox before the quantities of one distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributionStarted;

/// Sent to the stats mbox after the quantities of one distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributionFinished;

/// A data source: something that can say how much it holds right now.
///
/// mp-agents' own dispatchers, cooperations, timers, named mboxes and
/// chains are sources already; a dispatcher of your own becomes one with
/// [`StatsController::add_source`](crate::StatsController::add_source).
pub trait StatsSource: Send + Sync + 'static {
    /// Appends this source's quantities to `out`. Called on the thread
    /// that reads the stats (the timer thread for a periodic
    /// distribution): take only your own locks, briefly, and do not block.
    fn report(&self, out: &mut Vec<Quantity>);
}

/// The sources an environment reads, held weakly.
#[derive(Default)]
pub(crate) struct Registry {
    sources: Mutex<Vec<Weak<dyn StatsSource>>>,
}

impl Registry {
    /// Adds `source` (kept as long as something else holds it).
    pub(crate) fn add(&self, source: Weak<dyn StatsSource>) {
        let mut sources = self.sources.lock();
        sources.retain(|s| s.strong_count() > 0);
        sources.push(source);
    }

    /// The sources alive now (dead ones pruned), in the order added.
    pub(crate) fn live(&self) -> Vec<Arc<dyn StatsSource>> {
        let mut sources = self.sources.lock();
        let mut live = Vec::with_capacity(sources.len());
        sources.retain(|s| match s.upgrade() {
            Some(source) => {
                live.push(source);
                true
            }
            None => false,
        });
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(usize);

    impl StatsSource for Fixed {
        fn report(&self, out: &mut Vec<Quantity>) {
            out.push(Quantity::new("fixed", "value", self.0));
        }
    }

    #[test]
    fn a_dropped_source_is_pruned_and_never_kept_alive() {
        let registry = Registry::default();
        let kept: Arc<dyn StatsSource> = Arc::new(Fixed(1));
        let gone: Arc<dyn StatsSource> = Arc::new(Fixed(2));
        registry.add(Arc::downgrade(&kept));
        registry.add(Arc::downgrade(&gone));
        assert_eq!(registry.live().len(), 2);
        drop(gone);
        let live = registry.live();
        assert_eq!(live.len(), 1);
        let mut out = Vec::new();
        live[0].report(&mut out);
        assert_eq!(out, vec![Quantity::new("fixed", "value", 1)]);
        assert_eq!(out[0].name(), "fixed/value");
        assert_eq!(Arc::strong_count(&kept), 2);
        drop(live);
        assert_eq!(Arc::strong_count(&kept), 1);
    }
}
