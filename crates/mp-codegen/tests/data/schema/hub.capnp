# An `Init`-shaped interface that returns and takes an interface of another
# schema file (like Bitcoin Core's init.capnp and echo.capnp).

@0xa8e0c2b4d6f81399;

using Proxy = import "/mp/proxy.capnp";
using Remote = import "remote.capnp";

interface Hub {
    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    makeEcho @1 (context :Proxy.Context) -> (result :Remote.Echo);
    relay @2 (context :Proxy.Context, echo :Remote.Echo, text :Text) -> (result :Text);
    # Calls `echo.echo(text)` back on the client.

    findEcho @3 (context :Proxy.Context, exists :Bool) -> (result :Remote.Echo, hasResult :Bool);
    # An optional interface result.
}
