//! Message chains: overflow reactions, unbounded chains, receive limits and
//! timeouts, select, close (drop and retain) while receivers wait, many
//! senders, the environment closing its chains, and timers aimed at a
//! chain. Every test runs under a watchdog; none asserts a timing.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::watchdog;
use mp_agents::{
    case, from, from_all, launch, receive, select, ActiveObjDispatcher, Agent, CloseMode, Context,
    Environment, Handlers, Mchain, MchainParams, Overflow, ReceiveStatus, SendError, Sent,
};

const LIMIT: Duration = Duration::from_secs(60);
/// Long enough never to expire in a passing test.
const FOREVER: Duration = Duration::from_secs(3600);

/// Runs `body` inside an environment, then stops it.
fn in_env<F: FnOnce(&Environment) + Send + 'static>(body: F) {
    watchdog(LIMIT, move || {
        launch(move |env| {
            body(env);
            env.stop();
        })
        .unwrap();
    });
}

/// Takes every `u32` now in `ch`, in order.
fn drain_u32(ch: &Mchain) -> Vec<u32> {
    let mut got = Vec::new();
    let r = receive(
        from(ch).no_wait_on_empty(),
        Handlers::new().on(|n: u32| got.push(n)),
    );
    assert_eq!(r.status, ReceiveStatus::EmptyTimeout);
    got
}

#[test]
fn bounded_drop_newest() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::bounded(2).overflow(Overflow::DropNewest));
        assert_eq!(ch.send(1u32).unwrap(), Sent::Stored);
        assert_eq!(ch.send(2u32).unwrap(), Sent::Stored);
        assert_eq!(ch.send(3u32).unwrap(), Sent::DroppedNewest);
        assert_eq!(ch.len(), 2);
        assert_eq!(drain_u32(&ch), vec![1, 2]);
    });
}

#[test]
fn bounded_remove_oldest() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::bounded(2).overflow(Overflow::RemoveOldest));
        for n in 1..=2u32 {
            assert_eq!(ch.send(n).unwrap(), Sent::Stored);
        }
        assert_eq!(ch.send(3u32).unwrap(), Sent::RemovedOldest);
        assert_eq!(ch.send(4u32).unwrap(), Sent::RemovedOldest);
        assert_eq!(drain_u32(&ch), vec![3, 4]);
    });
}

#[test]
fn bounded_fail_hands_the_message_back() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::bounded(2).overflow(Overflow::Fail));
        ch.send(1u32).unwrap();
        ch.send(2u32).unwrap();
        match ch.send(3u32) {
            Err(SendError::Full(n)) => assert_eq!(n, 3),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(drain_u32(&ch), vec![1, 2]);
        // Room again.
        assert_eq!(ch.send(5u32).unwrap(), Sent::Stored);
    });
}

#[test]
fn bounded_fail_after_waiting_on_full() {
    in_env(|env| {
        let ch = env.create_mchain(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(Duration::from_millis(10)),
        );
        ch.send(1u32).unwrap();
        // Nobody receives: the wait ends and the reaction applies.
        assert!(matches!(ch.send(2u32), Err(SendError::Full(2))));
        assert_eq!(drain_u32(&ch), vec![1]);
    });
}

