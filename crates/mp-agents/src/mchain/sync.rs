//! The locks of the chains: parking_lot's (instrumented, so ThreadSanitizer
//! sees them). The loom model test (`tests/loom_mchain.rs`) replaces this
//! module with one over loom's primitives and the same API.

pub(crate) use parking_lot::{Condvar, Mutex};
