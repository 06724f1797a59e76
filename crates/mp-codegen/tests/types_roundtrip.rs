//! Round trips of every type mapping through the code
//! generated for `tests/data/schema/types.capnp`: primitives, Text, Data,
//! lists of them, several results (a struct), one result, none, a method
//! on the event loop, and schema names that are Rust keywords. capnpc's
//! code for the schema is checked in beside it (`tests/data/types_capnp.rs`,
//! kept in step by the golden tests).

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use mp_ipc::{Connection, EventLoop, Side};

/// capnpc's types for `types.capnp`, where the generated code expects them.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod types_capnp {
    include!("data/types_capnp.rs");
}

/// The generated adapters under test.
#[allow(dead_code)]
mod types_mp {
    include!("data/types_mp.rs");
}

use types_capnp::Color;
use types_mp::{
    BlockRef, Options, Types, TypesClient, TypesMixResults, TypesServer, TypesTipOfResults,
};

struct Echo;

impl Types for Echo {
    fn echo_primitives(
        &self,
        b: &mut bool,
        i8: &mut i8,
        i16: &mut i16,
        i32: &mut i32,
        i64: &mut i64,
        u8: &mut u8,
        u16: &mut u16,
        u32: &mut u32,
        u64: &mut u64,
        f32: &mut f32,
        f64: &mut f64,
    ) -> Result<(), mp_ipc::Error> {
        // In/out: each value comes back changed, so a test sees the write.
        *b = !*b;
        *i8 = i8.wrapping_add(1);
        *i16 = i16.wrapping_add(1);
        *i32 = i32.wrapping_add(1);
        *i64 = i64.wrapping_add(1);
        *u8 = u8.wrapping_add(1);
        *u16 = u16.wrapping_add(1);
        *u32 = u32.wrapping_add(1);
        *u64 = u64.wrapping_add(1);
        *f32 *= 2.0;
        *f64 *= 2.0;
        Ok(())
    }

    fn echo_text(&self, text: &mut String, data: &mut Vec<u8>) -> Result<(), mp_ipc::Error> {
        text.push('!');
        data.reverse();
        Ok(())
    }

    fn echo_lists(
        &self,
        ints: &mut Vec<i32>,
        flags: &mut Vec<bool>,
        texts: &mut Vec<String>,
        blobs: &mut Vec<Vec<u8>>,
        doubles: &mut Vec<f64>,
    ) -> Result<(), mp_ipc::Error> {
        ints.reverse();
        flags.reverse();
        texts.reverse();
        blobs.reverse();
        doubles.reverse();
        Ok(())
    }

    fn concat(&self, parts: Vec<String>) -> Result<String, mp_ipc::Error> {
        Ok(parts.concat())
    }

    fn ping(&self) -> Result<(), mp_ipc::Error> {
        Ok(())
    }

    fn type_(&self, match_: u8) -> Result<u8, mp_ipc::Error> {
        Ok(match_.wrapping_add(1))
    }

    fn configure(&self, mut options: Options) -> Result<Options, mp_ipc::Error> {
        options.label.push('!');
        options.tip.height += 1;
        Ok(options)
    }

    fn paint(&self, color: Color) -> Result<Color, mp_ipc::Error> {
        Ok(match color {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        })
    }

    fn mix(&self, a: Color, b: Color) -> Result<TypesMixResults, mp_ipc::Error> {
        Ok(TypesMixResults {
            color: if a == b { a } else { Color::Blue },
            same: a == b,
        })
    }

    fn check(&self, n: i32) -> Result<i32, mp_ipc::Error> {
        if n < 0 {
            Err(format!("{n} is negative").into())
        } else {
            Ok(n * 2)
        }
    }

    fn validate(&self, ok: bool) -> Result<(), mp_ipc::Error> {
        if ok {
            Ok(())
        } else {
            Err("not valid".into())
        }
    }

