//! Agent states: the [`State`] handles an agent defines, its hierarchy,
//! the reactions subscribed per state, on-enter/exit hooks, time limits
//! and history — and the dispatch of one message through them.
//!
//! Owns each agent's `Machine` (inside the agent's box, so it lives and dies
//! with the agent: used on its worker, dropped in the final step on the
//! deregistration thread — invariant 1). Hooks and handlers run on the
//! agent's worker under the agent's own lock and nothing else.
//!
//! A change of state asked for from a handler or a hook
//! ([`Context::change_state`]) is applied when it returns: the handler
//! holds `&mut` agent, so a switch (which runs other hooks on that agent)
//! cannot happen under its feet.
//!
//! Time limits use the environment's timer thread. The timer holds only a
//! `Weak` of the agent's core and delivers a private message to it; the
//! message is ignored unless the state it was armed for is still the one
//! entered at the time (an epoch check), so a cancel racing the delivery
//! is harmless. Leaving the state cancels the timer; so does the agent's
//! finish (its cooperation's deregistration), after which a late delivery
//! is refused by the agent's queue.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
// Keys are our own ids and `TypeId`s (already hashes), never peer input:
// Fx hashing is safe and much cheaper than SipHash on the per-message lookup.
use rustc_hash::FxHashMap as HashMap;
use smallvec::{smallvec, SmallVec};
use std::sync::Arc;
use std::time::Duration;

use crate::core::AgentCore;
use crate::dropped::{drop_as, DropReason};
use crate::ids::{AgentId, MboxId};
use crate::mbox::Mbox;
use crate::payload::Payload;
use crate::timer::TimerHandle;
use crate::trace;

/// Bound on chained switches (a hook asking for another switch, a
/// `transfer_to_state` landing on another transfer): a loop is a bug,
/// reported and cut rather than spinning the worker.
const MAX_CHAIN: usize = 32;

/// One of an agent's states, made in [`Agent::define`](crate::Agent::define) by
/// [`Define::state`](crate::Define::state) or [`Define::substate`](crate::Define::substate). A small `Copy` handle: keep
/// it in the agent to switch to it later. It belongs to the agent that
/// made it; using it with another agent panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    agent: AgentId,
    index: u32,
}

/// What a composite state remembers when it is left, to return there
/// when it is entered again (instead of its initial substate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum History {
    /// Nothing: always enter the initial substate.
    #[default]
    None,
    /// The direct substate that was active; below it, that substate's own
    /// initial substate (or history).
    Shallow,
    /// The innermost (leaf) state that was active.
    Deep,
}

struct Node {
    /// `Cow`: the default state's name is static, so an agent without
    /// states of its own allocates nothing for its tree.
    name: Cow<'static, str>,
    parent: Option<u32>,
    initial: Option<u32>,
    has_children: bool,
    history: History,
    time_limit: Option<(Duration, u32)>,
}

/// A state and its ancestors, outermost first (inline up to 8 levels).
type Path = SmallVec<[u32; 8]>;

/// The shape of an agent's states: fixed once `define` has run.
pub(crate) struct StateTree {
    agent: AgentId,
    /// Inline room for the default state: most agents define no other.
    nodes: SmallVec<[Node; 1]>,
}

impl StateTree {
    fn new(agent: AgentId) -> StateTree {
        StateTree {
            agent,
            nodes: smallvec![Node {
                name: Cow::Borrowed("<default>"),
                parent: None,
                initial: None,
                has_children: false,
                history: History::None,
                time_limit: None,
            }],
        }
    }

    fn handle(&self, index: u32) -> State {
        State {
            agent: self.agent,
            index,
        }
    }

