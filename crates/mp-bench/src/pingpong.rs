//! Baseline 1: a bare socketpair ping-pong with a child process, 8-byte
//! messages, blocking `write` then `read` on both sides.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use mp_ipc::process::ChildProcess;

/// The parent side of an echo session.
pub struct PingPong {
    stream: UnixStream,
    child: ChildProcess,
    counter: u64,
}

impl PingPong {
    /// Spawns the echo peer.
    pub fn spawn(program: &Path) -> Result<PingPong, mp_ipc::Error> {
        let (child, stream) = crate::spawn_peer(program, crate::MODE_ECHO)?;
        stream
            .set_nonblocking(false)
            .map_err(|e| crate::io_error("making the socket blocking", e))?;
        Ok(PingPong {
            stream,
            child,
            counter: 0,
        })
    }

    /// One round trip: sends 8 bytes, waits for the echo, returns it.
    pub fn round_trip(&mut self) -> std::io::Result<u64> {
        self.counter = self.counter.wrapping_add(1);
        self.stream.write_all(&self.counter.to_le_bytes())?;
        let mut buf = [0u8; 8];
        self.stream.read_exact(&mut buf)?;
        let echoed = u64::from_le_bytes(buf);
        if echoed != self.counter {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("echo peer answered {echoed}, expected {}", self.counter),
            ));
        }
        Ok(echoed)
    }

    /// The child's process id.
    pub fn child_pid(&self) -> u32 {
        self.child.pid()
    }
}
