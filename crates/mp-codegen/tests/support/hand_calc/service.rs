//! The calculator's behaviour for the hand-written adapter: what its server
//! runs once the adapter has put each call on its thread.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::client::CallbackClient;

use mp_test_calc::{thread_name, thread_number};

/// Where a call ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The server thread's name.
    pub name: String,
    /// Its [`thread_number`].
    pub number: u64,
}

impl ThreadInfo {
    /// Describes the calling thread.
    pub fn here() -> ThreadInfo {
        ThreadInfo {
            name: thread_name(),
            number: thread_number(),
        }
    }
}

/// What a client offers for the server to call back.
pub trait Callback: Send + Sync + 'static {
    /// Called by `Calculator.countdown(n, ..)` on the thread waiting in that call.
    fn step(&self, n: u32) -> Result<u32, String>;
}

/// The server side's calculator.
#[derive(Debug, Default)]
pub struct CalcService;

impl CalcService {
    /// `a + b`, failing on overflow.
    pub fn add(&self, a: i64, b: i64) -> Result<i64, String> {
        mp_test_calc::Calculator::add(&mp_test_calc::CalcService, a, b).map_err(|e| e.to_string())
    }

    /// Calls back into the client once and returns what it answered.
    pub fn countdown(&self, n: u32, callback: &CallbackClient) -> Result<u32, String> {
        callback.step(n).map_err(|e| e.to_string())
    }

    /// Blocks the calling server thread.
    pub fn sleep(&self, millis: u32) {
        std::thread::sleep(Duration::from_millis(u64::from(millis)));
    }
}

/// The server side's counter object.
#[derive(Debug, Default)]
pub struct CounterService {
    value: Mutex<i64>,
    destroyed: Mutex<bool>,
}

impl CounterService {
    /// A counter starting at `start`.
    pub fn new(start: i64) -> Arc<CounterService> {
        Arc::new(CounterService {
            value: Mutex::new(start),
            destroyed: Mutex::new(false),
        })
    }

    /// Adds `delta`, returning the new value.
    pub fn add(&self, delta: i64) -> Result<i64, String> {
        if *self.destroyed.lock() {
            return Err("counter was destroyed".into());
        }
        let mut v = self.value.lock();
        *v = v
            .checked_add(delta)
            .ok_or_else(|| format!("counter overflows adding {delta}"))?;
        Ok(*v)
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        *self.value.lock()
    }

    /// Marks the counter destroyed; later `add`s fail.
    pub fn destroy(&self) {
        *self.destroyed.lock() = true;
    }
}
