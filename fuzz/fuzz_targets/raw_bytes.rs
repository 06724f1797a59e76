//! Raw bytes from a peer: whatever arrives on a served connection, the
//! server must end that session (or answer it) without a panic or a hang,
//! and keep serving its other clients.

#![no_main]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The same server loop and well-behaved client as rpc_messages.
    let world = mp_fuzz::rpc::world();
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let server = mp_test_calc::serve(world.server_loop(), ours).expect("serve");
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
    assert_eq!(world.probe().expect("the server still serves others"), 4);
});
