//! The error type of mp-agents. Owns nothing; every failure of registration,
//! of starting a thread or of using a stopped environment ends up here.

/// What can go wrong when registering cooperations or making dispatchers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment is stopping (or has stopped): no new cooperations.
    #[error("the environment is shutting down; nothing new can be registered")]
    Stopped,

    /// The parent cooperation is gone or is being deregistered.
    #[error("the parent cooperation is gone or is being deregistered")]
    ParentGone,

    /// A binder refused an agent during preallocation.
    #[error("a binder refused an agent: {0}")]
    Refused(String),

    /// An agent's `define` hook panicked; the registration was undone.
    #[error("an agent's define hook panicked: {0}")]
    DefinePanicked(String),

    /// Subscriptions were changed from outside the agent's own handlers
    /// and hooks (a thread-safe handler has no access to them).
    #[error("subscriptions can change only from the agent's own handlers and hooks (not from a thread-safe handler)")]
    NotInAgentHandler,

    /// A run-time subscription named another agent type than the agent's.
    #[error("a handler for agent type {given} subscribed by an agent of type {actual}")]
    WrongAgentType {
        /// The type the handler takes.
        given: &'static str,
        /// The agent's type.
        actual: &'static str,
    },

    /// A [`State`](crate::State) of another agent was given.
    #[error("a State of another agent")]
    ForeignState,

    /// The `init` of an environment started in the background panicked.
    #[error("the environment's init panicked: {0}")]
    InitPanicked(String),

    /// A wait that would wait for the calling thread itself (joining an
    /// environment from one of its own threads).
    #[error("refused on one of the environment's own threads: it would wait for itself")]
    OwnThread,

    /// A unique-subscribers mbox has an agent subscribed to a type already.
    #[error("unique-subscribers mbox {mbox} has a subscriber already for a type agent {agent} subscribes to")]
    UniqueMboxTaken {
        /// The mbox's name or id.
        mbox: String,
        /// The agent refused.
        agent: String,
    },

    /// A stats distribution period of zero
    /// ([`StatsController::set_distribution_period`](crate::StatsController::set_distribution_period)).
    #[error("a stats distribution period must be longer than zero")]
    ZeroDistributionPeriod,

    /// The threading layer failed (a thread could not start, ...).
    #[error(transparent)]
    Thread(#[from] mp_thread::Error),
}
