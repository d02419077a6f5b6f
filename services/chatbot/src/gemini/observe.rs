//! What every Gemini call records: its outcome, its duration and the tokens it used, through
//! handles registered once against the chatbot's registry ([`GeminiMetrics`], given to the
//! client with [`GeminiClient::set_metrics`]). A client given none records nothing.

use std::time::Instant;

use aula_runtime::metrics::{Counter, Histogram, Label, Metrics};

use super::client::GeminiClient;

/// Every outcome a call can have (`AnswerError::outcome` and "ok").
const OUTCOMES: [&str; 7] = [
    "ok",
    "quota",
    "blocked",
    "timeout",
    "unavailable",
    "error",
    "circuit_open",
];

/// The Gemini client's handles.
#[derive(Clone)]
pub struct GeminiMetrics {
    /// `aula_gemini_requests_total{outcome}`, in the order of [`OUTCOMES`].
    requests: [Counter; OUTCOMES.len()],
    /// `aula_gemini_request_duration_seconds`.
    duration: Histogram,
    /// `aula_gemini_tokens_total{direction}`.
    tokens_in: Counter,
    tokens_out: Counter,
    /// `aula_fault_injected_total{flag="fault.chatbot.gemini_outage"}`.
    outage_injected: Counter,
}

impl GeminiMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let tokens = |direction: &'static str| {
            let labels = vec![Label::new("direction", direction)];
            metrics.counter("aula_gemini_tokens_total", labels)
        };
        Self {
            requests: OUTCOMES.map(|o| {
                let labels = vec![Label::new("outcome", o)];
                metrics.counter("aula_gemini_requests_total", labels)
            }),
            duration: metrics.histogram("aula_gemini_request_duration_seconds", vec![]),
            tokens_in: tokens("input"),
            tokens_out: tokens("output"),
            outage_injected: metrics.counter(
                "aula_fault_injected_total",
                vec![Label::new("flag", aula_runtime::flags::GEMINI_OUTAGE)],
            ),
        }
    }
}

impl GeminiClient {
    /// Counts one call (`aula_gemini_requests_total` by outcome), times it and adds its tokens.
    pub(super) fn record_call(
        &self,
        outcome: &'static str,
        started: Instant,
        tokens_in: u32,
        tokens_out: u32,
    ) {
        let Some(m) = self.metrics() else { return };
        let by_outcome = OUTCOMES.iter().position(|o| *o == outcome);
        // An outcome missing from the list would be a bug; it counts as "error" then.
        m.requests[by_outcome.unwrap_or(5)].increment(1);
        m.duration.record(started.elapsed().as_secs_f64());
        if tokens_in > 0 {
            m.tokens_in.increment(u64::from(tokens_in));
        }
        if tokens_out > 0 {
            m.tokens_out.increment(u64::from(tokens_out));
        }
    }

    /// Counts an attempt the outage flag failed on purpose.
    pub(super) fn record_injected_outage(&self) {
        if let Some(m) = self.metrics() {
            m.outage_injected.increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_of_an_error_has_its_handle() {
        use crate::domain::AnswerError as E;
        for e in [
            E::Invalid {
                field: "x",
                reason: "y".into(),
            },
            E::Quota { retry_after: None },
            E::Blocked {
                reason: String::new(),
            },
            E::Timeout,
            E::Unavailable {
                detail: String::new(),
            },
            E::CircuitOpen,
            E::Deadline,
        ] {
            assert!(OUTCOMES.contains(&e.outcome()), "{e:?}");
        }
        assert_eq!(OUTCOMES[5], "error");
    }
}
