//! A schema the generator cannot map yet is refused with one error per
//! problem, each naming the file, interface, method and field — never
//! silently wrong code. With `skip_unsupported` the same problems are
//! reported as skipped and everything else is generated. The request was
//! captured from `tests/data/schema/unmappable.capnp`.

use std::path::Path;

fn unmappable_request() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unmappable.request.bin"))
        .unwrap()
}

fn skipping() -> mp_codegen::Options {
    mp_codegen::Options {
        skip_unsupported: true,
        ..Default::default()
    }
}

#[test]
fn unmappable_schema_names_file_interface_method_and_field() {
    let request = unmappable_request();
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
    assert!(problems[0]
        .reason
        .contains("a union beside other fields in a generic struct is not supported"));
    assert!(problems[1].reason.contains("AnyPointer is not supported"));
    assert!(problems[2]
        .reason
        .contains("$Proxy.exception` is only supported on pointer types"));
    assert!(problems[3].reason.contains(
        "struct unmappable.capnp:Plotter.Sink is not declared at the top level of a file"
    ));
    let message = err.to_string();
    assert!(
        message.contains(
            "unmappable.capnp: interface `Plotter`, method `plot`, field `where`: struct unmappable.capnp:Shape: a union beside other fields in a generic struct is not supported"
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
    let files = mp_codegen::generate(&request, &options).unwrap().files;
    let code: String = files.iter().map(|f| f.code.as_str()).collect();
    assert!(code.contains("Result<Option<::std::sync::Arc<dyn Template>>, ::mp_ipc::Error>"));
    assert!(code.contains("Result<Option<TemplateClient>, ::mp_ipc::Error>"));
}

/// With `skip_unsupported`, generation succeeds; the four problems the
/// strict mode refuses are reported as skipped, and `Plotter` keeps exactly
/// its one mappable method in the trait and client while the server answers
/// the other four with an "unimplemented" error naming each.
#[test]
fn skipping_leaves_out_exactly_the_unmappable_methods() {
    let request = unmappable_request();
    let mp_codegen::Error::Unsupported(refused) =
        mp_codegen::generate(&request, &mp_codegen::Options::default()).unwrap_err()
    else {
        panic!("expected Error::Unsupported");
    };
    let generated = mp_codegen::generate(&request, &skipping()).expect("generate");
    assert_eq!(
        generated.skipped, refused,
        "skipped = what strict mode refuses"
    );
    assert_eq!(generated.skipped.len(), 4);
    assert_eq!(generated.files.len(), 1);
    assert_eq!(
        generated.files[0].path,
        Path::new("unmappable_mp.rs"),
        "one file per requested schema"
    );
    let code = &generated.files[0].code;

    // The trait and the client: `ok` only.
    let trait_body = between(code, "pub trait Plotter:", "pub struct PlotterClient");
    let client_body = between(code, "impl PlotterClient {", "pub struct PlotterServer");
    for (rust, schema) in [
        ("plot", "plot"),
        ("pick", "pick"),
        ("try_it", "tryIt"),
        ("plot_all", "plotAll"),
    ] {
        assert!(!trait_body.contains(&format!("fn {rust}(")), "{trait_body}");
        assert!(
            !client_body.contains(&format!("fn {rust}(")),
            "{client_body}"
        );
        assert!(!client_body.contains(&format!("fn {rust}_async(")));
        // The server refuses it, naming it and why.
        assert!(
            code.contains(&format!(
                "\"Plotter.{schema} is not generated by mp-codegen: "
            )),
            "{code}"
        );
    }
    assert!(trait_body.contains(
        "fn ok(&self, n: i32, at: Point) -> ::std::result::Result<i32, ::mp_ipc::Error>;"
    ));
    assert!(client_body.contains("pub fn ok(&self, n: i32, at: &Point)"));
    assert!(code.contains(
        "Plotter.plot is not generated by mp-codegen: field `where`: struct unmappable.capnp:Shape: a union beside other fields in a generic struct is not supported"
    ));
    // `Point` maps; `Shape` (a generic with a union beside a field) is not generated.
    assert!(code.contains("pub struct Point {"));
    assert!(!code.contains("pub struct Shape"));

    // One line per left-out member, for warnings.
    let lines = mp_codegen::skipped_members(&generated.skipped);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        "unmappable.capnp: interface `Plotter`, method `plot` not generated: field `where`: struct unmappable.capnp:Shape: a union beside other fields in a generic struct is not supported"
    );
    assert!(lines[3].starts_with(
        "unmappable.capnp: interface `Plotter`, method `plotAll` not generated: field `sinks`: struct unmappable.capnp:Plotter.Sink is not declared"
    ));

    // Same output every time.
    assert_eq!(
        mp_codegen::generate(&request, &skipping()).unwrap(),
        generated
    );
}

/// A nullable result named on a method that is left out is not an error
/// when skipping (the method is reported as skipped already).
#[test]
fn nullable_result_on_a_skipped_method_is_ignored() {
    let options = mp_codegen::Options {
        nullable_results: vec![("Plotter".into(), "plotAll".into())],
        ..skipping()
    };
    let generated = mp_codegen::generate(&unmappable_request(), &options).unwrap();
    assert_eq!(generated.skipped.len(), 4);
    // Without skipping, the refused schema is the error (as before).
    let options = mp_codegen::Options {
        skip_unsupported: false,
        ..options
    };
    assert!(matches!(
        mp_codegen::generate(&unmappable_request(), &options),
        Err(mp_codegen::Error::Unsupported(problems)) if problems.len() == 4
    ));
}

/// Without skipping, schemas that map generate with nothing skipped.
#[test]
fn nothing_is_skipped_from_a_schema_that_maps() {
    let request =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/types.request.bin"))
            .unwrap();
    let strict = mp_codegen::generate(&request, &mp_codegen::Options::default()).unwrap();
    let lenient = mp_codegen::generate(&request, &skipping()).unwrap();
    assert!(strict.skipped.is_empty() && lenient.skipped.is_empty());
    assert_eq!(strict.files, lenient.files);
}

/// The text of `code` from `start` up to `end`.
fn between<'a>(code: &'a str, start: &str, end: &str) -> &'a str {
    let at = code
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not in:\n{code}"));
    let rest = &code[at..];
    let stop = rest
        .find(end)
        .unwrap_or_else(|| panic!("`{end}` not after `{start}`"));
    &rest[..stop]
}
