//! The client process: spawns `hello-server`, then calls it from three
//! threads at once. Each thread greets, asks which server thread served it
//! (the same one every time, a different one per client thread), and hands
//! over a callback that the server calls back on that very thread.
//!
//! Run: `cargo run -p hello --bin hello-client` (it finds `hello-server`
//! beside itself; `--server PATH` names another).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use hello::{thread_name, Audience, HelloInitClient};
use mp_ipc::{Connection, Error, EventLoop, Side};

/// The client's side of `greetAll`: hears each greeting on the thread that
/// called `greet_all`, while that thread waits for the reply.
struct Listener {
    caller: String,
}

impl Audience for Listener {
    fn hear(&self, greeting: String) -> Result<bool, Error> {
        let here = thread_name();
        if here != self.caller {
            // Cannot happen: mp-ipc runs a callback on the waiting thread.
            return Err(Error::failed(format!(
                "heard on {here}, not on {}",
                self.caller
            )));
        }
        println!("[{here}] heard: {greeting}");
        // Stop after "Grace".
        Ok(!greeting.contains("Grace"))
    }
}

/// What one client thread does.
fn caller(init: &HelloInitClient, me: &str) -> Result<(), Error> {
    let greeter = init.make_greeter("en")?;
    println!("[{me}] {}", greeter.greet(&format!("world from {me}"))?);
    let first = greeter.server_thread()?;
    let again = greeter.server_thread()?;
    assert_eq!(first, again, "one client thread, one server thread");
    println!("[{me}] served by server thread {first}");
    let names = ["Ada".to_string(), "Grace".to_string(), "Linus".to_string()];
    let audience = Arc::new(Listener {
        caller: me.to_string(),
    });
    let greeted = greeter.greet_all(&names, audience)?;
    println!("[{me}] greeted {greeted} of {}", names.len());
    Ok(())
}

fn server_path() -> Result<PathBuf, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let exe = std::env::current_exe().map_err(|e| Error::Io {
                context: "finding this program's path".into(),
                source: e,
            })?;
            Ok(exe.with_file_name("hello-server"))
        }
        [flag, path] if flag == "--server" => Ok(PathBuf::from(path)),
        [flag] if flag == "--server" => Err(usage("--server needs a path")),
        [other, ..] => Err(usage(&format!("unknown argument `{other}`"))),
    }
}

fn usage(what: &str) -> Error {
    Error::Io {
        context: format!("{what} (usage: hello-client [--server PATH])"),
        source: std::io::ErrorKind::InvalidInput.into(),
    }
}

fn run() -> Result<(), Error> {
    // Spawn the server with one end of a socketpair as `--ipc-fd N`.
    let (mut child, stream) = mp_ipc::process::spawn_with_ipc_fd(Command::new(server_path()?))?;
    println!(
        "[main] client process {}, server process {}",
        std::process::id(),
        child.pid()
    );
    let event_loop = EventLoop::new("hello-client")?;
    let connection = Connection::builder(&event_loop)
        .name("hello-client")
        .open(stream, Side::Client)?;
    // The server's HelloInit; connecting exchanges thread maps.
    let init = HelloInitClient::connect(&connection)?;

    // A failure inside the server comes back as a remote error with its message.
    match init.make_greeter("tlh") {
        Err(e @ Error::Remote { .. }) => println!("[main] as expected: {e}"),
        Err(e) => return Err(e),
        Ok(_) => println!("[main] unexpectedly, a Klingon greeter"),
    }

    // Three client threads call at once; the client is shared by reference.
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..=3)
            .map(|i| {
                let init = &init;
                std::thread::Builder::new()
                    .name(format!("caller-{i}"))
                    .spawn_scoped(scope, move || caller(init, &format!("caller-{i}")))
                    .expect("spawning a client thread")
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a client thread panicked"))
    })?;

    // Letting go of the last client closes the connection; the server
    // sees the disconnect and exits.
    drop(init);
    connection.close();
    let status = child.wait()?;
    println!("[main] server exited: {status}");
    if !status.success() {
        return Err(Error::Io {
            context: format!("hello-server failed ({status})"),
            source: std::io::ErrorKind::Other.into(),
        });
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("hello-client: {e}");
        std::process::exit(1);
    }
}
