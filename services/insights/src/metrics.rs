//! What insights counts besides what the runtime records for every service: handles
//! registered once against the service's registry when it starts (`# HELP` in the runtime's
//! `metric_help`), so a count made in any task reaches insights' own `/metrics`.

use aula_runtime::metrics::{Counter, Metrics};

#[derive(Clone)]
pub struct InsightsMetrics {
    /// `aula_interactions_recorded_total`: interactions recorded (a repeat is not counted).
    pub interactions_recorded: Counter,
}

impl InsightsMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            interactions_recorded: metrics.counter("aula_interactions_recorded_total", vec![]),
        }
    }
}
