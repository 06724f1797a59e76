//! `CallbackRegistry`: callbacks owned by one thread.
//!
//! Invariant 4 (one owner for every registry of callbacks). The registry has
//! no lock and is not `Sync`: its owner thread adds, removes and fires. Other
//! threads change it only by a *synchronous request to the owner* (post a job
//! that calls [`remove`](CallbackRegistry::remove), wait for its reply). Since
//! [`fire`](CallbackRegistry::fire) takes every callback out and the owner runs
//! them before it handles the next job, a removal that returns `Some` means the
//! callback will never run, and one that returns `None` means it has already
//! run to completion — the two outcomes libmultiprocess's seed issue could not
//! tell apart (problems 1 and 2). The loom model `tests/loom_registry.rs`
//! checks that protocol.

use std::collections::BTreeMap;

/// Callbacks registered with one owner thread; see the module docs.
#[derive(Debug)]
pub struct CallbackRegistry<F> {
    next: u64,
    entries: BTreeMap<u64, F>,
    fired: bool,
}

impl<F> Default for CallbackRegistry<F> {
    fn default() -> Self {
        CallbackRegistry {
            next: 0,
            entries: BTreeMap::new(),
            fired: false,
        }
    }
}

impl<F> CallbackRegistry<F> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `callback`; hands it back if the registry already fired.
    pub fn add(&mut self, callback: F) -> Result<u64, F> {
        if self.fired {
            return Err(callback);
        }
        let id = self.next;
        self.next += 1;
        self.entries.insert(id, callback);
        Ok(id)
    }

    /// Unregisters callback `id`: `Some` if it had not been fired.
    pub fn remove(&mut self, id: u64) -> Option<F> {
        self.entries.remove(&id)
    }

    /// Takes every callback out, in registration order, and refuses later
    /// additions. The owner runs them after this returns, so nothing is
    /// borrowed while they run.
    pub fn fire(&mut self) -> Vec<F> {
        self.fired = true;
        std::mem::take(&mut self.entries).into_values().collect()
    }

    /// True once [`fire`](Self::fire) was called.
    pub fn has_fired(&self) -> bool {
        self.fired
    }

    /// Callbacks still registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no callback is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
