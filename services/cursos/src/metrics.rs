//! What cursos counts besides what the runtime records for every service: handles registered
//! once against the service's registry when it starts (`# HELP` in the runtime's
//! `metric_help`), so a count made in any task reaches cursos' own `/metrics`.

use aula_runtime::metrics::{Counter, Metrics};

#[derive(Clone)]
pub struct CursosMetrics {
    /// `aula_enrolments_total`: enrolments made (a repeated Enroll is not counted again).
    pub enrolments: Counter,
}

impl CursosMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            enrolments: metrics.counter("aula_enrolments_total", vec![]),
        }
    }
}