#[test]
fn a_sender_waiting_on_full_gets_room_from_a_receiver() {
    in_env(|env| {
        let ch = env.create_mchain(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
        );
        let tx = ch.clone();
        let sender = thread::spawn(move || {
            (0..100u32)
                .map(|n| tx.send(n).unwrap())
                .filter(|s| *s == Sent::Stored)
                .count()
        });
        let mut got = Vec::new();
        let r = receive(
            from(&ch).handle_n(100),
            Handlers::new().on(|n: u32| got.push(n)),
        );
        assert_eq!(r.status, ReceiveStatus::Limit);
        assert_eq!(sender.join().unwrap(), 100, "every send waited for room");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn a_sender_waiting_on_full_wakes_when_the_chain_closes() {
    in_env(|env| {
        let ch = env.create_mchain(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
        );
        ch.send(0u32).unwrap();
        let tx = ch.clone();
        let sender = thread::spawn(move || tx.send(1u32));
        ch.close(CloseMode::RetainContent);
        // Whether it was already waiting or not, it is refused.
        assert!(matches!(sender.join().unwrap(), Err(SendError::Closed(1))));
    });
}

/// Runs in a child process (see `bounded_abort_aborts_the_process`).
#[test]
fn overflow_abort_child() {
    if std::env::var_os("MP_MCHAIN_ABORT_CHILD").is_none() {
        return;
    }
    launch(|env| {
        let ch = env.create_mchain(MchainParams::bounded(1).overflow(Overflow::Abort));
        ch.send(1u32).unwrap();
        let _ = ch.send(2u32);
        unreachable!("the second send aborts the process");
    })
    .unwrap();
}

#[test]
fn bounded_abort_aborts_the_process() {
    watchdog(LIMIT, || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "overflow_abort_child", "--nocapture"])
            .env("MP_MCHAIN_ABORT_CHILD", "1")
            .output()
            .unwrap();
        assert!(!out.status.success());
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(libc_sigabrt()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("mchain overflow"), "stderr: {stderr}");
    });
}

#[cfg(unix)]
fn libc_sigabrt() -> i32 {
    6 // SIGABRT on every Unix this project runs on
}

#[test]
fn unbounded_takes_everything_in_order() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        for n in 0..10_000u32 {
            assert_eq!(ch.send(n).unwrap(), Sent::Stored);
        }
        assert_eq!(ch.len(), 10_000);
        assert_eq!(drain_u32(&ch), (0..10_000).collect::<Vec<_>>());
        assert!(ch.is_empty());
    });
}

#[test]
fn receive_dispatches_by_type_and_drops_unhandled_types() {
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    in_env(|env| {
        let drops = Arc::new(AtomicUsize::new(0));
        let ch = env.create_mchain(MchainParams::unbounded());
        ch.send(1u32).unwrap();
        ch.send(Tracked(drops.clone())).unwrap();
        ch.send(String::from("x")).unwrap();
        let (mut ints, mut strings) = (0, 0);
        let r = receive(
            from(&ch).no_wait_on_empty(),
            Handlers::new()
                .on(|_: u32| ints += 1)
                .on(|_: String| strings += 1),
        );
        assert_eq!((r.extracted, r.handled), (3, 2));
        assert_eq!((ints, strings), (1, 1));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "unhandled: dropped");
    });
}

#[test]
fn receive_empty_timeout_and_no_wait() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        let r = receive(
            from(&ch).empty_timeout(Duration::from_millis(10)),
            Handlers::new().on(|_: u32| ()),
        );
        assert_eq!((r.extracted, r.status), (0, ReceiveStatus::EmptyTimeout));
        let r = receive(
            from(&ch).no_wait_on_empty(),
            Handlers::new().on(|_: u32| ()),
        );
        assert_eq!((r.extracted, r.status), (0, ReceiveStatus::EmptyTimeout));
        // A message that is there is taken before the empty timeout counts.
        ch.send(7u32).unwrap();
        let r = receive(
            from(&ch).empty_timeout(Duration::ZERO),
            Handlers::new().on(|_: u32| ()),
        );
        assert_eq!((r.handled, r.status), (1, ReceiveStatus::EmptyTimeout));
    });
}

#[test]
fn receive_total_time_ends_a_busy_receive() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::bounded(16).wait_on_full(FOREVER));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, stop2) = (ch.clone(), stop.clone());
        let feeder = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                if tx.send(1u32).is_err() {
                    break;
                }
            }
        });
        // The chain never stays empty long, and there is no other limit:
        // only the total time ends this.
        let r = receive(
            from(&ch)
                .empty_timeout(FOREVER)
                .total_time(Duration::from_millis(50)),
            Handlers::new().on(|_: u32| ()),
        );
        assert_eq!(r.status, ReceiveStatus::TotalTime);
        stop.store(true, Ordering::SeqCst);
        ch.close(CloseMode::DropContent);
        feeder.join().unwrap();
    });
}

