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

    /// The threading layer failed (a thread could not start, ...).
    #[error(transparent)]
    Thread(#[from] mp_thread::Error),
}
