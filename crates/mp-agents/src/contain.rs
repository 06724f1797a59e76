//! Runs user code on one of the environment's own threads (the
//! deregistration thread, the timer thread) so that a panic in it — an
//! agent's or a message's `Drop`, a binder's `unbind`, a delivery — is
//! logged and contained, and the thread goes on with what it was doing.
//!
//! Invariant 1 depends on it: a final step cut short by a panic would
//! leave its cooperation counted, and `launch` waiting for it forever.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mp_thread::panic_message;

/// Runs `f`; a panic in it is logged with `what` (what the thread was
/// doing) and `on` (its thread's role), and swallowed. Returns whether `f`
/// completed.
pub(crate) fn contain(on: &str, what: &str, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            tracing::error!(
                thread = on,
                panic = %panic_message(&*payload),
                "a panic while {what}; the thread goes on"
            );
            false
        }
    }
}
