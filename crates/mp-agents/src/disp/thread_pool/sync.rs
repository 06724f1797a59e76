//! The lock of a pool's scheduler: parking_lot's (instrumented, so
//! ThreadSanitizer sees it). The loom model test (`tests/loom_pool.rs`)
//! replaces this module with one over loom's primitives and the same API.

pub(crate) use parking_lot::Mutex;
