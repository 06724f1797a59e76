//! The per-thread context: typed slots of one thread only, torn down in
//! one written order when the thread exits (slots in reverse order of first
//! use, then the thread's waiter closed).

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use mp_thread::{context, Waiter};

/// Records, when dropped, its name and whether the thread's waiter was
/// already closed.
struct Witness {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    waiter: Waiter,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let reachable = context::with(|_: &First| ()).is_some();
        self.log.lock().unwrap().push(format!(
            "{} dropped (waiter closed: {}, context reachable: {reachable})",
            self.name,
            self.waiter.is_closed()
        ));
    }
}

#[derive(Default)]
struct First(Cell<Option<Witness>>);

#[derive(Default)]
struct Second(Cell<Option<Witness>>);

#[test]
fn slots_drop_in_reverse_order_of_first_use_and_then_the_waiter_closes() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let theirs = log.clone();
    let waiter = std::thread::spawn(move || {
        let waiter = Waiter::current();
        let witness = |name| Witness {
            name,
            log: theirs.clone(),
            waiter: waiter.clone(),
        };
        context::with(|s: &First| s.0.set(Some(witness("first"))));
        context::with(|s: &Second| s.0.set(Some(witness("second"))));
        assert!(!waiter.is_closed());
        waiter
    })
    .join()
    .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "second dropped (waiter closed: false, context reachable: false)",
            "first dropped (waiter closed: false, context reachable: false)",
        ]
    );
    assert!(waiter.is_closed(), "the waiter closes after the slots");
    assert!(waiter.post(|| ()).is_err());
}

#[derive(Default)]
struct Counter(Cell<u32>);

#[test]
fn a_slot_is_the_threads_own_and_may_be_reached_again_from_inside() {
    context::with(|c: &Counter| c.0.set(5));
    let nested = context::with(|outer: &Counter| {
        context::with(|inner: &Counter| inner.0.set(inner.0.get() + 1));
        outer.0.get()
    });
    assert_eq!(nested, Some(6), "the same slot, inside and out");
    let elsewhere = std::thread::spawn(|| context::with(|c: &Counter| c.0.get()))
        .join()
        .unwrap();
    assert_eq!(elsewhere, Some(0), "another thread's slot starts fresh");
}
