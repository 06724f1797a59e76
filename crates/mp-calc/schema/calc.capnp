# A small test interface shaped like libmultiprocess's own tests: methods
# that run on the caller's mapped server thread (they take a Context), one
# that runs on the event loop (no Context), a callback interface the server
# calls back on the waiting client thread, and a method returning an object
# with methods of its own.

@0xd6b2f0c4a1e39b57;

using Proxy = import "/mp/proxy.capnp";

interface CalcInit $Proxy.wrap("CalcInit") {
    # The bootstrap interface a calculator process serves.

    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    # Each side hands the other its ThreadMap.

    makeCalculator @1 (context :Proxy.Context) -> (result :Calculator);
}

interface Calculator $Proxy.wrap("Calculator") {
    add @0 (context :Proxy.Context, a :Int64, b :Int64) -> (result :Int64);
    # Runs on the caller's mapped server thread.

    addOnLoop @1 (a :Int64, b :Int64) -> (result :Int64);
    # No Context: runs on the server's event loop.

    whereAmI @2 (context :Proxy.Context) -> (threadName :Text, threadNumber :UInt64);
    # Names the server thread the call ran on.

    countdown @3 (context :Proxy.Context, n :UInt32, callback :Callback) -> (result :UInt32);
    # Calls `callback.step(n)` and returns its result; the callback may call
    # `countdown(n - 1)` back, nesting client -> server -> client -> ...

    sleep @4 (context :Proxy.Context, millis :UInt32) -> ();
    # Blocks the server thread (for disconnect tests).

    fail @5 (context :Proxy.Context, message :Text) -> ();
    # Fails with `message`.

    panic @6 (context :Proxy.Context, message :Text) -> ();
    # Panics with `message` on the server thread.

    makeCounter @7 (context :Proxy.Context, start :Int64) -> (result :Counter);
    # Returns a new object with methods of its own.
}

interface Callback $Proxy.wrap("Callback") {
    step @0 (context :Proxy.Context, n :UInt32) -> (result :UInt32);
}

interface Counter $Proxy.wrap("Counter") {
    add @0 (context :Proxy.Context, delta :Int64) -> (value :Int64);
    get @1 () -> (value :Int64);
    destroy @2 (context :Proxy.Context) -> ();
}
