//! Generated struct conversions (mp-codegen's `mp_read` / `mp_write`, as
//! generated for `types.capnp` and `miner.capnp` in mp-codegen's test
//! data): reading any bytes a peer sends as one of these structs gives a
//! value or a clean error, never a panic; and writing a value then reading
//! it back gives the same value.
//!
//! The first input byte picks the mode: the rest is a framed capnp message
//! (segment table and all), or the words of a single segment, read as every
//! struct type in turn; or field values from which a struct is built,
//! written and read back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mp_ipc::CallSite;

/// capnpc's types for `types.capnp`, where the generated code expects them.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod types_capnp {
    include!("../../crates/mp-codegen/tests/data/types_capnp.rs");
}

/// The generated adapters for `types.capnp`.
#[allow(dead_code, missing_docs, clippy::all)]
mod types_mp {
    include!("../../crates/mp-codegen/tests/data/types_mp.rs");
}

/// capnpc's types for `miner.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod miner_capnp {
    include!("../../crates/mp-codegen/tests/data/miner_capnp.rs");
}

/// The generated adapters for `miner.capnp`.
#[allow(dead_code, missing_docs, clippy::all)]
mod miner_mp {
    include!("../../crates/mp-codegen/tests/data/miner_mp.rs");
}

const SITE: CallSite = CallSite::new("fuzz", "struct_conversions");

/// A struct with generated conversions, behind one interface.
trait Convert: Sized + std::fmt::Debug + Clone {
    type Owned: capnp::traits::Owned;
    fn read(r: <Self::Owned as capnp::traits::Owned>::Reader<'_>) -> capnp::Result<Self>;
    fn write(&self, b: <Self::Owned as capnp::traits::Owned>::Builder<'_>) -> capnp::Result<()>;
    /// Equality that treats floats by their bits (NaN round-trips as NaN).
    fn same(&self, other: &Self) -> bool;
}

macro_rules! convert {
    ($ty:ty, $owned:ty, |$a:ident, $b:ident| $same:expr) => {
        impl Convert for $ty {
            type Owned = $owned;
            fn read(r: <$owned as capnp::traits::Owned>::Reader<'_>) -> capnp::Result<Self> {
                <$ty>::mp_read(SITE, None, r)
            }
            fn write(&self, b: <$owned as capnp::traits::Owned>::Builder<'_>) -> capnp::Result<()> {
                self.mp_write(SITE, None, b)
            }
            fn same(&self, other: &Self) -> bool {
                let ($a, $b) = (self, other);
                $same
            }
        }
    };
}

convert!(types_mp::Options, types_capnp::options::Owned, |a, b| {
    a.ratio.to_bits() == b.ratio.to_bits()
        && types_mp::Options {
            ratio: 0.0,
            ..a.clone()
        } == types_mp::Options {
            ratio: 0.0,
            ..b.clone()
        }
});
convert!(types_mp::BlockRef, types_capnp::block_ref::Owned, |a, b| a
    == b);
convert!(miner_mp::Tip, miner_capnp::tip::Owned, |a, b| a == b);
convert!(
    miner_mp::TemplateOptions,
    miner_capnp::template_options::Owned,
    |a, b| a == b
);

/// Writes `v` into a fresh message, frames it, reads it back: the same value.
fn round_trip<T: Convert>(v: &T) {
    let mut m = capnp::message::Builder::new_default();
    v.write(m.init_root::<<T::Owned as capnp::traits::Owned>::Builder<'_>>())
        .expect("writing a value read or built in Rust succeeds");
    let bytes = capnp::serialize::write_message_to_words(&m);
    let msg = capnp::serialize::read_message_from_flat_slice(
        &mut bytes.as_slice(),
        capnp::message::ReaderOptions::new(),
    )
    .expect("our own message frames");
    let r = msg
        .get_root::<<T::Owned as capnp::traits::Owned>::Reader<'_>>()
        .expect("our own root reads");
    let back = T::read(r).expect("what we wrote reads back");
    assert!(v.same(&back), "write->read changed {v:?} into {back:?}");
}

/// Reads the message's root as `T`: a value (which must round-trip) or an
/// error.
fn read_as<T: Convert, S: capnp::message::ReaderSegments>(msg: &capnp::message::Reader<S>) {
    let Ok(r) = msg.get_root::<<T::Owned as capnp::traits::Owned>::Reader<'_>>() else {
        return;
    };
    if let Ok(v) = T::read(r) {
        round_trip(&v);
    }
}

fn read_all<S: capnp::message::ReaderSegments>(msg: &capnp::message::Reader<S>) {
    read_as::<types_mp::Options, S>(msg);
    read_as::<types_mp::BlockRef, S>(msg);
    read_as::<miner_mp::Tip, S>(msg);
    read_as::<miner_mp::TemplateOptions, S>(msg);
}

/// Field values drawn from the input (zeros once it runs out).
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        let mut w = [0u8; 8];
        for b in &mut w {
            *b = self.u8();
        }
        u64::from_le_bytes(w)
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8()).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
    fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
    fn color(&mut self) -> types_capnp::Color {
        match self.u8() % 3 {
            0 => types_capnp::Color::Red,
            1 => types_capnp::Color::Green,
            _ => types_capnp::Color::Blue,
        }
    }
}

#[allow(clippy::needless_update)]
fn build_and_round_trip(data: &[u8]) {
    let mut f = Fields(data);
    let tip = types_mp::BlockRef {
        hash: f.bytes(),
        height: f.u64() as i32,
    };
    let tags = (0..f.u8() % 8).map(|_| f.text()).collect();
    let options = types_mp::Options {
        use_mempool: f.u8() & 1 == 1,
        block_reserved_weight: f.u64(),
        label: f.text(),
        ratio: f64::from_bits(f.u64()),
        tip: tip.clone(),
        tags,
        color: f.color(),
        shade: f.color(),
        // Fields the schema gains later keep their defaults here (the
        // modes that read arbitrary messages reach them).
        ..Default::default()
    };
    round_trip(&options);
    round_trip(&tip);
    round_trip(&miner_mp::Tip {
        hash: f.bytes(),
        height: f.u64() as i32,
    });
    round_trip(&miner_mp::TemplateOptions {
        use_mempool: f.u8() & 1 == 1,
        block_reserved_weight: f.u64(),
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let options = *capnp::message::ReaderOptions::new()
        .traversal_limit_in_words(Some(1 << 16))
        .nesting_limit(64);
    match mode % 3 {
        0 => {
            let mut slice = rest;
            if let Ok(msg) = capnp::serialize::read_message_from_flat_slice(&mut slice, options) {
                read_all(&msg);
            }
        }
        1 => {
            // One segment holding exactly these words.
            let words = rest.len() / 8;
            let mut framed = Vec::with_capacity(8 + rest.len());
            framed.extend_from_slice(&0u32.to_le_bytes());
            framed.extend_from_slice(&(words as u32).to_le_bytes());
            framed.extend_from_slice(&rest[..words * 8]);
            let mut slice = framed.as_slice();
            if let Ok(msg) = capnp::serialize::read_message_from_flat_slice(&mut slice, options) {
                read_all(&msg);
            }
        }
        _ => build_and_round_trip(rest),
    }
});
