//! mp-agents is a one-way stack: no module imports, directly or through
//! others, a module that imports it (the checker is shared with the other
//! crates' `tests/layers.rs`).

#[path = "../../mp-thread/tests/layers_check/mod.rs"]
mod layers_check;

#[test]
fn no_module_imports_one_that_imports_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    layers_check::assert_no_circles(&src, 10);
}
