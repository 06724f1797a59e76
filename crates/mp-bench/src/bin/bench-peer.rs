//! The child process of the benchmarks: `bench-peer MODE --ipc-fd N`, where
//! MODE is `echo` (socketpair echo), `raw-calc` (a raw capnp-rpc
//! calculator) or `mp-test-calc` (an mp-ipc calculator).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    if std::env::var_os(mp_bench::METERED_ENV).is_some() {
        if let Err(e) = mp_bench::install_recorder() {
            eprintln!("bench-peer: {e}");
            std::process::exit(1);
        }
    }
    let outcome: Result<(), String> = match mode.as_str() {
        mp_bench::MODE_ECHO => mp_bench::peer::inherited_stream(&args)
            .map_err(|e| e.to_string())
            .and_then(|s| mp_bench::peer::serve_echo(s).map_err(|e| e.to_string())),
        mp_bench::MODE_RAW => mp_bench::peer::inherited_stream(&args)
            .map_err(|e| e.to_string())
            .and_then(|s| mp_bench::peer::serve_raw_calc(s).map_err(|e| e.to_string())),
        mp_bench::MODE_MP => mp_bench::peer::serve_mp_test_calc(args).map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown mode `{other}`; expected {}, {} or {}",
            mp_bench::MODE_ECHO,
            mp_bench::MODE_RAW,
            mp_bench::MODE_MP
        )),
    };
    if let Err(e) = outcome {
        eprintln!("bench-peer: {e}");
        std::process::exit(1);
    }
}
