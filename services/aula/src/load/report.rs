//! What a run measured: per-RPC HdrHistograms while it runs, a progress line each second, and at
//! the end a table and a JSON summary.
//!
//! Latencies are of successful calls only (a fast UNAVAILABLE would flatter them); failures are
//! counted per status code. Histograms hold microseconds, 1 us to 60 s, 3 significant digits.

use super::mix::Rpc;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex, time::Duration};

const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(MAX_US)
        .clamp(1, MAX_US)
}

/// One RPC's numbers.
#[derive(Clone)]
pub struct RpcStats {
    /// Latencies of the successful calls.
    pub ok: Histogram<u64>,
    /// Failed calls by gRPC code name (`Unavailable`, `NotFound`, ...).
    pub errors: BTreeMap<String, u64>,
}

impl RpcStats {
    fn new() -> Self {
        Self {
            ok: histogram(),
            errors: BTreeMap::new(),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn count(&self) -> u64 {
        self.ok.len() + self.error_count()
    }

    fn record(&mut self, latency: Duration, outcome: Result<(), tonic::Code>) {
        match outcome {
            Ok(()) => self.ok.saturating_record(micros(latency)),
            Err(code) => *self.errors.entry(format!("{code:?}")).or_insert(0) += 1,
        }
    }

    fn merge(&mut self, other: &RpcStats) {
        self.ok.add(&other.ok).expect("same bounds");
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_insert(0) += n;
        }
    }
}

/// Where workers record their calls; shared by all of them.
pub struct Recorder {
    rpcs: Vec<(Rpc, Mutex<RpcStats>)>,
    /// Everything since the last progress line, warm-up included.
    window: Mutex<RpcStats>,
}

impl Recorder {
    pub fn new(rpcs: impl IntoIterator<Item = Rpc>) -> Self {
        Self {
            rpcs: rpcs
                .into_iter()
                .map(|r| (r, Mutex::new(RpcStats::new())))
                .collect(),
            window: Mutex::new(RpcStats::new()),
        }
    }

    /// Records one call; `measured` is false during warm-up (it still shows in the progress).
    pub fn record(
        &self,
        rpc: Rpc,
        latency: Duration,
        outcome: Result<(), tonic::Code>,
        measured: bool,
    ) {
        lock(&self.window).record(latency, outcome);
        if measured {
            if let Some((_, stats)) = self.rpcs.iter().find(|(r, _)| *r == rpc) {
                lock(stats).record(latency, outcome);
            }
        }
    }

    /// Takes what was recorded since the previous call, for the progress line.
    pub fn take_window(&self) -> RpcStats {
        std::mem::replace(&mut *lock(&self.window), RpcStats::new())
    }

