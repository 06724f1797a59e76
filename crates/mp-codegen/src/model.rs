//! Reading a capnp `CodeGeneratorRequest` into the generator's model: the
//! interfaces of each requested file, their methods, and each parameter and
//! result mapped to a Rust type. Everything the generator cannot map is reported
//! as an [`Unsupported`] naming the file, interface, method and field — the
//! model never holds a guess: a method that cannot be mapped is kept only as
//! a [`LeftOut`] (what the server adapter needs to refuse it), an interface
//! that cannot be mapped at all is not in the model.

use std::collections::HashMap;

use capnp::schema_capnp::{field, node, type_};

use crate::names;
use crate::{Error, Unsupported};

/// Stands for the requested file's capnp module in paths of the model.
pub(crate) const CAPNP_MODULE_MARKER: &str = "__MP_CODEGEN_CAPNP_MODULE__";
/// `Proxy.ThreadMap`.
const THREAD_MAP_ID: u64 = 0xee5e_3717_9ad9_dc9d;
/// `Proxy.Context`.
const CONTEXT_ID: u64 = 0x9c44_e664_5d0b_22c6;
/// `stream.capnp`'s `StreamResult` (streaming methods).
const STREAM_RESULT_ID: u64 = 0x995f_9a33_77c0_b16e;
/// Annotations of `proxy.capnp` read here.
const PROXY_COUNT_ID: u64 = 0xd026_82b3_19f6_9b38;
const PROXY_EXCEPTION_ID: u64 = 0x996a_1832_0099_2f88;
const PROXY_NAME_ID: u64 = 0xb594_888f_63f4_dbb9;
const PROXY_SKIP_ID: u64 = 0x824c_08b8_2695_d8dd;

/// A Rust-mappable field type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// A primitive: its Rust name (`bool`, `i64`, `f32`, ...).
    Prim(&'static str),
    /// `Text` ↔ `String`.
    Text,
    /// `Data` ↔ `Vec<u8>`.
    Data,
    /// `List(T)` ↔ `Vec<T>`, of any mapped element type (lists too).
    List(Box<Ty>),
    /// An interface passed on its own or in a list or generic struct: read
    /// as its client (`FooClient`), written from an implementation
    /// (`Arc<dyn Foo>`).
    Interface(IfaceRef),
    /// An interface inside a struct: `Arc<dyn Foo>` both ways (a received
    /// one is its client, which implements the trait).
    Object(IfaceRef),
    /// An enum, as capnpc's Rust enum.
    Enum {
        /// capnpc's enum (`crate::foo_capnp::Color`).
        path: String,
        /// capnpc's names of its enumerants, in ordinal order (`Red`, ...).
        variants: Vec<String>,
    },
    /// A struct, as a generated Rust struct.
    Struct {
        /// The path of its Rust name (`BlockRef`, or
        /// `super::common_mp::BlockRef` for another file's).
        path: String,
        /// It holds no interface (so it derives `Debug` and `PartialEq`).
        plain: bool,
        /// A group of the struct being defined: its capnp getter returns
        /// the reader itself, not a `Result`.
        group: bool,
    },
    /// A struct field whose type is the struct being defined (or one
    /// enclosing it): `Option<Box<T>>`, `None` for a null pointer.
    Boxed(String),
    /// An instance of a generic struct (`Pair(Text, Data)`), as the
    /// generated generic Rust struct (`Pair<String, Vec<u8>>`); its fields
    /// are read and written in place, with the arguments substituted.
    Generic(Box<Generic>),
    /// A type parameter, inside the definition of a generic struct.
    Param(String),
}

impl Ty {
    /// Holds no interface anywhere (so `Debug` and `PartialEq` derive).
    pub(crate) fn plain(&self) -> bool {
        match self {
            Ty::Interface(_) | Ty::Object(_) => false,
            Ty::List(e) => e.plain(),
            Ty::Struct { plain, .. } => *plain,
            Ty::Generic(g) => g.args.iter().all(Ty::plain),
            _ => true,
        }
    }

    /// Mentions type parameter `name`.
    pub(crate) fn mentions(&self, name: &str) -> bool {
        match self {
            Ty::Param(p) => p == name,
            Ty::List(e) => e.mentions(name),
            Ty::Generic(g) => g.args.iter().any(|a| a.mentions(name)),
            _ => false,
        }
    }

    /// A pointer on the wire (so a set one can be told from an unset one).
    pub(crate) fn is_pointer(&self) -> bool {
        !matches!(self, Ty::Prim(_) | Ty::Enum { .. } | Ty::Param(_))
    }

    /// The same type as a member of a struct: interfaces become
    /// [`Ty::Object`], since one Rust field type must serve reading and
    /// writing.
    pub(crate) fn in_struct(self) -> Ty {
        match self {
            Ty::Interface(r) => Ty::Object(r),
            Ty::List(e) => Ty::List(Box::new(e.in_struct())),
            Ty::Generic(g) => {
                let Generic {
                    rust,
                    capnp,
                    args,
                    fields,
                    union,
                } = *g;
                let in_struct = |f: Field| Field {
                    ty: f.ty.in_struct(),
                    ..f
                };
                Ty::Generic(Box::new(Generic {
                    rust,
                    capnp,
                    args: args.into_iter().map(Ty::in_struct).collect(),
                    fields: fields.into_iter().map(in_struct).collect(),
                    union: union.map(|u| Union {
                        variants: u
                            .variants
                            .into_iter()
                            .map(|v| Variant {
                                field: v.field.map(in_struct),
                                ..v
                            })
                            .collect(),
                        ..u
                    }),
                }))
            }
            other => other,
        }
    }
}

/// An instance of a generic struct.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generic {
    /// The path of the generic Rust struct (`Pair`, `super::common_mp::Pair`).
    pub rust: String,
    /// The path of capnpc's module for it (`crate::common_capnp::pair`).
    pub capnp: String,
    /// Its type arguments, in the order of its parameters.
    pub args: Vec<Ty>,
    /// Its fields, with the arguments substituted.
    pub fields: Vec<Field>,
    /// A struct that is all one union (`Expected(Value, Error)`) is a
    /// generic Rust enum: its members, with the arguments substituted.
    pub union: Option<Union>,
}

/// A struct's unnamed union: a Rust enum with a variant per member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Union {
    /// The Rust enum's name: the struct's own when the struct is all one
    /// union, `{Struct}Which` beside other fields.
    pub rust: String,
    /// Its members, in discriminant order.
    pub variants: Vec<Variant>,
}

/// One member of a union.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    /// The Rust variant (`Dot`, from `dot`).
    pub rust: String,
    /// capnpc's `Which` variant (`Dot`).
    pub capnp: String,
    /// Its value; `None` for a `Void` member (a unit variant), whose setter
    /// is `set_{accessor}(())`.
    pub field: Option<Field>,
    /// The accessor stem of a `Void` member.
    pub accessor: String,
    /// The Rust expression of its default value (for the enum's `Default`,
    /// which is the first member's).
    pub default: String,
    /// Doc comment from the schema.
    pub doc: Option<String>,
}

/// Whether a field's value may be absent, and how the wire says so.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Presence {
    /// Always there.
    Always,
    /// `foo` beside `hasFoo :Bool` (libmultiprocess's `std::optional`):
    /// `Option<T>`, the accessor stem of `hasFoo` says which.
    Flag(String),
    /// An interface the peer may leave null: `Option<T>`.
    Nullable,
}

/// A reference to an interface defined at the top level of a schema file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IfaceRef {
    /// Its node id (to leave out the methods that use it when it is not
    /// generated).
    pub id: u64,
    /// The schema's name, for messages.
    pub schema: String,
    /// The path of its generated Rust names' stem: `Callback` for one of
    /// the same file (→ `CallbackClient`, ...), `super::echo_mp::Echo` for
    /// one of `echo.capnp`, whose generated file must be included as the
    /// sibling module `echo_mp`.
    pub rust: String,
    /// The path of its generated client (`CallbackClient`; see [`names_of`]).
    pub client: String,
    /// The path of its generated server adapter (`CallbackServer`).
    pub server: String,
}

/// One parameter or result field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// The schema's name (`threadName`), for messages.
    pub schema: String,
    /// The Rust identifier for the value (`thread_name`, keywords escaped).
    pub ident: String,
    /// The stem of capnpc's accessors (`get_{accessor}`, `set_{accessor}`).
    pub accessor: String,
    /// Its type.
    pub ty: Ty,
    /// Declared as a bare type parameter of a generic struct (capnpc's
    /// builder then initialises a list with `initn_{accessor}`).
    pub param: bool,
    /// Whether it may be absent.
    pub presence: Presence,
    /// A parameter that is also a result of the same name and type: passed
    /// as `&mut T`, written back from the results (libmultiprocess's
    /// in/out parameters, C++ `T&`).
    pub inout: bool,
}

