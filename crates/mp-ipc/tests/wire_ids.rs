//! The wire schema's type ids must equal libmultiprocess's: they travel in
//! every call, so a mismatch would make us unable to talk to a C++ peer.

use capnp::traits::HasTypeId;
use mp_ipc::proxy_capnp::{context, thread, thread_map};

#[test]
fn type_ids_match_libmultiprocess() {
    assert_eq!(
        <thread_map::Client as HasTypeId>::TYPE_ID,
        0xee5e_3717_9ad9_dc9d
    );
    assert_eq!(
        <thread::Client as HasTypeId>::TYPE_ID,
        0x81c1_e260_0d0b_56c5
    );
    assert_eq!(
        <context::Reader<'static> as HasTypeId>::TYPE_ID,
        0x9c44_e664_5d0b_22c6
    );
}

#[test]
fn schema_file_keeps_libmultiprocess_file_id_and_annotation_ids() {
    let schema = include_str!("../schema/mp/proxy.capnp");
    assert!(schema.contains("@0xcc316e3f71a040fb;"));
    // Annotation ids derive from the file id and the annotation's name, so
    // the names must stay exactly these.
    for name in [
        "include",
        "includeTypes",
        "wrap",
        "count",
        "exception",
        "name",
        "skip",
    ] {
        assert!(
            schema.contains(&format!("annotation {name}(")),
            "annotation `{name}` missing from proxy.capnp"
        );
    }
}
