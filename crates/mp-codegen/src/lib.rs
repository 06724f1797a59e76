//! # mp-codegen
//!
//! The Rust `mpgen`: reads `.capnp` schemas (through capnp's
//! `CodeGeneratorRequest`) and writes, per schema file `foo.capnp`, one
//! `foo_mp.rs` that sits beside capnpc's own `foo_capnp.rs` and uses its
//! types. For each interface `Foo` it holds:
//!
//! - `trait Foo: Send + Sync + 'static` — what an implementation provides;
//!   methods take and return Rust values and return `Result<T, String>`
//!   (the error goes to the caller as a remote failure). A
//!   `context :Proxy.Context` parameter is hidden: the runtime fills it.
//! - `FooClient` — a thread-safe handle to a peer's `Foo` with a sync method
//!   (any thread, mapped to a server thread when the method has a Context)
//!   and an `_async` method per schema method. If the interface has a
//!   `destroy(context)` method, dropping the last clone of the client calls
//!   it (as libmultiprocess does), unless it was called explicitly.
//! - `FooServer` — the adapter that serves a `Foo` implementation: reads
//!   params on the event loop, runs the method on the thread the call's
//!   Context names (or on the loop), writes the results.
//!
//! Type mapping of this step: `Bool`, integers, floats; top-level enums ↔
//! capnpc's Rust enums; `Text` ↔ `String`
//! (`&str` into clients); `Data` ↔ `Vec<u8>`; `List` of those, of structs
//! and of enums ↔ `Vec<T>`; `$Proxy.count(0)` parameters and `$Proxy.skip`
//! struct fields are implicit (left out of the Rust API); a parameter that
//! is also a result of the same name and type is in/out (`&mut T`);
//! interfaces as parameters (`Arc<dyn Foo>` into a client, `FooClient` into
//! an implementation) and results (the reverse); one result
//! is returned as is, several as a generated `FooMethodResults` struct,
//! `result` + `hasResult :Bool` as `Option<T>`; a Text result marked
//! `$Proxy.exception` carries the implementation's `Err` (the call succeeds
//! on the wire; the client returns `Error::Remote`);
//! top-level structs (no unions or groups) ↔ generated Rust structs whose
//! `Default` holds the schema's defaults and whose field names come from
//! `$Proxy.name` or the schema name in snake case;
//! `construct(threadMap) -> (threadMap)` is the thread-map exchange, done by
//! `FooServer` itself and by `FooClient::connect`. Anything else is refused
//! with [`Error::Unsupported`], naming file, interface, method and field.
//!
//! From a `build.rs`:
//!
//! ```no_run
//! mp_codegen::Builder::new()
//!     .src_prefix("schema")
//!     .import_path("../mp-ipc/schema")
//!     .file("schema/calc.capnp")
//!     .crate_provides("mp_ipc", [0xcc31_6e3f_71a0_40fb])
//!     .output_path(std::env::var("OUT_DIR").unwrap())
//!     .run()
//!     .expect("mp-codegen");
//! ```
//!
//! then `mod calc_capnp { include!(concat!(env!("OUT_DIR"), "/calc_capnp.rs")); }`
//! and `mod calc_mp { include!(concat!(env!("OUT_DIR"), "/calc_mp.rs")); }` at
//! the crate root. An interface of another schema file `bar.capnp` is named
//! through `super::bar_mp`, so generate both and include each generated
//! file as a sibling module named after it. The `mp-codegen` binary does the same from the command
//! line, for checking generated files into a repository.
//!
//! Output is formatted by running `rustfmt` when it is installed (plain,
//! valid but unformatted code otherwise).

