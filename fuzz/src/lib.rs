//! Support code for the fuzz targets in `fuzz_targets/`: the script
//! language of `rpc_messages` (decoded from fuzz bytes, encoded for seeds)
//! and the hostile RPC peer that runs it against an in-process calculator
//! server. The targets themselves only decode their input and call in here.

pub mod rpc;
pub mod script;
