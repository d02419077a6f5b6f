//! Records every answered question in insights (`RecordInteraction`), in the background.
//!
//! An answer must never wait for insights: [`Recorder::record`] only puts the interaction on a
//! bounded queue (and drops it, counted, when the queue is full). One worker started with
//! `ctx.spawn` drains the queue, retrying each record with backoff while insights is briefly
//! down; when the service drains it stops retrying and makes one best-effort pass over what is
//! still queued. Recording is idempotent on insights' side (keyed by `id_interacao`), so a retry
//! after a lost reply does no harm.

use std::time::{Duration, Instant};

use aula_api::{insights_service_client::InsightsServiceClient, RecordInteractionRequest};
use aula_runtime::{backoff::Backoff, peers::PeerChannel, ServiceContext};

use crate::metrics::ChatbotMetrics;
use tokio::sync::mpsc;

/// Interactions waiting for insights. At a few hundred bytes each, a full queue is well under a
/// MiB; beyond it insights is clearly not keeping up and newer records are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// Attempts per record while the service runs (the first included): with the backoff below, a
/// record waits out an insights outage of 3 to 6 seconds (a restart) before it counts as failed.
const MAX_ATTEMPTS: u32 = 6;
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(3));
/// Longest the final flush may take (also bounded by half the shutdown grace).
const FLUSH_MAX: Duration = Duration::from_secs(2);

/// The counter of what happened to each interaction record: `outcome` is `delivered`, `failed`
/// (insights refused it or stayed down through every attempt) or `dropped` (queue full).
pub const RECORDS_METRIC: &str = "aula_chatbot_interaction_records_total";

/// One answered (or failed) question, as insights records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id_interacao: String,
    pub id_curso: String,
    pub id_usuario: String,
    pub latencia_ms: i64,
    pub modelo: String,
    pub sucesso: bool,
}

impl Interaction {
    fn to_request(&self) -> RecordInteractionRequest {
        RecordInteractionRequest {
            id_interacao: self.id_interacao.clone(),
            id_curso: self.id_curso.clone(),
            id_usuario: self.id_usuario.clone(),
            latencia_ms: self.latencia_ms,
            modelo: self.modelo.clone(),
            sucesso: self.sucesso,
        }
    }
}

/// The sending side of the queue; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Interaction>,
    metrics: ChatbotMetrics,
}

impl Recorder {
    /// Starts the worker delivering to `insights`; it stops when the service drains.
    pub fn start(ctx: &ServiceContext, insights: PeerChannel, metrics: ChatbotMetrics) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let flush = FLUSH_MAX.min(ctx.settings().server.shutdown_grace / 2);
        ctx.spawn(run(
            rx,
            InsightsServiceClient::new(insights),
            ctx.clone(),
            flush,
            metrics.clone(),
        ));
        Recorder { tx, metrics }
    }

    /// Queues an interaction; never waits.
    pub fn record(&self, interaction: Interaction) {
        match self.tx.try_send(interaction) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(i)) => {
                self.metrics.record_dropped();
                tracing::warn!(
                    id_interacao = %i.id_interacao,
                    "interaction queue full (insights not keeping up): record dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(i)) => {
                // The worker has stopped: the service is shutting down.
                self.metrics.record_dropped();
                tracing::debug!(id_interacao = %i.id_interacao, "recorder stopped: record dropped");
            }
        }
    }
}

type Client = InsightsServiceClient<PeerChannel>;

async fn run(
    mut rx: mpsc::Receiver<Interaction>,
    client: Client,
    ctx: ServiceContext,
    flush: Duration,
    m: ChatbotMetrics,
) {
    let draining = ctx.draining();
    tokio::pin!(draining);
    // A record whose retries the drain interrupted; it goes first in the flush.
    let mut interrupted = None;
    loop {
        tokio::select! {
            biased;
            _ = &mut draining => break,
            next = rx.recv() => match next {
                Some(i) => {
                    if !deliver_with_retries(&client, &m, &i, &mut draining).await {
                        interrupted = Some(i);
                        break;
                    }
                }
                None => return,
            },
        }
    }
    // Best effort: one attempt per queued record, all within the flush budget.
    rx.close();
    let until = Instant::now() + flush;
    let mut rest = std::iter::from_fn(|| rx.try_recv().ok());
    for i in interrupted.into_iter().chain(&mut rest) {
        if Instant::now() >= until || !deliver_before(&client, &m, &i, until).await {
            count_failed(&m, &i, "not delivered before shutdown");
        }
    }
}

/// Delivers `i`, retrying transient failures with exponential backoff and jitter. Returns false
/// only when the drain interrupted it (the record is then neither delivered nor counted).
async fn deliver_with_retries(
    client: &Client,
    m: &ChatbotMetrics,
    i: &Interaction,
    draining: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> bool {
    for attempt in 1..=MAX_ATTEMPTS {
        let mut client = client.clone();
        let result = tokio::select! {
            biased;
            _ = &mut *draining => return false,
            r = client.record_interaction(i.to_request()) => r,
        };
        match result {
            Ok(_) => {
                m.record_delivered();
                return true;
            }
            Err(status) if !is_transient(status.code()) => {
                count_failed(m, i, status.message());
                return true;
            }
            Err(status) if attempt == MAX_ATTEMPTS => {
                count_failed(m, i, status.message());
                return true;
            }
            Err(status) => {
                tracing::debug!(
                    id_interacao = %i.id_interacao,
                    attempt,
                    error = %status.message(),
                    "recording the interaction failed; retrying"
                );
                tokio::select! {
                    biased;
                    _ = &mut *draining => return false,
                    _ = tokio::time::sleep(RETRY.delay(attempt - 1)) => {}
                }
            }
        }
    }
    true
}

/// One attempt, bounded by `until`; true when insights took the record.
async fn deliver_before(
    client: &Client,
    m: &ChatbotMetrics,
    i: &Interaction,
    until: Instant,
) -> bool {
    let mut client = client.clone();
    let call = client.record_interaction(i.to_request());
    match tokio::time::timeout_at(tokio::time::Instant::from_std(until), call).await {
        Ok(Ok(_)) => {
            m.record_delivered();
            true
        }
        _ => false,
    }
}

fn count_failed(m: &ChatbotMetrics, i: &Interaction, why: &str) {
    m.record_failed();
    tracing::warn!(id_interacao = %i.id_interacao, error = %why, "interaction not recorded in insights");
}

/// Worth retrying: insights down, overloaded or slow. Anything else is its considered answer.
fn is_transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled
    )
}
