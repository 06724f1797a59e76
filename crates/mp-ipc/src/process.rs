//! Processes: spawn a child with one end of a socketpair, and, in the
//! child, take that end back from the fd number on its command line — the
//! convention of libmultiprocess and Bitcoin Core (`-ipcfd N`).
//!
//! The parent's end and every other descriptor Rust opens are close-on-exec;
//! only the child's end survives `exec`. A [`ChildProcess`] is reaped when it
//! is waited on or dropped (dropping kills a still-running child first), so
//! no zombie outlives its handle.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::error::Error;

/// A spawned child process. Dropping it kills (SIGKILL) and reaps the child
/// if it is still running.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    reaped: Option<ExitStatus>,
}

impl ChildProcess {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL (no-op if it has already been reaped).
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.reaped.is_some() {
            return Ok(());
        }
        match self.child.kill() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(e) => Err(Error::io(format!("killing child {}", self.pid()), e)),
        }
    }

    /// Waits for the child to exit and reaps it.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.reaped {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("waiting for child {}", self.child.id()), e))?;
        self.reaped = Some(status);
        Ok(status)
    }

    /// Waits at most `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reaps the child if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.reaped {
            return Ok(Some(status));
        }
        let status = self
            .child
            .try_wait()
            .map_err(|e| Error::io(format!("polling child {}", self.child.id()), e))?;
        self.reaped = status;
        Ok(status)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            // Bounded: SIGKILL cannot be caught, so the wait is short.
            let _ = self.child.wait();
        }
    }
}

/// Spawns `command` with one end of a fresh socketpair inherited; `fd_args`
/// turns that end's fd number into the child's extra arguments (for example
/// `|fd| vec!["--ipc-fd".into(), fd.to_string().into()]`). Returns the child
/// and this side's end.
pub fn spawn_process<F>(
    mut command: Command,
    fd_args: F,
) -> Result<(ChildProcess, UnixStream), Error>
where
    F: FnOnce(RawFd) -> Vec<OsString>,
{
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::io("creating a socketpair", e))?;
    let fd = theirs.as_raw_fd();
    command.args(fd_args(fd));
    // SAFETY: the closure runs in the child between fork and exec, so it may
    // only make async-signal-safe calls; it makes one, fcntl(2), on an fd
    // number it copied by value, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| Error::io(format!("spawning {:?}", command.get_program()), e))?;
    drop(theirs);
    Ok((
        ChildProcess {
            child,
            reaped: None,
        },
        ours,
    ))
}

/// The flag that names the inherited socket on a child's command line,
/// followed by its fd number: `--ipc-fd N`.
pub const IPC_FD_FLAG: &str = "--ipc-fd";

/// [`spawn_process`] with `--ipc-fd N` appended to the child's arguments;
/// the child takes its end back with [`stream_from_args`].
///
/// ```no_run
/// use std::process::Command;
///
/// let (mut child, stream) =
///     mp_ipc::process::spawn_with_ipc_fd(Command::new("target/debug/my-server"))?;
/// // ... open a Connection on `stream` ...
/// # drop(stream);
/// child.wait()?;
/// # Ok::<(), mp_ipc::Error>(())
/// ```
pub fn spawn_with_ipc_fd(command: Command) -> Result<(ChildProcess, UnixStream), Error> {
    spawn_process(command, |fd| {
        vec![IPC_FD_FLAG.into(), fd.to_string().into()]
    })
}

/// The child side of [`spawn_with_ipc_fd`]: finds `--ipc-fd N` among `args`
/// (a process's arguments, e.g. `std::env::args()`) and takes that socket
/// with [`stream_from_inherited_fd`]. Call it once.
///
/// A missing flag, a missing or malformed number, or an fd that is not an
/// open socket is an [`Error::Io`] saying which.
pub fn stream_from_args(args: impl IntoIterator<Item = String>) -> Result<UnixStream, Error> {
    let mut args = args.into_iter();
    let invalid =
        |what: String| Error::io(what, std::io::Error::from(std::io::ErrorKind::InvalidInput));
    while let Some(arg) = args.next() {
        if arg == IPC_FD_FLAG {
            let value = args
                .next()
                .ok_or_else(|| invalid(format!("`{IPC_FD_FLAG}` is not followed by a number")))?;
            return stream_from_inherited_fd(parse_fd(&value)?);
        }
    }
    Err(invalid(format!(
        "missing `{IPC_FD_FLAG} N` argument (this program is started by its parent process)"
    )))
}

/// Parses an fd number given on the command line.
pub fn parse_fd(arg: &str) -> Result<RawFd, Error> {
    arg.trim()
        .parse::<RawFd>()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| {
            Error::io(
                format!(
                    "`{arg}` is not a usable file descriptor number (expected an integer above 2)"
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            )
        })
}

/// Takes ownership of the socket a parent passed to this process as fd
/// `fd`. Checks that `fd` is an open Unix stream socket first, and marks it
/// close-on-exec so it does not leak into this process's own children.
///
/// Call it once, at start-up, for the fd named on the command line: the
/// returned stream owns the fd and closes it on drop.
pub fn stream_from_inherited_fd(fd: RawFd) -> Result<UnixStream, Error> {
    let bad = |what: &str| {
        Error::io(
            format!("inherited fd {fd} {what}"),
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        )
    };
    // SAFETY: fstat writes into the zeroed struct we own; any fd number is
    // acceptable input (a closed one just fails with EBADF).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } == -1 {
        return Err(Error::io(
            format!("inherited fd {fd} is not open"),
            std::io::Error::last_os_error(),
        ));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(bad("is not a socket"));
    }
    // SAFETY: fcntl on a descriptor we just saw open; it only sets a flag.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(Error::io(
            format!("marking inherited fd {fd} close-on-exec"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` is an open socket that the parent handed to this process
    // for this purpose; by contract this function is called once for it, so
    // the returned stream is its only owner.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}
