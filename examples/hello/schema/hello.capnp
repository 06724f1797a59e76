# The hello example's interfaces. Each `$Proxy.wrap` interface becomes a
# Rust trait to implement, a client to call it with, and a server adapter.
# A method whose first parameter is a `Proxy.Context` runs on the server
# thread mapped to the calling client thread; one without runs on the
# server's event loop.

@0xa86f4af0e610a79c;

using Proxy = import "/mp/proxy.capnp";

interface HelloInit $Proxy.wrap("HelloInit") {
    # What the server process offers first: the client's way in.

    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    # Both sides hand each other their ThreadMap, so each can make threads
    # on the other. The generated client calls it when it connects.

    makeGreeter @1 (context :Proxy.Context, language :Text) -> (result :Greeter);
    # A greeter for `language` ("en" or "fr"); another language fails.
}

interface Greeter $Proxy.wrap("Greeter") {
    greet @0 (context :Proxy.Context, name :Text) -> (result :Text);
    # "Hello, <name>!"

    serverThread @1 (context :Proxy.Context) -> (result :Text);
    # Names the server thread this call ran on: always the same one for one
    # client thread, a different one for each client thread.

    greetAll @2 (context :Proxy.Context, names :List(Text), audience :Audience) -> (result :UInt32);
    # Greets each name by calling `audience.hear(greeting)`, a callback
    # that runs on the client thread waiting in this call; stops early when
    # it answers false. Returns how many were greeted.
}

interface Audience $Proxy.wrap("Audience") {
    hear @0 (context :Proxy.Context, greeting :Text) -> (result :Bool);
    # Called back by `Greeter.greetAll`; answers whether to go on.
}
