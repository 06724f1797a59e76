//! Loom model of the disconnect-callback protocol (invariant 4): the owner
//! thread fires the registry while another thread removes a callback by a
//! synchronous request to the owner. When the removal returns, the callback
//! either never runs (removed) or has already finished (not removed).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p mp-thread --release --test loom_registry`

#![cfg(loom)]

use std::cell::RefCell;
use std::rc::Rc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use mp_thread::loom_support::{close_after_queued, install, new_waiter};
use mp_thread::CallbackRegistry;

#[test]
fn removal_is_synchronous_with_the_owner() {
    // Three threads with spinning waiters: bound preemptions so the model
    // finishes in seconds while still reaching both orders of fire/remove.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let owner = new_waiter("owner");
        // 0 = not run, 1 = running, 2 = finished.
        let state = Arc::new(AtomicUsize::new(0));

        // The registry lives on the owner thread only (not Send, not Sync):
        // it is created there, kept in that thread's local slot `REG`, and
        // reached only through jobs posted to the owner.
        let owner_thread = {
            let owner = owner.clone();
            let state = state.clone();
            loom::thread::spawn(move || {
                install(owner.clone());
                let reg: Rc<RefCell<CallbackRegistry<Box<dyn FnOnce()>>>> = Rc::default();
                let s = state.clone();
                let id = reg
                    .borrow_mut()
                    .add(Box::new(move || {
                        s.store(1, Ordering::SeqCst);
                        s.store(2, Ordering::SeqCst);
                    }))
                    .ok()
                    .unwrap();
                assert_eq!(id, 0);
                REG.with(|slot| *slot.borrow_mut() = Some(reg.clone()));
                // Serve the removal request and the "disconnect", in
                // whichever order they arrive.
                owner.run();
            })
        };

        // The disconnect: fire and run the callbacks, on the owner.
        let firer = {
            let owner = owner.clone();
            loom::thread::spawn(move || {
                let _ = owner.post(|| {
                    let fired =
                        REG.with(|slot| slot.borrow().as_ref().unwrap().borrow_mut().fire());
                    for cb in fired {
                        cb();
                    }
                });
            })
        };

        // The removal: a synchronous request to the owner.
        let me = new_waiter("remover");
        install(me.clone());
        let (tx, rx) = me.reply_channel::<bool>();
        owner
            .post(move || {
                let removed = REG.with(|slot| {
                    slot.borrow()
                        .as_ref()
                        .unwrap()
                        .borrow_mut()
                        .remove(0)
                        .is_some()
                });
                tx.send(removed);
            })
            .unwrap();
        let removed = me.wait(rx).unwrap();
        let seen = state.load(Ordering::SeqCst);
        if removed {
            assert_eq!(seen, 0, "removed, yet the callback had started");
        } else {
            assert_eq!(seen, 2, "not removed, yet the callback had not finished");
        }
        firer.join().unwrap();
        close_after_queued(&owner);
        owner_thread.join().unwrap();
        if removed {
            assert_eq!(
                state.load(Ordering::SeqCst),
                0,
                "a removed callback ran later"
            );
            REMOVED_FIRST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            FIRED_FIRST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // The model must have reached both outcomes, or it proved nothing.
    assert!(REMOVED_FIRST.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(FIRED_FIRST.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

static REMOVED_FIRST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FIRED_FIRST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

loom::thread_local! {
    static REG: RefCell<Option<Rc<RefCell<CallbackRegistry<Box<dyn FnOnce()>>>>>> = RefCell::new(None);
}