/// What a method is, beyond an ordinary call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MethodKind {
    /// An ordinary call.
    Plain,
    /// `construct(threadMap :ThreadMap) -> (threadMap :ThreadMap)`: the
    /// thread-map exchange, handled by the generated code itself.
    Construct,
}

/// One method of an interface.
#[derive(Debug, Clone)]
pub(crate) struct Method {
    /// The schema's name (`addOnLoop`).
    pub schema: String,
    /// Its ordinal among the interface's methods.
    pub ordinal: usize,
    /// How the server would answer it if it were left out.
    pub stub: Stub,
    /// The Rust method name (`add_on_loop`, keywords escaped).
    pub ident: String,
    /// The client's async variant (`add_on_loop_async`; `type` →
    /// `type_async`), with a trailing `_` where a declared name takes it.
    pub async_fn: String,
    /// The client's private request builder (`build_add_on_loop`), kept
    /// clear the same way.
    pub build_fn: String,
    /// capnpc's name for the `Server` trait method (`add_on_loop`, keywords get `_`).
    pub capnp_fn: String,
    /// capnpc's name for `{capnp_fn}_request` (no keyword escaping there).
    pub capnp_request: String,
    /// capnpc's Params/Results type alias prefix (`AddOnLoop`).
    pub capnp_alias: String,
    /// The accessor stem of the `context :Proxy.Context` parameter, if any.
    pub context: Option<String>,
    /// The accessor stem of a `Proxy.ThreadMap` parameter outside
    /// `construct`: clients send this side's thread map in it, servers
    /// take the peer's from it.
    pub thread_map: Option<String>,
    /// The accessor stem of a `Proxy.ThreadMap` result: servers send their
    /// thread map in it, clients take the peer's from it.
    pub thread_map_result: Option<String>,
    /// The parameters the user sees.
    pub params: Vec<Field>,
    /// The results.
    pub results: Vec<Field>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
    /// Plain or the thread-map exchange.
    pub kind: MethodKind,
    /// A Text result marked `$Proxy.exception`: carries the server's error
    /// (the call itself succeeds), not part of the results.
    pub exception: Option<Field>,
    /// Several `$Proxy.exception` results, or one that is not Text: the
    /// method's error is a generated enum with a variant for each (and one
    /// for a call that failed).
    pub errors: Vec<Field>,
}

/// How the server adapter answers a method it leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stub {
    /// An ordinary call: a `Server` method that fails with "unimplemented".
    Call,
    /// A streaming call (capnpc's `Server` method has no results).
    Streaming,
    /// capnpc's `Server` method has type parameters this generator does not
    /// name; capnpc's default ("not implemented") answers it.
    Default,
}

/// A method left out of the generated trait and client because it cannot
/// be mapped; the server adapter answers it with capnp's "unimplemented"
/// error naming it and why.
#[derive(Debug, Clone)]
pub(crate) struct LeftOut {
    /// The schema's name.
    pub schema: String,
    /// Its ordinal among the interface's methods.
    pub ordinal: usize,
    /// capnpc's name for the `Server` trait method.
    pub capnp_fn: String,
    /// capnpc's Params/Results type alias prefix.
    pub capnp_alias: String,
    /// How the server answers it.
    pub stub: Stub,
    /// Why it is left out (its problems, joined).
    pub reason: String,
}

/// One interface.
#[derive(Debug, Clone)]
pub(crate) struct Interface {
    /// Its node id.
    pub id: u64,
    /// The schema's name (`Calculator`).
    pub schema: String,
    /// The trait's name (the stem of the generated names).
    pub rust: String,
    /// The client's name (see [`names_of`]).
    pub client: String,
    /// The server adapter's name.
    pub server: String,
    /// The interfaces it extends, directly or not.
    pub bases: Vec<Base>,
    /// capnpc's module name for it (`calculator`).
    pub capnp_mod: String,
    /// Its methods, by ordinal.
    pub methods: Vec<Method>,
    /// The methods left out because they cannot be mapped, by ordinal.
    pub left_out: Vec<LeftOut>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
}

/// An interface another extends.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// It, with `rust`, `client` and `server` as paths from the derived
    /// interface's file and only its mapped methods.
    pub iface: Interface,
    /// The full path of capnpc's module for it (`crate::chain_capnp::chain_client`).
    pub capnp: String,
}

/// One requested schema file.
#[derive(Debug, Clone)]
pub(crate) struct File {
    /// The requested file name, as capnp reports it (relative to the src prefix).
    pub filename: String,
    /// The file's top-level interfaces, in declaration order.
    pub interfaces: Vec<Interface>,
    /// The file's top-level structs that map to Rust (others are left out:
    /// a method that uses one is refused).
    pub structs: Vec<StructDef>,
    /// The file's top-level generic structs that map to Rust.
    pub generics: Vec<GenericDef>,
    /// Everything of the file that cannot be mapped, in schema order: one
    /// entry per problem (a method with two bad fields has two).
    pub problems: Vec<Unsupported>,
}

/// A generic struct mapped to a generic Rust struct (`Pair<K, V>`); its
/// instances are read and written where they are used.
#[derive(Debug, Clone)]
pub(crate) struct GenericDef {
    /// The schema's name.
    pub schema: String,
    /// The Rust type name.
    pub rust: String,
    /// The Rust names of the type parameters its fields use.
    pub params: Vec<String>,
    /// Per schema type parameter, whether a field uses it.
    pub used: Vec<bool>,
    /// Its fields, parameters as [`Ty::Param`].
    pub fields: Vec<Field>,
    /// All one union: the Rust type is an enum of these.
    pub union: Option<Union>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
}

/// A struct mapped to a generated Rust struct.
#[derive(Debug, Clone)]
pub(crate) struct StructDef {
    /// It holds no interface: derives `Debug` and `PartialEq`.
    pub plain: bool,
    /// The schema's name.
    pub schema: String,
    /// The Rust type name.
    pub rust: String,
    /// capnpc's module name for it.
    pub capnp_mod: String,
    /// Its fields, in declaration order (but the union's members).
    pub fields: Vec<StructField>,
    /// Its unnamed union: with no other fields the struct is this enum,
    /// else it has a `which` field of it.
    pub union: Option<Union>,
    /// Its groups (named unions too), each a struct (or enum) of its own,
    /// `{Struct}{Group}`, defined beside it.
    pub groups: Vec<StructDef>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
}

/// A field of a mapped struct.
#[derive(Debug, Clone)]
pub(crate) struct StructField {
    /// The field itself.
    pub field: Field,
    /// The Rust expression of its default value (`Default::default()` when
    /// the schema gives none).
    pub default: String,
    /// Doc comment from the schema.
    pub doc: Option<String>,
}

struct Ctx<'a> {
    nodes: HashMap<u64, node::Reader<'a>>,
    docs: HashMap<u64, (Option<String>, Vec<Option<String>>)>,
    /// Structs being mapped (recursion guard) and already mapped.
    structs: std::cell::RefCell<HashMap<u64, Option<Result<StructDef, String>>>>,
}

impl Ctx<'_> {
    /// capnpc's module path for a file (the default `crate::{stem}_capnp`).
    fn capnp_module(&self, file_id: u64) -> String {
        format!("crate::{}_capnp", crate::stem(&node_name(self, file_id)))
    }
}

fn schema_err(e: impl std::fmt::Display) -> Error {
    Error::Schema(e.to_string())
}

fn text(t: capnp::Result<capnp::text::Reader<'_>>) -> Result<String, Error> {
    t.map_err(schema_err)?.to_string().map_err(schema_err)
}

