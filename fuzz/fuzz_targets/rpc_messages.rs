//! Well-formed capnp RPC messages with hostile contents, sent by a peer
//! that speaks rpc.capnp directly to an in-process calculator server:
//! bootstrap, calls with unknown interface or method ids, missing or
//! foreign `Context` capabilities, huge lists, deep nesting, bogus
//! capability tables, returns for calls never made, and hang-ups in the
//! middle of all of it. The server must never panic or hang and must keep
//! serving (see `mp_fuzz::rpc` for the checks made after each input).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let script = mp_fuzz::script::decode(data);
    let _ = mp_fuzz::rpc::run(&script);
});
