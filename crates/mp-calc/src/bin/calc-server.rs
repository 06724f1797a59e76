//! A calculator process: serves `CalcInit` on the socket whose fd number
//! follows `--ipc-fd`, until the parent disconnects.

fn main() {
    if let Err(e) = mp_calc::serve_inherited_fd(std::env::args().skip(1)) {
        eprintln!("calc-server: {e}");
        std::process::exit(1);
    }
}
