# Interfaces shaped like Bitcoin Core's wallet, chain and node interfaces:
# lists of interfaces, interfaces in structs and in generic structs, nested
# generic lists, lists of lists, recursive structs, Void parameters,
# `$Proxy.name` on methods, implicit struct parameters, a thread map
# passed outside `construct`, a notifications callback registered through
# a `Handler`, interface inheritance, output parameters whose in and out
# types differ, and names that collide with generated ones.

@0xd9b3c5e7f1a24466;

using Proxy = import "/mp/proxy.capnp";
using Shared = import "shared.capnp";

interface Account {
    destroy @0 (context :Proxy.Context) -> ();
    name @1 (context :Proxy.Context) -> (result :Text);
    balance @2 (context :Proxy.Context) -> (result :Int64);
}

struct Migration {
    # An interface inside a struct, and a list of them.
    account @0 :Account;
    note @1 :Text;
    backups @2 :List(Account);
}

struct RpcError {
    code @0 :Int32;
    message @1 :Text;
}

struct Rejection {
    # An exception struct too large for clippy's `result_large_err` (as
    # libmultiprocess's `FooStruct`), thrown whole.
    reason @0 :Text;
    tip @1 :Shared.Block;
    hashes @2 :List(Data);
    notes @3 :List(Text);
}

interface Ledger {
    construct @0 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);

    accounts @1 (context :Proxy.Context) -> (result :List(Account));
    # A list of interfaces returned.

    open @2 (context :Proxy.Context, name :Text) -> (result :Shared.Result(Account));
    # An interface in a generic struct: the account, or an error for an unknown name.

    migrate @3 (context :Proxy.Context, name :Text) -> (result :Migration);
    # An interface in a struct returned.

    history @4 (context :Proxy.Context, entries :List(Shared.Pair(Text, List(Shared.Pair(Data, Shared.PairInt64(Text))))))
        -> (result :List(Shared.Pair(Text, List(Shared.Pair(Data, Shared.PairInt64(Text))))));
    # Nested generic lists, echoed in reverse order.

    transpose @5 (rows :List(List(Int32))) -> (result :List(List(Int32)));
    # Lists of lists, on the event loop.

    walk @6 (context :Proxy.Context, tip :Shared.Block) -> (result :Shared.Block, length :Int32);
    # A recursive struct: the chain reversed, and its length.

    ping @7 (context :Proxy.Context, nothing :Void, args :Shared.GlobalArgs) -> (result :Bool);
    # A `Void` parameter and an implicit one (its type is `$Proxy.count(0)`).

    getVersion @8 (context :Proxy.Context) -> (result :Int32) $Proxy.name("GetVersionNumber");
    # `$Proxy.name` on a method: the Rust name is `get_version_number`.

    settle @9 (context :Proxy.Context, accounts :List(Account)) -> (result :Int64);
    # A list of interfaces passed: the sum of their balances, asked of the caller.

    store @10 (context :Proxy.Context, migration :Migration) -> (result :Text);
    # An interface in a struct passed: the account's name, asked of the caller.

    call @12 (context :Proxy.Context, command :Text) -> (result :Text,
        error :Text $Proxy.exception("std::exception"),
        rpcError :RpcError $Proxy.exception("UniValue"),
        typeError :Text $Proxy.exception("UniValue::type_error"),
        helpResult :Text $Proxy.exception("HelpResult"));
    # Several `$Proxy.exception` results, one a struct (Bitcoin Core's
    # `ActorCallback.call`): "ok" answers, "rpc", "type", "help" and "fail"
    # raise each, anything else fails the call.

    attach @11 (context :Proxy.Context, threadMap :Proxy.ThreadMap, label :Text) -> (result :Text);
    # A thread map passed outside `construct` (filled by the generated code).

    chain @13 (context :Proxy.Context) -> (result :Chain);
    loader @14 (context :Proxy.Context) -> (result :WalletLoader);

    start @15 (context :Proxy.Context, client :ChainClient) -> (result :Text);
    # A derived object passed where its base is wanted: loads it, returns
    # what `load` said.

    callFn @16 (context :Proxy.Context) -> (result :Text);
    callFnAsync @17 (context :Proxy.Context) -> (result :Text);
    # Names that collide with a generated one: `callFn`'s async variant
    # would be `call_fn_async`, which `callFnAsync` declares.

    weigh @18 (context :Proxy.Context, p :Int32, conn :Int32, cap :Int32, req :Int32, imp :Int32, r :Int32) -> (result :Int32);
    # Parameters named like the generated code's locals: p + 2 conn + 3 cap
    # + 4 req + 5 imp + 6 r.

    pay @19 (context :Proxy.Context, outputs :List(Output)) -> (result :List(Output));
    # Unions and groups: the outputs in reverse order, each holder's
    # destination replaced by the holder's name.

    describe @20 (context :Proxy.Context, name :Text) -> (result :Shared.Expected(Text, RpcError));
    # A generic union: an account's description, or an error.

    initThreadMap @21 (threadMap :Proxy.ThreadMap) -> (threadMap :Proxy.ThreadMap);
    # The thread-map exchange under another name (a thread map as a
    # parameter and as a result), for a client that did not `construct`.

    reject @22 (tip :Shared.Block, reason :Text) -> (error :Rejection $Proxy.exception("Rejection"));
    # A struct as the only, `$Proxy.exception`, result, on the event loop
    # (libmultiprocess's `FooInterface.raise`): always fails with a
    # rejection carrying the tip and the reason.
}