    fn index_of(&self, state: &State) -> u32 {
        assert_eq!(
            state.agent, self.agent,
            "a State used with an agent other than the one that defined it"
        );
        state.index
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    /// `index` and its ancestors, outermost first.
    fn path(&self, index: u32) -> Path {
        let mut path: Path = smallvec![index];
        let mut at = index;
        while let Some(parent) = self.node(at).parent {
            path.push(parent);
            at = parent;
        }
        path.reverse();
        path
    }

    /// True if `inner` is `outer` or one of its substates (at any depth).
    fn within(&self, inner: u32, outer: u32) -> bool {
        let mut at = Some(inner);
        while let Some(s) = at {
            if s == outer {
                return true;
            }
            at = self.node(s).parent;
        }
        false
    }

    pub(crate) fn name(&self, state: &State) -> &str {
        &self.node(self.index_of(state)).name
    }

    /// Checks what `define` built; a panic here fails the registration.
    fn validate(&self) {
        for node in &self.nodes {
            assert!(
                !node.has_children || node.initial.is_some(),
                "state `{}` has substates but no initial substate",
                node.name
            );
        }
    }
}

/// What an agent can do while it runs (its methods are defined beside
/// what they reach: the agents, states and subscriptions layers): reach its environment, its own
/// mbox, its cooperation, its states.
pub struct Context<'a> {
    pub(crate) core: &'a Arc<AgentCore>,
    pub(crate) states: StateView<'a>,
}

impl<'a> Context<'a> {
    /// A context that knows nothing of the agent's states (the core's,
    /// around the agent's box; the box makes its own for the agent).
    pub(crate) fn new(core: &'a Arc<AgentCore>) -> Context<'a> {
        Context {
            core,
            states: StateView::none(),
        }
    }
}

/// The state part of a [`Context`]: the tree, the state the agent is in
/// while this handler or hook runs, and the switch it asked for.
pub(crate) struct StateView<'a> {
    tree: Option<&'a StateTree>,
    current: u32,
    pending: Cell<Option<u32>>,
    /// Where subscription changes asked for go (the machine's list,
    /// applied when the handler returns); none outside a machine.
    pub(crate) ops: Option<&'a RefCell<Vec<Op>>>,
}

impl<'a> StateView<'a> {
    /// For contexts made outside a machine (panic handling, thread-safe
    /// handlers): the default state; no switch and no change of
    /// subscriptions can be asked for.
    pub(crate) fn none() -> StateView<'static> {
        StateView {
            tree: None,
            current: 0,
            pending: Cell::new(None),
            ops: None,
        }
    }

    fn of(tree: &'a StateTree, current: u32, ops: &'a RefCell<Vec<Op>>) -> StateView<'a> {
        StateView {
            tree: Some(tree),
            current,
            pending: Cell::new(None),
            ops: Some(ops),
        }
    }

    /// The index of `state`, if it is one of this agent's.
    pub(crate) fn index(&self, agent: AgentId, state: &State) -> Option<u32> {
        (state.agent == agent && self.tree.is_some()).then_some(state.index)
    }
}

/// Inserts a handler into a `Machine<A>` given as `Any`.
pub(crate) type InsertFn = Box<dyn FnOnce(&mut dyn Any) + Send>;

/// A change of subscriptions asked for from a handler or hook at run time
/// ([`Context::subscribe_self`] and the rest), applied when it returns.
pub(crate) enum Op {
    /// Inserts a handler into the agent's `Machine<A>` (given as `Any`);
    /// subscribes to the MPMC mbox and type if it is one.
    Insert {
        insert: InsertFn,
        mpmc: Option<(Mbox, TypeId)>,
    },
    /// Removes the handlers of `ty` from `mbox` (in `state`, or in every
    /// state); the MPMC subscription goes with the last of them.
    Remove {
        mbox: MboxId,
        ty: TypeId,
        state: Option<u32>,
        mpmc: Option<Mbox>,
    },
    /// Drops every subscription; nothing is handled until the agent's
    /// finish.
    Deactivate,
}

impl Context<'_> {
    /// Switches the agent to `state` (a composite one resolves to its
    /// initial substate, or its history) once the running handler or hook
    /// returns: on-exit hooks of the states left (innermost first), then
    /// on-enter hooks of the states entered (outermost first). A later call
    /// in the same handler replaces an earlier one. Switching to the state
    /// the agent is already in does nothing. Calls from `finish` are
    /// ignored.
    pub fn change_state(&self, state: &State) {
        if let Some(tree) = self.states.tree {
            self.states.pending.set(Some(tree.index_of(state)));
        }
    }

    /// The state the agent is in (its innermost active state). In an
    /// on-enter or on-exit hook: the state being entered or left.
    pub fn current_state(&self) -> State {
        State {
            agent: self.core.id,
            index: self.states.current,
        }
    }

    /// True if the agent is in `state` or in one of its substates.
    pub fn is_in_state(&self, state: &State) -> bool {
        match self.states.tree {
            Some(tree) => tree.within(self.states.current, tree.index_of(state)),
            None => state.agent == self.core.id && state.index == self.states.current,
        }
    }

    /// The name `state` was given in `define`.
    pub fn state_name(&self, state: &State) -> &str {
        match self.states.tree {
            Some(tree) => tree.name(state),
            None => "<default>",
        }
    }
}

