//! Raw bytes from a peer: whatever arrives on a served connection, the
//! server must end that session (or answer it) without a panic or a hang,
//! and keep serving its other clients.

#![no_main]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mp_ipc::{Connection, EventLoop};

/// A server loop with one well-behaved client, shared by every input.
struct World {
    server_loop: EventLoop,
    /// `add(2, 2)` through the well-behaved client.
    probe: Box<dyn Fn() -> Result<i64, mp_ipc::Error> + Send + Sync>,
    _probe_server: Connection,
    _client_loop: EventLoop,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let server_loop = EventLoop::new("fuzz-server").expect("server loop");
        let client_loop = EventLoop::new("fuzz-client").expect("client loop");
        let (a, b) = UnixStream::pair().expect("socketpair");
        let probe_server = mp_calc::serve(&server_loop, a).expect("serve probe");
        let calc = mp_calc::connect(&client_loop, b)
            .and_then(|init| init.make_calculator())
            .expect("probe client");
        let probe = Box::new(move || calc.add(2, 2));
        World {
            server_loop,
            probe,
            _probe_server: probe_server,
            _client_loop: client_loop,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let server = mp_calc::serve(&world.server_loop, ours).expect("serve");
    let _ = theirs.write_all(data);
    let _ = theirs.shutdown(Shutdown::Write);
    // Drain whatever the server answers so it never blocks on a full socket.
    let _ = theirs.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = [0u8; 4096];
    while let Ok(n) = theirs.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    drop(theirs);
    assert!(
        server.wait_disconnected_timeout(Duration::from_secs(10)),
        "the server kept a closed session open"
    );
    assert_eq!((world.probe)().expect("the server still serves others"), 4);
});