fn doc_of(s: String) -> Option<String> {
    let s = s.trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

/// Reads every requested file of a serialized `CodeGeneratorRequest`. What
/// cannot be mapped is listed in each [`File::problems`] and left out of the
/// model; only a malformed request is an error.
pub(crate) fn read_request(bytes: &[u8]) -> Result<Vec<File>, Error> {
    let mut slice = bytes;
    let message = capnp::serialize::read_message_from_flat_slice(
        &mut slice,
        capnp::message::ReaderOptions::new(),
    )
    .map_err(schema_err)?;
    let request: capnp::schema_capnp::code_generator_request::Reader<'_> =
        message.get_root().map_err(schema_err)?;
    let mut ctx = Ctx {
        nodes: HashMap::new(),
        docs: HashMap::new(),
        structs: Default::default(),
    };
    for n in request.get_nodes().map_err(schema_err)? {
        ctx.nodes.insert(n.get_id(), n);
    }
    if request.has_source_info() {
        for info in request.get_source_info().map_err(schema_err)? {
            let doc = doc_of(text(info.get_doc_comment())?);
            let mut members = Vec::new();
            for m in info.get_members().map_err(schema_err)? {
                members.push(doc_of(text(m.get_doc_comment())?));
            }
            ctx.docs.insert(info.get_id(), (doc, members));
        }
    }
    let mut files = Vec::new();
    for requested in request.get_requested_files().map_err(schema_err)? {
        let filename = text(requested.get_filename())?;
        let file_node = ctx
            .nodes
            .get(&requested.get_id())
            .copied()
            .ok_or_else(|| schema_err(format!("{filename}: file node missing")))?;
        let mut interfaces = Vec::new();
        let mut structs = Vec::new();
        let mut generics = Vec::new();
        let mut problems = Vec::new();
        for nested in file_node.get_nested_nodes().map_err(schema_err)? {
            if let Some(Ok(def)) = map_struct(&ctx, nested.get_id()) {
                structs.push(def);
            }
            if let Some(Ok(def)) = map_generic_def(&ctx, nested.get_id()) {
                generics.push(def);
            }
            let Some(n) = ctx.nodes.get(&nested.get_id()).copied() else {
                continue;
            };
            if let Ok(node::Interface(iface)) = n.which() {
                let name = text(nested.get_name())?;
                let here = Here {
                    file: &filename,
                    interface: &name,
                };
                if let Some(i) =
                    read_interface(&ctx, here, requested.get_id(), n, iface, &mut problems)
                {
                    interfaces.push(i);
                }
            }
        }
        files.push(File {
            filename,
            interfaces,
            structs,
            generics,
            problems,
        });
    }
    Ok(files)
}

/// The generated struct of a method's several results (`CalculatorDivResults`).
pub(crate) fn results_struct(iface: &Interface, m: &Method) -> String {
    format!("{}{}Results", iface.rust, m.capnp_alias)
}

/// The generated error enum of a method with several (or non-Text)
/// `$Proxy.exception` results (`ActorCallbackCallError`).
pub(crate) fn error_enum(iface: &Interface, m: &Method) -> String {
    format!("{}{}Error", iface.rust, m.capnp_alias)
}

/// Leaves out what would make two generated top-level items of one file
/// share a name: an interface whose `Foo`/`FooClient`/`FooServer` is taken
/// (and then every method, in any file, that passes or returns it), or a
/// method whose results struct is taken. Returns the name problems and,
/// separately, the methods left out because they use a left-out interface.
pub(crate) fn check_names(files: &mut [File]) -> (Vec<Unsupported>, Vec<Unsupported>) {
    let mut problems = Vec::new();
    // Left-out interfaces: id → (file, name, why).
    let mut gone: Vec<(u64, String)> = Vec::new();
    for file in files.iter_mut() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for st in &file.structs {
            seen.insert(st.rust.clone(), st.schema.clone());
        }
        for g in &file.generics {
            seen.insert(g.rust.clone(), g.schema.clone());
        }
        let here_file = file.filename.clone();
        let mut kept = Vec::new();
        for mut iface in std::mem::take(&mut file.interfaces) {
            let here = Here {
                file: &here_file,
                interface: &iface.schema,
            };
            let own = [
                iface.rust.clone(),
                iface.client.clone(),
                iface.server.clone(),
            ];
            let clashes: Vec<Unsupported> = own
                .iter()
                .filter_map(|name| {
                    seen.get(name).map(|other| {
                        here.problem(
                            None,
                            None,
                            format!("the generated Rust name `{name}` collides with one generated for interface `{other}`"),
                        )
                    })
                })
                .collect();
            if !clashes.is_empty() {
                gone.push((iface.id, joined_reasons(&clashes)));
                problems.extend(clashes);
                continue;
            }
            for name in own {
                seen.insert(name, iface.schema.clone());
            }
            let mut methods = Vec::new();
            for m in std::mem::take(&mut iface.methods) {
                let mut own = Vec::new();
                if m.results.len() > 1 {
                    own.push(results_struct(&iface, &m));
                }
                if !m.errors.is_empty() {
                    own.push(error_enum(&iface, &m));
                }
                let clashes: Vec<Unsupported> = own
                    .iter()
                    .filter_map(|name| {
                        seen.get(name).map(|other| {
                            here.problem(
                                Some(&m.schema),
                                None,
                                format!("the generated Rust name `{name}` collides with one generated for interface `{other}`"),
                            )
                        })
                    })
                    .collect();
                if !clashes.is_empty() {
                    iface.left_out.push(left_out(&m, joined_reasons(&clashes)));
                    problems.extend(clashes);
                    continue;
                }
                for name in own {
                    seen.insert(name, iface.schema.clone());
                }
                methods.push(m);
            }
            iface.methods = methods;
            iface.left_out.sort_by_key(|l| l.ordinal);
            kept.push(iface);
        }
        file.interfaces = kept;
    }
    let mut cascaded = Vec::new();
    if gone.is_empty() {
        return (problems, cascaded);
    }
    for file in files.iter_mut() {
        for iface in &mut file.interfaces {
            let mut methods = Vec::new();
            for m in std::mem::take(&mut iface.methods) {
                let found: Vec<Unsupported> = m
                    .params
                    .iter()
                    .chain(&m.results)
                    .filter_map(|f| match &f.ty {
                        Ty::Interface(r) => {
                            gone.iter().find(|(id, _)| *id == r.id).map(|(_, why)| {
                                Here {
                                    file: &file.filename,
                                    interface: &iface.schema,
                                }
                                .problem(
                                    Some(&m.schema),
                                    Some(&f.schema),
                                    format!("interface {} is not generated: {why}", r.schema),
                                )
                            })
                        }
                        _ => None,
                    })
                    .collect();
                if found.is_empty() {
                    methods.push(m);
                } else {
                    iface.left_out.push(left_out(&m, joined_reasons(&found)));
                    cascaded.extend(found);
                }
            }
            iface.methods = methods;
            iface.left_out.sort_by_key(|l| l.ordinal);
        }
    }
    (problems, cascaded)
}

/// A mapped method, left out after all.
fn left_out(m: &Method, reason: String) -> LeftOut {
    LeftOut {
        schema: m.schema.clone(),
        ordinal: m.ordinal,
        capnp_fn: m.capnp_fn.clone(),
        capnp_alias: m.capnp_alias.clone(),
        stub: m.stub,
        reason,
    }
}

/// Where a problem is: file and interface.
#[derive(Clone, Copy)]
struct Here<'a> {
    file: &'a str,
    interface: &'a str,
}

impl Here<'_> {
    fn problem(&self, method: Option<&str>, field: Option<&str>, reason: String) -> Unsupported {
        Unsupported {
            file: self.file.to_string(),
            interface: self.interface.to_string(),
            method: method.map(str::to_string),
            field: field.map(str::to_string),
            reason,
        }
    }
}

/// The reasons of one left-out member, as one line: `field `x`: why; why`
/// (repeated problems once).
pub(crate) fn joined_reasons<'a>(problems: impl IntoIterator<Item = &'a Unsupported>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for u in problems {
        let part = match &u.field {
            Some(f) => format!("field `{f}`: {}", u.reason),
            None => u.reason.clone(),
        };
        let part = part.replace(['\n', '\r'], " ");
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join("; ")
}