mod emit;
mod model;
mod names;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Something in a schema that this generator cannot map (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The schema file, as capnp names it (relative to the source prefix).
    pub file: String,
    /// The interface.
    pub interface: String,
    /// The method, when the problem is in one.
    pub method: Option<String>,
    /// The parameter or result field, when the problem is in one.
    pub field: Option<String>,
    /// What is not supported.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: interface `{}`", self.file, self.interface)?;
        if let Some(m) = &self.method {
            write!(f, ", method `{m}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Everything that can go wrong generating code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The schemas use something this generator cannot map; one entry per problem.
    #[error("mp-codegen cannot map these schema items:\n{}", list(.0))]
    Unsupported(Vec<Unsupported>),
    /// The `CodeGeneratorRequest` could not be read.
    #[error("malformed CodeGeneratorRequest: {0}")]
    Schema(String),
    /// Running `capnp compile` failed.
    #[error("capnp compile: {0}")]
    Capnp(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn list(items: &[Unsupported]) -> String {
    items
        .iter()
        .map(|u| format!("  {u}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// One generated Rust file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Where it goes, relative to the output directory (`calc_mp.rs`,
    /// `sub/dir/foo_mp.rs` for `sub/dir/foo.capnp`).
    pub path: PathBuf,
    /// The Rust source.
    pub code: String,
}

/// Options of [`generate`] that do not involve running anything.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Path of capnpc's module for a requested file, by file name; the
    /// default for `dir/foo.capnp` is `crate::foo_capnp` (capnpc's own).
    pub capnp_modules: HashMap<String, String>,
    /// Run `rustfmt` over the output when it is installed.
    pub rustfmt: bool,
    /// `(interface, method)` pairs whose single interface result the peer
    /// may leave null; see [`Builder::nullable_result`].
    pub nullable_results: Vec<(String, String)>,
}

/// Generates the Rust adapters for every requested file of a serialized
/// `CodeGeneratorRequest` (what `capnp compile -o-` writes).
pub fn generate(request: &[u8], options: &Options) -> Result<Vec<GeneratedFile>, Error> {
    let mut files = model::read_request(request)?;
    mark_nullable(&mut files, &options.nullable_results)?;
    let mut out = Vec::new();
    let mut unsupported = Vec::new();
    for file in &files {
        let stem = stem(&file.filename);
        let cm = options
            .capnp_modules
            .get(&file.filename)
            .cloned()
            .unwrap_or_else(|| format!("crate::{stem}_capnp"));
        match emit::emit_file(file, &cm) {
            Ok(code) => {
                let code = if options.rustfmt {
                    format_code(&code).unwrap_or(code)
                } else {
                    code
                };
                let path = Path::new(&file.filename).with_file_name(format!("{stem}_mp.rs"));
                out.push(GeneratedFile { path, code });
            }
            Err(mut u) => unsupported.append(&mut u),
        }
    }
    if unsupported.is_empty() {
        Ok(out)
    } else {
        Err(Error::Unsupported(unsupported))
    }
}

/// Applies [`Options::nullable_results`]; a pair that names no method, or a
/// method whose result is not one interface, is an error naming it.
fn mark_nullable(files: &mut [model::File], pairs: &[(String, String)]) -> Result<(), Error> {
    let mut problems = Vec::new();
    for (iface, method) in pairs {
        let found = files.iter_mut().find_map(|f| {
            let filename = f.filename.clone();
            f.interfaces
                .iter_mut()
                .find(|i| &i.schema == iface)
                .and_then(|i| i.methods.iter_mut().find(|m| &m.schema == method))
                .map(|m| (filename, m))
        });
        let problem = match found {
            None => Some((
                "(requested files)".to_string(),
                "no such method in the requested files".to_string(),
            )),
            Some((file, m)) => match m.results.as_slice() {
                [one] if matches!(one.ty, model::Ty::Interface(_)) && !m.optional => {
                    m.nullable = true;
                    None
                }
                _ => Some((
                    file,
                    "a nullable result needs exactly one result, of an interface type".to_string(),
                )),
            },
        };
        if let Some((file, what)) = problem {
            problems.push(Unsupported {
                file,
                interface: iface.clone(),
                method: Some(method.clone()),
                field: None,
                reason: format!("`nullable_result`: {what}"),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Unsupported(problems))
    }
}

/// capnpc's stem for a schema file name: `dir/my-file.capnp` → `my_file`.
pub(crate) fn stem(filename: &str) -> String {
    Path::new(filename)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("schema")
        .replace('-', "_")
}

/// Formats Rust source with `rustfmt` (edition 2021). `None` if `rustfmt`
/// is not installed or fails.
pub fn format_code(code: &str) -> Option<String> {
    use std::io::Write;
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(rustfmt)
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = code.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// Runs `capnp compile` on schema files and writes capnpc's `*_capnp.rs`
/// and mp-codegen's `*_mp.rs` for each; for `build.rs` files and the
/// `mp-codegen` binary.
#[derive(Debug, Clone)]
pub struct Builder {
    files: Vec<PathBuf>,
    import_paths: Vec<PathBuf>,
    src_prefixes: Vec<PathBuf>,
    crate_provides: HashMap<u64, String>,
    output_path: Option<PathBuf>,
    capnp_executable: PathBuf,
    request_file: Option<PathBuf>,
    capture_request: Option<PathBuf>,
    capnp_code: bool,
    rustfmt: bool,
    nullable_results: Vec<(String, String)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with no files; capnp's code is written too, output is formatted.
    pub fn new() -> Self {
        Builder {
            files: Vec::new(),
            import_paths: Vec::new(),
            src_prefixes: Vec::new(),
            crate_provides: HashMap::new(),
            output_path: None,
            capnp_executable: PathBuf::from("capnp"),
            request_file: None,
            capture_request: None,
            capnp_code: true,
            rustfmt: true,
            nullable_results: Vec::new(),
        }
    }

    /// Adds a schema file to compile.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds a directory searched for `import "/..."`.
    pub fn import_path(mut self, dir: impl AsRef<Path>) -> Self {
        self.import_paths.push(dir.as_ref().to_path_buf());
        self
    }

    /// Adds a prefix stripped from schema file names (which decides where
    /// output files go under the output directory).
    pub fn src_prefix(mut self, dir: impl AsRef<Path>) -> Self {
        self.src_prefixes.push(dir.as_ref().to_path_buf());
        self
    }

    /// Says that crate `krate` provides capnpc's code for the schema files
    /// with these ids (e.g. `mp_ipc` for `proxy.capnp`, `0xcc316e3f71a040fb`).
    pub fn crate_provides(mut self, krate: &str, file_ids: impl IntoIterator<Item = u64>) -> Self {
        for id in file_ids {
            self.crate_provides.insert(id, krate.to_string());
        }
        self
    }

    /// Where to write the files (default: `$OUT_DIR`).
    pub fn output_path(mut self, dir: impl AsRef<Path>) -> Self {
        self.output_path = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The `capnp` binary to run (default: `capnp` on the `PATH`).
    pub fn capnp_executable(mut self, path: impl AsRef<Path>) -> Self {
        self.capnp_executable = path.as_ref().to_path_buf();
        self
    }

    /// Reads a `CodeGeneratorRequest` captured earlier instead of running
    /// `capnp` (the files, import paths and prefixes are then unused).
    pub fn request_file(mut self, path: impl AsRef<Path>) -> Self {
        self.request_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Also writes the `CodeGeneratorRequest` to `path`, to check it in and
    /// regenerate later without `capnp`.
    pub fn capture_request(mut self, path: impl AsRef<Path>) -> Self {
        self.capture_request = Some(path.as_ref().to_path_buf());
        self
    }

    /// Whether to write capnpc's `*_capnp.rs` too (default true).
    pub fn capnp_code(mut self, yes: bool) -> Self {
        self.capnp_code = yes;
        self
    }

    /// Whether to run `rustfmt` over the output (default true; skipped if
    /// `rustfmt` is not installed).
    pub fn rustfmt(mut self, yes: bool) -> Self {
        self.rustfmt = yes;
        self
    }

    /// Lets the peer leave `interface.method`'s single interface result null
    /// (a C++ `nullptr`): it maps to `Option<FooClient>` for clients and
    /// `Option<Arc<dyn Foo>>` for implementations. libmultiprocess peers may
    /// return null for any interface result — Bitcoin Core's
    /// `BlockTemplate.waitNext` does on timeout — while most never do, so
    /// this is opt-in per method; without it a null result is an error
    /// naming the method. Names are the schema's (`"BlockTemplate"`,
    /// `"waitNext"`); one that matches nothing is a build error.
    pub fn nullable_result(mut self, interface: &str, method: &str) -> Self {
        self.nullable_results
            .push((interface.to_string(), method.to_string()));
        self
    }

    /// The serialized `CodeGeneratorRequest` for the configured files.
    pub fn request(&self) -> Result<Vec<u8>, Error> {
        if let Some(path) = &self.request_file {
            return std::fs::read(path).map_err(io(format!("reading {}", path.display())));
        }
        let mut cmd = Command::new(&self.capnp_executable);
        cmd.env_remove("PWD").arg("compile").arg("-o-");
        for dir in &self.import_paths {
            cmd.arg(format!("--import-path={}", dir.display()));
        }
        for dir in &self.src_prefixes {
            cmd.arg(format!("--src-prefix={}", dir.display()));
        }
        cmd.args(&self.files);
        let output = cmd.output().map_err(|e| {
            Error::Capnp(format!(
                "could not run `{}` (is Cap'n Proto installed?): {e}",
                self.capnp_executable.display()
            ))
        })?;
        if !output.status.success() {
            return Err(Error::Capnp(format!(
                "{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(output.stdout)
    }

    /// Compiles the schemas and writes the generated files; returns their paths.
    pub fn run(self) -> Result<Vec<PathBuf>, Error> {
        let out_dir = match &self.output_path {
            Some(dir) => dir.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
                Error::Capnp("no output path given and OUT_DIR is not set".into())
            })?),
        };
        let request = self.request()?;
        if let Some(path) = &self.capture_request {
            std::fs::write(path, &request).map_err(io(format!("writing {}", path.display())))?;
        }
        let files = generate(
            &request,
            &Options {
                capnp_modules: HashMap::new(),
                rustfmt: self.rustfmt,
                nullable_results: self.nullable_results.clone(),
            },
        )?;
        let mut written = Vec::new();
        if self.capnp_code {
            let mut gen = capnpc::codegen::CodeGenerationCommand::new();
            gen.output_directory(&out_dir)
                .crates_provide_map(self.crate_provides.clone());
            gen.run(&request[..])
                .map_err(|e| Error::Capnp(format!("capnpc code generation: {e}")))?;
        }
        for file in files {
            let path = out_dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            std::fs::write(&path, &file.code).map_err(io(format!("writing {}", path.display())))?;
            written.push(path);
        }
        Ok(written)
    }
}
