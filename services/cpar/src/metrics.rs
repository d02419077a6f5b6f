//! What cpar counts besides what the runtime records for every service: handles registered
//! once against the service's registry when it starts (`# HELP` in the runtime's
//! `metric_help`), so the reminder worker's counts reach cpar's own `/metrics` from its task.

use aula_runtime::metrics::{Counter, Metrics};

#[derive(Clone)]
pub struct CparMetrics {
    /// `aula_reminders_sent_total`: reminders handed to the outbox.
    pub reminders_sent: Counter,
}

impl CparMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            reminders_sent: metrics.counter("aula_reminders_sent_total", vec![]),
        }
    }
}
