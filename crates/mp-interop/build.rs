//! Generates Rust code for Bitcoin Core's published IPC schemas (`init`,
//! `mining`, `echo` and the `common`/`rpc` files they import) with this
//! workspace's generator, from the copy shipped in the `bitcoin-capnp-types`
//! crate's `capnp/` folder — located through `cargo metadata`, so the
//! schemas are exactly those of the version in Cargo.lock and none are
//! copied into this repository.

use std::path::PathBuf;
use std::process::Command;

fn schema_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(manifest.join("Cargo.toml"))
        .output()
        .expect("running `cargo metadata`");
    assert!(
        out.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let package = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "bitcoin-capnp-types")
        .expect("bitcoin-capnp-types among the packages (a dev-dependency of mp-interop)");
    let manifest_path = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
    manifest_path.parent().unwrap().join("capnp")
}

fn main() {
    let dir = schema_dir();
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = std::env::var("OUT_DIR").unwrap();
    let mut builder = mp_codegen::Builder::new()
        .src_prefix(&dir)
        .import_path(&dir)
        // Their proxy.capnp is libmultiprocess's, whose types mp-ipc provides.
        .crate_provides("mp_ipc", [0xcc31_6e3f_71a0_40fb])
        // Bitcoin Core returns nullptr from these: `waitNext` on timeout,
        // `createNewBlock` when interrupted or shutting down.
        .nullable_result("BlockTemplate", "waitNext")
        .nullable_result("Mining", "createNewBlock")
        .output_path(&out_dir);
    for file in ["common", "echo", "init", "mining", "rpc"] {
        builder = builder.file(dir.join(format!("{file}.capnp")));
    }
    if let Err(e) = builder.run() {
        panic!(
            "mp-codegen on Bitcoin Core's schemas in {}: {e}",
            dir.display()
        );
    }
}
