# A schema mp-codegen cannot map yet: the generator must refuse it with
# errors naming the file, interface, method and field of each problem.

@0xe1a7d3c2b4f50611;

using Proxy = import "/mp/proxy.capnp";

struct Point {
    x @0 :Int32;
    y @1 :Int32;
}

struct Shape(Label) {
    # A union beside other fields in a generic struct.
    label @0 :Label;
    union {
        dot @1 :Point;
        radius @2 :Float64;
    }
}

enum Color {
    red @0;
    green @1;
}

interface Plotter {
    plot @0 (context :Proxy.Context, where :Shape(Text)) -> ();
    pick @1 (grids :AnyPointer) -> ();
    tryIt @2 (context :Proxy.Context) -> (error :Int32 $Proxy.exception("std::exception"));
    plotAll @3 (sinks :List(Sink)) -> ();
    struct Sink {
        id @0 :Int32;
    }
    ok @4 (n :Int32, at :Point) -> (result :Int32);
}
