//! Interop with the Cap'n Proto interfaces other projects publish.
//!
//! - Bitcoin Core's IPC schemas (`init`, `mining`, `echo`, and the `common`
//!   and `rpc` files they import), taken from the `bitcoin-capnp-types`
//!   crate's `capnp/` folder and turned into typed Rust by this workspace's
//!   generator (`mp-codegen`) at build time: the `*_mp` modules hold a trait,
//!   a client and a server adapter per interface (`init_mp::InitClient`,
//!   `mining_mp::Mining`, …). [`toy_node`] implements them in Rust;
//!   `tests/bitcoin_core.rs` runs generated clients against it, and the
//!   `mining_tip` example talks to a real `bitcoin-node` (or the toy one).
//! - `tests/thread_map_wire.rs` drives this workspace's `ThreadMap` server
//!   with `bitcoin-capnp-types`' own generated client (capnp-rpc 0.25).
//!
//! Building needs the `capnp` schema compiler, so this crate is a workspace
//! member but not a default member: the plain `cargo test` at the root skips
//! it, and `.ci/run` runs `cargo test -p mp-interop` after installing
//! Debian's `capnproto`.

macro_rules! generated {
    ($($capnp:ident, $mp:ident, $file:literal;)*) => {$(
        #[doc = concat!("capnpc's code for Bitcoin Core's `", $file, ".capnp`.")]
        #[allow(missing_docs, unused_imports, dead_code, clippy::all, clippy::pedantic)]
        pub mod $capnp {
            include!(concat!(env!("OUT_DIR"), "/", $file, "_capnp.rs"));
        }
        #[doc = concat!("mp-codegen's typed traits, clients and servers for `", $file, ".capnp`.")]
        pub mod $mp {
            include!(concat!(env!("OUT_DIR"), "/", $file, "_mp.rs"));
        }
    )*};
}

pub mod toy_node;

generated! {
    common_capnp, common_mp, "common";
    echo_capnp, echo_mp, "echo";
    init_capnp, init_mp, "init";
    mining_capnp, mining_mp, "mining";
    rpc_capnp, rpc_mp, "rpc";
}
