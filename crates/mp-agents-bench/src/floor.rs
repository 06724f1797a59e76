//! The floor: crossbeam-channel ping-pong and burst between the bench
//! thread and one thread of its own (unbounded channels, as mailboxes are).

use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

/// The bench thread pings; a ponger thread answers each ping.
pub struct PingPong {
    ping: Option<Sender<u64>>,
    pong: Receiver<u64>,
    thread: Option<JoinHandle<()>>,
}

impl PingPong {
    /// Starts the ponger thread.
    pub fn new() -> PingPong {
        let (ping, pings) = unbounded::<u64>();
        let (pongs, pong) = unbounded();
        let thread = std::thread::spawn(move || {
            for n in pings {
                pongs.send(n).unwrap();
            }
        });
        PingPong {
            ping: Some(ping),
            pong,
            thread: Some(thread),
        }
    }

    /// `rounds` round trips; returns the pongs received.
    pub fn run(&mut self, rounds: u64) -> u64 {
        let ping = self.ping.as_ref().unwrap();
        let mut pongs = 0;
        for n in 0..rounds {
            ping.send(n).unwrap();
            assert_eq!(self.pong.recv().unwrap(), n);
            pongs += 1;
        }
        pongs
    }
}

impl Default for PingPong {
    fn default() -> PingPong {
        PingPong::new()
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        self.ping.take();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

enum Msg {
    Expect(u64, Sender<u64>),
    Item(#[allow(dead_code)] u64),
}

/// The bench thread sends; a sink thread counts.
pub struct Burst {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl Burst {
    /// Starts the sink thread.
    pub fn new() -> Burst {
        let (tx, rx) = unbounded();
        let thread = std::thread::spawn(move || {
            let (mut expect, mut got, mut done) = (0, 0, None);
            for m in rx {
                match m {
                    Msg::Expect(n, d) => (expect, got, done) = (n, 0, Some(d)),
                    Msg::Item(_) => {
                        got += 1;
                        if got == expect {
                            let _ = done.take().unwrap().send(got);
                        }
                    }
                }
            }
        });
        Burst {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Sends `n` (≥ 1) items; returns how many the sink counted.
    pub fn run(&mut self, n: u64) -> u64 {
        let tx = self.tx.as_ref().unwrap();
        let (done, wait) = crossbeam_channel::bounded(1);
        tx.send(Msg::Expect(n, done)).unwrap();
        for i in 0..n {
            tx.send(Msg::Item(i)).unwrap();
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
        self.tx.take();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}
