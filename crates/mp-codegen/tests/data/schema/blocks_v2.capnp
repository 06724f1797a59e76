# The newer version of `blocks_v1.capnp`: `submitBlock` gained a parameter
# with a default (as Bitcoin Core's mining `submitBlock` gained
# `precious`), and the interface a method.

@0x9d2c4e6a8b0f1377;

using Proxy = import "/mp/proxy.capnp";

interface BlockInit {
    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    makeSink @1 (context :Proxy.Context) -> (result :BlockSink);
}

interface BlockSink {
    submitBlock @0 (context :Proxy.Context, block :Data, precious :Bool = false) -> (result :Bool);
    # Accepts a non-empty block; `precious` asks to keep it even if it
    # loses a race.

    tipHeight @1 (context :Proxy.Context) -> (result :Int32);
    # How many blocks were accepted.
}
