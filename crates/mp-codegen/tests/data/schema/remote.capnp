# An interface in a file of its own, returned by `hub.capnp`'s `Hub`: the
# generated code refers to it across files (`super::remote_mp::Echo`).

@0xc4d2e6f8a0b13577;

using Proxy = import "/mp/proxy.capnp";

interface Echo {
    echo @0 (context :Proxy.Context, text :Text) -> (result :Text);
    # Returns `text`.

    destroy @1 (context :Proxy.Context) -> ();
}