#[test]
fn receive_total_time_ends_a_wait_on_an_empty_chain() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        let r = receive(
            from(&ch).total_time(Duration::from_millis(10)),
            Handlers::new().on(|_: u32| ()),
        );
        assert_eq!((r.extracted, r.status), (0, ReceiveStatus::TotalTime));
    });
}

#[test]
fn handle_n_extract_n_and_stop_on() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        // a, b, a, b, ...: only u32 has a handler.
        for n in 0..10u32 {
            ch.send(n).unwrap();
            ch.send(n as u64).unwrap();
        }
        let mut seen = Vec::new();
        let r = receive(
            from(&ch).handle_n(3),
            Handlers::new().on(|n: u32| seen.push(n)),
        );
        assert_eq!(r.status, ReceiveStatus::Limit);
        assert_eq!((r.handled, r.extracted), (3, 5), "u32 u64 u32 u64 u32");
        assert_eq!(seen, vec![0, 1, 2]);

        let r = receive(from(&ch).extract_n(4), Handlers::new().on(|_: u32| ()));
        assert_eq!(
            (r.status, r.extracted, r.handled),
            (ReceiveStatus::Limit, 4, 2)
        );

        let count = std::cell::Cell::new(0);
        let r = receive(
            from(&ch).stop_on(|| count.get() == 2),
            Handlers::new().on(|_: u32| count.set(count.get() + 1)),
        );
        assert_eq!((r.status, r.handled), (ReceiveStatus::Stopped, 2));

        // handle_n(0) takes nothing.
        let r = receive(from(&ch).handle_n(0), Handlers::new().on(|_: u32| ()));
        assert_eq!((r.status, r.extracted), (ReceiveStatus::Limit, 0));
    });
}

#[test]
fn select_takes_from_whichever_chain_has_a_message() {
    #[derive(Debug, PartialEq)]
    enum Got {
        A(u32),
        B(u32),
    }
    in_env(|env| {
        let a = env.create_mchain(MchainParams::unbounded());
        let b = env.create_mchain(MchainParams::bounded(4));
        for n in 0..3u32 {
            a.send(n).unwrap();
        }
        b.send(100u32).unwrap();
        let got = std::cell::RefCell::new(Vec::new());
        let r = select(
            from_all().handle_n(4),
            [
                case(
                    &a,
                    Handlers::new().on(|n: u32| got.borrow_mut().push(Got::A(n))),
                ),
                case(
                    &b,
                    Handlers::new().on(|n: u32| got.borrow_mut().push(Got::B(n))),
                ),
            ],
        );
        assert_eq!((r.status, r.handled), (ReceiveStatus::Limit, 4));
        let mut got = got.into_inner();
        assert!(
            got.contains(&Got::B(100)),
            "the second chain is not starved"
        );
        got.retain(|g| matches!(g, Got::A(_)));
        assert_eq!(
            got,
            vec![Got::A(0), Got::A(1), Got::A(2)],
            "order per chain"
        );

        // Nothing left: the empty timeout ends it.
        let r = select(
            from_all().empty_timeout(Duration::from_millis(10)),
            [
                case(&a, Handlers::new().on(|_: u32| ())),
                case(&b, Handlers::new().on(|_: u32| ())),
            ],
        );
        assert_eq!((r.status, r.extracted), (ReceiveStatus::EmptyTimeout, 0));
    });
}

