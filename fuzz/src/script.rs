//! The `rpc_messages` target's input language: fuzz bytes decoded into a
//! script of capnp RPC messages a hostile peer sends (and waits for), and
//! the encoder that writes seed scripts in the same format.
//!
//! Invariant: decoding is total — every byte string decodes to a script
//! (missing bytes read as zero, lengths are clamped), and
//! `decode(&encode(s)) == s` for every script `encode` is given, so seeds
//! written with [`Enc`] mean exactly what they say.

/// Most ops one input runs (longer inputs are cut).
pub const MAX_OPS: usize = 48;
/// Deepest `Value` tree the decoder builds (apart from [`Value::Deep`]).
const MAX_VALUE_DEPTH: u32 = 8;

/// A reference to a question this peer asked (an index into the questions
/// asked so far), or — at or above `0x80` — a question id never asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QRef(pub u8);

/// A reference to a capability the server exported to this peer: an index
/// into the capabilities learned from its replies, or a raw import id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapRef {
    /// The n-th capability learned (modulo how many there are).
    Learned(u8),
    /// An id chosen by the fuzzer (usually one the server never exported).
    Raw(u32),
}

/// Where a call or disembargo is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `importedCap`.
    Import(CapRef),
    /// `promisedAnswer`: a question's answer, then pointer-field steps
    /// (`None` is a `noop` step).
    Promised(QRef, Vec<Option<u16>>),
}

/// The interface id of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    /// `CalcInit`.
    CalcInit,
    /// `Calculator`.
    Calculator,
    /// `Callback` (served by clients, not by the server).
    Callback,
    /// `Counter`.
    Counter,
    /// `ThreadMap`.
    ThreadMap,
    /// `Thread`.
    Thread,
    /// Any other id.
    Raw(u64),
}

/// One entry of a payload's capability table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapDesc {
    /// `none`.
    None,
    /// `senderHosted`: a capability this peer claims to export.
    SenderHosted(u32),
    /// `senderPromise`.
    SenderPromise(u32),
    /// `receiverHosted`: one of the server's own capabilities.
    ReceiverHosted(CapRef),
    /// `receiverAnswer`.
    ReceiverAnswer(QRef, Vec<Option<u16>>),
    /// `thirdPartyHosted` (level 3; a two-party server must refuse it).
    ThirdParty,
}

/// A capnp value built with raw layout calls, so it can be anything:
/// the right struct, the wrong one, a huge list, deep nesting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null pointer.
    Null,
    /// A struct with these data words and pointers.
    Struct(Vec<u64>, Vec<Value>),
    /// A list of `len` elements of one size (`kind % 7`: void, bit, byte,
    /// 2, 4, 8 bytes, pointer); the builder clamps `len` to what is cheap.
    List(u8, u32),
    /// Text (bytes, not necessarily UTF-8).
    Text(Vec<u8>),
    /// Data.
    Data(Vec<u8>),
    /// A capability pointer (index = its order among the caps in the value).
    Cap,
    /// `n` structs nested through their first pointer.
    Deep(u16),
    /// A list of `len` structs of `data` words and `ptrs` pointers.
    StructList(u32, u8, u8),
    /// A list of pointers.
    PtrList(Vec<Value>),
}

/// How this peer answers a call the server made to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `results` with this content and cap table.
    Results(Value, Vec<CapDesc>),
    /// `exception`.
    Exception,
    /// `canceled`.
    Canceled,
    /// `resultsSentElsewhere`.
    SentElsewhere,
    /// `takeFromOtherQuestion`.
    TakeFrom(QRef),
}