/// Reads one top-level interface. Methods that cannot be mapped are left
/// out (and their problems pushed to `problems`); `None` if the interface
/// as a whole cannot be mapped.
fn read_interface(
    ctx: &Ctx<'_>,
    here: Here<'_>,
    file_id: u64,
    n: node::Reader<'_>,
    iface: node::interface::Reader<'_>,
    problems: &mut Vec<Unsupported>,
) -> Option<Interface> {
    let name = here.interface;
    // The interface as a whole cannot be mapped.
    macro_rules! refuse {
        ($reason:expr) => {{
            problems.push(here.problem(None, None, $reason));
            return None;
        }};
    }
    if n.get_is_generic() {
        refuse!("generic interfaces are not supported yet".into());
    }
    let superclasses = match iface.get_superclasses() {
        Ok(s) => s,
        Err(e) => refuse!(schema_err(e).to_string()),
    };
    // Every interface it extends, directly or not, once each.
    let mut base_ids: Vec<u64> = Vec::new();
    let mut pending: Vec<u64> = superclasses.iter().map(|c| c.get_id()).collect();
    while let Some(id) = pending.pop() {
        if base_ids.contains(&id) || id == n.get_id() {
            continue;
        }
        base_ids.push(id);
        if let Some(Ok(node::Interface(b))) = ctx.nodes.get(&id).map(|b| b.which()) {
            if let Ok(more) = b.get_superclasses() {
                pending.extend(more.iter().map(|c| c.get_id()));
            }
        }
    }
    let mut bases = Vec::new();
    for id in base_ids {
        match read_base(ctx, file_id, id) {
            Ok(base) => bases.push(base),
            Err(why) => refuse!(why),
        }
    }
    let method_list = match iface.get_methods() {
        Ok(list) => list,
        Err(e) => refuse!(schema_err(e).to_string()),
    };
    let docs = ctx.docs.get(&n.get_id());
    let mut mapped = Vec::new();
    let mut left = Vec::new();
    for (ordinal, m) in method_list.iter().enumerate() {
        let mname = match text(m.get_name()) {
            Ok(name) => name,
            Err(e) => refuse!(e.to_string()),
        };
        let mdoc = docs.and_then(|(_, members)| members.get(ordinal).cloned().flatten());
        match read_method(ctx, file_id, m, &mname, mdoc) {
            Ok(method) => mapped.push(Method {
                ordinal,
                stub: stub_of(ctx, m),
                ..method
            }),
            Err(found) => {
                let found: Vec<Unsupported> = found
                    .into_iter()
                    .map(|(field, reason)| here.problem(Some(&mname), field.as_deref(), reason))
                    .collect();
                left.push(LeftOut {
                    schema: mname.clone(),
                    ordinal,
                    capnp_fn: names::capnp_module_name(&mname),
                    capnp_alias: names::capitalize_first(&mname),
                    stub: stub_of(ctx, m),
                    reason: joined_reasons(&found),
                });
                problems.extend(found);
            }
        }
    }
    // The generated names of one interface must not collide. Declared
    // names come first: a method whose Rust name is reserved by the client
    // or taken by an earlier method (or a base's) is left out. A derived
    // name (`{name}_async`, `build_{name}`) that a declared one or an
    // earlier derived one takes gets a trailing `_` until it is free, so
    // `callFn` and `callFnAsync` both keep their names: `call_fn`,
    // `call_fn_async_` (the async variant of `callFn`), `call_fn_async`.
    const RESERVED: [&str; 5] = ["new", "remote", "connection", "connect", "from_remote"];
    let mut seen: HashMap<String, String> = HashMap::new();
    for b in &bases {
        for m in &b.iface.methods {
            let at = format!("{}.{}", b.iface.schema, m.schema);
            for g in [&m.ident, &m.async_fn, &m.build_fn] {
                seen.insert(g.clone(), at.clone());
            }
        }
    }
    let mut methods = Vec::new();
    for m in mapped {
        let mut found = Vec::new();
        if RESERVED.contains(&m.ident.as_str()) {
            found.push(here.problem(
                Some(&m.schema),
                None,
                format!(
                    "the generated Rust name `{}` is reserved by the generated client",
                    m.ident
                ),
            ));
        }
        if let Some(other) = seen.get(&m.ident) {
            found.push(here.problem(
                Some(&m.schema),
                None,
                format!(
                    "the generated Rust name `{}` collides with one generated for method `{other}`",
                    m.ident
                ),
            ));
        }
        if found.is_empty() {
            seen.insert(m.ident.clone(), m.schema.clone());
            methods.push(m);
        } else {
            left.push(left_out(&m, joined_reasons(&found)));
            problems.extend(found);
        }
    }
    for m in &mut methods {
        for g in [&mut m.async_fn, &mut m.build_fn] {
            while seen.contains_key(g.as_str()) || RESERVED.contains(&g.as_str()) {
                g.push('_');
            }
            seen.insert(g.clone(), m.schema.clone());
        }
    }
    left.sort_by_key(|l| l.ordinal);
    let (client, server) = names_of(&file_interfaces(ctx, file_id), &names::type_name(name));
    Some(Interface {
        id: n.get_id(),
        schema: name.to_string(),
        rust: names::type_name(name),
        client,
        server,
        bases,
        capnp_mod: names::capnp_module_name(name),
        methods,
        left_out: left,
        doc: docs.and_then(|(d, _)| d.clone()),
    })
}

/// An interface that one being read extends: its methods mapped as seen
/// from the derived interface's file (the derived client and server carry
/// them). Its methods that cannot be mapped are reported where it is
/// generated itself, and answered with capnp's "not implemented".
fn read_base(ctx: &Ctx<'_>, file_id: u64, id: u64) -> Result<Base, String> {
    let n = *ctx
        .nodes
        .get(&id)
        .ok_or_else(|| format!("interface node {id:#x} missing"))?;
    let name = node_name(ctx, id);
    let Ok(node::Interface(iface)) = n.which() else {
        return Err(format!("{name} is not an interface"));
    };
    if !is_file(ctx, n.get_scope_id()) || n.get_is_generic() {
        return Err(format!(
            "it extends {name}, which is nested or generic (not supported yet)"
        ));
    }
    let r = iface_ref(ctx, file_id, n);
    let schema = short_name(&n);
    let capnp_mod = names::capnp_module_name(&schema);
    let module = if n.get_scope_id() == file_id {
        CAPNP_MODULE_MARKER.to_string()
    } else {
        ctx.capnp_module(n.get_scope_id())
    };
    let mut methods = Vec::new();
    for (ordinal, m) in iface
        .get_methods()
        .map_err(|e| e.to_string())?
        .iter()
        .enumerate()
    {
        let mname = text(m.get_name()).map_err(|e| e.to_string())?;
        if let Ok(method) = read_method(ctx, file_id, m, &mname, None) {
            if method.kind == MethodKind::Plain {
                methods.push(Method {
                    ordinal,
                    stub: stub_of(ctx, m),
                    ..method
                });
            }
        }
    }
    Ok(Base {
        capnp: format!("{module}::{capnp_mod}"),
        iface: Interface {
            id,
            rust: r.rust,
            client: r.client,
            server: r.server,
            bases: Vec::new(),
            capnp_mod,
            schema,
            methods,
            left_out: Vec::new(),
            doc: None,
        },
    })
}

/// How the server adapter can answer method `m` if it is left out: capnpc's
/// `Server` method for it takes type parameters when its params or results
/// are a generic struct of the schema's (not the usual `$Params`).
fn stub_of(ctx: &Ctx<'_>, m: capnp::schema_capnp::method::Reader<'_>) -> Stub {
    let generic = |id: u64| ctx.nodes.get(&id).is_some_and(|n| n.get_is_generic());
    let implicit = m.get_implicit_parameters().is_ok_and(|p| !p.is_empty());
    if implicit || generic(m.get_param_struct_type()) || generic(m.get_result_struct_type()) {
        Stub::Default
    } else if m.get_result_struct_type() == STREAM_RESULT_ID {
        Stub::Streaming
    } else {
        Stub::Call
    }
}

type Problems = Vec<(Option<String>, String)>;

