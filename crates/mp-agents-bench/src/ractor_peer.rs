//! ractor fixtures: `call!` ping-pong to a ponger actor, `cast` burst into a
//! sink actor (ractor's default features).

use crossbeam_channel::Sender;
use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::runtime::Runtime;

use crate::rt::{local, Remote};
use crate::Threads;

struct Ponger;

enum PongerMsg {
    Ping(u64, RpcReplyPort<u64>),
}

impl Actor for Ponger {
    type Msg = PongerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<PongerMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<PongerMsg>,
        msg: PongerMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let PongerMsg::Ping(n, reply) = msg;
        let _ = reply.send(n);
        Ok(())
    }
}

/// The bench thread's runtime asks; the ponger runs on it ([`Threads::One`])
/// or on a runtime of its own ([`Threads::Two`]).
pub struct PingPong {
    ponger: ActorRef<PongerMsg>,
    rt: Runtime,
    remote: Option<Remote>,
}

impl PingPong {
    /// Spawns the ponger.
    pub fn new(threads: Threads) -> PingPong {
        let rt = local();
        let remote = (threads == Threads::Two).then(Remote::new);
        let spawn = async { Actor::spawn(None, Ponger, ()).await.unwrap().0 };
        let ponger = match &remote {
            None => rt.block_on(spawn),
            Some(r) => rt.block_on(r.handle.spawn(spawn)).unwrap(),
        };
        PingPong { ponger, rt, remote }
    }

    /// `rounds` round trips; returns the replies received.
    pub fn run(&mut self, rounds: u64) -> u64 {
        let ponger = &self.ponger;
        self.rt.block_on(async {
            let mut pongs = 0;
            for n in 0..rounds {
                assert_eq!(call!(ponger, PongerMsg::Ping, n).unwrap(), n);
                pongs += 1;
            }
            pongs
        })
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        self.ponger.stop(None);
        self.remote.take();
    }
}

enum SinkMsg {
    Expect(u64, Sender<u64>),
    Item(#[allow(dead_code)] u64),
}

struct Sink;

#[derive(Default)]
struct Count {
    expect: u64,
    got: u64,
    done: Option<Sender<u64>>,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = Count;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SinkMsg>, _: ()) -> Result<Count, ActorProcessingErr> {
        Ok(Count::default())
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        msg: SinkMsg,
        st: &mut Count,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SinkMsg::Expect(n, done) => {
                *st = Count {
                    expect: n,
                    got: 0,
                    done: Some(done),
                }
            }
            SinkMsg::Item(_) => {
                st.got += 1;
                if st.got == st.expect {
                    let _ = st.done.take().unwrap().send(st.got);
                }
            }
        }
        Ok(())
    }
}

/// A sink actor on a runtime thread of its own; the bench thread casts.
pub struct Burst {
    sink: ActorRef<SinkMsg>,
    _remote: Remote,
}

impl Burst {
    /// Spawns the sink.
    pub fn new() -> Burst {
        let remote = Remote::new();
        let sink = local()
            .block_on(
                remote
                    .handle
                    .spawn(async { Actor::spawn(None, Sink, ()).await.unwrap().0 }),
            )
            .unwrap();
        Burst {
            sink,
            _remote: remote,
        }
    }

    /// Casts `n` (≥ 1) items; returns how many the sink counted.
    pub fn run(&mut self, n: u64) -> u64 {
        let (done, wait) = crossbeam_channel::bounded(1);
        self.sink.cast(SinkMsg::Expect(n, done)).unwrap();
        for i in 0..n {
            self.sink.cast(SinkMsg::Item(i)).unwrap();
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
        self.sink.stop(None);
    }
}