/// A call this peer makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// What is called.
    pub target: Target,
    /// Interface id.
    pub iface: Iface,
    /// Method ordinal.
    pub method: u16,
    /// Bit 0: `sendResultsTo.yourself`; bit 1: third party; bit 2:
    /// `noPromisePipelining`; bit 3: `onlyPromisePipeline`.
    pub flags: u8,
    /// The params struct.
    pub params: Value,
    /// The params' cap table.
    pub caps: Vec<CapDesc>,
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `Bootstrap` (a new question).
    Bootstrap,
    /// `Call` (a new question).
    Call(Call),
    /// Read the server's messages until it answers this question (or a
    /// bounded wait ends); with `answer_calls`, calls the server makes to
    /// this peer meanwhile get an exception at once.
    Await {
        /// Which question.
        question: QRef,
        /// Answer the server's calls with an exception while waiting.
        answer_calls: bool,
    },
    /// `Finish`.
    Finish(QRef, bool),
    /// `Release`.
    Release(CapRef, u32),
    /// `Resolve` of one of this peer's promises: to a capability, or (None)
    /// to an exception.
    Resolve(u32, Option<CapDesc>),
    /// `Disembargo` with context kind (`% 4`) and id.
    Disembargo(Target, u8, u32),
    /// `Abort` with this reason.
    Abort(Vec<u8>),
    /// `Return` for the n-th call the server made to this peer.
    Return(u8, Reply),
    /// Another message kind (`% 7`: unimplemented, obsoleteSave,
    /// obsoleteDelete, provide, accept, join, an unknown union tag).
    Other(u8),
    /// Bytes written as they are (a broken frame mid-session).
    Garbage(Vec<u8>),
    /// Close the socket at once, without waiting for anything.
    HangUp,
}

// ---------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------

/// Bytes left to decode; reads past the end give zeros.
struct Dec<'a> {
    data: &'a [u8],
}

impl Dec<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (u64::from(self.u32())) | (u64::from(self.u32()) << 32)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }
    fn qref(&mut self) -> QRef {
        QRef(self.u8())
    }
    fn capref(&mut self) -> CapRef {
        let b = self.u8();
        if b < 0xf0 {
            CapRef::Learned(b)
        } else {
            CapRef::Raw(self.u32())
        }
    }
    fn transform(&mut self) -> Vec<Option<u16>> {
        let n = self.u8() % 6;
        (0..n)
            .map(|_| match self.u16() {
                0xffff => None,
                i => Some(i),
            })
            .collect()
    }
    fn target(&mut self) -> Target {
        if self.u8().is_multiple_of(2) {
            Target::Import(self.capref())
        } else {
            let q = self.qref();
            Target::Promised(q, self.transform())
        }
    }
    fn iface(&mut self) -> Iface {
        match self.u8() % 8 {
            0 => Iface::CalcInit,
            1 => Iface::Calculator,
            2 => Iface::Callback,
            3 => Iface::Counter,
            4 => Iface::ThreadMap,
            5 => Iface::Thread,
            _ => Iface::Raw(self.u64()),
        }
    }
    fn capdesc(&mut self) -> CapDesc {
        match self.u8() % 6 {
            0 => CapDesc::None,
            1 => CapDesc::SenderHosted(self.u32()),
            2 => CapDesc::SenderPromise(self.u32()),
            3 => CapDesc::ReceiverHosted(self.capref()),
            4 => {
                let q = self.qref();
                CapDesc::ReceiverAnswer(q, self.transform())
            }
            _ => CapDesc::ThirdParty,
        }
    }
    fn caps(&mut self) -> Vec<CapDesc> {
        let n = self.u8() % 8;
        (0..n).map(|_| self.capdesc()).collect()
    }
    fn value(&mut self, depth: u32) -> Value {
        if depth >= MAX_VALUE_DEPTH {
            return Value::Null;
        }
        match self.u8() % 10 {
            0 => Value::Null,
            1 => {
                let nd = self.u8() % 9;
                let data = (0..nd).map(|_| self.u64()).collect();
                let np = self.u8() % 9;
                let ptrs = (0..np).map(|_| self.value(depth + 1)).collect();
                Value::Struct(data, ptrs)
            }
            2 => {
                let kind = self.u8();
                Value::List(kind, self.u32())
            }
            3 => {
                let n = usize::from(self.u8());
                Value::Text(self.bytes(n))
            }
            4 => {
                let n = usize::from(self.u16());
                Value::Data(self.bytes(n))
            }
            5 => Value::Cap,
            6 => Value::Deep(self.u16()),
            7 => {
                let len = self.u32();
                let data = self.u8();
                Value::StructList(len, data, self.u8())
            }
            8 => {
                let n = self.u8() % 9;
                Value::PtrList((0..n).map(|_| self.value(depth + 1)).collect())
            }
            _ => Value::Null,
        }
    }
    fn reply(&mut self) -> Reply {
        match self.u8() % 5 {
            0 => {
                let v = self.value(0);
                Reply::Results(v, self.caps())
            }
            1 => Reply::Exception,
            2 => Reply::Canceled,
            3 => Reply::SentElsewhere,
            _ => Reply::TakeFrom(self.qref()),
        }
    }
    fn op(&mut self) -> Op {
        match self.u8() % 13 {
            0 => Op::Bootstrap,
            1 | 12 => {
                let target = self.target();
                let iface = self.iface();
                let method = self.u16();
                let flags = self.u8();
                let params = self.value(0);
                let caps = self.caps();
                Op::Call(Call {
                    target,
                    iface,
                    method,
                    flags,
                    params,
                    caps,
                })
            }
            2 => {
                let question = self.qref();
                let answer_calls = self.u8() % 2 == 1;
                Op::Await {
                    question,
                    answer_calls,
                }
            }
            3 => {
                let q = self.qref();
                Op::Finish(q, self.u8() % 2 == 1)
            }
            4 => {
                let c = self.capref();
                Op::Release(c, self.u32())
            }
            5 => {
                let id = self.u32();
                let cap = if self.u8().is_multiple_of(2) {
                    None
                } else {
                    Some(self.capdesc())
                };
                Op::Resolve(id, cap)
            }
            6 => {
                let t = self.target();
                let kind = self.u8();
                Op::Disembargo(t, kind, self.u32())
            }
            7 => {
                let n = usize::from(self.u8());
                Op::Abort(self.bytes(n))
            }
            8 => {
                let i = self.u8();
                Op::Return(i, self.reply())
            }
            9 => Op::Other(self.u8()),
            10 => {
                let n = usize::from(self.u16());
                Op::Garbage(self.bytes(n))
            }
            _ => Op::HangUp,
        }
    }
}

