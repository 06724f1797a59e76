//! [`Target`]: where a timer, a message sink or a request delivers. A
//! leaf of the crate's stack; each kind of destination implements it
//! beside its own definition (mboxes, unique mboxes, chains).

/// Where a timer, a message sink or a request delivers: an agent's
/// [`DirectMbox`](crate::DirectMbox) and a [`UniqueMbox`](crate::UniqueMbox) (any `Send`
/// message), an MPMC [`Mbox`](crate::Mbox) (`Clone` messages), an
/// [`Mchain`](crate::Mchain).
pub trait Target<M>: Send + Sync + 'static {
    /// Sends `msg` here.
    fn deliver(&self, msg: M);
}
