//! What the chatbot counts besides what the runtime records for every service: handles
//! registered once against the service's registry when it starts (`# HELP` in the runtime's
//! `metric_help`). The recorder's worker and tonic's polling of a streamed answer run outside
//! the handler's task; a handle records into the chatbot's own `/metrics` from any of them.
//! Gemini's calls are counted by [`crate::gemini::GeminiMetrics`], registered only in Gemini
//! mode (an offline chatbot exports no Gemini series).

use std::sync::Arc;

use aula_runtime::metrics::{Counter, Label, Metrics};

/// Cheap to clone: the handles are shared.
#[derive(Clone)]
pub struct ChatbotMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// `aula_chatbot_questions_total{mode,outcome}`: `[gemini, offline] x [ok, error]`.
    questions: [[Counter; 2]; 2],
    /// `aula_chatbot_interaction_records_total{outcome}`.
    delivered: Counter,
    failed: Counter,
    dropped: Counter,
}

const MODES: [&str; 2] = ["gemini", "offline"];

impl ChatbotMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let question = |mode: &'static str, outcome: &'static str| {
            let labels = vec![Label::new("mode", mode), Label::new("outcome", outcome)];
            metrics.counter(crate::grpc::QUESTIONS_METRIC, labels)
        };
        let record = |outcome: &'static str| {
            let labels = vec![Label::new("outcome", outcome)];
            metrics.counter(crate::recorder::RECORDS_METRIC, labels)
        };
        Self {
            inner: Arc::new(Inner {
                questions: MODES.map(|m| [question(m, "ok"), question(m, "error")]),
                delivered: record("delivered"),
                failed: record("failed"),
                dropped: record("dropped"),
            }),
        }
    }

    /// One question answered (`ok`) or not, in `mode` (`gemini` or `offline`).
    pub fn question(&self, mode: &str, ok: bool) {
        let by_mode = if mode == MODES[0] { 0 } else { 1 };
        self.inner.questions[by_mode][usize::from(!ok)].increment(1);
    }

    /// An interaction record insights took.
    pub fn record_delivered(&self) {
        self.inner.delivered.increment(1);
    }

    /// An interaction record insights refused or never took.
    pub fn record_failed(&self) {
        self.inner.failed.increment(1);
    }

    /// An interaction record dropped before any attempt (queue full, or shutting down).
    pub fn record_dropped(&self) {
        self.inner.dropped.increment(1);
    }
}
