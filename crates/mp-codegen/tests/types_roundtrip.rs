//! Round trips of every type mapping of this step through the code
//! generated for `tests/data/schema/types.capnp`: primitives, Text, Data,
//! lists of them, several results (a struct), one result, none, a method
//! on the event loop, and schema names that are Rust keywords. capnpc's
//! code for the schema is checked in beside it (`tests/data/types_capnp.rs`,
//! kept in step by the golden tests).

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
    BlockRef, Options, Types, TypesClient, TypesCollectResults, TypesEchoListsResults,
    TypesEchoPrimitivesResults, TypesEchoTextResults, TypesMixResults, TypesServer,
    TypesTipOfResults,
};

struct Echo;

impl Types for Echo {
    fn echo_primitives(
        &self,
        b: bool,
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        f32: f32,
        f64: f64,
    ) -> Result<TypesEchoPrimitivesResults, String> {
        Ok(TypesEchoPrimitivesResults {
            b,
            i8,
            i16,
            i32,
            i64,
            u8,
            u16,
            u32,
            u64,
            f32,
            f64,
        })
    }

    fn echo_text(&self, text: String, data: Vec<u8>) -> Result<TypesEchoTextResults, String> {
        Ok(TypesEchoTextResults { text, data })
    }

    fn echo_lists(
        &self,
        ints: Vec<i32>,
        flags: Vec<bool>,
        texts: Vec<String>,
        blobs: Vec<Vec<u8>>,
        doubles: Vec<f64>,
    ) -> Result<TypesEchoListsResults, String> {
        Ok(TypesEchoListsResults {
            ints,
            flags,
            texts,
            blobs,
            doubles,
        })
    }

    fn concat(&self, parts: Vec<String>) -> Result<String, String> {
        Ok(parts.concat())
    }

    fn ping(&self) -> Result<(), String> {
        Ok(())
    }

    fn type_(&self, match_: u8) -> Result<u8, String> {
        Ok(match_.wrapping_add(1))
    }

    fn configure(&self, mut options: Options) -> Result<Options, String> {
        options.label.push('!');
        options.tip.height += 1;
        Ok(options)
    }

    fn paint(&self, color: Color) -> Result<Color, String> {
        Ok(match color {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        })
    }

    fn mix(&self, a: Color, b: Color) -> Result<TypesMixResults, String> {
        Ok(TypesMixResults {
            color: if a == b { a } else { Color::Blue },
            same: a == b,
        })
    }

    fn check(&self, n: i32) -> Result<i32, String> {
        if n < 0 {
            Err(format!("{n} is negative"))
        } else {
            Ok(n * 2)
        }
    }

    fn validate(&self, ok: bool) -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err("not valid".into())
        }
    }

    fn collect(
        &self,
        mut tips: Vec<BlockRef>,
        mut colors: Vec<Color>,
    ) -> Result<TypesCollectResults, String> {
        tips.sort_by_key(|t| std::cmp::Reverse(t.height));
        colors.reverse();
        Ok(TypesCollectResults { tips, colors })
    }

    fn find_tip(&self, height: i32) -> Result<Option<BlockRef>, String> {
        Ok((height >= 0).then(|| BlockRef {
            hash: vec![1, 2, 3],
            height,
        }))
    }

    fn tip_of(&self, options: Options) -> Result<TypesTipOfResults, String> {
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

fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("watchdog: test did not finish in 30 s"),
    }
}

fn loops() -> (EventLoop, EventLoop) {
    (
        EventLoop::new("server-loop").unwrap(),
        EventLoop::new("client-loop").unwrap(),
    )
}

#[test]
fn primitives_round_trip() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let extremes = TypesEchoPrimitivesResults {
            b: true,
            i8: i8::MIN,
            i16: i16::MIN,
            i32: i32::MIN,
            i64: i64::MIN,
            u8: u8::MAX,
            u16: u16::MAX,
            u32: u32::MAX,
            u64: u64::MAX,
            f32: -1.5,
            f64: std::f64::consts::PI,
        };
        let e = extremes.clone();
        let got = types
            .echo_primitives(
                e.b, e.i8, e.i16, e.i32, e.i64, e.u8, e.u16, e.u32, e.u64, e.f32, e.f64,
            )
            .unwrap();
        assert_eq!(got, extremes);
        let zeros = TypesEchoPrimitivesResults::default();
        let z = zeros.clone();
        let got = futures::executor::block_on(types.echo_primitives_async(
            z.b, z.i8, z.i16, z.i32, z.i64, z.u8, z.u16, z.u32, z.u64, z.f32, z.f64,
        ))
        .unwrap();
        assert_eq!(got, zeros);
    });
}

#[test]
fn text_and_data_round_trip() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let blob: Vec<u8> = (0..=255).collect();
        let got = types.echo_text("héllo, wörld", &blob).unwrap();
        assert_eq!(got.text, "héllo, wörld");
        assert_eq!(got.data, blob);
        let empty = types.echo_text("", &[]).unwrap();
        assert_eq!(empty, TypesEchoTextResults::default());
        let big = vec![7u8; 1 << 20];
        assert_eq!(types.echo_text("big", &big).unwrap().data.len(), 1 << 20);
    });
}

#[test]
fn lists_round_trip() {
    watchdog(|| {
        let (s, c) = loops();
        let (_server, types) = pair(&s, &c);
        let want = TypesEchoListsResults {
            ints: vec![1, -2, i32::MAX],
            flags: vec![true, false, true, true],
            texts: vec!["a".into(), String::new(), "ünïcode".into()],
            blobs: vec![vec![], vec![0, 1, 2], vec![255; 9]],
            doubles: vec![0.5, -0.25],
        };
        let got = types
            .echo_lists(
                &want.ints,
                &want.flags,
                &want.texts,
                &want.blobs,
                &want.doubles,
            )
            .unwrap();
        assert_eq!(got, want);
        let none = types.echo_lists(&[], &[], &[], &[], &[]).unwrap();
        assert_eq!(none, TypesEchoListsResults::default());
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
        // not part of the signature: the call takes and returns only lists.
        let got = types.collect(&tips, &colors).unwrap();
        assert_eq!(got.tips.len(), 300);
        assert_eq!(got.tips[0].height, 299);
        assert_eq!(got.tips[299], tips[0]);
        assert_eq!(
            got.colors,
            [Color::Blue, Color::Blue, Color::Green, Color::Red]
        );
        let empty = types.collect(&[], &[]).unwrap();
        assert!(empty.tips.is_empty() && empty.colors.is_empty());
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
