//! Open-loop pacing: at `--rate N` request `n` is due at `n / N` seconds after the start,
//! whatever happened to the ones before it.
//!
//! A closed-loop generator that waits for a slow answer before sending the next request stops
//! sending exactly when the server is slow, and never measures the requests it failed to send
//! (coordinated omission). Here a request that is due while every worker is busy keeps its due
//! time, and its latency counts from then: the queueing a real client would have seen is in the
//! numbers. A request picked up before it is due waits for its time and counts from when it was
//! actually sent, so the timer's own slack (tokio's timer ticks in milliseconds) is not charged
//! to the server.

use std::time::{Duration, Instant};

/// A fixed request rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    per_second: f64,
}

impl Schedule {
    /// `None` unless the rate is a positive, finite number.
    pub fn new(per_second: f64) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0).then_some(Self { per_second })
    }

    pub fn rate(&self) -> f64 {
        self.per_second
    }

    /// When request `n` (from 0) is due, after the start.
    pub fn due(&self, n: u64) -> Duration {
        // From n each time rather than by adding an interval: no drift over long runs.
        Duration::from_nanos((n as f64 * 1e9 / self.per_second).round() as u64)
    }

    /// How many requests fall due within the first `span`.
    pub fn due_within(&self, span: Duration) -> u64 {
        (span.as_secs_f64() * self.per_second).ceil() as u64
    }
}

/// The instant a request's latency counts from: its due time when a worker picked it up late
/// (it queued behind busy workers), else the instant it was actually sent.
pub fn latency_origin(due: Instant, picked_up: Instant, sent: Instant) -> Instant {
    if picked_up > due {
        due
    } else {
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_fixed_intervals() {
        let s = Schedule::new(200.0).unwrap();
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(5));
        assert_eq!(s.due(200), Duration::from_secs(1));
        // No drift: the millionth request is due exactly at 5000 s.
        assert_eq!(s.due(1_000_000), Duration::from_secs(5000));
        let gaps: Vec<Duration> = (1..50).map(|n| s.due(n) - s.due(n - 1)).collect();
        assert!(gaps
            .iter()
            .all(|g| g.abs_diff(Duration::from_millis(5)) < Duration::from_micros(1)));
    }

    #[test]
    fn a_span_holds_rate_times_seconds_requests() {
        let s = Schedule::new(150.0).unwrap();
        assert_eq!(s.due_within(Duration::from_secs(2)), 300);
        // The count matches the due times: request 299 is inside 2 s, request 300 is not.
        assert!(s.due(299) < Duration::from_secs(2));
        assert!(s.due(300) >= Duration::from_secs(2));
        assert_eq!(
            Schedule::new(0.5)
                .unwrap()
                .due_within(Duration::from_secs(3)),
            2
        );
    }

    #[test]
    fn only_positive_finite_rates() {
        assert!(Schedule::new(0.0).is_none());
        assert!(Schedule::new(-3.0).is_none());
        assert!(Schedule::new(f64::NAN).is_none());
        assert!(Schedule::new(f64::INFINITY).is_none());
        assert_eq!(Schedule::new(10.0).unwrap().rate(), 10.0);
    }

    #[test]
    fn late_requests_count_from_their_due_time() {
        let due = Instant::now();
        let ms = Duration::from_millis;
        // Picked up 30 ms late because every worker was busy: the 30 ms are latency.
        assert_eq!(latency_origin(due, due + ms(30), due + ms(30)), due);
        // Picked up early, the timer woke 1 ms after the due time: counted from the send.
        assert_eq!(latency_origin(due, due - ms(4), due + ms(1)), due + ms(1));
        // Picked up exactly on time.
        assert_eq!(latency_origin(due, due, due), due);
    }
}
