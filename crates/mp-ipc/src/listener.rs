//! Listening on and connecting to a filesystem path (Bitcoin Core's
//! `-ipcbind=unix:<path>` style).
//!
//! The socket file is created with mode 0600 by default (only the owner's
//! processes may connect). A cap limits concurrent connections (64 by
//! default): at the cap, accepting pauses until a connection ends. The listener holds every accepted connection
//! until it disconnects or the listener is dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use capnp_rpc::rpc_twoparty_capnp::Side;
use tokio::sync::Notify;

use crate::connection::{Connection, ConnectionBuilder};
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::limits::Limits;
use crate::loop_conn::LoopConnection;

/// How to listen.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Permission bits of the socket file (default 0o600).
    pub mode: u32,
    /// Most connections served at once (default 64); `None` for no cap.
    /// At the cap, accepting pauses until a connection ends: a client
    /// that connects meanwhile waits in the socket's backlog.
    pub max_connections: Option<usize>,
    /// Limits for each accepted connection.
    pub limits: Limits,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            mode: 0o600,
            max_connections: Some(64),
            limits: Limits::default(),
        }
    }
}

/// Makes the bootstrap capability for each accepted connection.
pub type ServeFn = Arc<dyn Fn(&Rc<LoopConnection>) -> capnp::capability::Client + Send + Sync>;

/// A listening socket. Dropping it stops accepting, removes the socket file
/// and closes the connections it accepted (unless a user holds them).
pub struct Listener {
    path: PathBuf,
    event_loop: EventLoop,
    stop: futures::channel::oneshot::Sender<()>,
    accepted: Arc<parking_lot::Mutex<HashMap<u64, Connection>>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("path", &self.path)
            .finish()
    }
}

impl Listener {
    /// Listens on `path` (which must not exist) and serves each connection
    /// with the capability `serve` makes for it.
    pub fn bind<F>(
        event_loop: &EventLoop,
        path: impl AsRef<Path>,
        options: ListenOptions,
        serve: F,
    ) -> Result<Listener, Error>
    where
        F: Fn(&Rc<LoopConnection>) -> capnp::capability::Client + Send + Sync + 'static,
    {
        let path = path.as_ref().to_path_buf();
        let std_listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| Error::io(format!("listening on {}", path.display()), e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(options.mode))
            .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("setting the listener non-blocking", e))?;
        let serve: ServeFn = Arc::new(serve);
        let accepted: Arc<parking_lot::Mutex<HashMap<u64, Connection>>> = Arc::default();
        let (stop, stop_rx) = futures::channel::oneshot::channel::<()>();
        let loop_handle = event_loop.clone();
        let held = accepted.clone();
        let name = path.display().to_string();
        event_loop.sync(move || -> Result<(), Error> {
            let listener = tokio::net::UnixListener::from_std(std_listener)
                .map_err(|e| Error::io("registering the listener with the event loop", e))?;
            let freed = Rc::new(Notify::new());
            let accept_loop = accept_loop(listener, loop_handle, options, serve, held, freed, name);
            EventLoop::spawn_local(async move {
                futures::pin_mut!(accept_loop);
                let _ = futures::future::select(accept_loop, stop_rx).await;
            });
            Ok(())
        })??;
        Ok(Listener {
            path,
            event_loop: event_loop.clone(),
            stop,
            accepted,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connections accepted and still open.
    pub fn connections(&self) -> Vec<Connection> {
        self.accepted.lock().values().cloned().collect()
    }

    /// The event loop that serves accepted connections.
    pub fn event_loop(&self) -> &EventLoop {
        &self.event_loop
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let (stop, _) = futures::channel::oneshot::channel();
        let _ = std::mem::replace(&mut self.stop, stop).send(());
        let _ = std::fs::remove_file(&self.path);
        let held: Vec<Connection> = self.accepted.lock().drain().map(|(_, c)| c).collect();
        for conn in &held {
            conn.close();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::UnixListener,
    event_loop: EventLoop,
    options: ListenOptions,
    serve: ServeFn,
    held: Arc<parking_lot::Mutex<HashMap<u64, Connection>>>,
    freed: Rc<Notify>,
    name: String,
) {
    let open = Rc::new(RefCell::new(0usize));
    loop {
        if let Some(cap) = options.max_connections {
            while *open.borrow() >= cap {
                freed.notified().await;
            }
        }
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of fds and the like: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(listener = %name, error = %e, "could not take accepted socket");
                continue;
            }
        };
        let serve = serve.clone();
        let built = ConnectionBuilder::new(&event_loop)
            .name(format!("{name}#accepted"))
            .limits(options.limits)
            .serve(move |conn| serve(conn))
            .open(stream, Side::Server);
        let conn = match built {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(listener = %name, error = %e, "could not set up accepted connection");
                continue;
            }
        };
        *open.borrow_mut() += 1;
        let id = conn.id();
        held.lock().insert(id, conn.clone());
        let weak_held = Arc::downgrade(&held);
        let open = open.clone();
        let freed = freed.clone();
        // Runs on the loop when the session ends: release the slot.
        let release: Box<dyn FnOnce()> = Box::new(move || {
            if let Some(held) = weak_held.upgrade() {
                held.lock().remove(&id);
            }
            *open.borrow_mut() -= 1;
            freed.notify_one();
        });
        match conn.shared.local.get() {
            Ok(local) => {
                if let Err(release) = local.add_callback(release) {
                    // Already gone: nothing will run it, so run it now.
                    release();
                }
            }
            Err(_) => unreachable!("the accept loop runs on the event loop"),
        }
    }
}

/// Connects to a listening path (blocking connect; fast for a local socket).
pub fn connect_path(path: impl AsRef<Path>) -> Result<UnixStream, Error> {
    let path = path.as_ref();
    UnixStream::connect(path).map_err(|e| Error::io(format!("connecting to {}", path.display()), e))
}
