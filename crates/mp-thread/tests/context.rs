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
            "{} dropped (waiter closed: {}, context reachable: {reachable}, exiting: {})",
            self.name,
            self.waiter.is_closed(),
            context::is_exiting()
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
            "second dropped (waiter closed: false, context reachable: false, exiting: true)",
            "first dropped (waiter closed: false, context reachable: false, exiting: true)",
        ]
    );
    assert!(waiter.is_closed(), "the waiter closes after the slots");
    assert!(waiter.post(|| ()).is_err());
}

/// Sets its flag to whether the thread was exiting when it was dropped.
struct ExitWitness(Arc<Mutex<Option<bool>>>);

impl Drop for ExitWitness {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(context::is_exiting());
    }
}

#[test]
fn a_job_left_queued_when_its_thread_exits_is_dropped_while_the_thread_is_exiting() {
    let seen = Arc::new(Mutex::new(None));
    let during_the_run = Arc::new(Mutex::new(None));
    let (theirs, early) = (seen.clone(), during_the_run.clone());
    std::thread::spawn(move || {
        drop(ExitWitness(early));
        let witness = ExitWitness(theirs);
        Waiter::current()
            .post(move || drop(witness))
            .expect("the thread's own waiter takes jobs");
    })
    .join()
    .unwrap();
    assert_eq!(*during_the_run.lock().unwrap(), Some(false));
    assert_eq!(
        *seen.lock().unwrap(),
        Some(true),
        "the unrun job is dropped from the thread's exit"
    );
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
