//! [`Binder`]: how a cooperation puts its agents on a dispatcher's
//! threads. Below the dispatchers and cooperations, which both use it.

use std::sync::Arc;

use crate::demand::EventQueue;
use crate::error::Error;
use crate::ids::AgentInfo;

/// How a cooperation puts its agents on threads (SObjectizer's
/// `disp_binder`). Registration calls `preallocate` for every agent first
/// (may fail; then `undo_preallocation` for those done), then `bind` for
/// each (cannot fail); the final step calls `unbind`.
pub trait Binder: Send + Sync + 'static {
    /// Reserves what `agent` needs (a thread, a slot).
    fn preallocate(&self, agent: AgentInfo) -> Result<(), Error>;
    /// Gives back what `preallocate` reserved; registration failed.
    fn undo_preallocation(&self, agent: AgentInfo);
    /// The event queue `agent`'s demands go to (after a successful
    /// `preallocate`).
    fn bind(&self, agent: AgentInfo) -> Arc<dyn EventQueue>;
    /// Forgets `agent` (final step, on the deregistration thread).
    fn unbind(&self, agent: AgentInfo);
}
