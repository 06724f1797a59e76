//! Generates Rust code for Bitcoin Core's published IPC schemas (`init`,
//! `mining`, `echo` and the `common`/`rpc` files they import) with this
//! workspace's generator, from the copy shipped in the `bitcoin-capnp-types`
//! crate's `capnp/` folder, so the schemas are exactly those of the version
//! in Cargo.lock and none are copied into this repository.
//!
//! The folder is found in cargo's registry cache (`$CARGO_HOME`, default
//! `~/.cargo`) by the version Cargo.lock names; `MP_BITCOIN_CAPNP_DIR`
//! overrides it (vendored sources); `cargo metadata` is the last resort.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE: &str = "bitcoin-capnp-types";

/// The locked version of the package, from the workspace's Cargo.lock.
fn locked_version(workspace: &Path) -> Option<String> {
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{PACKAGE}\"") {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_string());
        }
    }
    None
}

fn from_registry(version: &str) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = cargo_home.join("registry/src");
    std::fs::read_dir(src).ok()?.flatten().find_map(|index| {
        let dir = index.path().join(format!("{PACKAGE}-{version}/capnp"));
        dir.join("mining.capnp").is_file().then_some(dir)
    })
}

fn from_metadata(manifest_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
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
        .find(|p| p["name"] == PACKAGE)
        .expect("bitcoin-capnp-types among the packages (a dev-dependency of mp-interop)");
    let manifest_path = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
    manifest_path.parent().unwrap().join("capnp")
}

fn schema_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=MP_BITCOIN_CAPNP_DIR");
    if let Some(dir) = std::env::var_os("MP_BITCOIN_CAPNP_DIR") {
        return PathBuf::from(dir);
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..");
    locked_version(&workspace)
        .and_then(|v| from_registry(&v))
        .unwrap_or_else(|| from_metadata(&manifest_dir))
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
