//! The `mp-codegen` binary: writes capnpc's `*_capnp.rs` and mp-codegen's
//! `*_mp.rs` for schema files, for checking generated code into a repository.
//!
//! ```text
//! mp-codegen [-I DIR]... [--src-prefix DIR]... [--crate-provides CRATE=ID[,ID]]...
//!            [--nullable-result INTERFACE.METHOD]... [--request FILE] [--capture-request FILE] [--no-capnp-code]
//!            [--no-rustfmt] [--skip-unsupported] -o OUT_DIR SCHEMA.capnp...
//! ```
//!
//! With `--skip-unsupported`, what cannot be mapped is left out (see
//! `mp_codegen::Options::skip_unsupported`) and each left-out member is
//! printed to stderr as `mp-codegen: warning: ...`; without it, any such
//! member is an error listing them all.

use std::process::ExitCode;

const USAGE: &str = "usage: mp-codegen [-I DIR]... [--src-prefix DIR]... \
[--crate-provides CRATE=ID[,ID]]... [--nullable-result INTERFACE.METHOD]... [--request FILE] [--capture-request FILE] \
[--no-capnp-code] [--no-rustfmt] [--skip-unsupported] -o OUT_DIR SCHEMA.capnp...";

fn parse_id(s: &str) -> Result<u64, String> {
    let digits = s.trim().trim_start_matches("0x").replace('_', "");
    u64::from_str_radix(&digits, 16).map_err(|e| format!("bad file id `{s}`: {e}"))
}

fn run() -> Result<(), String> {
    let mut builder = mp_codegen::Builder::new();
    let mut args = std::env::args().skip(1);
    let mut have_output = false;
    let mut have_input = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "-I" | "--import-path" => builder = builder.import_path(value(&arg)?),
            "--src-prefix" => builder = builder.src_prefix(value(&arg)?),
            "-o" | "--output" => {
                builder = builder.output_path(value(&arg)?);
                have_output = true;
            }
            "--crate-provides" => {
                let spec = value(&arg)?;
                let (krate, ids) = spec.split_once('=').ok_or(format!(
                    "--crate-provides wants CRATE=ID[,ID], got `{spec}`"
                ))?;
                let ids = ids
                    .split(',')
                    .map(parse_id)
                    .collect::<Result<Vec<_>, _>>()?;
                builder = builder.crate_provides(krate, ids);
            }
            "--nullable-result" => {
                let spec = value(&arg)?;
                let (iface, method) = spec.split_once('.').ok_or(format!(
                    "--nullable-result wants INTERFACE.METHOD, got `{spec}`"
                ))?;
                builder = builder.nullable_result(iface, method);
            }
            "--request" => {
                builder = builder.request_file(value(&arg)?);
                have_input = true;
            }
            "--capture-request" => builder = builder.capture_request(value(&arg)?),
            "--no-capnp-code" => builder = builder.capnp_code(false),
            "--no-rustfmt" => builder = builder.rustfmt(false),
            "--skip-unsupported" => builder = builder.skip_unsupported(true),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option `{flag}`\n{USAGE}"))
            }
            file => {
                builder = builder.file(file);
                have_input = true;
            }
        }
    }
    if !have_output || !have_input {
        return Err(USAGE.to_string());
    }
    let report = builder.run_report().map_err(|e| e.to_string())?;
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    for line in mp_codegen::skipped_members(&report.skipped) {
        eprintln!("mp-codegen: warning: {line}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mp-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
