# A schema set of our own shaped like Bitcoin Core's mining IPC: an Init
# with the thread-map exchange making a Miner; a blocking wait that an
# `interrupt()` without Context, called from another client thread,
# releases; a template object with methods of its own and `destroy`;
# structs with defaults and `$Proxy.name`; an optional result.

@0xf0a3c5e7b9d10255;

using Proxy = import "/mp/proxy.capnp";

const maxWait :Float64 = 1.0e9;

interface MinerInit {
    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    makeMiner @1 (context :Proxy.Context) -> (result :Miner);
}

interface Miner {
    tip @0 (context :Proxy.Context) -> (result :Tip, hasResult :Bool);
    # The current tip, if there is one.

    waitTipChanged @1 (context :Proxy.Context, currentTip :Data, timeout :Float64 = .maxWait) -> (result :Tip);
    # Blocks until the tip is not `currentTip`, `timeout` seconds pass, or
    # `interrupt` is called; returns the tip then.

    interrupt @2 () -> ();
    # Releases every blocked `waitTipChanged` (runs on the event loop).

    advance @3 () -> ();
    # Moves the tip on by one block (runs on the event loop).

    newTemplate @4 (context :Proxy.Context, options :TemplateOptions) -> (result :Template);
}

interface Template {
    destroy @0 (context :Proxy.Context) -> ();
    header @1 (context :Proxy.Context) -> (result :Data);
    fees @2 (context :Proxy.Context) -> (result :List(Int64));
    submit @3 (context :Proxy.Context, nonce :UInt32, coinbase :Data) -> (reason :Text, result :Bool);
}

struct Tip {
    # A block the chain ends at.

    hash @0 :Data;
    # The block's hash.

    height @1 :Int32;
    # Its height.
}

struct TemplateOptions {
    useMempool @0 :Bool = true $Proxy.name("use_mempool");
    reservedWeight @1 :UInt64 = 8000 $Proxy.name("block_reserved_weight");
}