fn read_method(
    ctx: &Ctx<'_>,
    file_id: u64,
    m: capnp::schema_capnp::method::Reader<'_>,
    name: &str,
    doc: Option<String>,
) -> Result<Method, Problems> {
    let mut problems: Problems = Vec::new();
    let fail = |e: Error| vec![(None, e.to_string())];
    // `$Proxy.name` gives the native (C++) name; the Rust one is its snake case.
    let rust_name = annotation_text(m.get_annotations(), PROXY_NAME_ID)
        .map_or_else(|| names::rust_snake(name), |n| names::rust_snake(&n));
    if m.get_result_struct_type() == STREAM_RESULT_ID {
        return Err(vec![(None, "streaming methods are not supported".into())]);
    }
    let params = struct_fields(ctx, m.get_param_struct_type()).map_err(fail)?;
    let results = struct_fields(ctx, m.get_result_struct_type()).map_err(fail)?;

    // The thread-map exchange: construct(threadMap :ThreadMap) -> (threadMap :ThreadMap).
    let is_thread_map = |fields: &[field::Reader<'_>]| {
        fields.len() == 1
            && matches!(field_type_interface(fields[0]), Some(id) if id == THREAD_MAP_ID)
    };
    if name == "construct" && is_thread_map(&params) && is_thread_map(&results) {
        return Ok(Method {
            schema: name.to_string(),
            ordinal: 0,
            stub: Stub::Call,
            ident: "construct".into(),
            async_fn: "construct_async".into(),
            build_fn: "build_construct".into(),
            capnp_fn: names::capnp_module_name(name),
            capnp_request: names::snake(name),
            capnp_alias: names::capitalize_first(name),
            context: None,
            thread_map: None,
            thread_map_result: None,
            params: Vec::new(),
            results: Vec::new(),
            doc,
            kind: MethodKind::Construct,
            exception: None,
            errors: Vec::new(),
        });
    }

    let mut context = None;
    let mut thread_map = None;
    let mut mapped_params = Vec::new();
    for f in &params {
        let fname = text(f.get_name()).map_err(fail)?;
        if is_implicit(ctx, *f) || is_void(*f) {
            continue;
        }
        if field_type_struct(*f) == Some(CONTEXT_ID) {
            if context.is_some() {
                problems.push((Some(fname), "a second `Proxy.Context` parameter".into()));
            } else {
                context = Some(names::snake(&fname));
            }
            continue;
        }
        if field_type_interface(*f) == Some(THREAD_MAP_ID) {
            if thread_map.is_some() {
                problems.push((Some(fname), "a second `Proxy.ThreadMap` parameter".into()));
            } else {
                thread_map = Some(names::snake(&fname));
            }
            continue;
        }
        match map_field(ctx, file_id, *f, &fname, &Env::new(), 0) {
            Ok(field) => mapped_params.push(Field {
                ident: names::param_ident(field.ident.clone()),
                ..field
            }),
            Err(reason) => problems.push((Some(fname), reason)),
        }
    }
    let mut mapped_results = Vec::new();
    let mut exceptions = Vec::new();
    let mut thread_map_result = None;
    for f in &results {
        let fname = text(f.get_name()).map_err(fail)?;
        if field_type_interface(*f) == Some(THREAD_MAP_ID) {
            if thread_map_result.is_some() {
                problems.push((Some(fname), "a second `Proxy.ThreadMap` result".into()));
            } else {
                thread_map_result = Some(names::snake(&fname));
            }
            continue;
        }
        if has_annotation(*f, PROXY_EXCEPTION_ID) {
            // The server's error travels in this field instead of failing the call.
            match map_field(ctx, file_id, *f, &fname, &Env::new(), 0) {
                Ok(field) if !field.ty.plain() => problems.push((
                    Some(fname),
                    "an interface in a `$Proxy.exception` result is not supported".into(),
                )),
                Ok(field) if !field.ty.is_pointer() => problems.push((
                    Some(fname),
                    "`$Proxy.exception` is only supported on pointer types (Text, Data, lists, structs): a set pointer says the exception was thrown".into(),
                )),
                Ok(field) => exceptions.push(field),
                Err(reason) => problems.push((Some(fname), reason)),
            }
            continue;
        }
        if is_implicit(ctx, *f) || is_void(*f) {
            continue;
        }
        if field_type_struct(*f) == Some(CONTEXT_ID) {
            problems.push((Some(fname), "`Proxy.Context` as a result".into()));
            continue;
        }
        match map_field(ctx, file_id, *f, &fname, &Env::new(), 0) {
            Ok(field) => mapped_results.push(field),
            Err(reason) => problems.push((Some(fname), reason)),
        }
    }
    // A result with the name and type of a parameter makes it in/out.
    mapped_results.retain(|r| {
        let param = mapped_params
            .iter_mut()
            .find(|p| p.schema == r.schema && p.ty == r.ty && p.ty.plain());
        match param {
            Some(p) => {
                p.inout = true;
                false
            }
            None => true,
        }
    });
    let has_inout = mapped_params.iter().any(|p| p.inout);
    // One Text exception is the trait's `String` error; others get an enum.
    let (exception, errors) = match exceptions.as_slice() {
        [one] if one.ty == Ty::Text => (exceptions.pop(), Vec::new()),
        _ => (None, exceptions),
    };
    // `foo` + `hasFoo :Bool` ↔ Option<T>.
    let mapped_params = apply_presence(mapped_params);
    let mapped_results: Vec<Field> = apply_presence(mapped_results);
    // Results gathered in a struct (or beside in/out values) hold objects
    // as `Arc<dyn Trait>`, one type for both sides.
    let mapped_results = if mapped_results.len() > 1 || has_inout {
        mapped_results
            .into_iter()
            .map(|r| Field {
                ty: r.ty.in_struct(),
                ..r
            })
            .collect()
    } else {
        mapped_results
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Method {
        schema: name.to_string(),
        ordinal: 0,
        stub: Stub::Call,
        ident: names::ident(&rust_name),
        async_fn: format!("{rust_name}_async"),
        build_fn: format!("build_{rust_name}"),
        capnp_fn: names::capnp_module_name(name),
        capnp_request: names::snake(name),
        capnp_alias: names::capitalize_first(name),
        context,
        thread_map,
        thread_map_result,
        params: mapped_params,
        results: mapped_results,
        doc,
        kind: MethodKind::Plain,
        exception,
        errors,
    })
}

/// The value of a field's `$Proxy.name` annotation (its native name).
fn proxy_name(f: field::Reader<'_>) -> Option<String> {
    annotation_text(f.get_annotations(), PROXY_NAME_ID)
}

/// The Text value of annotation `id`, if it is a usable identifier.
fn annotation_text(
    annotations: capnp::Result<
        capnp::struct_list::Reader<'_, capnp::schema_capnp::annotation::Owned>,
    >,
    id: u64,
) -> Option<String> {
    for a in annotations.ok()? {
        if a.get_id() == id {
            if let Ok(capnp::schema_capnp::value::Text(t)) = a.get_value().ok()?.which() {
                let name = t.ok()?.to_string().ok()?;
                let ok = !name.is_empty()
                    && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                return ok.then_some(name);
            }
        }
    }
    None
}

fn has_annotation(f: field::Reader<'_>, id: u64) -> bool {
    f.get_annotations()
        .map(|list| list.iter().any(|a| a.get_id() == id))
        .unwrap_or(false)
}

/// A field the generated API leaves out and fills implicitly:
/// `$Proxy.skip`, or `$Proxy.count(0)` on the field or on its type (it
/// stands for no native argument). Clients leave it at its default (null
/// for pointers) and servers ignore it. A non-zero count maps to one Rust
/// value, since Rust passes a slice or a struct where C++ passes several
/// arguments. `Proxy.Context` and `Proxy.ThreadMap` are `$count(0)` too but
/// are handled before this.
fn is_implicit(ctx: &Ctx<'_>, f: field::Reader<'_>) -> bool {
    let zero_count = |annotations: capnp::Result<
        capnp::struct_list::Reader<'_, capnp::schema_capnp::annotation::Owned>,
    >| {
        annotations.is_ok_and(|list| {
            list.iter().any(|a| match a.get_id() {
                PROXY_SKIP_ID => true,
                PROXY_COUNT_ID => matches!(
                    a.get_value().and_then(|v| Ok(v.which()?)),
                    Ok(capnp::schema_capnp::value::Int32(0))
                ),
                _ => false,
            })
        })
    };
    if zero_count(f.get_annotations()) {
        return true;
    }
    let type_id = field_type_struct(f).or_else(|| field_type_interface(f));
    match type_id {
        Some(CONTEXT_ID | THREAD_MAP_ID) | None => false,
        Some(id) => ctx
            .nodes
            .get(&id)
            .is_some_and(|n| zero_count(n.get_annotations())),
    }
}

/// A struct's fields in declaration order.
fn struct_fields<'a>(ctx: &Ctx<'a>, id: u64) -> Result<Vec<field::Reader<'a>>, Error> {
    let n = ctx
        .nodes
        .get(&id)
        .ok_or_else(|| schema_err(format!("struct node {id:#x} missing")))?;
    let node::Struct(s) = n.which().map_err(schema_err)? else {
        return Err(schema_err(format!("node {id:#x} is not a struct")));
    };
    let mut fields: Vec<_> = s.get_fields().map_err(schema_err)?.iter().collect();
    fields.sort_by_key(|f| f.get_code_order());
    Ok(fields)
}