#[test]
fn a_waiting_select_wakes_for_a_message_on_any_chain() {
    in_env(|env| {
        let a = env.create_mchain(MchainParams::unbounded());
        let b = env.create_mchain(MchainParams::unbounded());
        let c = env.create_mchain(MchainParams::unbounded());
        let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
        let selector = thread::spawn(move || {
            let mut got = Vec::new();
            let got_ref = std::cell::RefCell::new(&mut got);
            let r = select(
                from_all().handle_n(30),
                [
                    case(
                        &a2,
                        Handlers::new().on(|n: u32| got_ref.borrow_mut().push(n)),
                    ),
                    case(
                        &b2,
                        Handlers::new().on(|n: u32| got_ref.borrow_mut().push(n)),
                    ),
                    case(
                        &c2,
                        Handlers::new().on(|n: u32| got_ref.borrow_mut().push(n)),
                    ),
                ],
            );
            (r, got)
        });
        // Sent one by one from another thread: the select mostly waits.
        for n in 0..10u32 {
            c.send(n).unwrap();
            thread::yield_now();
            b.send(100 + n).unwrap();
            a.send(200 + n).unwrap();
        }
        let (r, mut got) = selector.join().unwrap();
        assert_eq!((r.status, r.handled), (ReceiveStatus::Limit, 30));
        got.sort_unstable();
        let want: Vec<u32> = (0..10).chain(100..110).chain(200..210).collect();
        assert_eq!(got, want);
    });
}

#[test]
fn select_returns_closed_once_every_chain_is_closed_and_drained() {
    in_env(|env| {
        let a = env.create_mchain(MchainParams::unbounded());
        let b = env.create_mchain(MchainParams::unbounded());
        let (a2, b2) = (a.clone(), b.clone());
        let selector = thread::spawn(move || {
            let count = std::cell::Cell::new(0);
            let r = select(
                from_all(),
                [
                    case(&a2, Handlers::new().on(|_: u32| count.set(count.get() + 1))),
                    case(&b2, Handlers::new().on(|_: u32| count.set(count.get() + 1))),
                ],
            );
            (r, count.get())
        });
        a.send(1u32).unwrap();
        b.send(2u32).unwrap();
        a.close(CloseMode::RetainContent);
        b.send(3u32).unwrap();
        b.close(CloseMode::RetainContent);
        let (r, n) = selector.join().unwrap();
        assert!(r.is_closed());
        assert_eq!(n, 3, "retained messages are taken before closed");
    });
}

#[test]
fn close_with_drop_wakes_a_waiting_receiver() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    in_env(|env| {
        // An empty chain: the receiver waits with no timeout at all.
        let ch = env.create_mchain(MchainParams::unbounded());
        let rx = ch.clone();
        let receiver = thread::spawn(move || receive(from(&rx), Handlers::new().on(|_: u32| ())));
        ch.close(CloseMode::DropContent);
        let r = receiver.join().unwrap();
        assert_eq!((r.status, r.extracted), (ReceiveStatus::Closed, 0));

        // With messages in flight: each is either handled or dropped by
        // the close, never both, never lost.
        let drops = Arc::new(AtomicUsize::new(0));
        let ch = env.create_mchain(MchainParams::unbounded());
        let rx = ch.clone();
        let (tx_started, started) = mpsc::channel();
        let receiver = thread::spawn(move || {
            let _ = tx_started.send(());
            let mut handled = 0;
            let r = receive(
                from(&rx),
                Handlers::new().on(|c: Counted| {
                    handled += 1;
                    drop(c);
                }),
            );
            (r, handled)
        });
        started.recv().unwrap();
        for _ in 0..100 {
            ch.send(Counted(drops.clone())).unwrap();
        }
        ch.close(CloseMode::DropContent);
        assert!(matches!(
            ch.send(Counted(drops.clone())),
            Err(SendError::Closed(_))
        ));
        let (r, handled) = receiver.join().unwrap();
        assert!(r.is_closed());
        assert_eq!(r.handled, handled);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            101,
            "each message dropped once"
        );
        assert!(ch.is_empty());
    });
}

