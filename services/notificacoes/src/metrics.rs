//! What notificacoes counts besides what the runtime records for every service: handles
//! registered once against the service's registry when it starts (`# HELP` in the runtime's
//! `metric_help`), so a count made in any task reaches notificacoes' own `/metrics`. The
//! stream bounds' gauge and shed counter are registered by [`crate::streams`].

use std::collections::HashMap;

use aula_runtime::metrics::{Counter, Label, Metrics};

use crate::domain::{origem_label, origem_labels};

#[derive(Clone)]
pub struct NotificacoesMetrics {
    /// `aula_notifications_stored_total{origem}`, one handle per known sender (bounded).
    stored: HashMap<&'static str, Counter>,
}

impl NotificacoesMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let stored = origem_labels()
            .map(|o| {
                let labels = vec![Label::new("origem", o)];
                (
                    o,
                    metrics.counter("aula_notifications_stored_total", labels),
                )
            })
            .collect();
        Self { stored }
    }

    /// Counts a notification stored for the first time, by who sent it.
    pub fn stored(&self, origem: &str) {
        if let Some(c) = self.stored.get(origem_label(origem)) {
            c.increment(1);
        }
    }
}
