//! The generated Rust for the repository's schemas is checked in, so a plain
//! `cargo build` needs no `capnp` binary. This test regenerates it where
//! `capnp` is installed (CI installs it) and fails on any drift. Run with
//! `MP_REGEN=1` to rewrite the checked-in files instead.

use std::path::{Path, PathBuf};
use std::process::Command;

fn capnp_available() -> bool {
    Command::new("capnp")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Drops the header lines that name tool versions, which may differ between
/// machines without changing the code.
fn normalized(code: &str) -> String {
    code.lines()
        .filter(|l| {
            !l.starts_with("// capnp binary version") && !l.starts_with("// capnpc crate version")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(
    schema_dir: &Path,
    import_dir: &Path,
    file: &str,
    provides: Option<(&str, u64)>,
    checked_in: &Path,
) {
    let out = std::env::temp_dir().join(format!(
        "mp-gen-{}-{}",
        std::process::id(),
        file.replace('/', "_")
    ));
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = capnpc::CompilerCommand::new();
    cmd.src_prefix(schema_dir)
        .import_path(import_dir)
        .file(schema_dir.join(file))
        .output_path(&out);
    if let Some((krate, id)) = provides {
        cmd.crate_provides(krate, [id]);
    }
    cmd.run().expect("capnp compile");
    let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
    let fresh_path = out.join(Path::new(file).with_file_name(format!("{stem}_capnp.rs")));
    let fresh = std::fs::read_to_string(&fresh_path).expect("generated file");
    let _ = std::fs::remove_dir_all(&out);
    if std::env::var_os("MP_REGEN").is_some() {
        std::fs::write(checked_in, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(checked_in).unwrap();
    assert!(
        normalized(&fresh) == normalized(&current),
        "{} is out of date with {file}: regenerate with `MP_REGEN=1 cargo test -p mp-calc --test generated_code`",
        checked_in.display()
    );
}

#[test]
fn checked_in_code_matches_the_schemas() {
    if !capnp_available() {
        eprintln!("skipped: the `capnp` binary is not installed (CI installs it)");
        return;
    }
    let root = root();
    let ipc_schema = root.join("crates/mp-ipc/schema");
    check(
        &ipc_schema,
        &ipc_schema,
        "mp/proxy.capnp",
        None,
        &root.join("crates/mp-ipc/src/proxy_capnp.rs"),
    );
    check(
        &root.join("crates/mp-calc/schema"),
        &ipc_schema,
        "calc.capnp",
        Some(("mp_ipc", 0xcc31_6e3f_71a0_40fb)),
        &root.join("crates/mp-calc/src/calc_capnp.rs"),
    );
    check_mp_codegen(&root, &ipc_schema);
}

/// mp-codegen's `calc_mp.rs` from the schema as it is now. With `MP_REGEN`
/// it also re-captures the request mp-codegen's golden test reads, so both
/// stay in step with `calc.capnp`.
fn check_mp_codegen(root: &Path, ipc_schema: &Path) {
    let schema_dir = root.join("crates/mp-calc/schema");
    let out = std::env::temp_dir().join(format!("mp-gen-{}-calc-mp", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let request = root.join("crates/mp-codegen/tests/data/calc.request.bin");
    let mut builder = mp_codegen::Builder::new()
        .src_prefix(&schema_dir)
        .import_path(ipc_schema)
        .file(schema_dir.join("calc.capnp"))
        .capnp_code(false)
        .output_path(&out);
    if std::env::var_os("MP_REGEN").is_some() {
        builder = builder.capture_request(&request);
    }
    builder.run().expect("mp-codegen");
    let fresh = std::fs::read_to_string(out.join("calc_mp.rs")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let checked_in = root.join("crates/mp-calc/src/calc_mp.rs");
    if std::env::var_os("MP_REGEN").is_some() {
        std::fs::write(&checked_in, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == std::fs::read_to_string(&checked_in).unwrap(),
        "{} is out of date with calc.capnp: regenerate with `MP_REGEN=1 cargo test -p mp-calc --test generated_code`",
        checked_in.display()
    );
}
