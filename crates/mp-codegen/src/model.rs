//! Reading a capnp `CodeGeneratorRequest` into the generator's model: the
//! interfaces of each requested file, their methods, and each parameter and
//! result mapped to a Rust type. Everything this step cannot map is reported
//! as an [`Unsupported`] naming the file, interface, method and field — the
//! model never holds a guess.

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
/// Annotations of `proxy.capnp` this step does not implement yet.
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
    /// `List(T)` ↔ `Vec<T>`, for primitive, Text and Data elements.
    List(Box<Ty>),
    /// An interface.
    Interface(IfaceRef),
    /// An enum, as capnpc's Rust enum.
    Enum {
        /// capnpc's enum (`crate::foo_capnp::Color`).
        path: String,
        /// capnpc's names of its enumerants, in ordinal order (`Red`, ...).
        variants: Vec<String>,
    },
    /// A struct, as a generated Rust struct: the path of its Rust name
    /// (`BlockRef`, or `super::common_mp::BlockRef` for another file's).
    Struct(String),
}

/// A reference to an interface defined at the top level of a schema file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IfaceRef {
    /// The path of its generated Rust names' stem: `Callback` for one of
    /// the same file (→ `CallbackClient`, ...), `super::echo_mp::Echo` for
    /// one of `echo.capnp`, whose generated file must be included as the
    /// sibling module `echo_mp`.
    pub rust: String,
}

/// One parameter or result field.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The schema's name (`threadName`), for messages.
    pub schema: String,
    /// The Rust identifier for the value (`thread_name`, keywords escaped).
    pub ident: String,
    /// The stem of capnpc's accessors (`get_{accessor}`, `set_{accessor}`).
    pub accessor: String,
    /// Its type.
    pub ty: Ty,
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
    /// The Rust method name (`add_on_loop`, keywords escaped).
    pub ident: String,
    /// Its snake-case stem without escaping, for derived names
    /// (`type` → `type_async`, `build_type`).
    pub snake: String,
    /// capnpc's name for the `Server` trait method (`add_on_loop`, keywords get `_`).
    pub capnp_fn: String,
    /// capnpc's name for `{capnp_fn}_request` (no keyword escaping there).
    pub capnp_request: String,
    /// capnpc's Params/Results type alias prefix (`AddOnLoop`).
    pub capnp_alias: String,
    /// The accessor stem of the `context :Proxy.Context` parameter, if any.
    pub context: Option<String>,
    /// The parameters the user sees.
    pub params: Vec<Field>,
    /// The results.
    pub results: Vec<Field>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
    /// Plain or the thread-map exchange.
    pub kind: MethodKind,
    /// The results were `result` + `hasResult :Bool`, now the single
    /// `result` mapped to `Option<T>`.
    pub optional: bool,
    /// The single result is an interface the peer may leave null (a C++
    /// `nullptr`, e.g. Bitcoin Core's `BlockTemplate.waitNext` on timeout),
    /// mapped to `Option<T>`; set by [`crate::Builder::nullable_result`].
    pub nullable: bool,
    /// A Text result marked `$Proxy.exception`: carries the server's error
    /// (the call itself succeeds), not part of the results.
    pub exception: Option<Field>,
}

/// One interface.
#[derive(Debug, Clone)]
pub(crate) struct Interface {
    /// The schema's name (`Calculator`).
    pub schema: String,
    /// The stem of the generated names.
    pub rust: String,
    /// capnpc's module name for it (`calculator`).
    pub capnp_mod: String,
    /// Its methods, by ordinal.
    pub methods: Vec<Method>,
    /// Doc comment from the schema.
    pub doc: Option<String>,
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
}

/// A struct mapped to a generated Rust struct.
#[derive(Debug, Clone)]
pub(crate) struct StructDef {
    /// The schema's name.
    pub schema: String,
    /// The Rust type name.
    pub rust: String,
    /// capnpc's module name for it.
    pub capnp_mod: String,
    /// Its fields, in declaration order.
    pub fields: Vec<StructField>,
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

/// Reads every requested file of a serialized `CodeGeneratorRequest`.
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
    let mut unsupported = Vec::new();
    for requested in request.get_requested_files().map_err(schema_err)? {
        let filename = text(requested.get_filename())?;
        let file_node = ctx
            .nodes
            .get(&requested.get_id())
            .copied()
            .ok_or_else(|| schema_err(format!("{filename}: file node missing")))?;
        let mut interfaces = Vec::new();
        let mut structs = Vec::new();
        for nested in file_node.get_nested_nodes().map_err(schema_err)? {
            if let Some(Ok(def)) = map_struct(&ctx, nested.get_id()) {
                structs.push(def);
            }
            let Some(n) = ctx.nodes.get(&nested.get_id()).copied() else {
                continue;
            };
            if let Ok(node::Interface(iface)) = n.which() {
                let name = text(nested.get_name())?;
                match read_interface(&ctx, &filename, requested.get_id(), &name, n, iface) {
                    Ok(i) => interfaces.push(i),
                    Err(mut u) => unsupported.append(&mut u),
                }
            }
        }
        files.push(File {
            filename,
            interfaces,
            structs,
        });
    }
    if unsupported.is_empty() {
        Ok(files)
    } else {
        Err(Error::Unsupported(unsupported))
    }
}

