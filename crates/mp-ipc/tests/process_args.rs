//! The child side of a spawned process: `--ipc-fd N` on its command line,
//! and the errors for each way that argument can be wrong.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use mp_ipc::process::{stream_from_args, IPC_FD_FLAG};
use mp_ipc::Error;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn io_message(result: Result<UnixStream, Error>) -> String {
    match result {
        Err(e @ Error::Io { .. }) => e.to_string(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn a_missing_flag_says_the_program_is_started_by_its_parent() {
    let message = io_message(stream_from_args(args(&["prog", "--verbose"])));
    assert!(message.contains("missing `--ipc-fd N`"), "{message}");
}

#[test]
fn a_flag_without_a_number_or_with_a_bad_one_is_named() {
    let message = io_message(stream_from_args(args(&["prog", IPC_FD_FLAG])));
    assert!(message.contains("not followed by a number"), "{message}");
    let message = io_message(stream_from_args(args(&["prog", IPC_FD_FLAG, "seven"])));
    assert!(
        message.contains("`seven` is not a usable file descriptor"),
        "{message}"
    );
    let message = io_message(stream_from_args(args(&["prog", IPC_FD_FLAG, "1"])));
    assert!(message.contains("above 2"), "{message}");
}

#[test]
fn an_fd_that_is_not_a_socket_is_refused() {
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let fd = file.as_raw_fd().to_string();
    let message = io_message(stream_from_args(args(&[IPC_FD_FLAG, &fd])));
    assert!(message.contains("is not a socket"), "{message}");
}

#[test]
fn the_named_socket_is_taken() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    // The stream returned owns the fd from here on.
    std::mem::forget(theirs);
    let mut taken =
        stream_from_args(args(&["prog", "mode", IPC_FD_FLAG, &fd.to_string()])).unwrap();
    assert_eq!(taken.as_raw_fd(), fd);
    use std::io::{Read, Write};
    (&ours).write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    taken.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}
