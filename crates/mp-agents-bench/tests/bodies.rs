//! Every benchmark body once, with a small N: the counts the receiving side
//! saw must be exact, and a second iteration on the same fixture too.

use mp_agents_bench::{actix_peer, agents, floor, kameo_peer, ractor_peer, Threads};

const ROUNDS: u64 = 1_000;
const BURST: u64 = 10_000;
const COOPS: u64 = 50;

fn twice(mut run: impl FnMut(u64) -> u64, n: u64) {
    assert_eq!(run(n), n);
    assert_eq!(run(n), n);
}

#[test]
fn mp_agents_ping_pong() {
    for threads in [Threads::One, Threads::Two] {
        let mut pp = agents::PingPong::new(threads);
        twice(|n| pp.run(n), ROUNDS);
    }
}

#[test]
fn mp_agents_burst() {
    let mut b = agents::Burst::new();
    twice(|n| b.run(n), BURST);
}

#[test]
fn mp_agents_coops() {
    let mut c = agents::Coops::new();
    twice(|n| c.run(n), COOPS);
    // A start and a finish hook per agent.
    assert_eq!(c.hooks(), 2 * 2 * COOPS * agents::COOP_AGENTS);
}

#[test]
fn crossbeam_floor() {
    let mut pp = floor::PingPong::new();
    twice(|n| pp.run(n), ROUNDS);
    let mut b = floor::Burst::new();
    twice(|n| b.run(n), BURST);
}

#[test]
fn actix() {
    for threads in [Threads::One, Threads::Two] {
        let mut pp = actix_peer::PingPong::new(threads);
        twice(|n| pp.run(n), ROUNDS);
    }
    let mut b = actix_peer::Burst::new();
    twice(|n| b.run(n), BURST);
}

#[test]
fn ractor() {
    for threads in [Threads::One, Threads::Two] {
        let mut pp = ractor_peer::PingPong::new(threads);
        twice(|n| pp.run(n), ROUNDS);
    }
    let mut b = ractor_peer::Burst::new();
    twice(|n| b.run(n), BURST);
}

#[test]
fn kameo() {
    for threads in [Threads::One, Threads::Two] {
        let mut pp = kameo_peer::PingPong::new(threads);
        twice(|n| pp.run(n), ROUNDS);
    }
    let mut b = kameo_peer::Burst::new();
    twice(|n| b.run(n), BURST);
}
