# Wire schema shared with libmultiprocess (bitcoin-core/libmultiprocess,
# include/mp/proxy.capnp). The file id and every name below fix the type ids
# that travel on the wire, so nothing here may be renamed or renumbered.
# One field is multiprocess's own: `Context.callId`, after libmultiprocess's
# two (see it below).
#
# libmultiprocess also sets `$Cxx.namespace("mp")`; annotations do not change
# type ids, so we leave out the C++ import and stay buildable without it.

@0xcc316e3f71a040fb;

annotation include(file): Text;
# Extra source to include in generated C++ files (kept for schema compatibility).

annotation includeTypes(file): Text;
# Extra type-conversion source to include in generated C++ files.

annotation wrap(interface, struct): Text;
# Names the native interface or struct that a Cap'n Proto interface or struct
# stands for; code generators emit proxies that forward to it.

annotation count(param, struct, interface): Int32;
# How many native parameters one schema parameter stands for (default 1).
# 0 marks a parameter the runtime fills implicitly, such as `Context`.

annotation exception(param): Text;
# Marks a result field that carries an error of the named native type.

annotation name(field, method): Text;
# The native name of a field or method when it differs from the schema's.

annotation skip(field): Void;
# Same as `count(0)`.

interface ThreadMap $count(0) {
    # Lets a client create and name server threads, then direct calls at them
    # by passing a Thread in the call's Context.

    makeThread @0 (name :Text) -> (result :Thread);
    # Starts a server thread named `name` and returns its handle.

    makePool @1 (count :UInt32) -> ();
    # Starts `count` server threads that run calls whose Context names no thread.
}

interface Thread {
    # One server thread made by ThreadMap.makeThread (or a client thread that
    # accepts callbacks).

    getName @0 () -> (result :Text);
}

struct Context $count(0) {
    # Passed with every call that must run on a particular thread.

    thread @0 :Thread;
    # The server thread the call runs on; null means the pool.

    callbackThread @1 :Thread;
    # The caller's thread: calls the server makes back to the caller while
    # serving this call run there.

    callId @2 :UInt64;
    # multiprocess's own field, not in libmultiprocess's schema: the call's
    # id, which both sides show in their tracing spans (`call_id`); 0 for
    # none. libmultiprocess's Context has no data section, so a peer built
    # from its schema never reads this (Cap'n Proto readers skip what their
    # schema does not have) and never sends it (it reads as 0 here).
}
