//! What an attack costs the well-behaved clients: the latency of their
//! quick calls while the hostile peer is at work.
//!
//! Owns the attack's window ([`Window`]: open from the hostile thread's
//! connect to its hang-up, or over a timed stretch of the same part of the
//! round when the kind is `none`; the calls counted are those in flight
//! while it is open) and the latency histogram ([`Histogram`]:
//! fixed log buckets, one per client thread, merged per kind when the
//! round's threads are joined, so that no call takes a lock). What goes in
//! is a figure for the summary table, never an assertion.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// [`Window`]'s phases, in order.
const BEFORE: u8 = 0;
/// The attack is running.
const OPEN: u8 = 1;
/// The attack has hung up.
const CLOSED: u8 = 2;
/// The round ended without the window ever opening.
const NEVER: u8 = 3;

/// The round's attack window, opened and closed once by the hostile thread.
/// A client thread notes its [`Window::phase`] when a quick call starts and
/// asks [`Window::overlapped`] when it returns: the calls counted are those
/// in flight at some moment while the attack ran (a call that started just
/// before it and was held up all through it counts too).
#[derive(Default)]
pub struct Window {
    /// [`BEFORE`], [`OPEN`], [`CLOSED`] or [`NEVER`].
    phase: AtomicU8,
    /// How long it was open, in microseconds, once closed.
    micros: AtomicU64,
}

/// A [`Window`]'s phase, as a call saw it when it started.
#[derive(Clone, Copy)]
pub struct Phase(u8);

impl Window {
    /// Opens the window (the attack is about to connect); when it opened.
    pub fn open(&self) -> Instant {
        let _ = self
            .phase
            .compare_exchange(BEFORE, OPEN, Ordering::SeqCst, Ordering::SeqCst);
        Instant::now()
    }

    /// Closes the window opened at `opened` (the attack has hung up).
    pub fn close(&self, opened: Instant) {
        let micros = u64::try_from(opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.micros.store(micros, Ordering::Relaxed);
        let _ = self
            .phase
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Ends the window whatever the hostile thread did: closes it if a
    /// thread stuck past its watchdog left it open; keeps it from opening
    /// if it never did (no call of the round then counts).
    pub fn shut(&self) {
        let _ = self
            .phase
            .compare_exchange(BEFORE, NEVER, Ordering::SeqCst, Ordering::SeqCst);
        let _ = self
            .phase
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The phase now, for a call about to start.
    pub fn phase(&self) -> Phase {
        Phase(self.phase.load(Ordering::Relaxed))
    }

    /// Whether the window was open at some moment of a call that started
    /// in phase `started` and has just returned.
    pub fn overlapped(&self, started: Phase) -> bool {
        let now = self.phase.load(Ordering::Relaxed);
        started.0 <= OPEN && (now == OPEN || now == CLOSED)
    }

    /// How long the window was open, once closed (zero before).
    pub fn length(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// Values below this have a bucket each; above, each power of two is cut
/// into this many buckets (a value is known within 1/16 of itself).
const SUB_BUCKETS: u64 = 16;
/// `log2(SUB_BUCKETS)`.
const SUB_BITS: u32 = 4;
/// Buckets for every `u32` (about 71 minutes in microseconds; longer
/// latencies count as that).
const BUCKETS: usize = (SUB_BUCKETS + (32 - SUB_BITS as u64) * SUB_BUCKETS) as usize;

/// Latencies in microseconds, in fixed logarithmic buckets.
#[derive(Clone)]
pub struct Histogram {
    /// Calls per bucket.
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Counts one call that took `latency`.
    pub fn record(&mut self, latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.counts[bucket(micros)] += 1;
    }

    /// Adds `other`'s calls to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// Calls counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency in microseconds that a fraction `q` (0..=1) of the calls
    /// did not exceed, rounded up to the top of its bucket; `None` when no
    /// call was counted.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_top(index));
            }
        }
        None
    }

    /// The summary table's row for the calls made during `kind`:
    /// `| latency during <kind>: p50 / p99 (µs), calls | a / b, n |`, with
    /// `-` for the percentiles when no call was counted.
    pub fn row(&self, kind: &str) -> String {
        let figure = |q| self.quantile(q).map_or("-".to_string(), |v| v.to_string());
        format!(
            "| latency during {kind}: p50 / p99 (µs), calls | {} / {}, {} |",
            figure(0.50),
            figure(0.99),
            self.count()
        )
    }
}

/// The bucket of `micros`.
fn bucket(micros: u32) -> usize {
    let v = u64::from(micros);
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (v >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

/// The largest value in bucket `index`.
fn bucket_top(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (index - SUB_BUCKETS) % SUB_BUCKETS;
    ((SUB_BUCKETS + sub + 1) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_that_holds_it() {
        let mut previous_top = None;
        for index in 0..BUCKETS {
            let top = bucket_top(index);
            assert_eq!(bucket(top.min(u64::from(u32::MAX)) as u32), index);
            if let Some(p) = previous_top {
                assert_eq!(bucket(p as u32 + 1), index, "buckets are contiguous");
            }
            previous_top = Some(top);
        }
        assert_eq!(bucket_top(BUCKETS - 1), u64::from(u32::MAX));
        for v in [
            0,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            1_000,
            65_535,
            1 << 20,
            u32::MAX,
        ] {
            let top = bucket_top(bucket(v));
            assert!(top >= u64::from(v), "{v} above its bucket's top {top}");
            assert!(
                top - u64::from(v) <= u64::from(v) / SUB_BUCKETS,
                "{v}: top {top} not within 1/16"
            );
        }
    }

    #[test]
    fn the_calls_counted_are_those_in_flight_while_the_window_is_open() {
        let window = Window::default();
        let before = window.phase();
        assert!(!window.overlapped(before), "returned before it opened");
        let opened = window.open();
        let during = window.phase();
        assert!(window.overlapped(before), "held up into it");
        assert!(window.overlapped(during));
        window.close(opened);
        let after = window.phase();
        assert!(window.overlapped(before), "spanned it all");
        assert!(window.overlapped(during), "ran past its end");
        assert!(!window.overlapped(after), "started after it closed");
        window.shut();
        assert!(
            window.overlapped(during),
            "shutting a closed window changes nothing"
        );

        let never = Window::default();
        let before = never.phase();
        never.shut();
        never.open();
        assert!(
            !never.overlapped(before),
            "a window shut unopened never opens"
        );
        assert!(never.length().is_zero());
    }

    #[test]
    fn quantiles_come_from_the_calls_counted() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(
            h.row("none"),
            "| latency during none: p50 / p99 (µs), calls | - / -, 0 |"
        );
        for micros in 1..=100 {
            h.record(Duration::from_micros(micros));
        }
        let mut other = Histogram::default();
        other.record(Duration::from_secs(1));
        h.merge(&other);
        assert_eq!(h.count(), 101);
        assert_eq!(h.quantile(0.0), Some(1));
        let p50 = h.quantile(0.5).unwrap();
        assert!((51..=54).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((100..=103).contains(&p99), "{p99}");
        let max = h.quantile(1.0).unwrap();
        assert!(
            (1_000_000..=1_000_000 + 1_000_000 / 16).contains(&max),
            "{max}"
        );
        assert!(h
            .row("garbage bytes")
            .starts_with("| latency during garbage bytes: p50 / p99 (µs), calls | "));
        assert!(h.row("garbage bytes").ends_with(", 101 |"));
    }
}
