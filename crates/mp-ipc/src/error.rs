//! The one error type of mp-ipc. Every call failure names the interface and
//! method it came from, so a log line says which call broke and why.

use std::fmt;

/// Which call an error belongs to: `Interface.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSite {
    /// The schema's interface name, e.g. `"Calculator"`.
    pub interface: &'static str,
    /// The schema's method name, e.g. `"add"`.
    pub method: &'static str,
}

impl CallSite {
    /// Names a call site.
    pub const fn new(interface: &'static str, method: &'static str) -> Self {
        CallSite { interface, method }
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.interface, self.method)
    }
}

/// When a disconnect hit a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectPhase {
    /// The call was in flight when the connection died
    /// (libmultiprocess: "IPC client method call interrupted by disconnect").
    Interrupted,
    /// The call was made after the connection had died
    /// (libmultiprocess: "IPC client method called after disconnect").
    AfterDisconnect,
}

impl fmt::Display for DisconnectPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectPhase::Interrupted => f.write_str("call interrupted by disconnect"),
            DisconnectPhase::AfterDisconnect => f.write_str("called after disconnect"),
        }
    }
}

/// Everything that can go wrong with a connection or a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer went away (closed, crashed, killed) or this side shut down.
    #[error("{site}: {phase}")]
    Disconnected {
        /// The call that saw the disconnect.
        site: CallSite,
        /// Whether the call was in flight or made afterwards.
        phase: DisconnectPhase,
    },

    /// The peer ran the call and it failed there; `message` is the peer's.
    #[error("{site}: remote failure: {message}")]
    Remote {
        /// The call that failed.
        site: CallSite,
        /// The peer's error message.
        message: String,
    },

    /// An implementation of a generated trait failed, with `message`: what a
    /// server method returns to fail a call. The server adapter sends
    /// `message` to the caller, which sees it as [`Error::Remote`]. Made with
    /// [`Error::failed`] or from a `String` or `&str` (so `?` works on a
    /// `Result<_, String>` inside an implementation).
    #[error("{message}")]
    Failed {
        /// What went wrong, for the caller.
        message: String,
    },

    /// A request or reply was malformed or not allowed (missing Context,
    /// a Thread this connection did not make, a value out of range, ...).
    #[error("{site}: bad request: {message}")]
    BadRequest {
        /// The call that was refused.
        site: CallSite,
        /// What was wrong with it.
        message: String,
    },

    /// A bound on what one side may make the other hold or do was reached
    /// (nesting depth, queued calls, server threads, ...); `message` names
    /// the limit. The call was not run; the connection goes on.
    #[error("{site}: limit reached: {message}")]
    LimitReached {
        /// The call that was refused.
        site: CallSite,
        /// Which limit, and its value.
        message: String,
    },

    /// No reply came within the call's timeout (see
    /// [`Remote::with_timeout`](crate::Remote::with_timeout)). The call was
    /// cancelled: its reply promise was dropped, so the peer got `Finish`
    /// for it (a call still queued there never runs; a running one sees
    /// its [`CancelToken`](crate::CancelToken) cancelled).
    #[error("{site}: no reply within the timeout of {timeout:?}; the call was cancelled")]
    DeadlineExceeded {
        /// The call that timed out.
        site: CallSite,
        /// The timeout it was made with.
        timeout: std::time::Duration,
    },

    /// A blocking call was made on the event-loop thread, where waiting for
    /// the reply would stop the loop that must deliver it.
    #[error("{site}: synchronous call made on the event-loop thread (use the async method there)")]
    OnEventLoop {
        /// The call that was refused.
        site: CallSite,
    },

    /// Code of this process panicked while preparing or finishing the call
    /// on the event loop (a bug in an adapter); the loop itself goes on.
    #[error("{site}: panicked on the event loop: {message}")]
    Panicked {
        /// The call whose handling panicked.
        site: CallSite,
        /// The panic message.
        message: String,
    },

    /// An operating-system I/O error (socket, spawn, listen).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A threading failure (a thread could not start, its mailbox closed).
    #[error(transparent)]
    Thread(#[from] mp_thread::Error),
}

