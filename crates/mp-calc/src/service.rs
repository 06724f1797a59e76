//! The calculator's behaviour, in plain Rust: implementations of the traits
//! mp-codegen generated from `calc.capnp` (`calc_mp`). The generated
//! server adapters put each call on the thread its `Context` names before
//! these methods run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::calc_mp::{CalcInit, Calculator, CalculatorWhereAmIResults, CallbackClient, Counter};

/// A stable small number for the calling thread (std's `ThreadId` has no
/// stable numeric form). Numbers are never reused within a process.
pub fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    std::thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// The calling thread's name, or its number if it has none.
pub fn thread_name() -> String {
    std::thread::current()
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("thread-{}", thread_number()))
}

/// Where a call ran: `Calculator.whereAmI`'s results.
pub type ThreadInfo = CalculatorWhereAmIResults;

impl CalculatorWhereAmIResults {
    /// Describes the calling thread.
    pub fn here() -> ThreadInfo {
        ThreadInfo {
            thread_name: thread_name(),
            thread_number: thread_number(),
        }
    }
}

/// The bootstrap object a calculator process serves.
#[derive(Debug, Default)]
pub struct CalcInitService;

impl CalcInit for CalcInitService {
    fn make_calculator(&self) -> Result<Arc<dyn Calculator>, String> {
        Ok(Arc::new(CalcService))
    }
}

/// The server side's calculator.
#[derive(Debug, Default)]
pub struct CalcService;

impl Calculator for CalcService {
    fn add(&self, a: i64, b: i64) -> Result<i64, String> {
        a.checked_add(b)
            .ok_or_else(|| format!("{a} + {b} overflows a 64-bit integer"))
    }

    fn add_on_loop(&self, a: i64, b: i64) -> Result<i64, String> {
        self.add(a, b)
    }

    fn where_am_i(&self) -> Result<ThreadInfo, String> {
        Ok(ThreadInfo::here())
    }

    fn countdown(&self, n: u32, callback: CallbackClient) -> Result<u32, String> {
        // Runs on the server thread mapped to the caller, which serves the
        // callbacks coming back the other way while it waits.
        callback.step(n).map_err(|e| e.to_string())
    }

    fn sleep(&self, millis: u32) -> Result<(), String> {
        std::thread::sleep(Duration::from_millis(u64::from(millis)));
        Ok(())
    }

    fn fail(&self, message: String) -> Result<(), String> {
        Err(message)
    }

    fn panic(&self, message: String) -> Result<(), String> {
        panic!("{message}")
    }

    fn make_counter(&self, start: i64) -> Result<Arc<dyn Counter>, String> {
        Ok(Arc::new(CounterService::new(start)))
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
    pub fn new(start: i64) -> CounterService {
        CounterService {
            value: Mutex::new(start),
            destroyed: Mutex::new(false),
        }
    }
}

impl Counter for CounterService {
    fn add(&self, delta: i64) -> Result<i64, String> {
        if *self.destroyed.lock() {
            return Err("counter was destroyed".into());
        }
        let mut v = self.value.lock();
        *v = v
            .checked_add(delta)
            .ok_or_else(|| format!("counter overflows adding {delta}"))?;
        Ok(*v)
    }

    fn get(&self) -> Result<i64, String> {
        Ok(*self.value.lock())
    }

    /// Marks the counter destroyed; later `add`s fail.
    fn destroy(&self) -> Result<(), String> {
        *self.destroyed.lock() = true;
        Ok(())
    }
}
