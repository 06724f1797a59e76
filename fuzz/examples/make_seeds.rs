//! Writes the checked-in seed corpus of the `rpc_messages` and
//! `struct_conversions` targets (`cargo run --example make_seeds` in
//! `fuzz/`): sessions that reach every calculator method the normal way,
//! and hostile variants (a missing or foreign thread, an unknown method or
//! import, huge lists, deep nesting, a makeThread flood, garbage mid-session,
//! ...), so fuzzing starts deep in the server instead of at the bootstrap.

use std::path::Path;

use mp_fuzz::script::{encode, Call, CapDesc, CapRef, Iface, Op, QRef, Reply, Target, Value};

/// Imports learned, in order, by [`session`].
const INIT: CapRef = CapRef::Learned(0);
const THREAD_MAP: CapRef = CapRef::Learned(1);
const THREAD: CapRef = CapRef::Learned(2);
const CALC: CapRef = CapRef::Learned(3);

fn call(target: CapRef, iface: Iface, method: u16, params: Value, caps: Vec<CapDesc>) -> Op {
    Op::Call(Call {
        target: Target::Import(target),
        iface,
        method,
        flags: 0,
        params,
        caps,
    })
}

fn wait(q: u8) -> Op {
    Op::Await {
        question: QRef(q),
        answer_calls: true,
    }
}

fn st(data: Vec<u64>, ptrs: Vec<Value>) -> Value {
    Value::Struct(data, ptrs)
}

/// A `Context` whose thread is cap index 0 of the payload.
fn ctx() -> Value {
    st(vec![], vec![Value::Cap])
}

/// Bootstrap, construct, makeThread, makeCalculator: questions 0..=3, the
/// four imports above learned.
fn session() -> Vec<Op> {
    vec![
        Op::Bootstrap,
        wait(0),
        call(
            INIT,
            Iface::CalcInit,
            0,
            st(vec![], vec![Value::Cap]),
            vec![CapDesc::SenderHosted(0)],
        ),
        wait(1),
        call(
            THREAD_MAP,
            Iface::ThreadMap,
            0,
            st(vec![], vec![Value::Text(b"fuzz".to_vec())]),
            vec![],
        ),
        wait(2),
        call(
            INIT,
            Iface::CalcInit,
            1,
            st(vec![], vec![ctx()]),
            vec![CapDesc::ReceiverHosted(THREAD)],
        ),
        wait(3),
    ]
}

fn with(mut ops: Vec<Op>, more: Vec<Op>) -> Vec<Op> {
    ops.extend(more);
    ops
}

fn on_thread() -> Vec<CapDesc> {
    vec![CapDesc::ReceiverHosted(THREAD)]
}

