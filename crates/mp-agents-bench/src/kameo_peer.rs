//! kameo fixtures: `ask` ping-pong to a ponger actor, `tell` burst into a
//! sink actor (unbounded mailboxes, as the other peers have).

use crossbeam_channel::Sender;
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;
use tokio::runtime::Runtime;

use crate::rt::{local, Remote};
use crate::Threads;

#[derive(Actor)]
struct Ponger;

struct Ping(u64);

impl Message<Ping> for Ponger {
    type Reply = u64;

    async fn handle(&mut self, ping: Ping, _: &mut Context<Self, u64>) -> u64 {
        ping.0
    }
}

/// The bench thread's runtime asks; the ponger runs on it ([`Threads::One`])
/// or on a runtime of its own ([`Threads::Two`]).
pub struct PingPong {
    ponger: ActorRef<Ponger>,
    rt: Runtime,
    _remote: Option<Remote>,
}

impl PingPong {
    /// Spawns the ponger.
    pub fn new(threads: Threads) -> PingPong {
        let rt = local();
        let remote = (threads == Threads::Two).then(Remote::new);
        let ponger = {
            let _in = match &remote {
                None => rt.enter(),
                Some(r) => r.handle.enter(),
            };
            Ponger::spawn_with_mailbox(Ponger, mailbox::unbounded())
        };
        PingPong {
            ponger,
            rt,
            _remote: remote,
        }
    }

    /// `rounds` round trips; returns the replies received.
    pub fn run(&mut self, rounds: u64) -> u64 {
        let ponger = &self.ponger;
        self.rt.block_on(async {
            let mut pongs = 0;
            for n in 0..rounds {
                assert_eq!(ponger.ask(Ping(n)).await.unwrap(), n);
                pongs += 1;
            }
            pongs
        })
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        self.ponger.kill();
    }
}

#[derive(Actor, Default)]
struct Sink {
    expect: u64,
    got: u64,
    done: Option<Sender<u64>>,
}

struct Expect(u64, Sender<u64>);

struct Item(#[allow(dead_code)] u64);

impl Message<Expect> for Sink {
    type Reply = ();

    async fn handle(&mut self, Expect(n, done): Expect, _: &mut Context<Self, ()>) {
        (self.expect, self.got, self.done) = (n, 0, Some(done));
    }
}

impl Message<Item> for Sink {
    type Reply = ();

    async fn handle(&mut self, _: Item, _: &mut Context<Self, ()>) {
        self.got += 1;
        if self.got == self.expect {
            let _ = self.done.take().unwrap().send(self.got);
        }
    }
}

/// A sink actor on a runtime thread of its own; the bench thread tells.
pub struct Burst {
    sink: ActorRef<Sink>,
    _remote: Remote,
}

impl Burst {
    /// Spawns the sink.
    pub fn new() -> Burst {
        let remote = Remote::new();
        let sink = {
            let _in = remote.handle.enter();
            Sink::spawn_with_mailbox(Sink::default(), mailbox::unbounded())
        };
        Burst {
            sink,
            _remote: remote,
        }
    }

    /// Tells `n` (≥ 1) items; returns how many the sink counted.
    pub fn run(&mut self, n: u64) -> u64 {
        let (done, wait) = crossbeam_channel::bounded(1);
        self.sink.tell(Expect(n, done)).try_send().unwrap();
        for i in 0..n {
            self.sink.tell(Item(i)).try_send().unwrap();
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
        self.sink.kill();
    }
}
