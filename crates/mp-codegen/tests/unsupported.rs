//! A schema the generator cannot map yet is refused with one error per
//! problem, each naming the file, interface, method and field — never
//! silently wrong code. The request was captured from
//! `tests/data/schema/unmappable.capnp`.

use std::path::Path;

#[test]
fn unmappable_schema_names_file_interface_method_and_field() {
    let request = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unmappable.request.bin"),
    )
    .unwrap();
    let err = mp_codegen::generate(&request, &mp_codegen::Options::default()).unwrap_err();
    let mp_codegen::Error::Unsupported(problems) = &err else {
        panic!("expected Error::Unsupported, got {err:?}");
    };
    let found: Vec<(Option<&str>, Option<&str>)> = problems
        .iter()
        .map(|u| (u.method.as_deref(), u.field.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (Some("plot"), Some("where")),
            (Some("pick"), Some("grids")),
            (Some("tryIt"), Some("error")),
            (Some("plotAll"), Some("sinks")),
        ],
        "{err}"
    );
    for u in problems {
        assert_eq!(u.file, "unmappable.capnp");
        assert_eq!(u.interface, "Plotter");
    }
    assert!(problems[0].reason.contains("unions are not supported yet"));
    assert!(problems[1]
        .reason
        .contains("lists of lists are not supported yet"));
    assert!(problems[2]
        .reason
        .contains("$Proxy.exception` is only supported on one Text"));
    assert!(problems[3]
        .reason
        .contains("lists of interfaces are not supported yet"));
    let message = err.to_string();
    assert!(
        message.contains(
            "unmappable.capnp: interface `Plotter`, method `plot`, field `where`: struct unmappable.capnp:Shape: unions are not supported yet"
        ),
        "{message}"
    );
}

#[test]
fn nullable_result_that_names_nothing_or_a_non_interface_is_refused() {
    let request =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/miner.request.bin"))
            .unwrap();
    let options = mp_codegen::Options {
        nullable_results: vec![
            ("Miner".into(), "newTemplate".into()),
            ("Miner".into(), "noSuchMethod".into()),
            ("Template".into(), "header".into()),
        ],
        ..Default::default()
    };
    let err = mp_codegen::generate(&request, &options).unwrap_err();
    let mp_codegen::Error::Unsupported(problems) = &err else {
        panic!("expected Error::Unsupported, got {err:?}");
    };
    assert_eq!(problems.len(), 2, "{err}");
    assert_eq!(problems[0].method.as_deref(), Some("noSuchMethod"));
    assert!(problems[0].reason.contains("no such method"), "{err}");
    assert_eq!(problems[1].interface, "Template");
    assert_eq!(problems[1].file, "miner.capnp");
    assert!(problems[1].reason.contains("of an interface type"), "{err}");

    // The valid pair alone generates an optional result on both sides.
    let options = mp_codegen::Options {
        nullable_results: vec![("Miner".into(), "newTemplate".into())],
        ..Default::default()
    };
    let files = mp_codegen::generate(&request, &options).unwrap();
    let code: String = files.iter().map(|f| f.code.as_str()).collect();
    assert!(code.contains("Result<Option<::std::sync::Arc<dyn Template>>, String>"));
    assert!(code.contains("Result<Option<TemplateClient>, ::mp_ipc::Error>"));
}