    fn collect(
        &self,
        tips: &mut Vec<BlockRef>,
        colors: &mut Vec<Color>,
    ) -> Result<(), mp_ipc::Error> {
        tips.sort_by_key(|t| std::cmp::Reverse(t.height));
        colors.reverse();
        Ok(())
    }

    fn find_tip(&self, height: i32) -> Result<Option<BlockRef>, mp_ipc::Error> {
        Ok((height >= 0).then(|| BlockRef {
            hash: vec![1, 2, 3],
            height,
        }))
    }

    fn bump(&self, value: &mut String) -> Result<bool, mp_ipc::Error> {
        let was_empty = value.is_empty();
        value.push('!');
        Ok(was_empty)
    }

    fn update(&self, value: &mut String) -> Result<Option<i32>, mp_ipc::Error> {
        let old = value.len();
        *value = value.to_uppercase();
        Ok((old > 0).then_some(old as i32))
    }

    fn tip_of(&self, options: Options) -> Result<TypesTipOfResults, mp_ipc::Error> {
        Ok(TypesTipOfResults {
            hash: options.tip.hash.clone(),
            tip: options.tip,
        })
    }
}

/// A generated server and a generated client, in one process.
fn pair(server_loop: &EventLoop, client_loop: &EventLoop) -> (Connection, TypesClient) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = Connection::builder(server_loop)
        .serve(|conn| TypesServer::bootstrap(conn, Arc::new(Echo)))
        .open(a, Side::Server)
        .unwrap();
    let conn = Connection::builder(client_loop)
        .open(b, Side::Client)
        .unwrap();
    (server, TypesClient::connect(&conn).unwrap())
}

fn loops() -> (EventLoop, EventLoop) {
    (
        EventLoop::new("server-loop").unwrap(),
        EventLoop::new("client-loop").unwrap(),
    )
}

/// A parameter that is also a result of the same name is in/out: `&mut T`
/// on both sides, the server's value written back.
#[test]
fn primitives_are_in_out_parameters() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let (mut b, mut i8, mut i16, mut i32, mut i64) = (true, i8::MAX, i16::MIN, -1i32, i64::MAX);
        let (mut u8, mut u16, mut u32, mut u64) = (u8::MAX, 7u16, u32::MAX, 0u64);
        let (mut f32, mut f64) = (-1.5f32, std::f64::consts::PI);
        types
            .echo_primitives(
                &mut b, &mut i8, &mut i16, &mut i32, &mut i64, &mut u8, &mut u16, &mut u32,
                &mut u64, &mut f32, &mut f64,
            )
            .unwrap();
        assert!(!b);
        assert_eq!((i8, i16, i32, i64), (i8::MIN, i16::MIN + 1, 0, i64::MIN));
        assert_eq!((u8, u16, u32, u64), (0, 8, 0, 1));
        assert_eq!((f32, f64), (-3.0, 2.0 * std::f64::consts::PI));
        // Async: in/out values go in owned and come back after the results.
        let (unit, b2, i8b, ..) = futures::executor::block_on(
            types.echo_primitives_async(false, 1, 2, 3, 4, 5, 6, 7, 8, 0.5, 0.25),
        )
        .unwrap();
        assert_eq!((unit, b2, i8b), ((), true, 2));
    });
}

#[test]
fn text_and_data_round_trip_in_out() {
    watchdog(|| {
        let (s, c) = loops();
        let (server, types) = pair(&s, &c);
        let mut text = String::from("héllo, wörld");
        let mut blob: Vec<u8> = (0..=255).collect();
        types.echo_text(&mut text, &mut blob).unwrap();
        assert_eq!(text, "héllo, wörld!");
        assert_eq!(blob, (0..=255).rev().collect::<Vec<u8>>());
        let (mut empty, mut none) = (String::new(), Vec::new());
        types.echo_text(&mut empty, &mut none).unwrap();
        assert_eq!((empty.as_str(), none.len()), ("!", 0));
        let mut big = vec![7u8; 1 << 20];
        let mut label = String::from("big");
        types.echo_text(&mut label, &mut big).unwrap();
        assert_eq!(big.len(), 1 << 20);
        // A failed call leaves in/out values as they were.
        server.close();
        assert!(types
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(10)));
        let mut kept = String::from("kept");
        let err = types.echo_text(&mut kept, &mut vec![1]).unwrap_err();
        assert!(err.is_disconnected(), "{err:?}");
        assert_eq!(kept, "kept");
    });
}