/// Decodes fuzz bytes into a script (total: any bytes give a script).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut d = Dec { data };
    let mut ops = Vec::new();
    while !d.data.is_empty() && ops.len() < MAX_OPS {
        ops.push(d.op());
    }
    ops
}

// ---------------------------------------------------------------------------
// Encoding (for seeds).
// ---------------------------------------------------------------------------

/// Writes scripts in the format [`decode`] reads.
#[derive(Default)]
pub struct Enc {
    out: Vec<u8>,
}

impl Enc {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn qref(&mut self, q: QRef) {
        self.u8(q.0);
    }
    fn capref(&mut self, c: CapRef) {
        match c {
            CapRef::Learned(i) => self.u8(i.min(0xef)),
            CapRef::Raw(id) => {
                self.u8(0xf0);
                self.u32(id);
            }
        }
    }
    fn transform(&mut self, t: &[Option<u16>]) {
        assert!(t.len() < 6, "at most 5 transform steps");
        self.u8(t.len() as u8);
        for step in t {
            match step {
                None => self.u16(0xffff),
                Some(i) => {
                    assert_ne!(*i, 0xffff);
                    self.u16(*i)
                }
            }
        }
    }
    fn target(&mut self, t: &Target) {
        match t {
            Target::Import(c) => {
                self.u8(0);
                self.capref(*c);
            }
            Target::Promised(q, tr) => {
                self.u8(1);
                self.qref(*q);
                self.transform(tr);
            }
        }
    }
    fn iface(&mut self, i: Iface) {
        match i {
            Iface::CalcInit => self.u8(0),
            Iface::Calculator => self.u8(1),
            Iface::Callback => self.u8(2),
            Iface::Counter => self.u8(3),
            Iface::ThreadMap => self.u8(4),
            Iface::Thread => self.u8(5),
            Iface::Raw(id) => {
                self.u8(6);
                self.u64(id);
            }
        }
    }
    fn capdesc(&mut self, c: &CapDesc) {
        match c {
            CapDesc::None => self.u8(0),
            CapDesc::SenderHosted(id) => {
                self.u8(1);
                self.u32(*id);
            }
            CapDesc::SenderPromise(id) => {
                self.u8(2);
                self.u32(*id);
            }
            CapDesc::ReceiverHosted(r) => {
                self.u8(3);
                self.capref(*r);
            }
            CapDesc::ReceiverAnswer(q, t) => {
                self.u8(4);
                self.qref(*q);
                self.transform(t);
            }
            CapDesc::ThirdParty => self.u8(5),
        }
    }
    fn caps(&mut self, caps: &[CapDesc]) {
        assert!(caps.len() < 8, "at most 7 caps");
        self.u8(caps.len() as u8);
        for c in caps {
            self.capdesc(c);
        }
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.u8(0),
            Value::Struct(data, ptrs) => {
                assert!(data.len() < 9 && ptrs.len() < 9);
                self.u8(1);
                self.u8(data.len() as u8);
                for w in data {
                    self.u64(*w);
                }
                self.u8(ptrs.len() as u8);
                for p in ptrs {
                    self.value(p);
                }
            }
            Value::List(kind, len) => {
                self.u8(2);
                self.u8(*kind);
                self.u32(*len);
            }
            Value::Text(t) => {
                self.u8(3);
                self.u8(t.len() as u8);
                self.out.extend_from_slice(&t[..t.len().min(255)]);
            }
            Value::Data(d) => {
                self.u8(4);
                self.u16(d.len() as u16);
                self.out.extend_from_slice(&d[..d.len().min(65535)]);
            }
            Value::Cap => self.u8(5),
            Value::Deep(n) => {
                self.u8(6);
                self.u16(*n);
            }
            Value::StructList(len, data, ptrs) => {
                self.u8(7);
                self.u32(*len);
                self.u8(*data);
                self.u8(*ptrs);
            }
            Value::PtrList(items) => {
                assert!(items.len() < 9);
                self.u8(8);
                self.u8(items.len() as u8);
                for i in items {
                    self.value(i);
                }
            }
        }
    }
    fn reply(&mut self, r: &Reply) {
        match r {
            Reply::Results(v, caps) => {
                self.u8(0);
                self.value(v);
                self.caps(caps);
            }
            Reply::Exception => self.u8(1),
            Reply::Canceled => self.u8(2),
            Reply::SentElsewhere => self.u8(3),
            Reply::TakeFrom(q) => {
                self.u8(4);
                self.qref(*q);
            }
        }
    }

    /// Appends one op.
    pub fn op(&mut self, op: &Op) -> &mut Self {
        match op {
            Op::Bootstrap => self.u8(0),
            Op::Call(c) => {
                self.u8(1);
                self.target(&c.target);
                self.iface(c.iface);
                self.u16(c.method);
                self.u8(c.flags);
                self.value(&c.params);
                self.caps(&c.caps);
            }
            Op::Await {
                question,
                answer_calls,
            } => {
                self.u8(2);
                self.qref(*question);
                self.u8(u8::from(*answer_calls));
            }
            Op::Finish(q, release) => {
                self.u8(3);
                self.qref(*q);
                self.u8(u8::from(*release));
            }
            Op::Release(c, n) => {
                self.u8(4);
                self.capref(*c);
                self.u32(*n);
            }
            Op::Resolve(id, cap) => {
                self.u8(5);
                self.u32(*id);
                match cap {
                    None => self.u8(0),
                    Some(c) => {
                        self.u8(1);
                        self.capdesc(c);
                    }
                }
            }
            Op::Disembargo(t, kind, id) => {
                self.u8(6);
                self.target(t);
                self.u8(*kind);
                self.u32(*id);
            }
            Op::Abort(reason) => {
                self.u8(7);
                self.u8(reason.len() as u8);
                self.out.extend_from_slice(&reason[..reason.len().min(255)]);
            }
            Op::Return(i, r) => {
                self.u8(8);
                self.u8(*i);
                self.reply(r);
            }
            Op::Other(k) => {
                self.u8(9);
                self.u8(*k);
            }
            Op::Garbage(bytes) => {
                self.u8(10);
                self.u16(bytes.len() as u16);
                self.out.extend_from_slice(bytes);
            }
            Op::HangUp => self.u8(11),
        }
        self
    }

    /// The bytes written so far.
    pub fn finish(&self) -> Vec<u8> {
        self.out.clone()
    }
}

/// Encodes a script (for seeds); `decode(&encode(ops)) == ops` for scripts
/// within the format's bounds.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut e = Enc::default();
    for op in ops {
        e.op(op);
    }
    e.finish()
}