impl Error {
    /// An implementation's failure: the caller sees [`Error::Remote`] with
    /// `message`.
    ///
    /// ```
    /// let e = mp_ipc::Error::failed("no such account");
    /// assert_eq!(e.to_string(), "no such account");
    /// ```
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
        }
    }

    /// A short, stable name for the error's variant: `disconnected`,
    /// `remote`, `failed`, `bad_request`, `limit_reached`,
    /// `deadline_exceeded`, `on_event_loop`, `panicked`, `io` or `thread`.
    /// It is the `kind` label of the `mp_ipc_call_errors_total` metric.
    ///
    /// ```
    /// let e = mp_ipc::Error::failed("no such account");
    /// assert_eq!(e.kind(), "failed");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Disconnected { .. } => "disconnected",
            Error::Remote { .. } => "remote",
            Error::Failed { .. } => "failed",
            Error::BadRequest { .. } => "bad_request",
            Error::LimitReached { .. } => "limit_reached",
            Error::DeadlineExceeded { .. } => "deadline_exceeded",
            Error::OnEventLoop { .. } => "on_event_loop",
            Error::Panicked { .. } => "panicked",
            Error::Io { .. } => "io",
            Error::Thread(_) => "thread",
        }
    }

    /// True for [`Error::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn interrupted(site: CallSite) -> Error {
        Error::Disconnected {
            site,
            phase: DisconnectPhase::Interrupted,
        }
    }

    pub(crate) fn after_disconnect(site: CallSite) -> Error {
        Error::Disconnected {
            site,
            phase: DisconnectPhase::AfterDisconnect,
        }
    }

    /// Classifies a Cap'n Proto error seen by a call at `site`.
    pub fn from_capnp(site: CallSite, e: capnp::Error) -> Error {
        match e.kind {
            capnp::ErrorKind::Disconnected => Error::interrupted(site),
            kind => {
                let message = e.extra;
                let message = message
                    .strip_prefix("remote exception: ")
                    .unwrap_or(&message);
                if let Some(rest) = message.strip_prefix(LIMIT_TAG) {
                    Error::LimitReached {
                        site,
                        message: rest.to_string(),
                    }
                } else if let Some(rest) = message.strip_prefix(BAD_REQUEST_TAG) {
                    Error::BadRequest {
                        site,
                        message: rest.to_string(),
                    }
                } else if kind == capnp::ErrorKind::Unimplemented {
                    Error::BadRequest {
                        site,
                        message: format!("not implemented by the peer: {message}"),
                    }
                } else {
                    Error::Remote {
                        site,
                        message: message.to_string(),
                    }
                }
            }
        }
    }
}

/// Prefix that marks a server's "you sent something invalid" error on the
/// wire, so the client can tell it from a failure inside the method.
pub(crate) const BAD_REQUEST_TAG: &str = "bad request: ";

/// Prefix that marks a "limit reached" error on the wire.
pub(crate) const LIMIT_TAG: &str = "limit reached: ";

/// The wire error for a call refused because a limit was reached; the
/// client sees it as [`Error::LimitReached`] with `message`.
pub fn limit_reached(message: impl fmt::Display) -> capnp::Error {
    capnp::Error::failed(format!("{LIMIT_TAG}{message}"))
}

/// The wire error a server adapter returns for a request it refuses (a
/// missing or malformed field, a value out of range). The client sees it as
/// [`Error::BadRequest`] with `message`.
pub fn bad_request(message: impl fmt::Display) -> capnp::Error {
    capnp::Error::failed(format!("{BAD_REQUEST_TAG}{message}"))
}

impl From<String> for Error {
    /// [`Error::failed`] with this message.
    fn from(message: String) -> Error {
        Error::Failed { message }
    }
}

impl From<&str> for Error {
    /// [`Error::failed`] with this message.
    fn from(message: &str) -> Error {
        Error::failed(message)
    }
}

impl From<Error> for capnp::Error {
    /// How a local error travels back to a peer when a server adapter hits it
    /// (for example a disconnect while wrapping a capability it received).
    fn from(e: Error) -> capnp::Error {
        match e {
            Error::Disconnected { .. } => capnp::Error::disconnected(e.to_string()),
            Error::BadRequest { message, .. } => bad_request(message),
            Error::LimitReached { message, .. } => limit_reached(message),
            Error::Failed { message } => capnp::Error::failed(message),
            other => capnp::Error::failed(other.to_string()),
        }
    }
}