fn rpc_seeds() -> Vec<(&'static str, Vec<Op>)> {
    let calc = |method, params, caps| call(CALC, Iface::Calculator, method, params, caps);
    vec![
        ("bootstrap", vec![Op::Bootstrap, wait(0)]),
        ("session", session()),
        (
            "add",
            with(
                session(),
                vec![calc(0, st(vec![2, 3], vec![ctx()]), on_thread()), wait(4)],
            ),
        ),
        (
            "add_on_loop",
            with(
                session(),
                vec![calc(1, st(vec![7, 8], vec![]), vec![]), wait(4)],
            ),
        ),
        (
            "where_am_i",
            with(
                session(),
                vec![calc(2, st(vec![], vec![ctx()]), on_thread()), wait(4)],
            ),
        ),
        (
            "countdown_refused_callback",
            with(
                session(),
                vec![
                    calc(
                        3,
                        st(vec![3], vec![ctx(), Value::Cap]),
                        vec![CapDesc::ReceiverHosted(THREAD), CapDesc::SenderHosted(1)],
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "countdown_then_hang_up",
            with(
                session(),
                vec![
                    calc(
                        3,
                        st(vec![3], vec![ctx(), Value::Cap]),
                        vec![CapDesc::ReceiverHosted(THREAD), CapDesc::SenderHosted(1)],
                    ),
                    Op::Await {
                        question: QRef(4),
                        answer_calls: false,
                    },
                    Op::HangUp,
                ],
            ),
        ),
        (
            "countdown_answered",
            with(
                session(),
                vec![
                    calc(
                        3,
                        st(vec![2], vec![ctx(), Value::Cap]),
                        vec![CapDesc::ReceiverHosted(THREAD), CapDesc::SenderHosted(1)],
                    ),
                    Op::Await {
                        question: QRef(4),
                        answer_calls: false,
                    },
                    Op::Return(0, Reply::Results(st(vec![1], vec![]), vec![])),
                    Op::Return(0, Reply::Results(st(vec![1], vec![]), vec![])),
                    wait(4),
                ],
            ),
        ),
        (
            "sleep_then_hang_up",
            with(
                session(),
                vec![calc(4, st(vec![5], vec![ctx()]), on_thread()), Op::HangUp],
            ),
        ),
        (
            "fail",
            with(
                session(),
                vec![
                    calc(
                        5,
                        st(vec![], vec![ctx(), Value::Text(b"no".to_vec())]),
                        on_thread(),
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "counter",
            with(
                session(),
                vec![
                    calc(7, st(vec![10], vec![ctx()]), on_thread()),
                    wait(4),
                    call(
                        CapRef::Learned(4),
                        Iface::Counter,
                        0,
                        st(vec![5], vec![ctx()]),
                        on_thread(),
                    ),
                    wait(5),
                    call(
                        CapRef::Learned(4),
                        Iface::Counter,
                        1,
                        st(vec![], vec![]),
                        vec![],
                    ),
                    wait(6),
                    call(
                        CapRef::Learned(4),
                        Iface::Counter,
                        2,
                        st(vec![], vec![ctx()]),
                        on_thread(),
                    ),
                    wait(7),
                    call(
                        CapRef::Learned(4),
                        Iface::Counter,
                        1,
                        st(vec![], vec![]),
                        vec![],
                    ),
                    wait(8),
                ],
            ),
        ),
        (
            "missing_context",
            with(
                session(),
                vec![calc(0, st(vec![1, 1], vec![]), vec![]), wait(4)],
            ),
        ),
        (
            "null_thread",
            with(
                session(),
                vec![
                    calc(0, st(vec![1, 1], vec![st(vec![], vec![])]), vec![]),
                    wait(4),
                ],
            ),
        ),
        (
            "foreign_thread",
            with(
                session(),
                vec![
                    calc(
                        0,
                        st(vec![1, 1], vec![ctx()]),
                        vec![CapDesc::SenderHosted(9)],
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "context_is_the_calculator",
            with(
                session(),
                vec![
                    calc(
                        0,
                        st(vec![1, 1], vec![ctx()]),
                        vec![CapDesc::ReceiverHosted(CALC)],
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "cap_index_out_of_table",
            with(
                session(),
                vec![calc(0, st(vec![1, 1], vec![ctx()]), vec![]), wait(4)],
            ),
        ),
        (
            "unknown_method",
            with(
                session(),
                vec![calc(99, st(vec![], vec![]), vec![]), wait(4)],
            ),
        ),
        (
            "unknown_interface",
            with(
                session(),
                vec![
                    call(
                        CALC,
                        Iface::Raw(0x1234_5678_9abc_def0),
                        0,
                        Value::Null,
                        vec![],
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "wrong_interface_on_thread",
            with(
                session(),
                vec![
                    call(
                        THREAD,
                        Iface::Calculator,
                        0,
                        st(vec![1, 2], vec![ctx()]),
                        on_thread(),
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "unknown_import",
            vec![
                call(CapRef::Raw(77), Iface::CalcInit, 1, Value::Null, vec![]),
                wait(0),
            ],
        ),
        (
            "huge_void_list",
            with(
                session(),
                vec![
                    calc(
                        5,
                        st(vec![], vec![ctx(), Value::List(0, u32::MAX)]),
                        on_thread(),
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "huge_struct_list",
            with(
                session(),
                vec![
                    calc(
                        2,
                        st(vec![], vec![Value::StructList(u32::MAX, 0, 0)]),
                        on_thread(),
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "deep_nesting",
            with(
                session(),
                vec![
                    calc(0, st(vec![1, 2], vec![Value::Deep(500)]), on_thread()),
                    wait(4),
                ],
            ),
        ),
        (
            "make_thread_flood",
            with(
                session(),
                (0..20)
                    .map(|_| {
                        call(
                            THREAD_MAP,
                            Iface::ThreadMap,
                            0,
                            st(vec![], vec![Value::Text(b"t".to_vec())]),
                            vec![],
                        )
                    })
                    .chain([wait(23)])
                    .collect(),
            ),
        ),
        (
            "make_pool_huge",
            with(
                session(),
                vec![
                    call(
                        THREAD_MAP,
                        Iface::ThreadMap,
                        1,
                        st(vec![u64::from(u32::MAX)], vec![]),
                        vec![],
                    ),
                    wait(4),
                ],
            ),
        ),
        (
            "thread_get_name",
            with(
                session(),
                vec![
                    call(THREAD, Iface::Thread, 0, st(vec![], vec![]), vec![]),
                    wait(4),
                ],
            ),
        ),
        (
            "pipelined",
            vec![
                Op::Bootstrap,
                Op::Call(Call {
                    target: Target::Promised(QRef(0), vec![]),
                    iface: Iface::CalcInit,
                    method: 1,
                    flags: 0,
                    params: st(vec![], vec![st(vec![], vec![])]),
                    caps: vec![],
                }),
                Op::Call(Call {
                    target: Target::Promised(QRef(1), vec![Some(0)]),
                    iface: Iface::Calculator,
                    method: 1,
                    flags: 0,
                    params: st(vec![1, 2], vec![]),
                    caps: vec![],
                }),
                wait(2),
            ],
        ),
        (
            "finish_release_resolve",
            with(
                session(),
                vec![
                    Op::Finish(QRef(3), true),
                    Op::Release(CALC, 1),
                    Op::Release(CALC, u32::MAX),
                    Op::Resolve(0, Some(CapDesc::ReceiverHosted(THREAD))),
                    Op::Resolve(5, None),
                    Op::Disembargo(Target::Import(CALC), 0, 1),
                    calc(1, st(vec![1, 2], vec![]), vec![]),
                    wait(4),
                ],
            ),
        ),
        (
            "return_never_asked",
            with(
                session(),
                vec![
                    Op::Return(3, Reply::Exception),
                    Op::Return(9, Reply::TakeFrom(QRef(1))),
                    Op::Other(0),
                    wait(3),
                ],
            ),
        ),
        (
            "level3_messages",
            with(
                session(),
                vec![
                    Op::Other(3),
                    Op::Other(4),
                    Op::Other(5),
                    Op::Other(6),
                    wait(3),
                ],
            ),
        ),
        (
            "abort",
            with(session(), vec![Op::Abort(b"bye".to_vec()), wait(3)]),
        ),
        (
            "garbage_mid_session",
            with(
                session(),
                vec![
                    Op::Garbage(vec![0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]),
                    wait(3),
                ],
            ),
        ),
    ]
}

/// `struct_conversions` seeds: a framed message of each struct, a single
/// segment, and built values.
fn struct_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut framed = vec![0u8];
    framed.extend(capnp::serialize::write_message_to_words(&{
        let mut m = capnp::message::Builder::new_default();
        // An Options-shaped root: 3 data words, 3 pointers, label text.
        let mut root = m.init_root::<capnp::any_pointer::Builder<'_>>();
        let mut list = root
            .reborrow()
            .initn_as::<capnp::primitive_list::Builder<'_, u64>>(6);
        for i in 0..6 {
            list.set(i, 0x0102_0304_0506_0708 * u64::from(i));
        }
        m
    }));
    let mut single = vec![1u8];
    // Root pointer: struct, offset 0, 2 data words, 1 pointer.
    single.extend_from_slice(&[0, 0, 0, 0, 2, 0, 1, 0]);
    single.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    single.extend_from_slice(&[0xa0, 0x0f, 0, 0, 0, 0, 0, 0]);
    // A byte list of 4 elements right after.
    single.extend_from_slice(&[1, 0, 0, 0, 0x22, 0, 0, 0]);
    single.extend_from_slice(b"abc\0\0\0\0\0");
    let mut built = vec![2u8, 3, 1, 2, 3];
    built.extend_from_slice(&42u64.to_le_bytes());
    built.extend_from_slice(&[2, 1, b'a', 2, b'b', b'c', 1]);
    built.extend_from_slice(&7u64.to_le_bytes());
    built.extend_from_slice(&[5, b'l', b'a', b'b', b'e', b'l']);
    built.extend_from_slice(&0.25f64.to_bits().to_le_bytes());
    built.extend_from_slice(&[2, 0]);
    vec![
        ("framed", framed),
        ("single_segment", single),
        ("built", built),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, ops) in rpc_seeds() {
        let bytes = encode(&ops);
        assert_eq!(
            mp_fuzz::script::decode(&bytes),
            ops,
            "seed {name} round-trips"
        );
        write(&root.join("rpc_messages"), name, &bytes);
    }
    for (name, bytes) in struct_seeds() {
        write(&root.join("struct_conversions"), name, &bytes);
    }
}