type Handler<A> = Box<dyn FnMut(&mut A, &Context<'_>, Payload) + Send>;
type Hook<A> = Box<dyn FnMut(&mut A, &Context<'_>) + Send>;

/// Runs an on-enter or on-exit hook of state `s`; returns the change of
/// state it asked for, if any.
fn run_hook<A: 'static>(
    hook: &mut Hook<A>,
    agent: &mut A,
    core: &Arc<AgentCore>,
    tree: &StateTree,
    s: u32,
    ops: &RefCell<Vec<Op>>,
) -> Option<u32> {
    let ctx = Context {
        core,
        states: StateView::of(tree, s, ops),
    };
    hook(agent, &ctx);
    ctx.states.pending.take()
}
/// The handlers of one (mbox, type), each with its state.
type StateHandlers<A> = Vec<(u32, Handler<A>)>;

/// What a state does with a message type from any mbox, instead of
/// handling it.
#[derive(Clone, Copy)]
enum Special {
    Transfer(u32),
    JustSwitch(u32),
    Suppress,
}

/// What the dispatch found, nearest state first.
enum Found {
    /// The handler at this index of the (mbox, type) list.
    Handler(usize),
    Special(Special),
}

/// The private message a time limit's timer delivers.
struct TimeLimitFired {
    state: u32,
    epoch: u64,
}

/// An agent's states with everything subscribed in them, and where it is.
pub(crate) struct Machine<A> {
    tree: StateTree,
    /// Per (mbox, type), its handlers with their states: one lookup per
    /// message, then a scan of (usually) one entry.
    handlers: HashMap<(MboxId, TypeId), StateHandlers<A>>,
    /// Per type, transfers, switches and suppressions with their states.
    specials: HashMap<TypeId, Vec<(u32, Special)>>,
    /// Per (mbox, type), the handler of what no state handles.
    dead_letters: HashMap<(MboxId, TypeId), Handler<A>>,
    /// Subscription changes asked for by the handlers and hooks run since
    /// the last [`flush_ops`](Self::flush_ops).
    ops: RefCell<Vec<Op>>,
    /// [`Context::deactivate`]d: no handler, no state change.
    deactivated: bool,
    on_enter: HashMap<u32, Hook<A>>,
    on_exit: HashMap<u32, Hook<A>>,
    start_in: u32,
    current: u32,
    /// Shallow history: the direct substate last active, per state.
    last_child: HashMap<u32, u32>,
    /// Deep history: the leaf last active, per state.
    last_leaf: HashMap<u32, u32>,
    /// Armed time limits: state → (epoch, timer).
    armed: HashMap<u32, (u64, TimerHandle)>,
    epoch: u64,
    finished: bool,
}

impl<A: 'static> Machine<A> {
    pub(crate) fn new() -> Machine<A> {
        Machine {
            tree: StateTree::new(AgentId(0)),
            handlers: HashMap::default(),
            specials: HashMap::default(),
            dead_letters: HashMap::default(),
            ops: RefCell::default(),
            deactivated: false,
            on_enter: HashMap::default(),
            on_exit: HashMap::default(),
            start_in: 0,
            current: 0,
            last_child: HashMap::default(),
            last_leaf: HashMap::default(),
            armed: HashMap::default(),
            epoch: 0,
            finished: false,
        }
    }

    /// Before `define`: the agent the states will belong to.
    /// A new state called `name` (a substate of `parent`; its initial one
    /// if `initial`).
    pub(crate) fn new_state(&mut self, name: &str, parent: Option<u32>, initial: bool) -> State {
        let tree = &mut self.tree;
        let index = u32::try_from(tree.nodes.len()).expect("too many states");
        if let Some(p) = parent {
            let node = &mut tree.nodes[p as usize];
            node.has_children = true;
            if initial {
                assert!(
                    node.initial.is_none(),
                    "state `{}` has two initial substates",
                    node.name
                );
                node.initial = Some(index);
            }
        }
        tree.nodes.push(Node {
            name: Cow::Owned(name.to_owned()),
            parent,
            initial: None,
            has_children: false,
            history: History::None,
            time_limit: None,
        });
        tree.handle(index)
    }

    /// The index of `state` in this agent's tree.
    pub(crate) fn index_of(&self, state: &State) -> u32 {
        self.tree.index_of(state)
    }

    /// The handle of state `index`.
    pub(crate) fn handle(&self, index: u32) -> State {
        self.tree.handle(index)
    }

    /// The agent starts in `state`.
    pub(crate) fn start_in(&mut self, state: &State) {
        self.start_in = self.tree.index_of(state);
    }

    pub(crate) fn owned_by(&mut self, agent: AgentId) {
        self.tree.agent = agent;
    }

    /// After `define`: checks the tree (panics on a malformed one).
    pub(crate) fn defined(&mut self) {
        self.tree.validate();
        self.current = self.resolve(self.start_in);
    }

    /// Inserts a handler for `M` from `mbox` in `state`; true if one was
    /// there.
    pub(crate) fn insert_handler<M, F>(&mut self, state: u32, mbox: MboxId, mut handler: F) -> bool
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let erased: Handler<A> = Box::new(move |agent, ctx, payload| {
            if let Ok(msg) = payload.take::<M>() {
                handler(agent, ctx, msg);
            }
        });
        let list = self.handlers.entry((mbox, TypeId::of::<M>())).or_default();
        match list.iter_mut().find(|(s, _)| *s == state) {
            Some(slot) => {
                slot.1 = erased;
                true
            }
            None => {
                list.push((state, erased));
                false
            }
        }
    }

    /// Sets the dead-letter handler for `M` from `mbox` (replacing one).
    pub(crate) fn insert_dead_letter<M, F>(&mut self, mbox: MboxId, mut handler: F)
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let erased: Handler<A> = Box::new(move |agent, ctx, payload| {
            if let Ok(msg) = payload.take::<M>() {
                handler(agent, ctx, msg);
            }
        });
        let old = self.dead_letters.insert((mbox, TypeId::of::<M>()), erased);
        drop(old);
    }

    /// A message no state handles: to its dead-letter handler, or dropped
    /// (a request in it answers "no handler").
    #[cold]
    #[inline(never)]
    fn unhandled(
        &mut self,
        agent: &mut A,
        core: &Arc<AgentCore>,
        mbox: MboxId,
        ty: TypeId,
        payload: Payload,
    ) {
        let Machine {
            tree,
            dead_letters,
            current,
            ..
        } = self;
        let Some(handler) = dead_letters.get_mut(&(mbox, ty)) else {
            let (reason, what) = if self.deactivated {
                (
                    DropReason::ReceiverGone,
                    "dropped: the agent is deactivated",
                )
            } else {
                (
                    DropReason::NoHandler,
                    "dropped: no handler in the current state",
                )
            };
            if trace::on() {
                core.trace(trace::Step::Receive, mbox, ty, what);
            }
            drop_as(reason, payload);
            return;
        };
        if trace::on() {
            core.trace(
                trace::Step::Receive,
                mbox,
                ty,
                "handled by the dead-letter handler",
            );
        }
        if let Some(target) = run_handler(handler, agent, core, tree, *current, payload, &self.ops)
        {
            self.switch(agent, core, target);
        }
        self.flush_ops(core);
    }

    fn insert_special(&mut self, state: u32, ty: TypeId, special: Special) {
        let list = self.specials.entry(ty).or_default();
        match list.iter_mut().find(|(s, _)| *s == state) {
            Some(slot) => slot.1 = special,
            None => list.push((state, special)),
        }
    }

    fn context<'a>(&'a self, core: &'a Arc<AgentCore>, current: u32) -> Context<'a> {
        Context {
            core,
            states: StateView::of(&self.tree, current, &self.ops),
        }
    }

    /// Applies the subscription changes asked for so far (those asked for
    /// by what they run too).
    pub(crate) fn flush_ops(&mut self, core: &Arc<AgentCore>) {
        while !self.ops.get_mut().is_empty() {
            for op in std::mem::take(self.ops.get_mut()) {
                self.apply(core, op);
            }
        }
    }

    #[cold]
    fn apply(&mut self, core: &Arc<AgentCore>, op: Op) {
        if self.deactivated {
            return;
        }
        match op {
            Op::Insert { insert, mpmc } => {
                insert(self as &mut dyn Any);
                if let Some((mbox, ty)) = mpmc {
                    core.subscribe_mpmc(&mbox, ty);
                }
            }
            Op::Remove {
                mbox,
                ty,
                state,
                mpmc,
            } => {
                if let Some(list) = self.handlers.get_mut(&(mbox, ty)) {
                    list.retain(|(s, _)| state.is_some_and(|state| *s != state));
                    if list.is_empty() {
                        self.handlers.remove(&(mbox, ty));
                    }
                }
                let still = self.handlers.contains_key(&(mbox, ty))
                    || self.dead_letters.contains_key(&(mbox, ty));
                if let (false, Some(mbox)) = (still, mpmc) {
                    core.unsubscribe_mpmc(&mbox, ty);
                }
            }
            Op::Deactivate => {
                self.deactivated = true;
                let handlers = std::mem::take(&mut self.handlers);
                let dead_letters = std::mem::take(&mut self.dead_letters);
                self.specials.clear();
                for (_, (_, timer)) in self.armed.drain() {
                    timer.cancel();
                }
                drop((handlers, dead_letters));
                core.drop_subscriptions();
            }
        }
    }

    /// Runs `hook` (the agent's start or finish) with a state-aware
    /// context, then the switch it asked for (not after finish).
    pub(crate) fn run_hook(
        &mut self,
        agent: &mut A,
        core: &Arc<AgentCore>,
        hook: impl FnOnce(&mut A, &Context<'_>),
    ) {
        let ctx = self.context(core, self.current);
        hook(agent, &ctx);
        let pending = ctx.states.pending.take();
        if let Some(target) = pending {
            self.switch(agent, core, target);
        }
        self.flush_ops(core);
    }

    /// Before `start`: enters the initial state (on-enter hooks from the
    /// outermost, time limits armed).
    pub(crate) fn enter_initial(&mut self, agent: &mut A, core: &Arc<AgentCore>) {
        let leaf = self.current;
        let path = self.tree.path(leaf);
        let pending = self.enter(agent, core, &path);
        if let Some(target) = pending {
            self.switch(agent, core, target);
        }
        self.flush_ops(core);
    }

    /// After `finish`: cancels every time limit; no switch happens later.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
        if !self.armed.is_empty() {
            for (_, (_, timer)) in self.armed.drain() {
                timer.cancel();
            }
        }
    }

    /// Dispatches one message in the current state. The common case (no
    /// transfer, switch or suppression defined) is kept small: one lookup,
    /// the handler, and a switch only if the handler asked for one.
    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        agent: &mut A,
        core: &Arc<AgentCore>,
        mbox: MboxId,
        ty: TypeId,
        payload: Payload,
    ) {
        if ty == TypeId::of::<TimeLimitFired>() || !self.specials.is_empty() {
            self.dispatch_special(agent, core, mbox, ty, payload);
            self.flush_ops(core);
            return;
        }
        let Machine {
            tree,
            handlers,
            current,
            ..
        } = self;
        let Some(list) = handlers.get_mut(&(mbox, ty)) else {
            return self.unhandled(agent, core, mbox, ty, payload);
        };
        let Some(Found::Handler(at)) = find(tree, *current, Some(&*list), None) else {
            return self.unhandled(agent, core, mbox, ty, payload);
        };
        if trace::on() {
            core.trace(trace::Step::Receive, mbox, ty, "handled");
        }
        let ops = &self.ops;
        if let Some(target) =
            run_handler(&mut list[at].1, agent, core, tree, *current, payload, ops)
        {
            self.switch(agent, core, target);
        }
        if !self.ops.get_mut().is_empty() {
            self.flush_ops(core);
        }
    }

    /// [`dispatch`](Self::dispatch) with time limits and special reactions.
    #[cold]
    #[inline(never)]
    fn dispatch_special(
        &mut self,
        agent: &mut A,
        core: &Arc<AgentCore>,
        mbox: MboxId,
        ty: TypeId,
        payload: Payload,
    ) {
        if ty == TypeId::of::<TimeLimitFired>() && mbox == core.direct_id {
            if let Ok(fired) = payload.take::<TimeLimitFired>() {
                self.time_limit_fired(agent, core, fired);
            }
            return;
        }
        for _ in 0..MAX_CHAIN {
            let Machine {
                tree,
                handlers,
                specials,
                current,
                ..
            } = self;
            let handlers = handlers.get_mut(&(mbox, ty));
            let found = find(tree, *current, handlers.as_deref(), specials.get(&ty));
            match found {
                None => return self.unhandled(agent, core, mbox, ty, payload),
                Some(Found::Special(Special::Suppress)) => {
                    if trace::on() {
                        core.trace(
                            trace::Step::Receive,
                            mbox,
                            ty,
                            "suppressed in the current state",
                        );
                    }
                    return;
                }
                Some(Found::Special(Special::JustSwitch(target))) => {
                    self.switch(agent, core, target);
                    return;
                }
                Some(Found::Special(Special::Transfer(target))) => {
                    self.switch(agent, core, target);
                    // And again, in the state it landed in.
                }
                Some(Found::Handler(at)) => {
                    let Some(list) = handlers else {
                        unreachable!("found in it");
                    };
                    if trace::on() {
                        core.trace(trace::Step::Receive, mbox, ty, "handled");
                    }
                    let handler = &mut list[at].1;
                    let ops = &self.ops;
                    if let Some(target) =
                        run_handler(handler, agent, core, tree, *current, payload, ops)
                    {
                        self.switch(agent, core, target);
                    }
                    return;
                }
            }
        }
        tracing::error!(agent = %core.name(), "transfer_to_state loop; message dropped");
    }

    fn time_limit_fired(&mut self, agent: &mut A, core: &Arc<AgentCore>, fired: TimeLimitFired) {
        let live =
            matches!(self.armed.get(&fired.state), Some((epoch, _)) if *epoch == fired.epoch);
        if !live {
            return; // the state was left (and maybe entered again) meanwhile
        }
        self.armed.remove(&fired.state);
        if let Some((_, target)) = self.tree.node(fired.state).time_limit {
            self.switch(agent, core, target);
        }
    }

    /// The leaf a switch to `target` lands in.
    fn resolve(&self, target: u32) -> u32 {
        let mut s = target;
        loop {
            let node = self.tree.node(s);
            if !node.has_children {
                return s;
            }
            s = match node.history {
                History::Deep if self.last_leaf.contains_key(&s) => return self.last_leaf[&s],
                History::Shallow if self.last_child.contains_key(&s) => self.last_child[&s],
                _ => node
                    .initial
                    .expect("validated: a composite state has an initial one"),
            };
        }
    }

    /// Switches to `target`, then to whatever the hooks asked for.
    #[inline(never)]
    fn switch(&mut self, agent: &mut A, core: &Arc<AgentCore>, target: u32) {
        let mut next = Some(target);
        for _ in 0..MAX_CHAIN {
            let Some(target) = next.take() else {
                return;
            };
            if self.finished || self.deactivated {
                return;
            }
            next = self.transition(agent, core, target);
        }
        tracing::error!(agent = %core.name(), "state switch loop in on_enter/on_exit hooks; stopped");
    }

    /// One switch: exits, then enters. Returns the switch a hook asked for.
    fn transition(&mut self, agent: &mut A, core: &Arc<AgentCore>, target: u32) -> Option<u32> {
        let old_leaf = self.current;
        let new_leaf = self.resolve(target);
        if new_leaf == old_leaf {
            return None;
        }
        let old_path = self.tree.path(old_leaf);
        let new_path = self.tree.path(new_leaf);
        let common = old_path
            .iter()
            .zip(&new_path)
            .take_while(|(a, b)| a == b)
            .count();
        let mut pending = None;
        for (depth, &s) in old_path.iter().enumerate().skip(common).rev() {
            match self.tree.node(s).history {
                History::Shallow if depth + 1 < old_path.len() => {
                    self.last_child.insert(s, old_path[depth + 1]);
                }
                History::Deep if s != old_leaf => {
                    self.last_leaf.insert(s, old_leaf);
                }
                _ => {}
            }
            if let Some((_, timer)) = self.armed.remove(&s) {
                timer.cancel();
            }
            if let Some(hook) = self.on_exit.get_mut(&s) {
                pending = run_hook::<A>(hook, agent, core, &self.tree, s, &self.ops).or(pending);
            }
        }
        self.current = new_leaf;
        self.enter(agent, core, &new_path[common..]).or(pending)
    }

    /// Enters `states` (outermost first): time limits armed, on-enter hooks.
    fn enter(&mut self, agent: &mut A, core: &Arc<AgentCore>, states: &[u32]) -> Option<u32> {
        let mut pending = None;
        for &s in states {
            if let Some((limit, _)) = self.tree.node(s).time_limit {
                self.arm(core, s, limit);
            }
            if let Some(hook) = self.on_enter.get_mut(&s) {
                pending = run_hook::<A>(hook, agent, core, &self.tree, s, &self.ops).or(pending);
            }
        }
        pending
    }

    fn arm(&mut self, core: &Arc<AgentCore>, state: u32, limit: Duration) {
        let Some(env) = core.env.upgrade() else {
            return;
        };
        self.epoch += 1;
        let epoch = self.epoch;
        let weak = Arc::downgrade(core);
        let direct = core.direct_id;
        let mut msg = Some(TimeLimitFired { state, epoch });
        let timer = env.timers().add(
            limit,
            None,
            Box::new(move || {
                if let (Some(core), Some(msg)) = (weak.upgrade(), msg.take()) {
                    core.push_message(direct, TypeId::of::<TimeLimitFired>(), Payload::new(msg));
                }
            }),
        );
        // The environment is dropped here, never last: the agent runs.
        drop(env);
        if let Some((_, old)) = self.armed.insert(state, (epoch, timer)) {
            old.cancel();
        }
    }
}

