//! Message sinks: an MPMC [`Mbox`]'s messages of one type bound to another
//! destination — an agent's mbox, another MPMC mbox, an mchain — as they
//! are sent, optionally filtered or transformed into another type on the
//! way (SObjectizer's sink bindings, so5extra's `transform_then_redirect`).
//!
//! A sink is a subscriber of the mbox like an agent: it runs on the
//! sender's thread inside [`Mbox::send`], with no mbox lock held, and its
//! [`SinkBinding`] owns it — dropping the binding unbinds it. A chain of
//! sinks that loops back is cut after `MAX_NESTED` hops (the message is
//! dropped and the cut logged), so a misconfigured binding cannot
//! recurse without bound.

use std::any::TypeId;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::filter::erase;
use crate::mbox::{ErasedSink, Mbox};
use crate::payload::Payload;
use crate::target::Target;

/// Sinks nested on one thread (a sink delivering to an mbox with a sink).
const MAX_NESTED: usize = 16;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// An mbox's messages of one type bound to a destination; unbinds when
/// dropped (or [`unbind`](Self::unbind)).
#[must_use = "dropping a SinkBinding unbinds it at once"]
pub struct SinkBinding {
    mbox: Mbox,
    ty: TypeId,
    id: u64,
}

impl std::fmt::Debug for SinkBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkBinding")
            .field("mbox", &self.mbox)
            .finish_non_exhaustive()
    }
}

impl SinkBinding {
    /// Unbinds (as dropping it does).
    pub fn unbind(self) {}
}

impl Drop for SinkBinding {
    fn drop(&mut self) {
        let removed = self.mbox.remove_sink(self.ty, self.id);
        drop(removed);
    }
}

/// Delivers each message to `to`, transformed by `transform` (which may
/// skip it).
struct Redirect<M, N, T, F> {
    to: T,
    transform: F,
    types: PhantomData<fn(M) -> N>,
}

impl<M, N, T, F> ErasedSink for Redirect<M, N, T, F>
where
    M: Send + 'static,
    N: Send + 'static,
    T: Target<N>,
    F: Fn(M) -> Option<N> + Send + Sync + 'static,
{
    fn accept(&self, payload: Payload) {
        let Ok(msg) = payload.take::<M>() else {
            return;
        };
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        /// Counts the hop out again, also when a delivery panics.
        struct Out;
        impl Drop for Out {
            fn drop(&mut self) {
                DEPTH.with(|d| d.set(d.get() - 1));
            }
        }
        let _out = Out;
        if depth > MAX_NESTED {
            tracing::error!(
                message = std::any::type_name::<M>(),
                "message sinks loop back; the message is dropped"
            );
            return;
        }
        if let Some(out) = (self.transform)(msg) {
            self.to.deliver(out);
        }
    }
}

impl Mbox {
    /// Delivers every `M` sent here to `to` as well (an agent's
    /// [`DirectMbox`](crate::DirectMbox), another [`Mbox`], an
    /// [`Mchain`](crate::Mchain)), until the binding is dropped.
    pub fn bind_sink<M, T>(&self, to: &T) -> SinkBinding
    where
        M: Clone + Send + 'static,
        T: Target<M> + Clone,
    {
        self.bind(to.clone(), Some::<M>, None)
    }

    /// [`bind_sink`](Self::bind_sink) for the messages `filter` lets
    /// through (it runs on the sender's thread).
    pub fn bind_sink_filtered<M, T, F>(&self, to: &T, filter: F) -> SinkBinding
    where
        M: Clone + Send + 'static,
        T: Target<M> + Clone,
        F: Fn(&M) -> bool + Send + Sync + 'static,
    {
        self.bind(to.clone(), Some::<M>, Some(erase(filter)))
    }

    /// Turns every `M` sent here into an `N` and delivers it to `to`;
    /// `transform` returning `None` skips the message (so5extra's
    /// `transform_then_redirect`). It runs on the sender's thread.
    pub fn transform_then_redirect<M, N, T, F>(&self, to: &T, transform: F) -> SinkBinding
    where
        M: Clone + Send + 'static,
        N: Send + 'static,
        T: Target<N> + Clone,
        F: Fn(M) -> Option<N> + Send + Sync + 'static,
    {
        self.bind(to.clone(), transform, None)
    }

    fn bind<M, N, T, F>(
        &self,
        to: T,
        transform: F,
        filter: Option<crate::filter::Filter>,
    ) -> SinkBinding
    where
        M: Send + 'static,
        N: Send + 'static,
        T: Target<N>,
        F: Fn(M) -> Option<N> + Send + Sync + 'static,
    {
        let sink = Arc::new(Redirect {
            to,
            transform,
            types: PhantomData,
        });
        let ty = TypeId::of::<M>();
        let id = self.add_sink(ty, sink, filter);
        SinkBinding {
            mbox: self.clone(),
            ty,
            id,
        }
    }
}
