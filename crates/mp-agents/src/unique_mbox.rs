//! The unique-subscribers mbox (SObjectizer's `unique_subscribers` mbox):
//! like an MPMC [`Mbox`] it is shared and subscribed to, but at most one
//! agent subscribes to each message type, so messages need not be `Clone`
//! and are moved to their one receiver — mutable messages and
//! [`Request`](crate::Request)s sent to a service without knowing which
//! agent serves it.
//!
//! Invariant 3: the message is moved, never copied, to its receiver; with
//! no subscriber for its type it is dropped on the sender's thread.

use std::any::TypeId;

use crate::agent::{Agent, Define};
use crate::ids::MboxId;
use crate::mbox::Mbox;
use crate::state::Context;
use crate::target::Target;

/// A shared mbox with at most one subscriber per message type; see the
/// module docs. Make one with
/// [`Environment::create_unique_mbox`](crate::Environment::create_unique_mbox).
#[derive(Clone, Debug)]
pub struct UniqueMbox {
    pub(crate) mbox: Mbox,
}

impl UniqueMbox {
    /// The mbox's id.
    pub fn id(&self) -> MboxId {
        self.mbox.id()
    }

    /// The mbox's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.mbox.name()
    }

    /// Moves `msg` to the agent subscribed to `M` here; with none it is
    /// dropped here.
    pub fn send<M: Send + 'static>(&self, msg: M) {
        self.mbox.send_unique(msg);
    }

    /// Subscriptions here (one per message type at most).
    pub fn subscriber_count(&self) -> usize {
        self.mbox.subscriber_count()
    }
}

impl<M: Send + 'static> Target<M> for UniqueMbox {
    fn deliver(&self, msg: M) {
        self.send(msg);
    }
}

impl<A: Agent> Define<'_, A> {
    /// Handles `M` sent to the unique-subscribers mbox `mbox`, in the
    /// default state. Registration fails with
    /// [`Error::UniqueMboxTaken`](crate::Error::UniqueMboxTaken) if another
    /// agent subscribes to `M` there already.
    pub fn subscribe_unique<M, F>(&mut self, mbox: &UniqueMbox, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine.insert_handler(0, mbox.id(), handler);
        self.add_subscription(&mbox.mbox, TypeId::of::<M>());
        self
    }
}