/// Runs one handler; returns the switch it asked for.
#[inline]
fn run_handler<A: 'static>(
    handler: &mut Handler<A>,
    agent: &mut A,
    core: &Arc<AgentCore>,
    tree: &StateTree,
    current: u32,
    payload: Payload,
    ops: &RefCell<Vec<Op>>,
) -> Option<u32> {
    let ctx = Context {
        core,
        states: StateView::of(tree, current, ops),
    };
    handler(agent, &ctx, payload);
    ctx.states.pending.take()
}

/// The reaction in state `current` or the nearest enclosing state that has
/// one: a handler for the exact mbox first, then a special, at each level.
#[inline]
fn find<H>(
    tree: &StateTree,
    current: u32,
    handlers: Option<&Vec<(u32, H)>>,
    specials: Option<&Vec<(u32, Special)>>,
) -> Option<Found> {
    let mut at = Some(current);
    while let Some(s) = at {
        if let Some(i) = handlers.and_then(|l| l.iter().position(|(st, _)| *st == s)) {
            return Some(Found::Handler(i));
        }
        if let Some((_, special)) = specials.and_then(|l| l.iter().find(|(st, _)| *st == s)) {
            return Some(Found::Special(*special));
        }
        at = tree.node(s).parent;
    }
    None
}

