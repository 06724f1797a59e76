//! Listening on a path: the socket file is private (0600), clients connect
//! by path, and a cap on concurrent connections pauses accepting at the cap.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, watchdog};
use mp_calc::CalcInitService;
use mp_ipc::listener::{connect_path, ListenOptions, Listener};
use mp_ipc::EventLoop;

fn socket_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mp-test-{}-{tag}.sock", std::process::id()))
}

fn listen(event_loop: &EventLoop, tag: &str, options: ListenOptions) -> Listener {
    let path = socket_path(tag);
    let _ = std::fs::remove_file(&path);
    let service = Arc::new(CalcInitService);
    Listener::bind(event_loop, &path, options, move |conn| {
        mp_calc::CalcInitServer::bootstrap(conn, service.clone())
    })
    .unwrap()
}

#[test]
fn listen_connect_and_call() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let listener = listen(&server_loop, "basic", ListenOptions::default());
        let mode = std::fs::metadata(listener.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "socket file is private by default");
        let init = mp_calc::connect(&client_loop, connect_path(listener.path()).unwrap()).unwrap();
        let calc = init.make_calculator().unwrap();
        assert_eq!(calc.add(1, 2).unwrap(), 3);
        assert!(eventually(Duration::from_secs(10), || listener
            .connections()
            .len()
            == 1));
        drop((calc, init));
        assert!(eventually(Duration::from_secs(10), || listener
            .connections()
            .is_empty()));
        let path = listener.path().to_path_buf();
        drop(listener);
        assert!(
            !path.exists(),
            "dropping the listener removes the socket file"
        );
    });
}

#[test]
fn connection_cap_pauses_accepting() {
    watchdog(Duration::from_secs(60), || {
        let server_loop = EventLoop::new("server-loop").unwrap();
        let client_loop = EventLoop::new("client-loop").unwrap();
        let options = ListenOptions {
            max_connections: Some(2),
            ..ListenOptions::default()
        };
        let listener = listen(&server_loop, "cap", options);
        let first = mp_calc::connect(&client_loop, connect_path(listener.path()).unwrap()).unwrap();
        let second =
            mp_calc::connect(&client_loop, connect_path(listener.path()).unwrap()).unwrap();
        assert!(eventually(Duration::from_secs(10), || listener
            .connections()
            .len()
            == 2));
        // The third connects at the socket level (the kernel's backlog) but is
        // not served until a slot frees: set up its session on another thread.
        let path = listener.path().to_path_buf();
        let loop3 = client_loop.clone();
        let third = std::thread::spawn(move || {
            let init = mp_calc::connect(&loop3, connect_path(&path).unwrap()).unwrap();
            init.make_calculator().unwrap().add(3, 4).unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            listener.connections().len(),
            2,
            "the cap holds while two are open"
        );
        assert!(
            !third.is_finished(),
            "the third is not served while the cap is reached"
        );
        drop(first);
        assert_eq!(third.join().unwrap(), 7, "served once a slot freed");
        drop(second);
    });
}

#[test]
fn binding_an_existing_path_is_a_clear_error() {
    let event_loop = EventLoop::new("server-loop").unwrap();
    let listener = listen(&event_loop, "twice", ListenOptions::default());
    let service = Arc::new(CalcInitService);
    let err = Listener::bind(
        &event_loop,
        listener.path(),
        ListenOptions::default(),
        move |conn| mp_calc::CalcInitServer::bootstrap(conn, service.clone()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("listening on"), "{err}");
}
