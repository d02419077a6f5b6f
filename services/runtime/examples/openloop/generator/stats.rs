//! What the measured calls did, recorded as they end, and the report made of it.

use super::{call::Outcome, conn::Protocol, report::Report, schedule::Schedule};
use hdrhistogram::Histogram;
use std::{collections::BTreeMap, time::Duration};
/// Latencies are recorded in microseconds, 1 us to 60 s, 3 significant digits.
const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds")
}

fn micros(ns: u64) -> u64 {
    (ns / 1000).min(MAX_US)
}

/// What the measured calls did (warm-up calls are sent, and left out of these).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of the OK calls from their due time, microseconds.
    pub ok: Histogram<u64>,
    /// Failed calls by what failed.
    pub errors: BTreeMap<String, u64>,
    /// How late each call went out after its due time, microseconds.
    pub lag: Histogram<u64>,
    /// Calls sent, and calls not sent because `max_outstanding` were out already.
    pub sent: u64,
    pub dropped: u64,
    /// When the first and the last measured call went out, and the last one answered (ns after
    /// the start).
    pub first_sent: u64,
    pub last_sent: u64,
    pub last_done: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            ok: histogram(),
            errors: BTreeMap::new(),
            lag: histogram(),
            sent: 0,
            dropped: 0,
            first_sent: u64::MAX,
            last_sent: 0,
            last_done: 0,
        }
    }
}

impl Stats {
    /// A measured call due at `due` went out at `sent` (ns after the start).
    pub fn sent_at(&mut self, due: u64, sent: u64) {
        self.sent += 1;
        self.lag.saturating_record(micros(sent.saturating_sub(due)));
        self.first_sent = self.first_sent.min(sent);
        self.last_sent = self.last_sent.max(sent);
    }

    /// A measured call due at `due` ended at `done` (ns after the start) with `outcome`.
    pub fn done(&mut self, due: u64, done: u64, outcome: Outcome) {
        match outcome {
            Ok(()) => self
                .ok
                .saturating_record(micros(done.saturating_sub(due)).max(1)),
            Err(what) => *self.errors.entry(what).or_insert(0) += 1,
        }
        self.last_done = self.last_done.max(done);
    }

    pub fn completed(&self) -> u64 {
        self.ok.len() + self.errors.values().sum::<u64>()
    }

    /// The report of a run of `schedule` over `connections`, which used `cpu` over `wall`.
    pub fn report(
        &self,
        schedule: &Schedule,
        protocol: Protocol,
        connections: usize,
        cpu: Duration,
        wall: Duration,
    ) -> Report {
        let completed = self.completed();
        // The measured window, or until the last answer when that came after it.
        let window_end = schedule.window_start() + schedule.measured().as_nanos() as u64;
        let window = self.last_done.max(window_end) - schedule.window_start();
        let ms = |q: f64| {
            if self.ok.is_empty() {
                0.0
            } else {
                self.ok.value_at_quantile(q) as f64 / 1000.0
            }
        };
        Report {
            asked_rate: schedule.rate(),
            protocol,
            connections,
            seconds: schedule.measured().as_secs_f64(),
            scheduled: self.sent + self.dropped,
            sent: self.sent,
            // n calls span n - 1 intervals.
            sent_rate: if self.sent > 1 && self.last_sent > self.first_sent {
                (self.sent - 1) as f64 * 1e9 / (self.last_sent - self.first_sent) as f64
            } else {
                0.0
            },
            completed,
            rate: if window > 0 {
                completed as f64 * 1e9 / window as f64
            } else {
                0.0
            },
            ok: self.ok.len(),
            errors: self.errors.clone(),
            dropped: self.dropped,
            unfinished: self.sent.saturating_sub(completed),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: if self.ok.is_empty() {
                0.0
            } else {
                self.ok.max() as f64 / 1000.0
            },
            lag_p50_us: self.lag.value_at_quantile(0.50),
            lag_p99_us: self.lag.value_at_quantile(0.99),
            lag_max_us: self.lag.max(),
            late_1ms: self.lag.count_between(1000, MAX_US),
            cpu_pct: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        }
    }
}