impl<A> Drop for Machine<A> {
    fn drop(&mut self) {
        // Normally done by `finish`; this covers an agent that never ran it.
        for (_, (_, timer)) in self.armed.drain() {
            timer.cancel();
        }
    }
}

/// Configures one state of an agent: made by [`Define::in_state`](crate::Define::in_state).
/// Handlers subscribed here run when the agent is in this state or in one
/// of its substates that does not react to the same message itself.
pub struct InState<'d, A: 'static> {
    pub(crate) machine: &'d mut Machine<A>,
    /// The agent's own mbox.
    pub(crate) direct: MboxId,
    /// The `define` hook's MPMC subscriptions.
    pub(crate) subscriptions: &'d mut Vec<(Mbox, TypeId)>,
    pub(crate) state: u32,
}

impl<A: 'static> InState<'_, A> {
    /// The state being configured.
    pub fn state(&self) -> State {
        self.machine.tree.handle(self.state)
    }

    /// Handles `M` sent to the agent's direct mbox while in this state.
    pub fn subscribe_self<M, F>(&mut self, handler: F) -> &mut Self
    where
        M: Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        let direct = self.direct;
        self.machine.insert_handler(self.state, direct, handler);
        self
    }

    /// Handles `M` sent to the MPMC `mbox` while in this state.
    pub fn subscribe<M, F>(&mut self, mbox: &Mbox, handler: F) -> &mut Self
    where
        M: Clone + Send + 'static,
        F: FnMut(&mut A, &Context<'_>, M) + Send + 'static,
    {
        self.machine.insert_handler(self.state, mbox.id(), handler);
        add_subscription(self.subscriptions, mbox, TypeId::of::<M>());
        self
    }

    /// Runs `hook` whenever the agent enters this state (after leaving
    /// another one; a switch between its own substates does not count).
    pub fn on_enter<F>(&mut self, hook: F) -> &mut Self
    where
        F: FnMut(&mut A, &Context<'_>) + Send + 'static,
    {
        self.machine.on_enter.insert(self.state, Box::new(hook));
        self
    }

    /// Runs `hook` whenever the agent leaves this state (not when it
    /// finishes: [`Agent::finish`](crate::Agent::finish) runs in whatever state it is in).
    pub fn on_exit<F>(&mut self, hook: F) -> &mut Self
    where
        F: FnMut(&mut A, &Context<'_>) + Send + 'static,
    {
        self.machine.on_exit.insert(self.state, Box::new(hook));
        self
    }

    /// After `limit` in this state (counted from entering it, including
    /// time spent in its substates), the agent switches to `target`. The
    /// timer is cancelled when the state is left and when the agent
    /// finishes (its cooperation is deregistered).
    pub fn time_limit(&mut self, limit: Duration, target: &State) -> &mut Self {
        let target = self.machine.tree.index_of(target);
        self.machine.tree.nodes[self.state as usize].time_limit = Some((limit, target));
        self
    }

    /// What this (composite) state remembers when left.
    pub fn history(&mut self, history: History) -> &mut Self {
        self.machine.tree.nodes[self.state as usize].history = history;
        self
    }

    /// When `M` (from any mbox) arrives in this state, the agent switches
    /// to `target` and the message is handled there, as if it had arrived
    /// in `target` (SObjectizer's `transfer_to_state`).
    pub fn transfer_to_state<M: Send + 'static>(&mut self, target: &State) -> &mut Self {
        let target = self.machine.tree.index_of(target);
        self.special::<M>(Special::Transfer(target))
    }

    /// When `M` (from any mbox) arrives in this state, the agent switches
    /// to `target`; the message itself is consumed by the switch
    /// (SObjectizer's `just_switch_to`).
    pub fn just_switch_to<M: Send + 'static>(&mut self, target: &State) -> &mut Self {
        let target = self.machine.tree.index_of(target);
        self.special::<M>(Special::JustSwitch(target))
    }

    /// Ignores `M` (from any mbox) in this state, even if an enclosing
    /// state has a handler for it.
    pub fn suppress<M: Send + 'static>(&mut self) -> &mut Self {
        self.special::<M>(Special::Suppress)
    }

    fn special<M: 'static>(&mut self, special: Special) -> &mut Self {
        self.machine
            .insert_special(self.state, TypeId::of::<M>(), special);
        self
    }
}

/// Adds a subscription of the agent to `ty` at `mbox` (once, whatever the
/// states).
pub(crate) fn add_subscription(subscriptions: &mut Vec<(Mbox, TypeId)>, mbox: &Mbox, ty: TypeId) {
    let known = subscriptions
        .iter()
        .any(|(m, t)| m.id() == mbox.id() && *t == ty);
    if !known {
        subscriptions.push((mbox.clone(), ty));
    }
}
