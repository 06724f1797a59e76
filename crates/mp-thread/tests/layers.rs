//! mp-thread is a one-way stack: no module imports, directly or through
//! others, a module that imports it. The checker (`layers_check/`) is
//! shared with the other crates' `tests/layers.rs`; it is tested here.

mod layers_check;

use std::collections::{BTreeMap, BTreeSet};

#[test]
fn no_module_imports_one_that_imports_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    layers_check::assert_no_circles(&src, 8);
}

#[test]
fn the_checker_finds_a_circle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    graph.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(layers_check::circles(&graph), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        layers_check::named_modules(
            "use crate::core::{A, B}; x(crate::mbox::M); crate::{ids::X, env};"
        ),
        vec!["core", "mbox", "ids", "env"]
    );
    assert!(layers_check::named_modules("crate::Agent::name").is_empty());
}