#[test]
fn close_with_retain_lets_a_waiting_receiver_drain_first() {
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        let rx = ch.clone();
        let receiver = thread::spawn(move || {
            let mut got = Vec::new();
            let r = receive(from(&rx), Handlers::new().on(|n: u32| got.push(n)));
            (r, got)
        });
        for n in 0..100u32 {
            ch.send(n).unwrap();
        }
        ch.close(CloseMode::RetainContent);
        assert!(ch.send(100u32).unwrap_err().is_closed());
        let (r, got) = receiver.join().unwrap();
        assert_eq!((r.status, r.handled), (ReceiveStatus::Closed, 100));
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn a_waiting_select_wakes_when_its_chains_close() {
    in_env(|env| {
        let a = env.create_mchain(MchainParams::unbounded());
        let b = env.create_mchain(MchainParams::unbounded());
        let (a2, b2) = (a.clone(), b.clone());
        let selector = thread::spawn(move || {
            select(
                from_all(),
                [
                    case(&a2, Handlers::new().on(|_: u32| ())),
                    case(&b2, Handlers::new().on(|_: u32| ())),
                ],
            )
        });
        a.close(CloseMode::DropContent);
        b.close(CloseMode::RetainContent);
        assert!(selector.join().unwrap().is_closed());
    });
}

#[test]
fn many_senders_lose_nothing() {
    const SENDERS: u32 = 8;
    const EACH: u32 = 10_000;
    in_env(|env| {
        let ch = env.create_mchain(
            MchainParams::bounded(64)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
        );
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let tx = ch.clone();
                thread::spawn(move || {
                    for n in 0..EACH {
                        assert_eq!(tx.send((s, n)).unwrap(), Sent::Stored);
                    }
                })
            })
            .collect();
        // Two receivers; each checks per-sender order of what it got.
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = ch.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    let r = receive(from(&rx), Handlers::new().on(|m: (u32, u32)| got.push(m)));
                    assert!(r.is_closed());
                    got
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        ch.close(CloseMode::RetainContent);
        let mut all = HashSet::new();
        for r in receivers {
            let got = r.join().unwrap();
            let mut last = vec![None; SENDERS as usize];
            for &(s, n) in &got {
                let prev = last[s as usize].replace(n);
                assert!(prev.is_none_or(|p| p < n), "per-sender order kept");
                assert!(all.insert((s, n)), "no duplicate");
            }
        }
        assert_eq!(all.len(), (SENDERS * EACH) as usize);
    });
}

