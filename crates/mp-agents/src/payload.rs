//! [`Payload`]: a message on its way to a handler, its type erased, kept
//! inline when it is small. At the bottom of the crate's stack.
//!
//! Invariant 3 (a demand owns its payload): a payload is moved from the
//! sender to the one handler that takes it, or dropped unseen.
//!
//! Why inline: most messages are a few words (an id, a count, an mbox), and
//! boxing each one put an allocation on the sending thread and a free on the
//! receiving one into every delivery — the largest single cost of a
//! one-thread ping-pong, and across threads a free of memory another core
//! allocated. A payload of up to two words (and word alignment) is stored in
//! place; a larger one goes to the heap as before. `smallbox` does the
//! storage; it is the one crate made for inline unsized boxes.

use std::any::{Any, TypeId};

use smallbox::space::S2;
use smallbox::{smallbox, SmallBox};

/// A type-erased message: inline up to two machine words, boxed beyond.
pub(crate) struct Payload(SmallBox<dyn Any + Send, S2>);

impl Payload {
    /// Erases `msg`'s type.
    #[inline]
    pub(crate) fn new<M: Send + 'static>(msg: M) -> Payload {
        // `smallbox!` is the crate's constructor for an unsized box on
        // stable Rust (it coerces the pointer it records to `dyn Any`).
        Payload(smallbox!(msg))
    }

    /// The message's type.
    #[inline]
    pub(crate) fn message_type(&self) -> TypeId {
        (*self.0).type_id()
    }

    /// The message back as `M`, or the payload untouched if it is not one.
    #[inline]
    pub(crate) fn take<M: 'static>(self) -> Result<M, Payload> {
        match self.0.downcast::<M>() {
            Ok(msg) => Ok(msg.into_inner()),
            Err(back) => Err(Payload(back)),
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("inline", &!self.0.is_heap())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Payload;
    use std::any::TypeId;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its drops.
    struct Counted<T>(Arc<AtomicUsize>, #[allow(dead_code)] T);
    impl<T> Drop for Counted<T> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn small_and_large_messages_come_back_whole_and_are_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let small = Payload::new(Counted(drops.clone(), ()));
        assert!(!small.0.is_heap(), "a one-word message is kept inline");
        let large = Payload::new(Counted(drops.clone(), [7u64; 8]));
        assert!(large.0.is_heap(), "a nine-word message goes to the heap");

        assert_eq!(small.message_type(), TypeId::of::<Counted<()>>());
        assert_eq!(large.message_type(), TypeId::of::<Counted<[u64; 8]>>());
        let small = small.take::<Counted<()>>().expect("its own type");
        let large = large.take::<Counted<[u64; 8]>>().expect("its own type");
        assert_eq!(large.1, [7; 8]);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "taking moves, it drops nothing"
        );
        drop((small, large));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_wrong_type_gives_the_payload_back_and_dropping_it_drops_the_message() {
        let drops = Arc::new(AtomicUsize::new(0));
        let payloads = [
            Payload::new(Counted(drops.clone(), 1u8)),
            Payload::new(Counted(drops.clone(), [1u64; 8])),
        ];
        for (dropped_before, payload) in payloads.into_iter().enumerate() {
            let back = payload.take::<u32>().expect_err("not a u32");
            assert_eq!(drops.load(Ordering::SeqCst), dropped_before);
            drop(back);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn over_aligned_messages_go_to_the_heap() {
        #[repr(align(64))]
        struct Wide(u8);
        let payload = Payload::new(Wide(3));
        assert!(payload.0.is_heap());
        assert_eq!(payload.take::<Wide>().ok().map(|w| w.0), Some(3));
    }
}
