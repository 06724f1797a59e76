//! Smaller pieces of the mp-ipc API that adapters and generated code use.

mod common;

use std::time::Duration;

use common::{in_process, watchdog};
use mp_calc::calc_capnp::calc_init;
use mp_ipc::codegen_support::send_request;
use mp_ipc::{bad_request, CallSite, DisconnectPhase, Error, EventLoop};

#[test]
fn bootstrap_without_construct_gives_a_clear_error_for_mapped_calls() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (_server, init) = in_process(&server_loop, &client_loop);
        // A second handle to the same root, straight from the bootstrap.
        let root = init.connection().bootstrap::<calc_init::Client>().unwrap();
        // This connection did exchange thread maps (through `init`), so a
        // mapped call through the raw root works...
        const SITE: CallSite = CallSite::new("CalcInit", "makeCalculator");
        let made = root.call(SITE, |cap, setup| {
            let mut req = cap.make_calculator_request();
            setup.context()?.fill(req.get().init_context());
            Ok(send_request(SITE, req, |_| Ok(())))
        });
        assert!(made.is_ok(), "{made:?}");

        // ...while on a connection that never did, the same call says why it cannot run.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let _server2 = mp_calc::serve(&server_loop, a).unwrap();
        let conn = mp_ipc::Connection::builder(&client_loop)
            .open(b, mp_ipc::Side::Client)
            .unwrap();
        let root = conn.bootstrap::<calc_init::Client>().unwrap();
        let refused = root.call(SITE, |cap, setup| {
            let mut req = cap.make_calculator_request();
            setup.context()?.fill(req.get().init_context());
            Ok(send_request(SITE, req, |_| Ok(())))
        });
        match refused {
            Err(Error::BadRequest { message, .. }) => {
                assert!(message.contains("ThreadMap is unknown"), "{message}")
            }
            other => panic!("expected a bad request naming the missing ThreadMap, got {other:?}"),
        }
    });
}

#[test]
fn errors_cross_the_wire_as_their_kind() {
    let site = CallSite::new("Test", "method");
    let wire: capnp::Error = Error::Disconnected {
        site,
        phase: DisconnectPhase::Interrupted,
    }
    .into();
    assert_eq!(wire.kind, capnp::ErrorKind::Disconnected);
    assert!(Error::from_capnp(site, wire).is_disconnected());

    let refused = Error::from_capnp(site, bad_request("field `x` is out of range"));
    match refused {
        Error::BadRequest { message, .. } => assert_eq!(message, "field `x` is out of range"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    let relayed: capnp::Error = Error::BadRequest {
        site,
        message: "no such thing".into(),
    }
    .into();
    assert!(
        matches!(Error::from_capnp(site, relayed), Error::BadRequest { message, .. } if message == "no such thing")
    );
}
