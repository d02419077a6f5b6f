//! A run's figures, as `key<TAB>value` lines and one line for people.

use super::conn::Protocol;
use std::{collections::BTreeMap, fmt::Write as _};
/// A run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub asked_rate: f64,
    pub protocol: Protocol,
    pub connections: usize,
    /// The measured window.
    pub seconds: f64,
    /// Measured calls due; each was either sent or dropped.
    pub scheduled: u64,
    pub sent: u64,
    /// Calls sent per second, from the first measured send to the last.
    pub sent_rate: f64,
    /// Calls answered (OK or not), and per second: over the measured window, or from its start
    /// to the last answer when that came later (a server that fell behind).
    pub completed: u64,
    pub rate: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Due while `max_outstanding` calls were out: not sent.
    pub dropped: u64,
    /// Sent, and not answered by the end of the drain.
    pub unfinished: u64,
    /// Of the OK calls, from their due time.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How late calls went out after their due time.
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Calls that went out 1 ms or more after their due time.
    pub late_1ms: u64,
    /// The generator's own CPU over the whole run, percent of one core.
    pub cpu_pct: f64,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `key<TAB>value` lines (scripts/bench-data.sh prefixes the keys with the run's name).
    pub fn tsv(&self) -> String {
        let mut out = String::new();
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(out, "{k}\t{v}");
        };
        kv("asked_rate", format!("{:.0}", self.asked_rate));
        kv(
            "protocol",
            match self.protocol {
                Protocol::Http1 => "http1",
                Protocol::Http2 => "h2",
            }
            .into(),
        );
        kv("connections", self.connections.to_string());
        kv("seconds", format!("{}", self.seconds));
        kv("scheduled", self.scheduled.to_string());
        kv("sent", self.sent.to_string());
        kv("sent_rate", format!("{:.0}", self.sent_rate));
        kv("completed", self.completed.to_string());
        kv("rate", format!("{:.0}", self.rate));
        kv("ok", self.ok.to_string());
        kv("errors", self.error_count().to_string());
        for (what, n) in &self.errors {
            kv(&format!("errors.{what}"), n.to_string());
        }
        kv("dropped", self.dropped.to_string());
        kv("unfinished", self.unfinished.to_string());
        kv("p50_ms", format!("{:.3}", self.p50_ms));
        kv("p90_ms", format!("{:.3}", self.p90_ms));
        kv("p99_ms", format!("{:.3}", self.p99_ms));
        kv("max_ms", format!("{:.3}", self.max_ms));
        kv("lag_p50_us", self.lag_p50_us.to_string());
        kv("lag_p99_us", self.lag_p99_us.to_string());
        kv("lag_max_us", self.lag_max_us.to_string());
        kv("late_1ms", self.late_1ms.to_string());
        kv("cpu_pct", format!("{:.1}", self.cpu_pct));
        out
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "asked {:.0}/s, sent {:.0}/s, answered {:.0}/s over {} connections; {} OK, {} errors, \
             {} dropped, {} unfinished; p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms max {:.3} ms; \
             sent late p50 {} us p99 {} us max {} us ({} by 1 ms or more); generator CPU {:.1}%",
            self.asked_rate,
            self.sent_rate,
            self.rate,
            self.connections,
            self.ok,
            self.error_count(),
            self.dropped,
            self.unfinished,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.lag_p50_us,
            self.lag_p99_us,
            self.lag_max_us,
            self.late_1ms,
            self.cpu_pct,
        )
    }
}
