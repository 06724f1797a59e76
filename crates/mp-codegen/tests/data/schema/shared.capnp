# Generic and shared structs, shaped like Bitcoin Core's common.capnp: used
# from ledger.capnp, so their instances are converted in another file.

@0xc4e2a6b8d0f21355;

using Proxy = import "/mp/proxy.capnp";

struct Pair(Key, Value) {
    key @0 :Key;
    value @1 :Value;
}

struct PairInt64(Key) {
    key @0 :Key;
    value @1 :Int64;
}

struct Result(Value) {
    # A value or an error, like Bitcoin Core's `util::Result`; named like
    # Rust's own `Result`, which generated code must not confuse it with.
    value @0 :Value;
    hasValue @1 :Bool;
    error @2 :Text;
}

struct Block {
    # A recursive struct with an optional field and C++ field names.
    hash @0 :Data;
    height @1 :Int32;
    hasHeight @2 :Bool;
    nextBlock @3 :Block;
    version @4 :Int32 $Proxy.name("nVersion");
    uri @5 :Text $Proxy.name("URI");
}

struct GlobalArgs $Proxy.count(0) {
    # Stands for no native argument wherever it is passed.
    settings @0 :Text;
}

struct Expected(Value, Error) {
    # A value or an error, as a union (Bitcoin Core's `Expected`).
    union {
        value @0 :Value;
        error @1 :Error;
    }
}
