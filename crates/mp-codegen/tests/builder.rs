//! The `Builder` API and the `mp-codegen` binary write the same files the
//! golden tests check: from a captured request (no `capnp` needed), and —
//! where the `capnp` binary is installed — from the schemas themselves,
//! which also catches a checked-in request that drifted from its schema.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mp-codegen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn assert_same(written: &Path, golden: &Path) {
    let a = std::fs::read_to_string(written).unwrap();
    let b = std::fs::read_to_string(golden).unwrap();
    assert!(
        a == b,
        "{} differs from {}",
        written.display(),
        golden.display()
    );
}

#[test]
fn binary_writes_the_golden_files_from_a_captured_request() {
    if !have("rustfmt", "--version") {
        eprintln!("skipped: rustfmt is not installed");
        return;
    }
    let out = temp("bin");
    let status = Command::new(env!("CARGO_BIN_EXE_mp-codegen"))
        .arg("--request")
        .arg(data().join("types.request.bin"))
        .args(["--crate-provides", "mp_ipc=0xcc316e3f71a040fb", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_same(&out.join("types_mp.rs"), &data().join("types_mp.rs"));
    assert_same(&out.join("types_capnp.rs"), &data().join("types_capnp.rs"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn binary_reports_unsupported_schemas() {
    let out = temp("bin-bad");
    let output = Command::new(env!("CARGO_BIN_EXE_mp-codegen"))
        .arg("--request")
        .arg(data().join("unmappable.request.bin"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("interface `Plotter`, method `plot`, field `where`"),
        "{stderr}"
    );
    assert!(!out.join("unmappable_mp.rs").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn builder_compiles_the_schemas_with_capnp() {
    if !have("capnp", "--version") || !have("rustfmt", "--version") {
        eprintln!("skipped: the `capnp` binary or rustfmt is not installed (CI installs capnp)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ipc_schema = root.join("crates/mp-ipc/schema");
    let out = temp("builder");
    let written = mp_codegen::Builder::new()
        .src_prefix(root.join("crates/mp-calc/schema"))
        .import_path(&ipc_schema)
        .file(root.join("crates/mp-calc/schema/calc.capnp"))
        .crate_provides("mp_ipc", [0xcc31_6e3f_71a0_40fb])
        .output_path(&out)
        .run()
        .expect("run");
    assert_eq!(written, [out.join("calc_mp.rs")]);
    assert_same(
        &out.join("calc_mp.rs"),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../mp-calc/src/calc_mp.rs"),
    );
    // capnpc's half is mp-calc's checked-in file.
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("// capnp") || !l.contains("version"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(std::fs::read_to_string(out.join("calc_capnp.rs")).unwrap()),
        strip(std::fs::read_to_string(root.join("crates/mp-calc/src/calc_capnp.rs")).unwrap())
    );

    let schema = data().join("schema");
    let out2 = temp("builder-types");
    mp_codegen::Builder::new()
        .src_prefix(&schema)
        .import_path(&ipc_schema)
        .file(schema.join("types.capnp"))
        .crate_provides("mp_ipc", [0xcc31_6e3f_71a0_40fb])
        .output_path(&out2)
        .run()
        .expect("run");
    assert_same(&out2.join("types_mp.rs"), &data().join("types_mp.rs"));
    assert_same(&out2.join("types_capnp.rs"), &data().join("types_capnp.rs"));

    let err = mp_codegen::Builder::new()
        .src_prefix(&schema)
        .import_path(&ipc_schema)
        .file(schema.join("unmappable.capnp"))
        .output_path(&out2)
        .run()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unmappable.capnp: interface `Plotter`, method `plot`, field `where`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&out2);
}
