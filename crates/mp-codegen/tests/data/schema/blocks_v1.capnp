# The older of two versions of one interface (same file and interface ids),
# for schema evolution: a client generated from either works against a
# server generated from the other.

@0x9d2c4e6a8b0f1377;

using Proxy = import "/mp/proxy.capnp";

interface BlockInit {
    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    makeSink @1 (context :Proxy.Context) -> (result :BlockSink);
}

interface BlockSink {
    submitBlock @0 (context :Proxy.Context, block :Data) -> (result :Bool);
    # Accepts a non-empty block.
}