fn read_interface(
    ctx: &Ctx<'_>,
    filename: &str,
    file_id: u64,
    name: &str,
    n: node::Reader<'_>,
    iface: node::interface::Reader<'_>,
) -> Result<Interface, Vec<Unsupported>> {
    let here = |method: Option<&str>, field: Option<&str>, reason: String| Unsupported {
        file: filename.to_string(),
        interface: name.to_string(),
        method: method.map(str::to_string),
        field: field.map(str::to_string),
        reason,
    };
    let bad = |e: Error| vec![here(None, None, e.to_string())];
    if n.get_is_generic() {
        return Err(vec![here(
            None,
            None,
            "generic interfaces are not supported yet".into(),
        )]);
    }
    let superclasses = iface.get_superclasses().map_err(|e| bad(schema_err(e)))?;
    if !superclasses.is_empty() {
        return Err(vec![here(
            None,
            None,
            "interface inheritance (`extends`) is not supported yet".into(),
        )]);
    }
    let docs = ctx.docs.get(&n.get_id());
    let mut methods = Vec::new();
    let mut unsupported = Vec::new();
    let method_list = iface.get_methods().map_err(|e| bad(schema_err(e)))?;
    for (index, m) in method_list.iter().enumerate() {
        let mname = text(m.get_name()).map_err(bad)?;
        let mdoc = docs.and_then(|(_, members)| members.get(index).cloned().flatten());
        match read_method(ctx, file_id, m, &mname, mdoc) {
            Ok(method) => methods.push(method),
            Err(problems) => unsupported.extend(
                problems
                    .into_iter()
                    .map(|(field, reason)| here(Some(&mname), field.as_deref(), reason)),
            ),
        }
    }
    // The generated names of one interface must not collide.
    let mut seen: HashMap<String, String> = HashMap::new();
    for m in &methods {
        for generated in [
            m.ident.clone(),
            format!("{}_async", m.snake),
            format!("build_{}", m.snake),
        ] {
            if ["new", "remote", "connection", "connect", "from_remote"]
                .contains(&generated.as_str())
            {
                unsupported.push(here(
                    Some(&m.schema),
                    None,
                    format!(
                        "the generated Rust name `{generated}` is reserved by the generated client"
                    ),
                ));
            }
            if let Some(other) = seen.insert(generated.clone(), m.schema.clone()) {
                unsupported.push(here(
                    Some(&m.schema),
                    None,
                    format!("the generated Rust name `{generated}` collides with one generated for method `{other}`"),
                ));
            }
        }
    }
    if !unsupported.is_empty() {
        return Err(unsupported);
    }
    Ok(Interface {
        schema: name.to_string(),
        rust: names::type_name(name),
        capnp_mod: names::capnp_module_name(name),
        methods,
        doc: docs.and_then(|(d, _)| d.clone()),
    })
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
    for a in m.get_annotations().map_err(|e| fail(schema_err(e)))? {
        if a.get_id() == PROXY_NAME_ID {
            problems.push((None, "`$Proxy.name` on methods is not supported yet".into()));
        }
    }
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
            ident: "construct".into(),
            snake: "construct".into(),
            capnp_fn: names::capnp_module_name(name),
            capnp_request: names::snake(name),
            capnp_alias: names::capitalize_first(name),
            context: None,
            params: Vec::new(),
            results: Vec::new(),
            doc,
            kind: MethodKind::Construct,
            optional: false,
            nullable: false,
            exception: None,
        });
    }

    let mut context = None;
    let mut mapped_params = Vec::new();
    for f in &params {
        let fname = text(f.get_name()).map_err(fail)?;
        if is_implicit(*f) {
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
        match map_field(ctx, file_id, *f, &fname) {
            Ok(field) => mapped_params.push(field),
            Err(reason) => problems.push((Some(fname), reason)),
        }
    }
    let mut mapped_results = Vec::new();
    let mut exception = None;
    for f in &results {
        let fname = text(f.get_name()).map_err(fail)?;
        if has_annotation(*f, PROXY_EXCEPTION_ID) {
            // The server's error travels in this field instead of failing the call.
            match map_field(ctx, file_id, *f, &fname) {
                Ok(field) if field.ty == Ty::Text && exception.is_none() => {
                    exception = Some(field);
                }
                Ok(_) => problems.push((
                    Some(fname),
                    "`$Proxy.exception` is only supported on one Text result field yet".into(),
                )),
                Err(reason) => problems.push((Some(fname), reason)),
            }
            continue;
        }
        if is_implicit(*f) {
            continue;
        }
        if field_type_struct(*f) == Some(CONTEXT_ID) {
            problems.push((Some(fname), "`Proxy.Context` as a result".into()));
            continue;
        }
        match map_field(ctx, file_id, *f, &fname) {
            Ok(field) => mapped_results.push(field),
            Err(reason) => problems.push((Some(fname), reason)),
        }
    }
    // A result with the name and type of a parameter makes it in/out.
    mapped_results.retain(|r| {
        let param = mapped_params
            .iter_mut()
            .find(|p| p.schema == r.schema && p.ty == r.ty && !matches!(p.ty, Ty::Interface(_)));
        match param {
            Some(p) => {
                p.inout = true;
                false
            }
            None => true,
        }
    });
    let has_inout = mapped_params.iter().any(|p| p.inout);
    // `result` + `hasResult :Bool` ↔ Option<T>.
    let optional = mapped_results.len() == 2
        && mapped_results.iter().any(|r| r.schema == "result")
        && mapped_results
            .iter()
            .any(|r| r.schema == "hasResult" && r.ty == Ty::Prim("bool"));
    if optional {
        mapped_results.retain(|r| r.schema == "result");
    }
    if mapped_results.len() > 1 {
        for r in &mapped_results {
            if matches!(r.ty, Ty::Interface(_)) {
                problems.push((
                    Some(r.schema.clone()),
                    "an interface among several results is not supported yet (only as the single result)"
                        .into(),
                ));
            }
        }
    }
    if has_inout {
        for r in &mapped_results {
            if matches!(r.ty, Ty::Interface(_)) {
                problems.push((
                    Some(r.schema.clone()),
                    "an interface result beside in/out parameters is not supported yet".into(),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Method {
        schema: name.to_string(),
        ident: names::ident(&names::rust_snake(name)),
        snake: names::rust_snake(name),
        capnp_fn: names::capnp_module_name(name),
        capnp_request: names::snake(name),
        capnp_alias: names::capitalize_first(name),
        context,
        params: mapped_params,
        results: mapped_results,
        doc,
        kind: MethodKind::Plain,
        optional,
        nullable: false,
        exception,
    })
}

/// The value of a field's `$Proxy.name` annotation (its native name).
fn proxy_name(f: field::Reader<'_>) -> Option<String> {
    for a in f.get_annotations().ok()? {
        if a.get_id() == PROXY_NAME_ID {
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
/// `$Proxy.skip`, or `$Proxy.count(0)` (it stands for no native argument).
/// Clients leave it at its default (null for pointers) and servers ignore
/// it. A non-zero count maps to one Rust value, since Rust passes a slice
/// or a struct where C++ passes several arguments.
fn is_implicit(f: field::Reader<'_>) -> bool {
    let Ok(annotations) = f.get_annotations() else {
        return false;
    };
    annotations.iter().any(|a| match a.get_id() {
        PROXY_SKIP_ID => true,
        PROXY_COUNT_ID => matches!(
            a.get_value().and_then(|v| Ok(v.which()?)),
            Ok(capnp::schema_capnp::value::Int32(0))
        ),
        _ => false,
    })
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

fn map_field(
    ctx: &Ctx<'_>,
    file_id: u64,
    f: field::Reader<'_>,
    name: &str,
) -> Result<Field, String> {
    if f.get_discriminant_value() != field::NO_DISCRIMINANT {
        return Err("unions are not supported yet".into());
    }
    let Some(t) = slot_type(f) else {
        return Err("groups are not supported yet".into());
    };
    let ty = map_type(ctx, file_id, t, false)?;
    Ok(Field {
        inout: false,
        schema: name.to_string(),
        ident: names::ident(&proxy_name(f).unwrap_or_else(|| names::rust_snake(name))),
        accessor: names::snake(name),
        ty,
    })
}

fn map_type(
    ctx: &Ctx<'_>,
    file_id: u64,
    t: capnp::schema_capnp::type_::Reader<'_>,
    in_list: bool,
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
        type_::Void(()) => Err("type Void is not supported yet".into()),
        type_::List(l) => {
            if in_list {
                return Err("lists of lists are not supported yet".into());
            }
            let elem = l.get_element_type().map_err(|e| e.to_string())?;
            match map_type(ctx, file_id, elem, true)? {
                Ty::Interface(_) => Err("lists of interfaces are not supported yet".into()),
                elem => Ok(Ty::List(Box::new(elem))),
            }
        }
        type_::Enum(e) => {
            let id = e.get_type_id();
            let n = ctx
                .nodes
                .get(&id)
                .ok_or_else(|| format!("enum node {id:#x} missing"))?;
            let scope = n.get_scope_id();
            if !matches!(
                ctx.nodes.get(&scope).map(|s| s.which()),
                Some(Ok(node::File(())))
            ) {
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
            match map_struct(ctx, id) {
                Some(Ok(def)) => {
                    let n = ctx.nodes[&id];
                    let scope = n.get_scope_id();
                    if scope == file_id {
                        Ok(Ty::Struct(def.rust))
                    } else {
                        Ok(Ty::Struct(format!(
                            "super::{}_mp::{}",
                            crate::stem(&node_name(ctx, scope)),
                            def.rust
                        )))
                    }
                }
                Some(Err(reason)) => Err(format!("struct {}: {reason}", node_name(ctx, id))),
                None => Err(format!(
                    "struct {} is not declared at the top level of a file (only top-level structs are supported yet)",
                    node_name(ctx, id)
                )),
            }
        }
        type_::AnyPointer(_) => Err("AnyPointer is not supported".into()),
        type_::Interface(i) => {
            let id = i.get_type_id();
            if id == THREAD_MAP_ID {
                return Err(
                    "`Proxy.ThreadMap` is only supported in `construct(threadMap) -> (threadMap)`"
                        .into(),
                );
            }
            let n = ctx
                .nodes
                .get(&id)
                .ok_or_else(|| format!("interface node {id:#x} missing"))?;
            let scope = n.get_scope_id();
            let prefix = if scope == file_id {
                String::new()
            } else {
                match ctx.nodes.get(&scope).map(|s| s.which()) {
                    Some(Ok(node::File(()))) => {
                        format!("super::{}_mp::", crate::stem(&node_name(ctx, scope)))
                    }
                    _ => {
                        return Err(format!(
                            "interface {} is nested in another declaration (only top-level interfaces are supported yet)",
                            node_name(ctx, id)
                        ))
                    }
                }
            };
            if n.get_is_generic() {
                return Err(format!(
                    "generic interface {} is not supported yet",
                    node_name(ctx, id)
                ));
            }
            let name = short_name(n);
            Ok(Ty::Interface(IfaceRef {
                rust: format!("{prefix}{}", names::type_name(&name)),
            }))
        }
    }
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

/// Maps a top-level struct (cached). `None` if `id` is not a struct at the
/// top level of a file; `Some(Err(why))` if it cannot be mapped.
fn map_struct(ctx: &Ctx<'_>, id: u64) -> Option<Result<StructDef, String>> {
    if let Some(done) = ctx.structs.borrow().get(&id) {
        return Some(match done {
            Some(result) => result.clone(),
            None => Err("recursive structs are not supported yet".into()),
        });
    }
    let n = *ctx.nodes.get(&id)?;
    let Ok(node::Struct(st)) = n.which() else {
        return None;
    };
    let scope = ctx.nodes.get(&n.get_scope_id())?;
    if !matches!(scope.which(), Ok(node::File(()))) {
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
    if n.get_is_generic() {
        return Err("generic structs are not supported yet".into());
    }
    if st.get_discriminant_count() > 0 {
        return Err("unions are not supported yet".into());
    }
    let name = short_name(&n);
    let docs = ctx.docs.get(&id);
    let mut fields = Vec::new();
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
        if is_implicit(f) {
            continue;
        }
        let mut field = map_field(ctx, n.get_scope_id(), f, &fname).map_err(problem)?;
        if let Ty::Interface(_) = field.ty {
            return Err(problem(
                "interfaces in structs are not supported yet".into(),
            ));
        }
        let default = default_value(f, &field.ty).map_err(problem)?;
        let doc = docs.and_then(|(_, members)| members.get(index).cloned().flatten());
        field.schema = fname.clone();
        fields.push(StructField {
            field,
            default,
            doc,
        });
    }
    Ok(StructDef {
        schema: name.clone(),
        rust: names::type_name(&name),
        capnp_mod: names::capnp_module_name(&name),
        fields,
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
                    Ty::Struct(_) => "struct",
                    _ => "other",
                }
            ))
        }
    })
}