#[test]
fn selects_and_senders_on_many_threads_lose_nothing() {
    const CHAINS: usize = 4;
    const EACH: u32 = 5_000;
    in_env(|env| {
        let chains: Vec<Mchain> = (0..CHAINS)
            .map(|i| {
                // Half bounded (senders wait for room), half unbounded.
                let params = if i % 2 == 0 {
                    MchainParams::bounded(8).wait_on_full(FOREVER)
                } else {
                    MchainParams::unbounded()
                };
                env.create_mchain(params)
            })
            .collect();
        // Two sender threads per chain.
        let senders: Vec<_> = (0..2 * CHAINS)
            .map(|s| {
                let tx = chains[s % CHAINS].clone();
                thread::spawn(move || {
                    for n in 0..EACH {
                        assert_eq!(tx.send((s as u32, n)).unwrap(), Sent::Stored);
                    }
                })
            })
            .collect();
        // Three selects over all chains, each with a short empty timeout
        // in a loop, so waits begin and end while messages arrive.
        let selectors: Vec<_> = (0..3)
            .map(|_| {
                let chains = chains.clone();
                thread::spawn(move || {
                    let got = std::cell::RefCell::new(Vec::new());
                    loop {
                        let r = select(
                            from_all().empty_timeout(Duration::from_millis(1)),
                            chains.iter().map(|ch| {
                                case(
                                    ch,
                                    Handlers::new().on(|m: (u32, u32)| got.borrow_mut().push(m)),
                                )
                            }),
                        );
                        if r.is_closed() {
                            return got.into_inner();
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        for ch in &chains {
            ch.close(CloseMode::RetainContent);
        }
        let mut all = HashSet::new();
        for s in selectors {
            for m in s.join().unwrap() {
                assert!(all.insert(m), "no duplicate");
            }
        }
        assert_eq!(all.len(), 2 * CHAINS * EACH as usize);
    });
}

#[test]
fn stopping_the_environment_closes_its_chains() {
    watchdog(LIMIT, || {
        let (tx, rx) = mpsc::channel();
        let (chains_tx, chains_rx) = mpsc::channel();
        launch(move |env| {
            let ch = env.create_mchain(MchainParams::unbounded());
            ch.send(1u32).unwrap();
            let rx_ch = ch.clone();
            // A plain thread waiting with no timeout.
            let waiter = thread::spawn(move || {
                let mut got = 0;
                let r = receive(from(&rx_ch), Handlers::new().on(|n: u32| got += n));
                (r, got)
            });
            // An agent blocked in a receive in its start hook: the
            // shutdown must wake it, or its cooperation never finishes.
            let agent_ch = env.create_mchain(MchainParams::unbounded());
            struct Blocked {
                ch: Mchain,
                tx: mpsc::Sender<ReceiveStatus>,
            }
            impl Agent for Blocked {
                fn start(&mut self, _ctx: &Context<'_>) {
                    let r = receive(from(&self.ch), Handlers::new().on(|_: u32| ()));
                    let _ = self.tx.send(r.status);
                }
            }
            let mut coop = env.make_coop();
            coop.set_binder(ActiveObjDispatcher::new(env, "blocked").binder());
            coop.add_agent(Blocked {
                ch: agent_ch.clone(),
                tx: tx.clone(),
            });
            env.register_coop(coop).unwrap();
            env.stop();
            let (r, got) = waiter.join().unwrap();
            assert!(r.is_closed());
            assert_eq!(got, 1, "retained content is drained first");
            let late = env.create_mchain(MchainParams::unbounded());
            assert!(late.is_closed(), "made after the shutdown began");
            let _ = chains_tx.send((ch, agent_ch, late));
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), ReceiveStatus::Closed);
        let (a, b, c) = chains_rx.recv().unwrap();
        assert!(a.is_closed() && b.is_closed() && c.is_closed());
    });
}

#[test]
fn timers_deliver_to_a_chain() {
    #[derive(Clone)]
    struct Tick;
    struct Once(u32);
    in_env(|env| {
        let ch = env.create_mchain(MchainParams::unbounded());
        env.send_delayed(&ch, Once(5), Duration::from_millis(1));
        let timer = env.send_periodic(&ch, Tick, Duration::ZERO, Duration::from_millis(1));
        let (mut ticks, mut once) = (0, 0);
        let r = receive(
            from(&ch).handle_n(4),
            Handlers::new()
                .on(|_: Tick| ticks += 1)
                .on(|Once(n)| once += n),
        );
        assert_eq!(r.status, ReceiveStatus::Limit);
        timer.cancel();
        // The delayed message comes too (if not among the first four).
        if once == 0 {
            let r = receive(
                from(&ch).handle_n(1),
                Handlers::new().on(|Once(n)| once += n),
            );
            assert_eq!(r.status, ReceiveStatus::Limit);
        }
        assert_eq!(once, 5);
        assert!(ticks >= 3);
    });
}

#[test]
fn a_full_chain_refuses_timer_messages_without_blocking_the_timer() {
    in_env(|env| {
        let ch = env.create_mchain(
            MchainParams::bounded(1)
                .overflow(Overflow::Fail)
                .wait_on_full(FOREVER),
        );
        ch.send(0u32).unwrap();
        // The timer thread would block forever if it waited on full.
        env.send_delayed(&ch, 1u32, Duration::ZERO);
        let probe = env.create_mchain(MchainParams::unbounded());
        env.send_delayed(&probe, 2u32, Duration::from_millis(1));
        let mut got = 0;
        let r = receive(
            from(&probe).handle_n(1),
            Handlers::new().on(|n: u32| got = n),
        );
        assert_eq!(
            (r.status, got),
            (ReceiveStatus::Limit, 2),
            "timer thread alive"
        );
    });
}
