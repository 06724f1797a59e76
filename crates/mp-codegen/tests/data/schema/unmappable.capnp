# A schema mp-codegen cannot map yet: the generator must refuse it with
# errors naming the file, interface, method and field of each problem.

@0xe1a7d3c2b4f50611;

using Proxy = import "/mp/proxy.capnp";

struct Point {
    x @0 :Int32;
    y @1 :Int32;
}

enum Color {
    red @0;
    green @1;
}

interface Plotter {
    plot @0 (context :Proxy.Context, where :Point) -> ();
    pick @1 (color :Color) -> ();
    tryIt @2 (context :Proxy.Context) -> (error :Text $Proxy.exception("std::exception"));
    ok @3 (n :Int32) -> (result :Int32);
}
