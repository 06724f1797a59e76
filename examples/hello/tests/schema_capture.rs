//! `schema/hello.request` is what `capnp` makes from `schema/hello.capnp`;
//! `build.rs` reads it only where Cap'n Proto is not installed. This test
//! compiles the schema again where `capnp` is installed (CI installs it)
//! and fails if the code generated from the capture differs from the code
//! generated from the schema. `MP_REGEN=1 cargo test -p hello --test
//! schema_capture` captures the schema again instead.

use std::path::{Path, PathBuf};
use std::process::Command;

fn capnp_available() -> bool {
    Command::new("capnp")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated file under `dir`, by name, without the header lines
/// that name tool versions (they may differ between machines without
/// changing the code).
fn generated_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let code = std::fs::read_to_string(&path).unwrap();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| {
                    !l.starts_with("// capnp binary version")
                        && !l.starts_with("// capnpc crate version")
                })
                .collect();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                code.join("\n"),
            )
        })
        .collect();
    files.sort();
    files
}

/// The builder `build.rs` uses, with mp-ipc's schema directory named here
/// (cargo hands it only to build scripts).
fn builder(out: &Path) -> mp_codegen::Builder {
    let dir = manifest_dir();
    mp_codegen::Builder::new()
        .import_path(dir.join("../../crates/mp-ipc/schema"))
        .crate_provides("mp_ipc", [mp_codegen::MP_IPC_PROXY_FILE_ID])
        .src_prefix(dir.join("schema"))
        .file(dir.join("schema/hello.capnp"))
        .rustfmt(false)
        .output_path(out)
}

#[test]
fn the_captured_request_matches_the_schema() {
    if !capnp_available() {
        eprintln!("skipped: the `capnp` binary is not installed (CI installs it)");
        return;
    }
    let capture = manifest_dir().join("schema/hello.request");
    let scratch = std::env::temp_dir().join(format!("hello-capture-{}", std::process::id()));
    let (fresh, captured) = (scratch.join("fresh"), scratch.join("captured"));
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::create_dir_all(&captured).unwrap();

    let mut from_schema = builder(&fresh);
    if std::env::var_os("MP_REGEN").is_some() {
        from_schema = from_schema.capture_request(&capture);
    }
    from_schema.run().expect("generating from the schema");
    builder(&captured)
        .request_file(&capture)
        .run()
        .expect("generating from the captured request");

    let (fresh_files, captured_files) = (generated_files(&fresh), generated_files(&captured));
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(
        fresh_files.iter().map(|f| &f.0).collect::<Vec<_>>(),
        ["hello_capnp.rs", "hello_mp.rs"]
    );
    for ((name, now), (_, then)) in fresh_files.iter().zip(&captured_files) {
        assert!(
            now == then,
            "{name} from {} differs from {name} from schema/hello.capnp: capture it again with \
             `MP_REGEN=1 cargo test -p hello --test schema_capture`",
            capture.display()
        );
    }
}
