//! The reminder worker: every `CPAR_REMINDER_INTERVAL` (default 30s) it looks for booked
//! appointments starting within `CPAR_REMINDER_LEAD` (default 1h) that were not reminded yet,
//! claims each with a conditional UPDATE and stores the reminder in the outbox in the same
//! transaction. The claim makes it exactly once across replicas sharing the database; the
//! outbox makes delivery survive an outage of notificacoes.

use crate::{metrics::CparMetrics, store::Store};
use anyhow::Context as _;
use aula_runtime::{db::now_ms, ServiceContext};
use notificacoes::courier::Outbox;
use std::time::Duration;

/// The worker's timing, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub lead: Duration,
    pub interval: Duration,
}

impl Settings {
    pub fn from_context(ctx: &ServiceContext) -> anyhow::Result<Self> {
        let env = &ctx.settings().env;
        // A lead of 0s reminds when the appointment starts; an interval must be positive.
        let lead = env.duration_or_zero("CPAR_REMINDER_LEAD", Duration::from_secs(3600))?;
        let interval = env.duration("CPAR_REMINDER_INTERVAL", Duration::from_secs(30))?;
        Ok(Self { lead, interval })
    }
}

/// Starts the worker; it stops when the service drains.
pub fn start(
    ctx: &ServiceContext,
    store: Store,
    outbox: Outbox,
    metrics: CparMetrics,
) -> anyhow::Result<()> {
    let settings = Settings::from_context(ctx).context("reading the reminder settings")?;
    let draining = ctx.draining();
    ctx.spawn(async move {
        tokio::pin!(draining);
        let mut ticks = aula_runtime::host::Ticks::every(settings.interval);
        while ticks.next(&mut draining).await {
            if let Err(e) = run_once(&store, &outbox, &metrics, settings.lead).await {
                tracing::warn!(error = %e, "reminders: a round failed; retrying next interval");
            }
        }
    });
    Ok(())
}

/// One round; returns how many reminders this replica claimed.
pub async fn run_once(
    store: &Store,
    outbox: &Outbox,
    metrics: &CparMetrics,
    lead: Duration,
) -> sqlx::Result<usize> {
    let lead_ms = i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
    let due = store.due_reminders(now_ms(), lead_ms).await?;
    let mut sent = 0;
    for id in due {
        if store.claim_reminder(outbox, id).await? {
            sent += 1;
            metrics.reminders_sent.increment(1);
            tracing::info!(id_agendamento = id, "reminder queued");
        }
    }
    if sent > 0 {
        outbox.wake();
    }
    Ok(sent)
}
