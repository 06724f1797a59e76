//! Async calls from tokio code: `Send` futures, awaited on a multi-thread
//! runtime, many in flight at once.

mod common;

use std::time::Duration;

use common::{spawn_calc, watchdog};
use mp_ipc::EventLoop;

#[test]
fn many_async_calls_in_flight_from_a_multi_thread_runtime() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        let (_child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sums = runtime.block_on(async {
            let tasks: Vec<_> = (0..256i64)
                .map(|i| tokio::spawn(calc.add_async(i, 1000)))
                .collect();
            let mut sums = Vec::new();
            for t in tasks {
                sums.push(t.await.unwrap().unwrap());
            }
            sums
        });
        assert_eq!(sums, (0..256).map(|i| i + 1000).collect::<Vec<_>>());
    });
}

#[test]
fn async_call_after_disconnect_fails() {
    watchdog(Duration::from_secs(60), || {
        let event_loop = EventLoop::new("client-loop").unwrap();
        let (mut child, init) = spawn_calc(&event_loop);
        let calc = init.make_calculator().unwrap();
        child.kill().unwrap();
        assert!(calc
            .connection()
            .wait_disconnected_timeout(Duration::from_secs(10)));
        let result = futures::executor::block_on(calc.add_async(1, 2));
        assert!(result.unwrap_err().is_disconnected());
    });
}
