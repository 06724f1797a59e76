//! Golden tests: the generator, run on `CodeGeneratorRequest`s captured from
//! the schemas under `tests/data/` (so no `capnp` binary is needed), must
//! produce exactly the checked-in `*_mp.rs`. `MP_REGEN=1` rewrites them (and
//! capnpc's `types_capnp.rs` for the round-trip tests).

use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn regen() -> bool {
    std::env::var_os("MP_REGEN").is_some()
}

fn check(name: &str) {
    if mp_codegen::format_code("fn main() {}\n").is_none() {
        eprintln!("skipped: rustfmt is not installed (the golden files are rustfmt's output)");
        return;
    }
    let request = std::fs::read(data().join(format!("{name}.request.bin"))).unwrap();
    let options = mp_codegen::Options {
        rustfmt: true,
        ..Default::default()
    };
    let files = mp_codegen::generate(&request, &options).expect("generate");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, Path::new(&format!("{name}_mp.rs")));
    let golden = data().join(format!("{name}_mp.rs"));
    if regen() {
        std::fs::write(&golden, &files[0].code).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert!(
        files[0].code == expected,
        "{} is out of date: regenerate with `MP_REGEN=1 cargo test -p mp-codegen --test golden`",
        golden.display()
    );
}

#[test]
fn calc_matches_golden() {
    check("calc");
}

#[test]
fn types_matches_golden() {
    check("types");
}

/// capnpc's own code for `types.capnp`, generated from the same captured
/// request, is checked in for the round-trip tests; it must stay in step.
#[test]
fn types_capnp_matches_capnpc() {
    let request = std::fs::read(data().join("types.request.bin")).unwrap();
    let out = std::env::temp_dir().join(format!("mp-codegen-capnpc-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut gen = capnpc::codegen::CodeGenerationCommand::new();
    gen.output_directory(&out)
        .crates_provide_map([(0xcc31_6e3f_71a0_40fb, "mp_ipc".to_string())].into());
    gen.run(&request[..]).expect("capnpc");
    let fresh = std::fs::read_to_string(out.join("types_capnp.rs")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let checked_in = data().join("types_capnp.rs");
    if regen() {
        std::fs::write(&checked_in, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == std::fs::read_to_string(&checked_in).unwrap(),
        "{} is out of date: regenerate with `MP_REGEN=1 cargo test -p mp-codegen --test golden`",
        checked_in.display()
    );
}