#[test]
fn lists_round_trip_in_out() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let mut ints = vec![1, -2, i32::MAX];
        let mut flags = vec![true, false, false, false];
        let mut texts = vec!["a".to_string(), String::new(), "ünïcode".into()];
        let mut blobs = vec![vec![], vec![0, 1, 2], vec![255; 9]];
        let mut doubles = vec![0.5, -0.25];
        types
            .echo_lists(&mut ints, &mut flags, &mut texts, &mut blobs, &mut doubles)
            .unwrap();
        assert_eq!(ints, [i32::MAX, -2, 1]);
        assert_eq!(flags, [false, false, false, true]);
        assert_eq!(texts, ["ünïcode", "", "a"]);
        assert_eq!(blobs, [vec![255; 9], vec![0, 1, 2], vec![]]);
        assert_eq!(doubles, [-0.25, 0.5]);
        let mut none: Vec<i32> = Vec::new();
        types
            .echo_lists(
                &mut none,
                &mut Vec::new(),
                &mut Vec::new(),
                &mut Vec::new(),
                &mut Vec::new(),
            )
            .unwrap();
        assert!(none.is_empty());
    });
}

#[test]
fn loop_method_unit_result_and_keyword_names() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let parts = vec!["con".to_string(), "cat".to_string()];
        assert_eq!(types.concat(&parts).unwrap(), "concat");
        types.ping().unwrap();
        futures::executor::block_on(types.ping_async()).unwrap();
        assert_eq!(types.type_(41).unwrap(), 42);
        assert_eq!(types.type_(255).unwrap(), 0);
    });
}

#[test]
fn structs_round_trip_with_schema_defaults_and_proxy_names() {
    // Defaults come from the schema; `$Proxy.name` picks the Rust names.
    let defaults = Options::default();
    assert!(defaults.use_mempool);
    assert_eq!(defaults.block_reserved_weight, 4000);
    assert_eq!(defaults.label, "default");
    assert_eq!(defaults.ratio, 0.5);
    assert_eq!(defaults.tip.height, -1);
    assert!(defaults.tags.is_empty());
    assert_eq!(defaults.color, Color::Green, "an explicit enum default");
    assert_eq!(
        defaults.shade,
        Color::Red,
        "an enum's implicit default is its first"
    );
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let got = types.configure(&Options::default()).unwrap();
        assert_eq!(got.label, "default!");
        assert_eq!(got.tip.height, 0);
        assert!(got.use_mempool);
        assert_eq!(got.block_reserved_weight, 4000);
        let options = Options {
            use_mempool: false,
            block_reserved_weight: 0,
            label: String::new(),
            ratio: -2.0,
            tip: BlockRef {
                hash: vec![0xab; 32],
                height: 800_000,
            },
            tags: vec!["x".into(), "y".into()],
            color: Color::Red,
            shade: Color::Blue,
            history: vec![
                BlockRef::default(),
                BlockRef {
                    hash: vec![1],
                    height: 7,
                },
            ],
            palette: vec![Color::Blue, Color::Blue, Color::Green],
        };
        let got = types.configure(&options).unwrap();
        assert_eq!(
            got,
            Options {
                label: "!".into(),
                tip: BlockRef {
                    height: 800_001,
                    ..options.tip.clone()
                },
                ..options.clone()
            }
        );
        let tip = types.tip_of(&options).unwrap();
        assert_eq!(tip.hash, vec![0xab; 32]);
        assert_eq!(tip.tip, options.tip);
    });
}

