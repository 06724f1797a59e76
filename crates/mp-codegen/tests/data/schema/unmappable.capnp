# A schema mp-codegen cannot map yet: the generator must refuse it with an
# error naming the file, interface, method and field.

@0xe1a7d3c2b4f50611;

using Proxy = import "/mp/proxy.capnp";

struct Point {
    x @0 :Int32;
    y @1 :Int32;
}

interface Plotter {
    plot @0 (context :Proxy.Context, where :Point) -> ();
}
