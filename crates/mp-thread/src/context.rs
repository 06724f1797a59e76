//! The calling thread's context: the one thread-local that says who this
//! thread is and what it is doing. mp-thread keeps the thread's own
//! [`Waiter`] in it; the crates above keep their per-thread state in typed
//! slots of it ([`with`]) instead of thread-locals of their own: mp-ipc the
//! connections a thread has a mapping on and the calls a server thread is
//! serving, mp-agents the agent whose handler runs.
//!
//! Invariant 5 (no thread-local state reachable from another thread): a
//! slot is an `Rc`, so it is not `Send`; [`with`] lends it to a closure on
//! this thread only, and other threads reach a thread through shared
//! handles (its `Waiter` clones), never through its context.
//!
//! Teardown has one written order: when the thread exits, its slots are
//! dropped in the reverse order of their first use, and then its waiter is
//! closed (later posts fail cleanly; queued jobs are dropped, waking anyone
//! waiting on their replies). While that runs, [`with`] returns `None`,
//! [`is_exiting`] returns true (so a `Drop` run from there can stay off
//! other thread-locals, which may already be gone) and
//! [`Waiter::current`] serves a wait with a fresh mailbox of its own.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::rc::Rc;

use crate::waiter::Waiter;

/// What one thread's context holds.
struct Context {
    waiter: Option<Waiter>,
    /// Slots by type, in order of first use.
    slots: Vec<(TypeId, Rc<dyn Any>)>,
}

impl Drop for Context {
    fn drop(&mut self) {
        while let Some(slot) = self.slots.pop() {
            drop(slot);
        }
        if let Some(waiter) = self.waiter.take() {
            waiter.close();
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static CONTEXT: RefCell<Context> = const {
        RefCell::new(Context {
            waiter: None,
            slots: Vec::new(),
        })
    };
}

#[cfg(loom)]
loom::thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context {
        waiter: None,
        slots: Vec::new(),
    });
}

/// Lends the calling thread's slot of type `T` to `f`, made with
/// `T::default()` on first use. Returns `None`, without calling `f`, while
/// the thread's context is being torn down (from a `Drop` run at thread
/// exit).
///
/// Slots are shared by type: a crate keeps its per-thread state in a type
/// of its own (private, so no other crate can reach it) with interior
/// mutability. `f` may call `with` again, for the same slot or another.
///
/// ```
/// use std::cell::Cell;
///
/// #[derive(Default)]
/// struct Depth(Cell<u32>);
///
/// mp_thread::context::with(|d: &Depth| d.0.set(d.0.get() + 1));
/// let depth = mp_thread::context::with(|d: &Depth| d.0.get());
/// assert_eq!(depth, Some(1));
/// // Another thread has a slot of its own.
/// let there = std::thread::spawn(|| mp_thread::context::with(|d: &Depth| d.0.get()));
/// assert_eq!(there.join().unwrap(), Some(0));
/// ```
pub fn with<T: Default + 'static, R>(f: impl FnOnce(&T) -> R) -> Option<R> {
    let slot = CONTEXT
        .try_with(|context| {
            let mut context = context.try_borrow_mut().ok()?;
            let id = TypeId::of::<T>();
            let slot = match context.slots.iter().find(|(ty, _)| *ty == id) {
                Some((_, slot)) => slot.clone(),
                None => {
                    let slot: Rc<dyn Any> = Rc::new(T::default());
                    context.slots.push((id, slot.clone()));
                    slot
                }
            };
            Some(slot)
        })
        .ok()
        .flatten()?;
    // The borrow of the context ends above: `f` may use it again.
    let value = slot.downcast_ref::<T>().expect("a slot holds its own type");
    Some(f(value))
}

/// True while the calling thread's context is being torn down, and after:
/// the thread is exiting and its thread-local destructors are running.
///
/// Code that may run from those destructors (a `Drop` of something a slot
/// or a queued job holds) checks this before it touches another
/// thread-local: other crates' thread-locals may be gone by then (the
/// order they are destroyed in is not specified), and touching one that is
/// gone panics, which aborts the process from a destructor.
///
/// ```
/// assert!(!mp_thread::context::is_exiting());
/// ```
pub fn is_exiting() -> bool {
    CONTEXT.try_with(|_| ()).is_err()
}

/// The calling thread's waiter, made (named `name()`) on first use; `None`
/// while the context is being torn down.
pub(crate) fn waiter(name: impl FnOnce() -> String) -> Option<Waiter> {
    CONTEXT
        .try_with(|context| {
            let mut context = context.try_borrow_mut().ok()?;
            Some(
                context
                    .waiter
                    .get_or_insert_with(|| Waiter::new(name()))
                    .clone(),
            )
        })
        .ok()
        .flatten()
}

/// Makes `waiter` the calling thread's mailbox (a worker does this first).
pub(crate) fn install(waiter: Waiter) {
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        debug_assert!(context.waiter.is_none(), "thread already has a waiter");
        context.waiter = Some(waiter);
    });
}

/// `check` on the calling thread's waiter (`None`: it has none yet), or
/// `None` while the context cannot be read (torn down, or borrowed by the
/// caller's caller).
pub(crate) fn inspect_waiter<R>(check: impl FnOnce(Option<&Waiter>) -> R) -> Option<R> {
    CONTEXT
        .try_with(|context| Some(check(context.try_borrow().ok()?.waiter.as_ref())))
        .ok()
        .flatten()
}
