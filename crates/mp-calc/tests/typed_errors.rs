//! Generated traits and clients share one typed error, `mp_ipc::Error`: an
//! implementation's failure reaches the caller as a remote failure carrying
//! its message; a disconnect stays a disconnect, through a trait object too;
//! and a disconnect that an implementation meets on another connection is a
//! failure of the call, never mistaken for a disconnect of the caller's own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{in_process, watchdog};
use mp_calc::{Calculator, CalculatorClient, Callback};
use mp_ipc::{CallSite, DisconnectPhase, Error, EventLoop};

#[test]
fn an_implementations_failure_arrives_as_a_remote_failure_with_its_message() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (_server, init) = in_process(&server_loop, &client_loop);
        let calc = init.make_calculator().unwrap();
        match calc.fail("no such account") {
            Err(Error::Remote { site, message }) => {
                assert_eq!(site, CallSite::new("Calculator", "fail"));
                assert_eq!(message, "no such account");
            }
            other => panic!("expected a remote failure, got {other:?}"),
        }
        // An overflow the implementation reports with `Error::failed`.
        match calc.add(i64::MAX, 1) {
            Err(Error::Remote { message, .. }) => {
                assert!(message.contains("overflows"), "{message}")
            }
            other => panic!("expected a remote failure, got {other:?}"),
        }
    });
}

#[test]
fn a_peers_object_behind_the_trait_still_tells_a_disconnect_apart() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (server, init) = in_process(&server_loop, &client_loop);
        // The client stands in for a local implementation.
        let calc: Arc<dyn Calculator> = Arc::new(init.make_calculator().unwrap());
        assert_eq!(calc.add(2, 3).unwrap(), 5);
        match calc.fail("refused".to_string()) {
            Err(Error::Remote { message, .. }) => assert_eq!(message, "refused"),
            other => panic!("expected a remote failure, got {other:?}"),
        }
        server.close();
        assert!(init
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(30)));
        match calc.add(2, 3) {
            Err(e @ Error::Disconnected { .. }) => assert!(e.is_disconnected()),
            other => panic!("expected a disconnect, got {other:?}"),
        }
    });
}

/// A callback that calls a calculator on another, dead, connection.
struct CallsTheDead(CalculatorClient);

impl Callback for CallsTheDead {
    fn step(&self, n: u32) -> Result<u32, Error> {
        let sum = self.0.add(i64::from(n), 1)?;
        Ok(sum as u32)
    }
}

#[test]
fn a_disconnect_met_elsewhere_is_a_failure_of_the_call_not_of_the_callers_connection() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (_server, init) = in_process(&server_loop, &client_loop);
        let calc = init.make_calculator().unwrap();

        let (dead_server, dead_init) = in_process(&server_loop, &client_loop);
        let dead_calc = dead_init.make_calculator().unwrap();
        dead_server.close();
        assert!(dead_init
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(30)));
        match dead_calc.add(1, 1) {
            Err(Error::Disconnected { phase, .. }) => {
                assert_eq!(phase, DisconnectPhase::AfterDisconnect)
            }
            other => panic!("expected a disconnect, got {other:?}"),
        }

        // countdown -> (server) callback.step -> (client) dead_calc.add.
        match calc.countdown(4, Arc::new(CallsTheDead(dead_calc))) {
            Err(Error::Remote { site, message }) => {
                assert_eq!(site, CallSite::new("Calculator", "countdown"));
                assert!(
                    message.contains("Calculator.add") && message.contains("after disconnect"),
                    "the message names what broke: {message}"
                );
            }
            other => panic!("expected a remote failure, got {other:?}"),
        }
        // The caller's own connection is fine.
        assert!(!init.connection().is_disconnected());
        assert_eq!(calc.add(2, 3).unwrap(), 5);
    });
}
