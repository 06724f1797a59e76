//! Each call gets a `tracing` span on both sides (off unless a subscriber is
//! installed): `mp.call` with interface, method and client thread, and
//! `mp.serve` with interface, method and the server thread it ran on.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{in_process, watchdog};
use mp_ipc::EventLoop;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn calls_have_spans_on_both_sides() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::NEW)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (_server, init) = in_process(&server_loop, &client_loop);
        let calc = init.make_calculator().unwrap();
        std::thread::Builder::new()
            .name("traced-client".into())
            .spawn(move || calc.add(1, 2).unwrap())
            .unwrap()
            .join()
            .unwrap();
    });
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let call = log
        .lines()
        .find(|l| l.contains("mp.call") && l.contains("method=\"add\""))
        .unwrap_or_else(|| panic!("no mp.call span for add in:\n{log}"));
    assert!(call.contains("interface=\"Calculator\""), "{call}");
    assert!(call.contains("client_thread=traced-client"), "{call}");
    let serve = log
        .lines()
        .find(|l| l.contains("mp.serve") && l.contains("method=\"add\""))
        .unwrap_or_else(|| panic!("no mp.serve span for add in:\n{log}"));
    assert!(serve.contains("interface=\"Calculator\""), "{serve}");
    assert!(serve.contains("server_thread=traced-client"), "{serve}");
}
