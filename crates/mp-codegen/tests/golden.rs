//! Golden tests: the generator, run on `CodeGeneratorRequest`s captured from
//! the schemas under `tests/data/` (so no `capnp` binary is needed), must
//! produce exactly the checked-in `*_mp.rs`. `MP_REGEN=1` rewrites them (and
//! capnpc's `*_capnp.rs` for the round-trip tests). `unmappable_mp.rs` is the
//! output with `skip_unsupported`, compiled by `tests/skip_roundtrip.rs`.

use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn regen() -> bool {
    std::env::var_os("MP_REGEN").is_some()
}

/// Generates from `{request}.request.bin` and compares each output file
/// with its golden copy.
fn check(request: &str, outputs: &[&str]) {
    check_in(&data(), request, outputs);
}

/// [`check`] with the golden copies in `dir`.
fn check_in(dir: &Path, request: &str, outputs: &[&str]) {
    check_with(dir, request, outputs, false);
}

/// [`check_in`], optionally with `skip_unsupported`.
fn check_with(dir: &Path, request: &str, outputs: &[&str], skip_unsupported: bool) {
    if mp_codegen::format_code("fn main() {}\n").is_none() {
        eprintln!("skipped: rustfmt is not installed (the golden files are rustfmt's output)");
        return;
    }
    let bytes = std::fs::read(data().join(format!("{request}.request.bin"))).unwrap();
    let options = mp_codegen::Options {
        rustfmt: true,
        skip_unsupported,
        ..Default::default()
    };
    let files = mp_codegen::generate(&bytes, &options)
        .expect("generate")
        .files;
    let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    let expected: Vec<&Path> = outputs.iter().map(Path::new).collect();
    assert_eq!(paths, expected);
    for file in &files {
        let golden = dir.join(&file.path);
        if regen() {
            std::fs::write(&golden, &file.code).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&golden).unwrap();
        assert!(
            file.code == current,
            "{} is out of date: regenerate with `MP_REGEN=1 cargo test -p mp-codegen --test golden`",
            golden.display()
        );
    }
}

/// capnpc's own code for a captured request, checked in for the round-trip
/// tests, must stay in step with the request.
fn check_capnpc(request: &str, outputs: &[&str]) {
    let bytes = std::fs::read(data().join(format!("{request}.request.bin"))).unwrap();
    let out = std::env::temp_dir().join(format!(
        "mp-codegen-capnpc-{request}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&out).unwrap();
    let mut gen = capnpc::codegen::CodeGenerationCommand::new();
    gen.output_directory(&out)
        .crates_provide_map([(0xcc31_6e3f_71a0_40fb, "mp_ipc".to_string())].into());
    gen.run(&bytes[..]).expect("capnpc");
    for name in outputs {
        let fresh = std::fs::read_to_string(out.join(name)).unwrap();
        let checked_in = data().join(name);
        if regen() {
            std::fs::write(&checked_in, &fresh).unwrap();
            continue;
        }
        assert!(
            fresh == std::fs::read_to_string(&checked_in).unwrap(),
            "{} is out of date: regenerate with `MP_REGEN=1 cargo test -p mp-codegen --test golden`",
            checked_in.display()
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// mp-test-calc's checked-in `calc_mp.rs` is this generator's output.
#[test]
fn calc_matches_golden() {
    let mp_test_calc_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/calc/src");
    check_in(&mp_test_calc_src, "calc", &["calc_mp.rs"]);
}

#[test]
fn types_matches_golden() {
    check("types", &["types_mp.rs"]);
}

#[test]
fn two_files_match_golden() {
    check("hub", &["hub_mp.rs", "remote_mp.rs"]);
}

/// Generic, recursive and interface-holding structs across two files.
#[test]
fn ledger_matches_golden() {
    check("ledger", &["ledger_mp.rs", "shared_mp.rs"]);
}

/// Two versions of one interface, for schema evolution.
#[test]
fn blocks_versions_match_golden() {
    check("blocks_v1", &["blocks_v1_mp.rs"]);
    check("blocks_v2", &["blocks_v2_mp.rs"]);
}

#[test]
fn miner_matches_golden() {
    check("miner", &["miner_mp.rs"]);
}

/// With `skip_unsupported`, `Plotter` keeps only the method that maps.
#[test]
fn unmappable_with_skipping_matches_golden() {
    check_with(&data(), "unmappable", &["unmappable_mp.rs"], true);
}

#[test]
fn capnpc_code_for_the_test_schemas_is_current() {
    check_capnpc("miner", &["miner_capnp.rs"]);
    check_capnpc("unmappable", &["unmappable_capnp.rs"]);
    check_capnpc("types", &["types_capnp.rs"]);
    check_capnpc("hub", &["hub_capnp.rs", "remote_capnp.rs"]);
    check_capnpc("ledger", &["ledger_capnp.rs", "shared_capnp.rs"]);
    check_capnpc("blocks_v1", &["blocks_v1_capnp.rs"]);
    check_capnpc("blocks_v2", &["blocks_v2_capnp.rs"]);
}