struct Destination {
    # All one union: a Rust enum.
    union {
        address @0 :Text;
        script @1 :Data;
        holder @2 :Account;
        burn @3 :Void;
    }
}

struct Output {
    amount @0 :Int64;
    union {
        # Beside other fields: the struct's `which`.
        to @1 :Destination;
        change @2 :Void;
    }
    label :group {
        text @3 :Text;
        color @4 :UInt8 = 7;
    }
    spend :union {
        # A named union: an enum of its own.
        now @5 :Void;
        after @6 :Int32;
    }
}

interface Handler {
    # A registration (Bitcoin Core's `Handler`): dropping it unregisters.
    destroy @0 (context :Proxy.Context) -> ();
    disconnect @1 (context :Proxy.Context) -> ();
}

interface Notifications {
    # A callback the caller implements (Bitcoin Core's `ChainNotifications`).
    destroy @0 (context :Proxy.Context) -> ();
    blockConnected @1 (context :Proxy.Context, height :Int32) -> ();
}

struct FoundBlockParam {
    # What to look up (libmultiprocess's output-parameter pattern: the
    # parameter and the result of the same name have different types).
    wantHash @0 :Bool;
    wantHeight @1 :Bool;
}

struct FoundBlockResult {
    hash @0 :Data;
    height @1 :Int32;
    found @2 :Bool;
}

interface Chain {
    destroy @0 (context :Proxy.Context) -> ();

    handleNotifications @1 (context :Proxy.Context, notifications :Notifications) -> (result :Handler);
    # Registers a callback, called until its handler is destroyed.

    notify @2 (context :Proxy.Context, height :Int32) -> (result :Int32);
    # Calls every registered callback; returns how many.

    forget @3 () -> (result :Int32);
    # On the event loop: drops every registered callback; returns how many.

    findBlock @4 (context :Proxy.Context, hash :Data, block :FoundBlockParam) -> (block :FoundBlockResult, result :Bool);
    # Blocks are found by a non-empty hash; its height is its length.
}

interface ChainClient {
    # Named like the client type generated for `Chain`: that one is
    # therefore `ChainProxyClient` (and its server `ChainProxyServer`).
    destroy @0 (context :Proxy.Context) -> ();
    load @1 (context :Proxy.Context) -> (result :Text);
}

interface WalletLoader extends(ChainClient) {
    # A derived interface (Bitcoin Core's `WalletLoader`).
    createWallet @0 (context :Proxy.Context, name :Text) -> (result :Account);
    wallets @1 (context :Proxy.Context) -> (result :List(Account));
}
