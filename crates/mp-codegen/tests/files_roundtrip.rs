//! Interfaces across schema files: `hub.capnp`'s `Hub` returns and takes
//! `remote.capnp`'s `Echo` (the shape of Bitcoin Core's `init.capnp` making
//! an `Echo`). Both files are generated from one request, included as the
//! sibling modules `hub_mp` and `remote_mp`.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use mp_ipc::{Connection, EventLoop, Side};

/// capnpc's code for `hub.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod hub_capnp {
    include!("data/hub_capnp.rs");
}

/// capnpc's code for `remote.capnp`.
#[allow(dead_code, missing_docs, unused_imports, clippy::all)]
mod remote_capnp {
    include!("data/remote_capnp.rs");
}

/// mp-codegen's code for `hub.capnp`.
#[allow(dead_code)]
mod hub_mp {
    include!("data/hub_mp.rs");
}

/// mp-codegen's code for `remote.capnp`.
#[allow(dead_code)]
mod remote_mp {
    include!("data/remote_mp.rs");
}

use hub_mp::{Hub, HubClient, HubServer};
use remote_mp::{Echo, EchoClient};

struct HubImp;

impl Hub for HubImp {
    fn make_echo(&self) -> Result<Arc<dyn Echo>, mp_ipc::Error> {
        Ok(Arc::new(Prefix("server")))
    }

    fn relay(&self, echo: EchoClient, text: String) -> Result<String, mp_ipc::Error> {
        echo.echo(&text)
    }

    fn find_echo(&self, exists: bool) -> Result<Option<Arc<dyn Echo>>, mp_ipc::Error> {
        Ok(exists.then(|| Arc::new(Prefix("found")) as Arc<dyn Echo>))
    }
}

struct Prefix(&'static str);

impl Echo for Prefix {
    fn echo(&self, text: String) -> Result<String, mp_ipc::Error> {
        Ok(format!("{}:{text}", self.0))
    }

    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        Ok(())
    }
}

/// The client's own Echo, which must run on the thread waiting in `relay`.
struct OnThread(ThreadId);

impl Echo for OnThread {
    fn echo(&self, text: String) -> Result<String, mp_ipc::Error> {
        if std::thread::current().id() == self.0 {
            Ok(format!("client:{text}"))
        } else {
            Err("callback ran on another thread".into())
        }
    }

    fn destroy(&self) -> Result<(), mp_ipc::Error> {
        Ok(())
    }
}

#[test]
fn interfaces_from_another_file_in_both_directions() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| {
            let server_loop = EventLoop::new("server-loop").unwrap();
            let client_loop = EventLoop::new("client-loop").unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            let _server = Connection::builder(&server_loop)
                .serve(|conn| HubServer::bootstrap(conn, Arc::new(HubImp)))
                .open(a, Side::Server)
                .unwrap();
            let conn = Connection::builder(&client_loop)
                .open(b, Side::Client)
                .unwrap();
            let hub = HubClient::connect(&conn).unwrap();
            let echo = hub.make_echo().unwrap();
            assert_eq!(echo.echo("hi").unwrap(), "server:hi");
            echo.destroy().unwrap();
            let mine = Arc::new(OnThread(std::thread::current().id()));
            assert_eq!(hub.relay(mine, "back").unwrap(), "client:back");
            let found = hub.find_echo(true).unwrap().expect("an Echo");
            assert_eq!(found.echo("x").unwrap(), "found:x");
            assert!(hub.find_echo(false).unwrap().is_none());
        });
        let _ = tx.send(result);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("watchdog: test did not finish in 30 s"),
    }
}
