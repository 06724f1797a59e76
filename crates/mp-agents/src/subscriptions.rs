//! Run-time subscriptions: subscribing and unsubscribing from an agent's
//! own handlers and hooks, in any state, and deactivating an agent
//! (SObjectizer's `so_subscribe`, `so_drop_subscription` and
//! `so_deactivate_agent` outside `so_define_agent`).
//!
//! A change asked for through [`Context`] is recorded in the context and
//! applied by the agent's state machine when the handler or hook returns,
//! before the agent's next demand (the handler holds `&mut` agent, so its
//! handler table cannot change under its feet); a message already queued
//! then meets the new table. Only the agent's worker changes it
//! (invariant 3: the table lives in the agent's box).

use std::any::TypeId;

use crate::agent::Agent;
use crate::error::Error;
use crate::ids::MboxId;
use crate::mbox::Mbox;
use crate::state::Context;
use crate::state::{Machine, Op, State};

impl Context<'_> {
    /// Handles `M` sent to the agent's direct mbox, in the default state,
    /// from when this handler returns (replacing a handler for it there).
    ///
    /// `A` is the agent's own type (the handler's first parameter); only
    /// the agent's own handlers and hooks may change its subscriptions.
    pub fn subscribe_self<A, M, F>(&self, handler: F) -> Result<(), Error>
    where
        A: Agent,
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.insert::<A, M, F>(0, self.core.direct_id, None, handler)
    }

    /// [`subscribe_self`](Self::subscribe_self) in `state`.
    pub fn subscribe_self_in<A, M, F>(&self, state: &State, handler: F) -> Result<(), Error>
    where
        A: Agent,
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let state = self.own_state(state)?;
        self.insert::<A, M, F>(state, self.core.direct_id, None, handler)
    }

    /// Handles `M` sent to `mbox`, in the default state, subscribing the
    /// agent to it there, from when this handler returns.
    pub fn subscribe<A, M, F>(&self, mbox: &Mbox, handler: F) -> Result<(), Error>
    where
        A: Agent,
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.insert::<A, M, F>(0, mbox.id(), Some(mbox), handler)
    }

    /// [`subscribe`](Self::subscribe) in `state`.
    pub fn subscribe_in<A, M, F>(&self, state: &State, mbox: &Mbox, handler: F) -> Result<(), Error>
    where
        A: Agent,
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let state = self.own_state(state)?;
        self.insert::<A, M, F>(state, mbox.id(), Some(mbox), handler)
    }

    /// Removes the handlers of `M` from the agent's direct mbox, in every
    /// state, when this handler returns.
    pub fn unsubscribe_self<M: 'static>(&self) -> Result<(), Error> {
        self.remove::<M>(None, self.core.direct_id, None)
    }

    /// Removes the handler of `M` from the agent's direct mbox in `state`.
    pub fn unsubscribe_self_in<M: 'static>(&self, state: &State) -> Result<(), Error> {
        let state = self.own_state(state)?;
        self.remove::<M>(Some(state), self.core.direct_id, None)
    }

    /// Removes the handlers of `M` from `mbox`, in every state; the agent's
    /// subscription to `M` there goes with them.
    pub fn unsubscribe<M: 'static>(&self, mbox: &Mbox) -> Result<(), Error> {
        self.remove::<M>(None, mbox.id(), Some(mbox))
    }

    /// Removes the handler of `M` from `mbox` in `state`; the subscription
    /// goes when no state (and no dead-letter handler) handles it.
    pub fn unsubscribe_in<M: 'static>(&self, state: &State, mbox: &Mbox) -> Result<(), Error> {
        let state = self.own_state(state)?;
        self.remove::<M>(Some(state), mbox.id(), Some(mbox))
    }

    /// Deactivates the agent when this handler returns (SObjectizer's
    /// `so_deactivate_agent`): every subscription, dead-letter and
    /// thread-safe handler and time limit goes, and it stays in its state;
    /// what it is sent is dropped unhandled (a request answers "receiver
    /// gone") until its cooperation is deregistered, when its `finish`
    /// runs as usual.
    pub fn deactivate(&self) -> Result<(), Error> {
        self.asked(Op::Deactivate)
    }

    fn insert<A, M, F>(
        &self,
        state: u32,
        mbox: MboxId,
        mpmc: Option<&Mbox>,
        handler: F,
    ) -> Result<(), Error>
    where
        A: Agent,
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        if self.states.ops.is_none() {
            return Err(Error::NotInAgentHandler);
        }
        if self.core.agent_type != TypeId::of::<A>() {
            return Err(Error::WrongAgentType {
                given: std::any::type_name::<A>(),
                actual: self.core.type_name,
            });
        }
        self.asked(Op::Insert {
            insert: Box::new(move |machine| {
                if let Some(machine) = machine.downcast_mut::<Machine<A>>() {
                    machine.insert_handler(state, mbox, handler);
                }
            }),
            mpmc: mpmc.map(|m| (m.clone(), TypeId::of::<M>())),
        })
    }

    fn remove<M: 'static>(
        &self,
        state: Option<u32>,
        mbox: MboxId,
        mpmc: Option<&Mbox>,
    ) -> Result<(), Error> {
        self.asked(Op::Remove {
            mbox,
            ty: TypeId::of::<M>(),
            state,
            mpmc: mpmc.cloned(),
        })
    }

    fn own_state(&self, state: &State) -> Result<u32, Error> {
        if self.states.ops.is_none() {
            return Err(Error::NotInAgentHandler);
        }
        self.states
            .index(self.core.id, state)
            .ok_or(Error::ForeignState)
    }

    fn asked(&self, op: Op) -> Result<(), Error> {
        let Some(ops) = self.states.ops else {
            return Err(Error::NotInAgentHandler);
        };
        ops.borrow_mut().push(op);
        Ok(())
    }
}