    /// The measured numbers of each RPC, in mix order.
    pub fn snapshot(&self) -> Vec<(Rpc, RpcStats)> {
        self.rpcs
            .iter()
            .map(|(r, s)| (*r, lock(s).clone()))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked mid-record leaves usable numbers behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One progress line: the last interval's rate, errors and latency.
pub fn progress_line(
    phase: &str,
    elapsed: Duration,
    interval: Duration,
    window: &RpcStats,
) -> String {
    let secs = interval.as_secs_f64().max(1e-9);
    let (p50, p99) = if window.ok.is_empty() {
        ("-".to_string(), "-".to_string())
    } else {
        (
            ms(window.ok.value_at_quantile(0.5)),
            ms(window.ok.value_at_quantile(0.99)),
        )
    };
    format!(
        "[{:>4}s {phase:<6}] {:>9.0} req/s  errors {:<6} p50 {p50} ms  p99 {p99} ms",
        elapsed.as_secs(),
        window.count() as f64 / secs,
        window.error_count(),
    )
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// One row of the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// `service.Method`, or `total`.
    pub rpc: String,
    pub count: u64,
    pub errors: u64,
    pub error_codes: BTreeMap<String, u64>,
    /// Calls per second over the measured time.
    pub rate: f64,
    /// Of the successful calls; absent when none succeeded.
    pub latency_ms: Option<Latency>,
}

impl Row {
    fn of(rpc: String, s: &RpcStats, measured: Duration) -> Self {
        Self {
            rpc,
            count: s.count(),
            errors: s.error_count(),
            error_codes: s.errors.clone(),
            rate: s.count() as f64 / measured.as_secs_f64().max(1e-9),
            latency_ms: Latency::of(&s.ok),
        }
    }
}

/// The JSON summary (`--json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// `open` (a fixed rate; latency from each request's due time) or `closed` (flat out).
    pub mode: &'static str,
    pub target_rate: Option<f64>,
    pub concurrency: usize,
    pub warmup_s: f64,
    /// The measured time (warm-up excluded).
    pub duration_s: f64,
    pub total: Row,
    pub rpcs: Vec<Row>,
}

impl Summary {
    pub fn new(
        target_rate: Option<f64>,
        concurrency: usize,
        warmup: Duration,
        measured: Duration,
        stats: &[(Rpc, RpcStats)],
    ) -> Self {
        let mut total = RpcStats::new();
        for (_, s) in stats {
            total.merge(s);
        }
        Self {
            mode: if target_rate.is_some() {
                "open"
            } else {
                "closed"
            },
            target_rate,
            concurrency,
            warmup_s: warmup.as_secs_f64(),
            duration_s: measured.as_secs_f64(),
            total: Row::of("total".into(), &total, measured),
            rpcs: stats
                .iter()
                .map(|(r, s)| Row::of(r.to_string(), s, measured))
                .collect(),
        }
    }

    /// Failed calls over all calls; 1 when nothing was measured (a run that sent nothing failed).
    pub fn error_ratio(&self) -> f64 {
        if self.total.count == 0 {
            1.0
        } else {
            self.total.errors as f64 / self.total.count as f64
        }
    }

