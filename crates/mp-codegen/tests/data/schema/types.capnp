# Every type mapping of mp-codegen: primitives, Text, Data, lists (also of
# structs and enums), structs, enums, several results, optional results,
# exceptions, implicit fields, a loop method, a method without results.

@0xb3f1c5d7e9a20433;

using Proxy = import "/mp/proxy.capnp";

interface Types {
    # Echoes what it is given.

    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    # The thread-map exchange.

    echoPrimitives @1 (context :Proxy.Context, b :Bool, i8 :Int8, i16 :Int16, i32 :Int32, i64 :Int64, u8 :UInt8, u16 :UInt16, u32 :UInt32, u64 :UInt64, f32 :Float32, f64 :Float64)
        -> (b :Bool, i8 :Int8, i16 :Int16, i32 :Int32, i64 :Int64, u8 :UInt8, u16 :UInt16, u32 :UInt32, u64 :UInt64, f32 :Float32, f64 :Float64);
    # All primitive types, in and out.

    echoText @2 (context :Proxy.Context, text :Text, data :Data) -> (text :Text, data :Data);

    echoLists @3 (context :Proxy.Context, ints :List(Int32), flags :List(Bool), texts :List(Text), blobs :List(Data), doubles :List(Float64))
        -> (ints :List(Int32), flags :List(Bool), texts :List(Text), blobs :List(Data), doubles :List(Float64));

    concat @4 (parts :List(Text)) -> (result :Text);
    # Runs on the event loop.

    ping @5 (context :Proxy.Context) -> ();

    type @6 (context :Proxy.Context, match :UInt8) -> (result :UInt8);
    # Names that are Rust keywords.

    configure @7 (context :Proxy.Context, options :Options) -> (result :Options);
    # Structs in and out.

    tipOf @8 (options :Options) -> (hash :Data, tip :BlockRef);
    # A struct among several results, on the event loop.

    findTip @9 (context :Proxy.Context, height :Int32) -> (result :BlockRef, hasResult :Bool);
    # `result` + `hasResult` is an Option: a tip for heights >= 0.

    paint @10 (context :Proxy.Context, color :Color) -> (result :Color);
    # Enums in and out: the next color.

    mix @11 (a :Color, b :Color) -> (color :Color, same :Bool);
    # An enum among several results, on the event loop.

    check @12 (context :Proxy.Context, n :Int32) -> (result :Int32, error :Text $Proxy.exception("std::exception"));
    # Fails for negative `n`; the error travels in the `$Proxy.exception` field.

    validate @13 (ok :Bool) -> (error :Text $Proxy.exception("std::exception"));
    # The same without other results, on the event loop.

    collect @14 (context :Proxy.Context, tips :List(BlockRef), colors :List(Color), size :UInt32 $Proxy.count(0))
        -> (tips :List(BlockRef), colors :List(Color), note :Text $Proxy.count(0));
    # Lists of structs and enums; `size` and `note` are implicit
    # (`$Proxy.count(0)`): not in the Rust API. Returns the
    # tips highest first and the colors reversed.

    bump @15 (context :Proxy.Context, value :Text) -> (value :Text, result :Bool);
    # An in/out parameter beside a result, named like the generated code's
    # own locals: appends "!" and says whether it was empty.

    update @16 (value :Text) -> (value :Text, result :Int32, hasResult :Bool);
    # The same beside an optional result (Bitcoin Core's
    # `SettingsUpdateCallback.call`), on the event loop: upper-cases it and
    # returns its old length, none when it was empty.
}

enum Color {
    red @0;
    green @1;
    blue @2;
}

struct Options {
    # Schema defaults and `$Proxy.name` field names.

    useMempool @0 :Bool = true $Proxy.name("use_mempool");
    reservedWeight @1 :UInt64 = 4000 $Proxy.name("block_reserved_weight");
    label @2 :Text = "default";
    ratio @3 :Float64 = 0.5;
    tip @4 :BlockRef;
    tags @5 :List(Text);
    color @6 :Color = green;
    shade @7 :Color;
    history @8 :List(BlockRef);
    palette @9 :List(Color);
    internal @10 :UInt32 $Proxy.skip;
}

struct BlockRef {
    hash @0 :Data;
    height @1 :Int32 = -1;
}
