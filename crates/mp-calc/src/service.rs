//! The calculator's behaviour, in plain Rust: implementations of the traits
//! mp-codegen generated from `calc.capnp` (`calc_mp`). The generated
//! server adapters put each call on the thread its `Context` names before
//! these methods run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mp_ipc::Error;
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
    fn make_calculator(&self) -> Result<Arc<dyn Calculator>, Error> {
        Ok(Arc::new(CalcService))
    }
}

/// The server side's calculator.
#[derive(Debug, Default)]
pub struct CalcService;

impl Calculator for CalcService {
    fn add(&self, a: i64, b: i64) -> Result<i64, Error> {
        a.checked_add(b)
            .ok_or_else(|| Error::failed(format!("{a} + {b} overflows a 64-bit integer")))
    }

    fn add_on_loop(&self, a: i64, b: i64) -> Result<i64, Error> {
        self.add(a, b)
    }

    fn where_am_i(&self) -> Result<ThreadInfo, Error> {
        Ok(ThreadInfo::here())
    }

    fn countdown(&self, n: u32, callback: CallbackClient) -> Result<u32, Error> {
        // Runs on the server thread mapped to the caller, which serves the
        // callbacks coming back the other way while it waits.
        callback.step(n)
    }

    fn sleep(&self, millis: u32) -> Result<(), Error> {
        std::thread::sleep(Duration::from_millis(u64::from(millis)));
        Ok(())
    }

    fn fail(&self, message: String) -> Result<(), Error> {
        Err(Error::failed(message))
    }

    fn panic(&self, message: String) -> Result<(), Error> {
        panic!("{message}")
    }

    fn make_counter(&self, start: i64) -> Result<Arc<dyn Counter>, Error> {
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
    fn add(&self, delta: i64) -> Result<i64, Error> {
        if *self.destroyed.lock() {
            return Err(Error::failed("counter was destroyed"));
        }
        let mut v = self.value.lock();
        *v = v
            .checked_add(delta)
            .ok_or_else(|| Error::failed(format!("counter overflows adding {delta}")))?;
        Ok(*v)
    }

    fn get(&self) -> Result<i64, Error> {
        Ok(*self.value.lock())
    }

    /// Marks the counter destroyed; later `add`s fail.
    fn destroy(&self) -> Result<(), Error> {
        *self.destroyed.lock() = true;
        Ok(())
    }
}