#[test]
fn lists_of_structs_and_enums_round_trip_and_implicit_fields_stay_hidden() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let tips: Vec<BlockRef> = (0..300)
            .map(|h| BlockRef {
                hash: vec![h as u8; (h % 5) as usize],
                height: h,
            })
            .collect();
        let colors = [Color::Red, Color::Green, Color::Blue, Color::Blue];
        // `size` (a `$Proxy.count(0)` parameter) and `note` (a result) are
        // not part of the signature; `tips` and `colors` are in/out.
        let (mut got_tips, mut got_colors) = (tips.clone(), colors.to_vec());
        types.collect(&mut got_tips, &mut got_colors).unwrap();
        assert_eq!(got_tips.len(), 300);
        assert_eq!(got_tips[0].height, 299);
        assert_eq!(got_tips[299], tips[0]);
        assert_eq!(
            got_colors,
            [Color::Blue, Color::Blue, Color::Green, Color::Red]
        );
        let (mut no_tips, mut no_colors) = (Vec::new(), Vec::new());
        types.collect(&mut no_tips, &mut no_colors).unwrap();
        assert!(no_tips.is_empty() && no_colors.is_empty());
    });
}

#[test]
fn result_and_has_result_map_to_option() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        assert_eq!(
            types.find_tip(5).unwrap(),
            Some(BlockRef {
                hash: vec![1, 2, 3],
                height: 5
            })
        );
        assert_eq!(types.find_tip(-1).unwrap(), None);
        assert_eq!(
            futures::executor::block_on(types.find_tip_async(-7)).unwrap(),
            None
        );
    });
}

#[test]
fn enums_round_trip() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        assert_eq!(types.paint(Color::Red).unwrap(), Color::Green);
        assert_eq!(types.paint(Color::Blue).unwrap(), Color::Red);
        let mixed = types.mix(Color::Green, Color::Green).unwrap();
        assert_eq!(
            mixed,
            TypesMixResults {
                color: Color::Green,
                same: true
            }
        );
        assert!(!types.mix(Color::Red, Color::Green).unwrap().same);
    });
}

/// A `$Proxy.exception` result field carries the implementation's error
/// (the call itself succeeds on the wire); the client returns it as
/// `Error::Remote`.
#[test]
fn exception_fields_carry_errors() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        assert_eq!(types.check(21).unwrap(), 42);
        match types.check(-1) {
            Err(mp_ipc::Error::Remote { site, message }) => {
                assert_eq!(site.to_string(), "Types.check");
                assert_eq!(message, "-1 is negative");
            }
            other => panic!("expected a remote error, got {other:?}"),
        }
        types.validate(true).unwrap();
        match types.validate(false) {
            Err(mp_ipc::Error::Remote { message, .. }) => assert_eq!(message, "not valid"),
            other => panic!("expected a remote error, got {other:?}"),
        }
    });
}

/// An in/out parameter beside a result, and beside an optional result
/// (Bitcoin Core's `SettingsUpdateCallback.call` shape), with the name the
/// generated code uses for its own locals (`value`).
#[test]
fn in_out_parameters_beside_results() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let mut value = String::new();
        assert!(types.bump(&mut value).unwrap());
        assert_eq!(value, "!");
        assert!(!types.bump(&mut value).unwrap());
        assert_eq!(value, "!!");
        let (was_empty, new) = futures::executor::block_on(types.bump_async("x".into())).unwrap();
        assert_eq!((was_empty, new.as_str()), (false, "x!"));

        let mut value = String::from("abc");
        assert_eq!(types.update(&mut value).unwrap(), Some(3));
        assert_eq!(value, "ABC");
        let mut empty = String::new();
        assert_eq!(types.update(&mut empty).unwrap(), None);
        let (old, new) = futures::executor::block_on(types.update_async("hé".into())).unwrap();
        assert_eq!((old, new.as_str()), (Some(3), "HÉ"));
    });
}