    /// The final table: one line per RPC and a total.
    pub fn table(&self) -> String {
        let width = self
            .rpcs
            .iter()
            .map(|r| r.rpc.len())
            .max()
            .unwrap_or(0)
            .max("total".len());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "rpc", "count", "errors", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for row in self.rpcs.iter().chain(std::iter::once(&self.total)) {
            let lat = |f: fn(&Latency) -> f64| {
                row.latency_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format!("{:.2}", f(l)))
            };
            let _ = writeln!(
                out,
                "{:<width$} {:>9} {:>7} {:>9.1} {:>8} {:>8} {:>8} {:>8}",
                row.rpc,
                row.count,
                row.errors,
                row.rate,
                lat(|l| l.p50),
                lat(|l| l.p90),
                lat(|l| l.p99),
                lat(|l| l.max),
            );
        }
        for row in self.rpcs.iter().filter(|r| r.errors > 0) {
            let codes: Vec<String> = row
                .error_codes
                .iter()
                .map(|(c, n)| format!("{c} x{n}"))
                .collect();
            let _ = writeln!(out, "  {} failed: {}", row.rpc, codes.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::mix::Target;

    /// The summary of `r` as a closed-loop run of 4 workers for 2 s, no warm-up.
    fn closed_run_of_two_seconds(r: &Recorder) -> Summary {
        Summary::new(
            None,
            4,
            Duration::ZERO,
            Duration::from_secs(2),
            &r.snapshot(),
        )
    }

    fn recorded() -> Recorder {
        let r = Recorder::new([Rpc::GetUserCourses, Rpc::GetStatus(Target::Cursos)]);
        for us in 1..=100u64 {
            r.record(
                Rpc::GetUserCourses,
                Duration::from_micros(us * 10),
                Ok(()),
                true,
            );
        }
        r.record(
            Rpc::GetStatus(Target::Cursos),
            Duration::from_micros(250),
            Ok(()),
            true,
        );
        r.record(
            Rpc::GetStatus(Target::Cursos),
            Duration::from_millis(1),
            Err(tonic::Code::Unavailable),
            true,
        );
        // Warm-up: in the progress window, not in the summary.
        r.record(Rpc::GetUserCourses, Duration::from_secs(9), Ok(()), false);
        r
    }

    #[test]
    fn summary_counts_rates_and_percentiles() {
        let r = recorded();
        let s = Summary::new(
            Some(51.0),
            4,
            Duration::from_secs(1),
            Duration::from_secs(2),
            &r.snapshot(),
        );
        assert_eq!(s.mode, "open");
        assert_eq!(s.total.count, 102);
        assert_eq!(s.total.errors, 1);
        assert_eq!(s.total.rate, 51.0);
        let guc = &s.rpcs[0];
        assert_eq!(guc.rpc, "cursos.GetUserCourses");
        assert_eq!((guc.count, guc.errors), (100, 0));
        let l = guc.latency_ms.as_ref().unwrap();
        // 0.01 ms .. 1 ms in steps of 0.01 ms: below 2048 us HdrHistogram is exact.
        assert_eq!((l.p50, l.p90, l.p99, l.max), (0.5, 0.9, 0.99, 1.0), "{l:?}");
        assert!(l.max < 9000.0, "warm-up leaked into the summary");
        let status = &s.rpcs[1];
        assert_eq!(
            status.error_codes,
            BTreeMap::from([("Unavailable".to_string(), 1)])
        );
        assert_eq!(status.latency_ms.as_ref().unwrap().max, 0.25);
        assert!((s.error_ratio() - 1.0 / 102.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_measured_is_all_errors() {
        let r = Recorder::new([Rpc::Enroll]);
        let s = Summary::new(
            None,
            1,
            Duration::ZERO,
            Duration::from_secs(1),
            &r.snapshot(),
        );
        assert_eq!(s.mode, "closed");
        assert_eq!(s.error_ratio(), 1.0);
        assert!(s.rpcs[0].latency_ms.is_none());
        assert!(s.table().lines().nth(1).unwrap().contains(" - "));
    }

    #[test]
    fn table_has_a_line_per_rpc_a_total_and_the_failures() {
        let r = recorded();
        let table = closed_run_of_two_seconds(&r).table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "rpc", "count", "errors", "rate/s", "p50", "ms", "p90", "ms", "p99", "ms", "max",
                "ms"
            ]
        );
        let guc: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            guc,
            [
                "cursos.GetUserCourses",
                "100",
                "0",
                "50.0",
                "0.50",
                "0.90",
                "0.99",
                "1.00"
            ]
        );
        assert!(lines[3].starts_with("total "), "{table}");
        assert_eq!(lines[4].trim(), "cursos.GetStatus failed: Unavailable x1");
        // Columns line up: every row is as wide as the header up to the last column.
        assert!(
            lines[..4].iter().all(|l| l.len() == lines[0].len()),
            "{table}"
        );
    }

    #[test]
    fn json_has_percentiles_per_rpc() {
        let r = recorded();
        let s = closed_run_of_two_seconds(&r);
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["mode"], "closed");
        assert_eq!(v["rpcs"][0]["rpc"], "cursos.GetUserCourses");
        for key in ["min", "mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(v["rpcs"][0]["latency_ms"][key].is_f64(), "{key}");
        }
        assert_eq!(v["total"]["count"], 102);
        assert_eq!(v["rpcs"][1]["error_codes"]["Unavailable"], 1);
    }

    #[test]
    fn progress_line_shows_rate_errors_and_latency() {
        let r = recorded();
        let w = r.take_window();
        let line = progress_line(
            "run",
            Duration::from_secs(3),
            Duration::from_millis(500),
            &w,
        );
        assert!(line.contains("[   3s run   ]"), "{line}");
        assert!(line.contains("206 req/s"), "{line}");
        assert!(line.contains("errors 1 "), "{line}");
        assert!(line.contains("p50 0.50 ms"), "{line}");
        // The window was taken: the next one starts empty.
        let empty = progress_line(
            "run",
            Duration::from_secs(4),
            Duration::from_secs(1),
            &r.take_window(),
        );
        assert!(
            empty.contains("p50 - ms") && empty.contains(" 0 req/s"),
            "{empty}"
        );
    }
}
