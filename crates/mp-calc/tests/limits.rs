//! A peer cannot queue calls on one server thread without bound: past
//! `Limits::max_queued_calls` calls are refused, and the thread serves again
//! once its queue drains.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::watchdog;
use mp_calc::{CalcInitServer, CalcInitService};
use mp_ipc::{Connection, Error, EventLoop, Limits, Side};

#[test]
fn calls_past_the_queue_limit_are_refused() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let service = Arc::new(CalcInitService);
        let _server = Connection::builder(&server_loop)
            .limits(Limits {
                max_queued_calls: 4,
                ..Limits::default()
            })
            .serve(move |conn| CalcInitServer::bootstrap(conn, service.clone()))
            .open(a, Side::Server)
            .unwrap();
        let init = mp_calc::connect(&client_loop, b).unwrap();
        let calc = init.make_calculator().unwrap();
        // Twelve slow calls at once, all on the connection's one async server thread.
        let outcomes = futures::executor::block_on(futures::future::join_all(
            (0..12).map(|_| calc.sleep_async(300)),
        ));
        let refused = outcomes
            .iter()
            .filter(|r| matches!(r, Err(Error::LimitReached { message, .. }) if message.contains("calls queued (Limits::max_queued_calls)")))
            .count();
        let served = outcomes.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            served + refused,
            12,
            "every call either ran or was refused: {outcomes:?}"
        );
        assert!(served >= 4, "up to the limit is served: {outcomes:?}");
        assert!(refused >= 1, "past the limit is refused: {outcomes:?}");
        // Drained: the thread takes calls again.
        futures::executor::block_on(calc.sleep_async(1)).unwrap();
        assert_eq!(calc.add(2, 2).unwrap(), 4);
    });
}
