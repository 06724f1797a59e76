//! actix fixtures: `Addr::send(..).await` ping-pong to a ponger actor,
//! `do_send` burst into a sink actor. The bench thread holds an actix
//! `System` and blocks on it for each iteration.

use actix::{Actor, Addr, Arbiter, Context, Handler, Message};
use actix_rt::SystemRunner;
use crossbeam_channel::Sender;

use crate::Threads;

struct Ponger;

impl Actor for Ponger {
    type Context = Context<Self>;
}

struct Ping(u64);

impl Message for Ping {
    type Result = u64;
}

impl Handler<Ping> for Ponger {
    type Result = u64;

    fn handle(&mut self, ping: Ping, _: &mut Context<Self>) -> u64 {
        ping.0
    }
}

/// The ponger lives on the bench thread's arbiter ([`Threads::One`]) or on
/// an arbiter of its own ([`Threads::Two`]).
pub struct PingPong {
    ponger: Option<Addr<Ponger>>,
    arbiter: Option<Arbiter>,
    system: SystemRunner,
}

impl PingPong {
    /// Starts the ponger.
    pub fn new(threads: Threads) -> PingPong {
        let system = actix_rt::System::new();
        let arbiter = (threads == Threads::Two).then(Arbiter::new);
        let ponger = match &arbiter {
            None => system.block_on(async { Ponger.start() }),
            Some(a) => Ponger::start_in_arbiter(&a.handle(), |_| Ponger),
        };
        PingPong {
            ponger: Some(ponger),
            arbiter,
            system,
        }
    }

    /// `rounds` round trips; returns the replies received.
    pub fn run(&mut self, rounds: u64) -> u64 {
        let ponger = self.ponger.as_ref().unwrap();
        self.system.block_on(async {
            let mut pongs = 0;
            for n in 0..rounds {
                assert_eq!(ponger.send(Ping(n)).await.unwrap(), n);
                pongs += 1;
            }
            pongs
        })
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        self.ponger.take();
        if let Some(a) = self.arbiter.take() {
            a.stop();
            a.join().unwrap();
        }
    }
}

#[derive(Default)]
struct Sink {
    expect: u64,
    got: u64,
    done: Option<Sender<u64>>,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

struct Expect(u64, Sender<u64>);

impl Message for Expect {
    type Result = ();
}

struct Item(#[allow(dead_code)] u64);

impl Message for Item {
    type Result = ();
}

impl Handler<Expect> for Sink {
    type Result = ();

    fn handle(&mut self, Expect(n, done): Expect, _: &mut Context<Self>) {
        (self.expect, self.got, self.done) = (n, 0, Some(done));
    }
}

impl Handler<Item> for Sink {
    type Result = ();

    fn handle(&mut self, _: Item, _: &mut Context<Self>) {
        self.got += 1;
        if self.got == self.expect {
            let _ = self.done.take().unwrap().send(self.got);
        }
    }
}

/// A sink actor on an arbiter of its own; the bench thread `do_send`s.
pub struct Burst {
    sink: Option<Addr<Sink>>,
    arbiter: Option<Arbiter>,
    _system: SystemRunner,
}

impl Burst {
    /// Starts the sink.
    pub fn new() -> Burst {
        let system = actix_rt::System::new();
        let arbiter = Arbiter::new();
        let sink = Sink::start_in_arbiter(&arbiter.handle(), |_| Sink::default());
        Burst {
            sink: Some(sink),
            arbiter: Some(arbiter),
            _system: system,
        }
    }

    /// Sends `n` (≥ 1) items; returns how many the sink counted.
    pub fn run(&mut self, n: u64) -> u64 {
        let sink = self.sink.as_ref().unwrap();
        let (done, wait) = crossbeam_channel::bounded(1);
        sink.do_send(Expect(n, done));
        for i in 0..n {
            sink.do_send(Item(i));
        }
        wait.recv().unwrap()
    }
}

impl Default for Burst {
    fn default() -> Burst {
        Burst::new()
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.sink.take();
        if let Some(a) = self.arbiter.take() {
            a.stop();
            a.join().unwrap();
        }
    }
}
