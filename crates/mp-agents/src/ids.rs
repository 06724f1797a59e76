//! Identifiers and small shared values: agent, cooperation and mbox ids,
//! priorities, what a binder is told of an agent, why a cooperation was
//! deregistered and what a panic does. At the bottom of the crate's
//! stack: it imports nothing of the crate, and every layer may use it.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_COOP: AtomicU64 = AtomicU64::new(1);
static NEXT_MBOX: AtomicU64 = AtomicU64::new(1);

static NEXT_AGENT: AtomicU64 = AtomicU64::new(1);

/// Identifies an agent within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u64);

impl AgentId {
    pub(crate) fn fresh() -> AgentId {
        AgentId(NEXT_AGENT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Identifies a cooperation within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoopId(pub(crate) u64);

/// Why a cooperation was deregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeregReason {
    /// Deregistered on purpose (by an agent or a user).
    Normal,
    /// The environment is stopping.
    Shutdown,
    /// Its parent was deregistered.
    ParentDeregistration,
    /// An agent panicked and its reaction was to deregister the cooperation.
    Panic,
    /// A user-defined reason.
    User(u32),
}

impl CoopId {
    pub(crate) fn fresh() -> CoopId {
        CoopId(NEXT_COOP.fetch_add(1, Ordering::Relaxed))
    }
}

/// Identifies an mbox (direct or MPMC) within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MboxId(pub(crate) u64);

impl MboxId {
    pub(crate) fn fresh() -> MboxId {
        MboxId(NEXT_MBOX.fetch_add(1, Ordering::Relaxed))
    }
}

/// An agent's priority: `P0` (lowest) to `P7` (highest), as in
/// SObjectizer. Only the priority dispatchers look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Priority(u8);

impl Priority {
    /// The lowest priority (the default).
    pub const P0: Priority = Priority(0);
    /// Priority 1.
    pub const P1: Priority = Priority(1);
    /// Priority 2.
    pub const P2: Priority = Priority(2);
    /// Priority 3.
    pub const P3: Priority = Priority(3);
    /// Priority 4.
    pub const P4: Priority = Priority(4);
    /// Priority 5.
    pub const P5: Priority = Priority(5);
    /// Priority 6.
    pub const P6: Priority = Priority(6);
    /// The highest priority.
    pub const P7: Priority = Priority(7);
    /// How many priorities there are.
    pub const COUNT: usize = 8;

    /// Priority `n`, or `None` if `n` is not below [`Priority::COUNT`].
    pub const fn new(n: u8) -> Option<Priority> {
        if (n as usize) < Priority::COUNT {
            Some(Priority(n))
        } else {
            None
        }
    }

    /// Its number, `0..8`.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Every priority, lowest first.
    pub fn all() -> impl DoubleEndedIterator<Item = Priority> {
        (0..Priority::COUNT as u8).map(Priority)
    }
}

/// What a binder is told about the agent it binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentInfo {
    /// The agent.
    pub id: AgentId,
    /// Its cooperation.
    pub coop: CoopId,
    /// Its priority ([`Agent::priority`](crate::Agent::priority)).
    pub priority: Priority,
}

/// What happens when an agent's handler or hook panics. The panic itself
/// is always caught on the agent's worker; the worker goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicReaction {
    /// Abort the process.
    Abort,
    /// Stop the environment.
    ShutdownEnvironment,
    /// Deregister the agent's cooperation (reason [`DeregReason::Panic`]).
    DeregisterCoop,
    /// Log it and go on.
    Ignore,
    /// Ask the next level: agent → cooperation → parent → environment.
    Inherit,
}
