//! Schema evolution: `blocks_v1.capnp` and `blocks_v2.capnp`
//! (`tests/data/schema`) are two versions of one interface. The newer one's
//! `BlockSink.submitBlock` gained a parameter with a default, and it has a method the
//! older lacks. A client generated from either version works against a
//! server generated from the other: an added parameter reads as its
//! default where the client did not send it, and a method the peer lacks
//! is an "unimplemented" error naming `Interface.method`.

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use mp_ipc::{Connection, Error, EventLoop, Side};

#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod blocks_v1_capnp {
    include!("data/blocks_v1_capnp.rs");
}

#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod blocks_v2_capnp {
    include!("data/blocks_v2_capnp.rs");
}

/// mp-codegen's code for the older version.
#[allow(dead_code)]
mod blocks_v1_mp {
    include!("data/blocks_v1_mp.rs");
}

/// mp-codegen's code for the newer version.
#[allow(dead_code)]
mod blocks_v2_mp {
    include!("data/blocks_v2_mp.rs");
}

/// The older init: makes `OldSink`s.
struct OldInit;

impl blocks_v1_mp::BlockInit for OldInit {
    fn make_sink(&self) -> Result<Arc<dyn blocks_v1_mp::BlockSink>, mp_ipc::Error> {
        Ok(Arc::new(OldSink))
    }
}

/// The newer init: hands out one `NewSink`.
struct NewInit(Arc<NewSink>);

impl blocks_v2_mp::BlockInit for NewInit {
    fn make_sink(&self) -> Result<Arc<dyn blocks_v2_mp::BlockSink>, mp_ipc::Error> {
        Ok(self.0.clone())
    }
}

/// The older server: accepts non-empty blocks.
struct OldSink;

impl blocks_v1_mp::BlockSink for OldSink {
    fn submit_block(&self, block: Vec<u8>) -> Result<bool, mp_ipc::Error> {
        Ok(!block.is_empty())
    }
}

/// The newer server: counts accepted blocks and the precious ones.
#[derive(Default)]
struct NewSink {
    accepted: AtomicI32,
    precious: AtomicI32,
}

impl blocks_v2_mp::BlockSink for NewSink {
    fn submit_block(&self, block: Vec<u8>, precious: bool) -> Result<bool, mp_ipc::Error> {
        if precious {
            self.precious.fetch_add(1, Ordering::SeqCst);
        }
        if block.is_empty() {
            return Ok(false);
        }
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }

    fn tip_height(&self) -> Result<i32, mp_ipc::Error> {
        Ok(self.accepted.load(Ordering::SeqCst))
    }
}

/// Serves what `serve` makes on one end of a socket pair and hands the
/// other end's connection to `body`.
fn pair(
    serve: impl Fn(
            &std::rc::Rc<mp_ipc::codegen_support::LoopConnection>,
        ) -> mp_ipc::capnp::capability::Client
        + Send
        + 'static,
    body: impl FnOnce(&Connection) + Send + 'static,
) {
    watchdog(move || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let _server = Connection::builder(&server_loop)
            .serve(serve)
            .open(a, Side::Server)
            .unwrap();
        let conn = Connection::builder(&client_loop)
            .open(b, Side::Client)
            .unwrap();
        body(&conn);
        conn.close();
    });
}

#[test]
fn a_newer_client_works_against_an_older_server() {
    pair(
        |conn| blocks_v1_mp::BlockInitServer::bootstrap(conn, Arc::new(OldInit)),
        |conn| {
            let init = blocks_v2_mp::BlockInitClient::connect(conn).unwrap();
            let sink = init.make_sink().unwrap();
            // The older server does not read `precious`.
            assert!(sink.submit_block(b"block", true).unwrap());
            assert!(!sink.submit_block(b"", false).unwrap());
            // A method the older server lacks.
            let err = sink.tip_height().unwrap_err();
            assert!(matches!(err, Error::BadRequest { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains("BlockSink.tipHeight"), "{message}");
            assert!(message.contains("not implemented by the peer"), "{message}");
            // The connection is still good.
            assert!(sink.submit_block(b"again", false).unwrap());
        },
    );
}

#[test]
fn an_older_client_works_against_a_newer_server() {
    let sink = Arc::new(NewSink::default());
    let served = sink.clone();
    pair(
        move |conn| {
            blocks_v2_mp::BlockInitServer::bootstrap(conn, Arc::new(NewInit(served.clone())))
        },
        |conn| {
            let old = blocks_v1_mp::BlockInitClient::connect(conn)
                .unwrap()
                .make_sink()
                .unwrap();
            assert!(old.submit_block(b"one").unwrap());
            assert!(old.submit_block(b"two").unwrap());
            assert!(!old.submit_block(b"").unwrap());
            // The same server through the newer client: it counted both.
            let new = blocks_v2_mp::BlockInitClient::connect(conn)
                .unwrap()
                .make_sink()
                .unwrap();
            assert_eq!(new.tip_height().unwrap(), 2);
            assert!(new.submit_block(b"three", true).unwrap());
        },
    );
    // The older client never sent `precious`: it read as its default.
    assert_eq!(
        sink.precious.load(Ordering::SeqCst),
        1,
        "only the newer client's call was precious"
    );
    assert_eq!(sink.accepted.load(Ordering::SeqCst), 3);
}
