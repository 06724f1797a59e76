//! A peer SIGKILLed in the middle of calls: every blocked caller returns a
//! disconnect error (invariant 7), and the process then connects to a new
//! peer and works.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{spawn_calc, watchdog};
use mp_calc::Callback;
use mp_ipc::{DisconnectPhase, Error, EventLoop};

/// A callback that blocks its (client) thread inside a nested call, so the
/// kill also lands while callbacks are on the stack.
struct SleepInside(mp_calc::CalculatorClient);

impl Callback for SleepInside {
    fn step(&self, _n: u32) -> Result<u32, mp_ipc::Error> {
        self.0.sleep(60_000).map_err(|e| e.to_string())?;
        Ok(0)
    }
}

#[test]
fn blocked_callers_return_disconnected_and_a_new_peer_works() {
    watchdog(Duration::from_secs(120), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        for _ in 0..3 {
            let (mut child, init) = spawn_calc(&event_loop);
            let calc = init.make_calculator().unwrap();
            let ready = Arc::new(Barrier::new(7));
            let callers: Vec<_> = (0..6)
                .map(|i| {
                    let calc = calc.clone();
                    let ready = ready.clone();
                    std::thread::Builder::new()
                        .name(format!("caller-{i}"))
                        .spawn(move || {
                            // One warm-up call so the mapping exists before the kill.
                            calc.add(0, 0).unwrap();
                            ready.wait();
                            if i % 2 == 0 {
                                calc.sleep(60_000)
                            } else {
                                calc.countdown(1, Arc::new(SleepInside(calc.clone())))
                                    .map(|_| ())
                            }
                        })
                        .unwrap()
                })
                .collect();
            ready.wait();
            // Give the calls a moment to be in flight; if one is not yet, it
            // fails as "called after disconnect", which is also correct.
            std::thread::sleep(Duration::from_millis(100));
            child.kill().unwrap();
            for caller in callers {
                match caller.join().unwrap() {
                    Err(Error::Disconnected { phase, .. }) => {
                        assert!(matches!(
                            phase,
                            DisconnectPhase::Interrupted | DisconnectPhase::AfterDisconnect
                        ))
                    }
                    Err(Error::Remote { message, .. }) => {
                        // The nested call's disconnect reaches the outer call
                        // as the callback's failure text.
                        assert!(
                            message.contains("disconnect"),
                            "unexpected failure: {message}"
                        )
                    }
                    other => panic!("expected a disconnect error, got {other:?}"),
                }
            }
            child.wait().unwrap();
            assert!(calc
                .connection()
                .wait_disconnected_timeout(Duration::from_secs(10)));
            // After the disconnect, calls fail at once.
            assert!(matches!(
                calc.add(1, 1),
                Err(Error::Disconnected {
                    phase: DisconnectPhase::AfterDisconnect,
                    ..
                })
            ));
        }
        // And a fresh peer works.
        let (_child, init) = spawn_calc(&event_loop);
        assert_eq!(init.make_calculator().unwrap().add(40, 2).unwrap(), 42);
    });
}
