//! An environment on a thread of its own (SObjectizer's `wrapped_env_t`):
//! started, used from outside (register cooperations, send), stopped and
//! joined through a [`WrappedEnv`] handle.
//!
//! Invariant 1 (no thread joins itself): the launch thread is joined only
//! from a thread that is none of the environment's own; a `WrappedEnv`
//! dropped on one of them (an agent holding it) stops the environment and
//! lets the launch thread finish on its own.

use std::thread::{JoinHandle, ThreadId};

use crate::env::{launch_with, Environment, Params, Report};
use crate::error::Error;

/// A running environment on a thread of its own. Dropping it stops the
/// environment and waits for it to finish (unless dropped on one of the
/// environment's own threads: then it stops it without waiting).
#[derive(Debug)]
pub struct WrappedEnv {
    env: Environment,
    thread: Option<JoinHandle<Result<Report, Error>>>,
    launch_thread: ThreadId,
}

impl WrappedEnv {
    /// Starts an empty environment that runs until stopped: autoshutdown
    /// is off, as in SObjectizer's `wrapped_env_t` (cooperations come
    /// later, from outside).
    pub fn start() -> Result<WrappedEnv, Error> {
        let params = Params {
            autoshutdown: false,
            ..Params::default()
        };
        WrappedEnv::start_with(params, |_| {})
    }

    /// Starts an environment with `params`, runs `init` on its thread, and
    /// returns once `init` has. A panic in `init` stops the environment
    /// and comes back as [`Error::InitPanicked`].
    pub fn start_with<F>(params: Params, init: F) -> Result<WrappedEnv, Error>
    where
        F: FnOnce(&Environment) + Send + 'static,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("mp-agents-wrapped".into())
            .spawn(move || {
                launch_with(params, move |env| {
                    init(env);
                    let _ = ready_tx.send(env.clone());
                })
            })
            .map_err(|source| {
                Error::Thread(mp_thread::Error::Spawn {
                    name: "mp-agents-wrapped".into(),
                    source,
                })
            })?;
        let launch_thread = thread.thread().id();
        match ready_rx.recv() {
            Ok(env) => Ok(WrappedEnv {
                env,
                thread: Some(thread),
                launch_thread,
            }),
            // `init` panicked, or the launch failed before it ran.
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) => Err(Error::Stopped),
                Err(panic) => Err(Error::InitPanicked(mp_thread::panic_message(&*panic))),
            },
        }
    }

    /// The environment: register cooperations, make mboxes, send.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Asks the environment to stop (see [`Environment::stop`]); returns
    /// at once.
    pub fn stop(&self) {
        self.env.stop();
    }

    /// Waits until the environment has stopped (by [`stop`](Self::stop),
    /// its agents, or autoshutdown) and returns what `launch` reported.
    /// Refused with [`Error::OwnThread`] on one of the environment's own
    /// threads, which it would wait for (the handle stays usable); a
    /// second call, once joined, fails with [`Error::Stopped`].
    pub fn join(&mut self) -> Result<Report, Error> {
        if self.on_own_thread() {
            return Err(Error::OwnThread);
        }
        let thread = self.thread.take().ok_or(Error::Stopped)?;
        match thread.join() {
            Ok(report) => report,
            Err(panic) => Err(Error::InitPanicked(mp_thread::panic_message(&*panic))),
        }
    }

    /// [`stop`](Self::stop), then [`join`](Self::join).
    pub fn stop_then_join(&mut self) -> Result<Report, Error> {
        self.stop();
        self.join()
    }

    fn on_own_thread(&self) -> bool {
        std::thread::current().id() == self.launch_thread || self.env.owns_current_thread()
    }
}

impl Drop for WrappedEnv {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.env.stop();
        if self.on_own_thread() {
            // Waiting here would wait for this very thread.
            tracing::warn!(
                "WrappedEnv dropped on one of its environment's threads; stopped, not joined"
            );
            return;
        }
        if let Err(panic) = thread.join() {
            tracing::error!(panic = %mp_thread::panic_message(&*panic), "the wrapped environment's thread panicked");
        }
    }
}
