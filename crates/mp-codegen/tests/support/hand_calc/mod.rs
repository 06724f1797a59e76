//! The foundation's hand-written adapter for `calc.capnp` (mp-test-calc served
//! and called it before mp-codegen existed; mp-test-calc now uses generated
//! code). Kept as the baseline the generated code is held to: the
//! `generated_vs_hand` benchmark measures both on the same methods, and
//! `calc_roundtrip.rs` drives each against the other over the wire. The
//! including crate must provide capnpc's types as `crate::calc_capnp`.

#![allow(dead_code)]

pub mod client;
pub mod server;
pub mod service;

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use mp_ipc::codegen_support::send_request;
use mp_ipc::{CallSite, Connection, Error, EventLoop, Remote, Side};

use crate::calc_capnp::calc_init;
pub use client::CalcInitClient;

/// Serves a calculator through the hand-written server on `stream`.
pub fn serve(event_loop: &EventLoop, stream: UnixStream) -> Result<Connection, Error> {
    let service = Arc::new(service::CalcService);
    Connection::builder(event_loop)
        .name("hand-server")
        .serve(move |conn| server::CalcInitServer::client(conn, service))
        .open(stream, Side::Server)
}

/// Connects the hand-written client on `stream` and exchanges thread maps.
pub fn connect(event_loop: &EventLoop, stream: UnixStream) -> Result<CalcInitClient, Error> {
    const SITE: CallSite = CallSite::new("CalcInit", "construct");
    let connection = Connection::builder(event_loop)
        .name("hand-client")
        .open(stream, Side::Client)?;
    let remote = connection.call(SITE, |setup| {
        let conn = setup.conn().clone();
        let init: calc_init::Client = conn.peer_bootstrap().ok_or(Error::BadRequest {
            site: SITE,
            message: "the peer offers no bootstrap object".into(),
        })?;
        let mut req = init.construct_request();
        req.get().set_thread_map(conn.thread_map_client());
        let reply = send_request(SITE, req, |r| r.get_thread_map());
        Ok(Box::pin(async move {
            let theirs = reply.await?;
            conn.set_peer_thread_map(theirs);
            Remote::new(&conn, init)
        }))
    })?;
    Ok(CalcInitClient { remote })
}
