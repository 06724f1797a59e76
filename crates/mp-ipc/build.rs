//! Tells the build scripts of crates that depend on mp-ipc where its
//! schema directory is: cargo passes `schema_dir` to them as
//! `DEP_MP_IPC_SCHEMA_DIR` (this package `links = "mp_ipc"`), so a schema
//! of theirs can `import "/mp/proxy.capnp"` without knowing where cargo
//! unpacked this crate. `mp_codegen::Builder::mp_ipc` reads it.

fn main() {
    let dir = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("schema");
    println!("cargo:schema_dir={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