fn slot_type(f: field::Reader<'_>) -> Option<capnp::schema_capnp::type_::Reader<'_>> {
    match f.which().ok()? {
        field::Slot(slot) => slot.get_type().ok(),
        field::Group(_) => None,
    }
}

fn field_type_interface(f: field::Reader<'_>) -> Option<u64> {
    match slot_type(f)?.which().ok()? {
        type_::Interface(i) => Some(i.get_type_id()),
        _ => None,
    }
}

fn field_type_struct(f: field::Reader<'_>) -> Option<u64> {
    match slot_type(f)?.which().ok()? {
        type_::Struct(s) => Some(s.get_type_id()),
        _ => None,
    }
}

/// Type arguments in scope: (generic struct id, parameter index) → type.
type Env = HashMap<(u64, u16), Ty>;

/// How deep generic structs may nest in one another (`Pair(K, List(Pair(..)))`).
const MAX_GENERIC_DEPTH: usize = 16;

/// A `Void` field: nothing to pass, left out of the Rust API.
fn is_void(f: field::Reader<'_>) -> bool {
    slot_type(f).is_some_and(|t| matches!(t.which(), Ok(type_::Void(()))))
}

/// Declared as a bare type parameter (`key @0 :K`).
fn is_param(f: field::Reader<'_>) -> bool {
    slot_type(f).is_some_and(|t| match t.which() {
        Ok(type_::AnyPointer(ap)) => matches!(ap.which(), Ok(type_::any_pointer::Parameter(_))),
        _ => false,
    })
}

fn map_field(
    ctx: &Ctx<'_>,
    file_id: u64,
    f: field::Reader<'_>,
    name: &str,
    env: &Env,
    depth: usize,
) -> Result<Field, String> {
    if f.get_discriminant_value() != field::NO_DISCRIMINANT {
        return Err("a union among a method's parameters or results is not supported".into());
    }
    if slot_type(f).is_none() {
        return Err("a group among a method's parameters or results is not supported".into());
    }
    map_field_unchecked(ctx, file_id, f, name, env, depth)
}

/// [`map_field`] for a struct member, which may be in a union.
fn map_field_unchecked(
    ctx: &Ctx<'_>,
    file_id: u64,
    f: field::Reader<'_>,
    name: &str,
    env: &Env,
    depth: usize,
) -> Result<Field, String> {
    let Some(t) = slot_type(f) else {
        return Err("a group here is not supported".into());
    };
    let ty = map_type(ctx, file_id, t, env, depth)?;
    let rust = proxy_name(f).unwrap_or_else(|| name.to_string());
    Ok(Field {
        inout: false,
        param: is_param(f),
        presence: Presence::Always,
        schema: name.to_string(),
        ident: names::ident(&names::rust_snake(&rust)),
        accessor: names::snake(name),
        ty,
    })
}

/// `foo` beside `hasFoo :Bool` becomes one optional `foo`
/// (libmultiprocess's mapping of `std::optional`).
fn apply_presence(mut fields: Vec<Field>) -> Vec<Field> {
    let flags: Vec<(String, String)> = fields
        .iter()
        .filter(|f| f.ty == Ty::Prim("bool") && f.presence == Presence::Always)
        .filter_map(|f| {
            let rest = f.schema.strip_prefix("has")?;
            let target = {
                let mut c = rest.chars();
                let first = c.next()?;
                if !first.is_ascii_uppercase() {
                    return None;
                }
                first.to_ascii_lowercase().to_string() + c.as_str()
            };
            Some((target, f.schema.clone()))
        })
        .collect();
    for (target, flag) in flags {
        let Some(accessor) = fields
            .iter()
            .find(|f| f.schema == flag)
            .map(|f| f.accessor.clone())
        else {
            continue;
        };
        let Some(f) = fields
            .iter_mut()
            .find(|f| f.schema == target && f.presence == Presence::Always && !f.inout)
        else {
            continue;
        };
        f.presence = Presence::Flag(accessor);
        fields.retain(|f| f.schema != flag);
    }
    fields
}

fn is_file(ctx: &Ctx<'_>, id: u64) -> bool {
    matches!(
        ctx.nodes.get(&id).map(|s| s.which()),
        Some(Ok(node::File(())))
    )
}

/// The path of a top-level declaration's generated Rust name, as seen from
/// the file `file_id`.
fn rust_path(ctx: &Ctx<'_>, file_id: u64, n: node::Reader<'_>) -> String {
    let name = names::type_name(&short_name(&n));
    let scope = n.get_scope_id();
    if scope == file_id {
        name
    } else {
        format!("super::{}_mp::{name}", crate::stem(&node_name(ctx, scope)))
    }
}

fn map_type(
    ctx: &Ctx<'_>,
    file_id: u64,
    t: capnp::schema_capnp::type_::Reader<'_>,
    env: &Env,
    depth: usize,
) -> Result<Ty, String> {
    let which = t.which().map_err(|e| e.to_string())?;
    let prim = |name| Ok(Ty::Prim(name));
    match which {
        type_::Bool(()) => prim("bool"),
        type_::Int8(()) => prim("i8"),
        type_::Int16(()) => prim("i16"),
        type_::Int32(()) => prim("i32"),
        type_::Int64(()) => prim("i64"),
        type_::Uint8(()) => prim("u8"),
        type_::Uint16(()) => prim("u16"),
        type_::Uint32(()) => prim("u32"),
        type_::Uint64(()) => prim("u64"),
        type_::Float32(()) => prim("f32"),
        type_::Float64(()) => prim("f64"),
        type_::Text(()) => Ok(Ty::Text),
        type_::Data(()) => Ok(Ty::Data),
        type_::Void(()) => Err(
            "`Void` is only supported as a whole field (which is left out), not inside a list"
                .into(),
        ),
        type_::List(l) => {
            let elem = l.get_element_type().map_err(|e| e.to_string())?;
            Ok(Ty::List(Box::new(
                match map_type(ctx, file_id, elem, env, depth)? {
                    // A list gives the indirection a recursive field needs.
                    Ty::Boxed(path) => Ty::Struct {
                        path,
                        plain: true,
                        group: false,
                    },
                    elem => elem,
                },
            )))
        }
        type_::Enum(e) => {
            let id = e.get_type_id();
            let n = ctx
                .nodes
                .get(&id)
                .ok_or_else(|| format!("enum node {id:#x} missing"))?;
            let scope = n.get_scope_id();
            if !is_file(ctx, scope) {
                return Err(format!(
                    "enum {} is nested in another declaration (only top-level enums are supported yet)",
                    node_name(ctx, id)
                ));
            }
            let Ok(node::Enum(en)) = n.which() else {
                return Err(format!("node {id:#x} is not an enum"));
            };
            let mut variants = Vec::new();
            for x in en.get_enumerants().map_err(|e| e.to_string())? {
                let name = x
                    .get_name()
                    .ok()
                    .and_then(|t| t.to_string().ok())
                    .unwrap_or_default();
                variants.push(names::capitalize_first(&name));
            }
            if variants.is_empty() {
                return Err(format!("enum {} has no enumerants", node_name(ctx, id)));
            }
            // The requested file's own capnp module may be configured; the
            // emitter replaces the marker.
            let module = if scope == file_id {
                CAPNP_MODULE_MARKER.to_string()
            } else {
                ctx.capnp_module(scope)
            };
            let path = format!("{module}::{}", short_name(n));
            Ok(Ty::Enum { path, variants })
        }
        type_::Struct(s) => {
            let id = s.get_type_id();
            if id == CONTEXT_ID {
                return Err("`Proxy.Context` is only supported as a parameter".into());
            }
            let n = *ctx
                .nodes
                .get(&id)
                .ok_or_else(|| format!("struct node {id:#x} missing"))?;
            if !is_file(ctx, n.get_scope_id()) {
                return Err(format!(
                    "struct {} is not declared at the top level of a file (only top-level structs are supported yet)",
                    node_name(ctx, id)
                ));
            }
            let path = rust_path(ctx, file_id, n);
            if n.get_is_generic() {
                if depth >= MAX_GENERIC_DEPTH {
                    return Err(format!(
                        "generic structs nested more than {MAX_GENERIC_DEPTH} deep"
                    ));
                }
                if let Some(Err(why)) = map_generic_def(ctx, id) {
                    return Err(format!("struct {}: {why}", node_name(ctx, id)));
                }
                let used = match map_generic_def(ctx, id) {
                    Some(Ok(def)) => def.used,
                    _ => Vec::new(),
                };
                let brand = s.get_brand().map_err(|e| e.to_string())?;
                let args = brand_args(ctx, file_id, n, brand, env, depth)?;
                let (fields, union) = generic_fields(ctx, file_id, n, &args, depth + 1)
                    .map_err(|why| format!("struct {}: {why}", node_name(ctx, id)))?;
                let scope = n.get_scope_id();
                let module = if scope == file_id {
                    CAPNP_MODULE_MARKER.to_string()
                } else {
                    ctx.capnp_module(scope)
                };
                let capnp = format!("{module}::{}", names::capnp_module_name(&short_name(&n)));
                // Only the parameters its fields use are the Rust struct's.
                let args = args
                    .into_iter()
                    .zip(used)
                    .filter(|(_, used)| *used)
                    .map(|(arg, _)| {
                        arg.ok_or_else(|| {
                            format!("a type parameter of {} is not bound", node_name(ctx, id))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Ty::Generic(Box::new(Generic {
                    rust: path,
                    capnp,
                    args,
                    fields,
                    union,
                })));
            }
            if matches!(ctx.structs.borrow().get(&id), Some(None)) {
                // Being mapped: a field of the struct itself (or of one inside it).
                return Ok(Ty::Boxed(path));
            }
            match map_struct(ctx, id) {
                Some(Ok(def)) => Ok(Ty::Struct {
                    path,
                    plain: def.plain,
                    group: false,
                }),
                Some(Err(reason)) => Err(format!("struct {}: {reason}", node_name(ctx, id))),
                None => Err(format!("struct {} cannot be mapped", node_name(ctx, id))),
            }
        }
        type_::AnyPointer(ap) => match ap.which().map_err(|e| e.to_string())? {
            type_::any_pointer::Parameter(p) => env
                .get(&(p.get_scope_id(), p.get_parameter_index()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "type parameter {} of {} is not bound",
                        p.get_parameter_index(),
                        node_name(ctx, p.get_scope_id())
                    )
                }),
            _ => Err("AnyPointer is not supported".into()),
        },
        type_::Interface(i) => {
            let id = i.get_type_id();
            if id == THREAD_MAP_ID {
                return Err(
                    "`Proxy.ThreadMap` is only supported as a method's parameter or result (the thread-map exchange)"
                        .into(),
                );
            }
            let n = *ctx
                .nodes
                .get(&id)
                .ok_or_else(|| format!("interface node {id:#x} missing"))?;
            if !is_file(ctx, n.get_scope_id()) {
                return Err(format!(
                    "interface {} is nested in another declaration (only top-level interfaces are supported yet)",
                    node_name(ctx, id)
                ));
            }
            if n.get_is_generic() {
                return Err(format!(
                    "generic interface {} is not supported yet",
                    node_name(ctx, id)
                ));
            }
            Ok(Ty::Interface(iface_ref(ctx, file_id, n)))
        }
    }
}

/// The generated names of interface `n`: trait `Foo`, client `FooClient`,
/// server `FooServer` — unless `FooClient` or `FooServer` is itself an
/// interface of the same file (Bitcoin Core's `Chain` and `ChainClient`):
/// then `Foo`'s are `FooProxyClient` and `FooProxyServer`, after
/// libmultiprocess's `ProxyClient<Foo>`/`ProxyServer<Foo>`.
pub(crate) fn names_of(ctx_names: &[String], name: &str) -> (String, String) {
    let taken = |suffix: &str| ctx_names.iter().any(|n| *n == format!("{name}{suffix}"));
    if taken("Client") || taken("Server") {
        (format!("{name}ProxyClient"), format!("{name}ProxyServer"))
    } else {
        (format!("{name}Client"), format!("{name}Server"))
    }
}

/// The names of the interfaces declared at the top level of file `file`.
fn file_interfaces(ctx: &Ctx<'_>, file: u64) -> Vec<String> {
    let Some(f) = ctx.nodes.get(&file) else {
        return Vec::new();
    };
    f.get_nested_nodes()
        .map(|list| {
            list.iter()
                .filter(|nested| {
                    matches!(
                        ctx.nodes.get(&nested.get_id()).map(|n| n.which()),
                        Some(Ok(node::Interface(_)))
                    )
                })
                .filter_map(|nested| nested.get_name().ok()?.to_string().ok())
                .map(|n| names::type_name(&n))
                .collect()
        })
        .unwrap_or_default()
}

/// A reference to top-level interface `n`, as seen from file `file_id`.
fn iface_ref(ctx: &Ctx<'_>, file_id: u64, n: node::Reader<'_>) -> IfaceRef {
    let rust = rust_path(ctx, file_id, n);
    let name = names::type_name(&short_name(&n));
    let prefix = &rust[..rust.len() - name.len()];
    let (client, server) = names_of(&file_interfaces(ctx, n.get_scope_id()), &name);
    IfaceRef {
        id: n.get_id(),
        client: format!("{prefix}{client}"),
        server: format!("{prefix}{server}"),
        rust,
        schema: short_name(&n),
    }
}

/// The type arguments a brand gives generic struct `n`, `None` for an
/// unbound one (a generic used without arguments, like Bitcoin Core's
/// `ResultVoid`, has them all unbound).
fn brand_args(
    ctx: &Ctx<'_>,
    file_id: u64,
    n: node::Reader<'_>,
    brand: capnp::schema_capnp::brand::Reader<'_>,
    env: &Env,
    depth: usize,
) -> Result<Vec<Option<Ty>>, String> {
    use capnp::schema_capnp::brand;
    let id = n.get_id();
    let count = n.get_parameters().map_err(|e| e.to_string())?.len();
    for scope in brand.get_scopes().map_err(|e| e.to_string())? {
        if scope.get_scope_id() != id {
            continue;
        }
        return match scope.which().map_err(|e| e.to_string())? {
            brand::scope::Bind(list) => list
                .map_err(|e| e.to_string())?
                .iter()
                .map(|b| match b.which().map_err(|e| e.to_string())? {
                    brand::binding::Unbound(()) => Ok(None),
                    brand::binding::Type(t) => Ok(Some(map_type(
                        ctx,
                        file_id,
                        t.map_err(|e| e.to_string())?,
                        env,
                        depth + 1,
                    )?)),
                })
                .collect(),
            brand::scope::Inherit(()) => Ok((0..count)
                .map(|i| env.get(&(id, i as u16)).cloned())
                .collect()),
        };
    }
    Ok(vec![None; count as usize])
}

/// The fields of generic struct `n` with `args` substituted, as seen from
/// the file `file_id` (where they are read and written in place).
fn generic_fields(
    ctx: &Ctx<'_>,
    file_id: u64,
    n: node::Reader<'_>,
    args: &[Option<Ty>],
    depth: usize,
) -> Result<(Vec<Field>, Option<Union>), String> {
    let id = n.get_id();
    let env: Env = (0u16..)
        .zip(args.iter().cloned())
        .filter_map(|(i, t)| Some(((id, i), t?)))
        .collect();
    let Ok(node::Struct(_)) = n.which() else {
        return Err(format!("node {id:#x} is not a struct"));
    };
    let mut fields = Vec::new();
    let mut members = Vec::new();
    for f in struct_fields(ctx, id).map_err(|e| e.to_string())? {
        let fname = f
            .get_name()
            .ok()
            .and_then(|t| t.to_string().ok())
            .unwrap_or_default();
        let problem = |why: String| format!("field `{fname}`: {why}");
        if matches!(f.which(), Ok(field::Group(_))) {
            return Err(problem(
                "groups in generic structs are not supported".into(),
            ));
        }
        if f.get_discriminant_value() != field::NO_DISCRIMINANT {
            members
                .push(union_member(ctx, file_id, f, &fname, &env, depth, false).map_err(problem)?);
            continue;
        }
        if is_implicit(ctx, f) || is_void(f) {
            continue;
        }
        let field = map_field(ctx, file_id, f, &fname, &env, depth).map_err(problem)?;
        fields.push(field);
    }
    let union = if members.is_empty() {
        None
    } else if !fields.is_empty() {
        return Err("a union beside other fields in a generic struct is not supported".into());
    } else {
        Some(Union {
            rust: names::type_name(&short_name(&n)),
            variants: members,
        })
    };
    Ok((apply_presence(fields), union))
}

/// One member of a union: `f` has a discriminant. `in_struct`: interfaces
/// become [`Ty::Object`] (a non-generic struct's member).
fn union_member(
    ctx: &Ctx<'_>,
    file_id: u64,
    f: field::Reader<'_>,
    fname: &str,
    env: &Env,
    depth: usize,
    in_struct: bool,
) -> Result<Variant, String> {
    let rust = names::type_name(&names::rust_snake_to_camel(&names::rust_snake(fname)));
    let capnp = names::capitalize_first(fname);
    let accessor = names::snake(fname);
    if is_void(f) {
        return Ok(Variant {
            rust,
            capnp,
            field: None,
            accessor,
            default: String::new(),
            doc: None,
        });
    }
    if matches!(f.which(), Ok(field::Group(_))) {
        return Err("a group inside a union is not supported".into());
    }
    let mut field = map_field_unchecked(ctx, file_id, f, fname, env, depth)?;
    if in_struct {
        field.ty = field.ty.in_struct();
    }
    let default = default_value(f, &field.ty)?;
    Ok(Variant {
        rust,
        capnp,
        field: Some(field),
        accessor,
        default,
        doc: None,
    })
}

/// Maps a top-level generic struct's definition: its fields with the type
/// parameters as [`Ty::Param`].
fn map_generic_def(ctx: &Ctx<'_>, id: u64) -> Option<Result<GenericDef, String>> {
    let n = *ctx.nodes.get(&id)?;
    let Ok(node::Struct(_)) = n.which() else {
        return None;
    };
    if !n.get_is_generic() || !is_file(ctx, n.get_scope_id()) {
        return None;
    }
    let result = (|| {
        let params: Vec<String> = n
            .get_parameters()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|p| {
                p.get_name()
                    .ok()
                    .and_then(|t| t.to_string().ok())
                    .map(|name| names::type_name(&name))
                    .unwrap_or_default()
            })
            .collect();
        let args: Vec<Option<Ty>> = params.iter().cloned().map(Ty::Param).map(Some).collect();
        let (fields, union) = generic_fields(ctx, n.get_scope_id(), n, &args, 0)?;
        // A parameter no field uses is left out of the Rust struct.
        let used: Vec<bool> = params
            .iter()
            .map(|p| {
                fields.iter().any(|f| f.ty.mentions(p))
                    || union
                        .iter()
                        .flat_map(|u| &u.variants)
                        .any(|v| v.field.as_ref().is_some_and(|f| f.ty.mentions(p)))
            })
            .collect();
        let params = params
            .into_iter()
            .zip(&used)
            .filter(|(_, u)| **u)
            .map(|(p, _)| p)
            .collect();
        let docs = ctx.docs.get(&id);
        let name = short_name(&n);
        Ok(GenericDef {
            rust: names::type_name(&name),
            schema: name,
            params,
            used,
            fields,
            union,
            doc: docs.and_then(|(d, _)| d.clone()),
        })
    })();
    Some(result)
}

fn short_name(n: &node::Reader<'_>) -> String {
    let display = n
        .get_display_name()
        .ok()
        .and_then(|t| t.to_string().ok())
        .unwrap_or_default();
    let prefix = n.get_display_name_prefix_length() as usize;
    display.get(prefix..).unwrap_or(&display).to_string()
}

fn node_name(ctx: &Ctx<'_>, id: u64) -> String {
    ctx.nodes
        .get(&id)
        .and_then(|n| n.get_display_name().ok())
        .and_then(|t| t.to_string().ok())
        .unwrap_or_else(|| format!("{id:#x}"))
}

/// Maps a top-level, non-generic struct (cached). `None` if `id` is not
/// one; `Some(Err(why))` if it cannot be mapped.
fn map_struct(ctx: &Ctx<'_>, id: u64) -> Option<Result<StructDef, String>> {
    if let Some(Some(done)) = ctx.structs.borrow().get(&id) {
        return Some(done.clone());
    }
    let n = *ctx.nodes.get(&id)?;
    let Ok(node::Struct(st)) = n.which() else {
        return None;
    };
    if n.get_is_generic() || !is_file(ctx, n.get_scope_id()) {
        return None;
    }
    ctx.structs.borrow_mut().insert(id, None);
    let result = map_struct_fields(ctx, id, n, st);
    ctx.structs.borrow_mut().insert(id, Some(result.clone()));
    Some(result)
}

fn map_struct_fields(
    ctx: &Ctx<'_>,
    id: u64,
    n: node::Reader<'_>,
    st: node::struct_::Reader<'_>,
) -> Result<StructDef, String> {
    let name = short_name(&n);
    map_body(
        ctx,
        id,
        n.get_scope_id(),
        st,
        &name,
        names::type_name(&name),
        names::capnp_module_name(&name),
    )
}

/// The fields, union and groups of struct (or group) `id`, declared in file
/// `file_id`: `rust` is its Rust name, `capnp_mod` capnpc's module path
/// below the file's.
fn map_body(
    ctx: &Ctx<'_>,
    id: u64,
    file_id: u64,
    st: node::struct_::Reader<'_>,
    schema: &str,
    rust: String,
    capnp_mod: String,
) -> Result<StructDef, String> {
    let docs = ctx.docs.get(&id);
    let mut fields = Vec::new();
    let mut extras = Vec::new();
    let mut members = Vec::new();
    let mut groups = Vec::new();
    let list = st.get_fields().map_err(|e| e.to_string())?;
    let mut ordered: Vec<(usize, field::Reader<'_>)> = list.iter().enumerate().collect();
    ordered.sort_by_key(|(_, f)| f.get_code_order());
    for (index, f) in ordered {
        let fname = f
            .get_name()
            .ok()
            .and_then(|t| t.to_string().ok())
            .unwrap_or_default();
        let problem = |reason: String| format!("field `{fname}`: {reason}");
        let doc = docs.and_then(|(_, members)| members.get(index).cloned().flatten());
        if f.get_discriminant_value() != field::NO_DISCRIMINANT {
            let mut member =
                union_member(ctx, file_id, f, &fname, &Env::new(), 0, true).map_err(problem)?;
            member.doc = doc;
            members.push((f.get_discriminant_value(), member));
            continue;
        }
        if let Ok(field::Group(g)) = f.which() {
            // A group (a named union too): a struct of its own beside this one.
            let gid = g.get_type_id();
            let Some(Ok(node::Struct(gst))) = ctx.nodes.get(&gid).map(|gn| gn.which()) else {
                return Err(problem(format!("group node {gid:#x} missing")));
            };
            let group_rust = format!("{rust}{}", names::type_name(&fname));
            let def = map_body(
                ctx,
                gid,
                file_id,
                gst,
                &format!("{schema}.{fname}"),
                group_rust.clone(),
                format!("{capnp_mod}::{}", names::capnp_module_name(&fname)),
            )
            .map_err(problem)?;
            let field = Field {
                schema: fname.clone(),
                ident: names::ident(&names::rust_snake(&fname)),
                accessor: names::snake(&fname),
                ty: Ty::Struct {
                    path: group_rust,
                    plain: def.plain,
                    group: true,
                },
                param: false,
                presence: Presence::Always,
                inout: false,
            };
            groups.push(def);
            extras.push((fname.clone(), "Default::default()".to_string(), doc));
            fields.push(field);
            continue;
        }
        if is_implicit(ctx, f) || is_void(f) {
            continue;
        }
        let mut field = map_field(ctx, file_id, f, &fname, &Env::new(), 0).map_err(problem)?;
        field.ty = field.ty.in_struct();
        let default = default_value(f, &field.ty).map_err(problem)?;
        extras.push((field.schema.clone(), default, doc));
        fields.push(field);
    }
    let fields: Vec<StructField> = apply_presence(fields)
        .into_iter()
        .map(|field| {
            let (_, default, doc) = extras
                .iter()
                .find(|(schema, _, _)| *schema == field.schema)
                .cloned()
                .unwrap_or_default();
            let default = if field.presence == Presence::Always {
                default
            } else {
                "None".into()
            };
            StructField {
                field,
                default,
                doc,
            }
        })
        .collect();
    members.sort_by_key(|(discriminant, _)| *discriminant);
    let union = (!members.is_empty()).then(|| Union {
        rust: if fields.is_empty() {
            rust.clone()
        } else {
            format!("{rust}Which")
        },
        variants: members.into_iter().map(|(_, m)| m).collect(),
    });
    let plain = fields.iter().all(|f| f.field.ty.plain())
        && union
            .iter()
            .flat_map(|u| &u.variants)
            .all(|v| v.field.as_ref().is_none_or(|f| f.ty.plain()));
    Ok(StructDef {
        plain,
        schema: schema.to_string(),
        rust,
        capnp_mod,
        fields,
        union,
        groups,
        doc: docs.and_then(|(d, _)| d.clone()),
    })
}

/// The Rust expression of a struct field's schema default.
fn default_value(f: field::Reader<'_>, ty: &Ty) -> Result<String, String> {
    use capnp::schema_capnp::value;
    let field::Slot(slot) = f.which().map_err(|e| e.to_string())? else {
        return Err("groups are not supported yet".into());
    };
    if !slot.get_had_explicit_default() {
        return Ok(match ty {
            Ty::Boxed(_) => "None".into(),
            // capnpc's enums have no Default; the schema's is the first.
            Ty::Enum { path, variants } => format!("{path}::{}", variants[0]),
            _ => "Default::default()".into(),
        });
    }
    let v = slot.get_default_value().map_err(|e| e.to_string())?;
    Ok(match v.which().map_err(|e| e.to_string())? {
        value::Bool(b) => b.to_string(),
        value::Int8(x) => format!("{x}i8"),
        value::Int16(x) => format!("{x}i16"),
        value::Int32(x) => format!("{x}i32"),
        value::Int64(x) => format!("{x}i64"),
        value::Uint8(x) => format!("{x}u8"),
        value::Uint16(x) => format!("{x}u16"),
        value::Uint32(x) => format!("{x}u32"),
        value::Uint64(x) => format!("{x}u64"),
        value::Float32(x) => format!("f32::from_bits({:#x})", x.to_bits()),
        value::Float64(x) => format!("f64::from_bits({:#x})", x.to_bits()),
        value::Text(t) => {
            let t = t
                .map_err(|e| e.to_string())?
                .to_string()
                .map_err(|e| e.to_string())?;
            format!("String::from({})", names::lit(&t))
        }
        value::Data(d) => format!("vec!{:?}", d.map_err(|e| e.to_string())?),
        value::Enum(index) => match ty {
            Ty::Enum { path, variants } => match variants.get(usize::from(index)) {
                Some(v) => format!("{path}::{v}"),
                None => return Err(format!("enum default {index} is out of range")),
            },
            _ => return Err("an enum default on a field that is not an enum".into()),
        },
        _ => {
            return Err(format!(
                "explicit defaults of this type ({}) are not supported yet",
                match ty {
                    Ty::List(_) => "List",
                    Ty::Struct { .. } | Ty::Generic(_) => "struct",
                    _ => "other",
                }
            ))
        }
    })
}
