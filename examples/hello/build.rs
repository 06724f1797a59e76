//! Generates `hello_capnp.rs` (capnpc's message types) and `hello_mp.rs`
//! (mp-codegen's traits, clients and servers) from `schema/hello.capnp`
//! into `$OUT_DIR`; `src/lib.rs` includes both.

fn main() {
    mp_codegen::Builder::new()
        // `import "/mp/proxy.capnp"` resolves to the mp-ipc dependency's copy.
        .mp_ipc()
        .src_prefix("schema")
        .file("schema/hello.capnp")
        // Only where Cap'n Proto is not installed: the request `capnp`
        // made from the schema, checked in (tests/schema_capture.rs keeps
        // it in step with the schema). A project of your own can drop this
        // line and require `capnp`.
        .request_fallback("schema/hello.request")
        .run()
        .unwrap_or_else(|e| panic!("generating code for schema/hello.capnp: {e}"));
    println!("cargo:rerun-if-changed=schema");
}
