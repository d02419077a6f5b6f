//! Retries of one Gemini call: up to `max_attempts`, each bounded by the attempt timeout and the
//! caller's deadline, guarded by the circuit breaker, with exponential backoff and "equal
//! jitter" between them, or the upstream's Retry-After.

use std::time::{Duration, Instant};

use aula_runtime::backoff::Backoff;
use futures::Future;
use tracing::{field, Instrument, Span};

use super::client::GeminiClient;
use super::failure::Failure;
use crate::domain::AnswerError;

impl GeminiClient {
    /// Runs `op` up to `max_attempts` times, each in a `gemini.generate` span, bounded by the attempt
    /// timeout and `deadline`, guarded by the breaker.
    pub(super) async fn with_retries<'a, T, F, Fut>(
        &'a self,
        deadline: Instant,
        streaming: bool,
        op: F,
    ) -> Result<T, AnswerError>
    where
        F: Fn(Span) -> Fut + 'a,
        Fut: Future<Output = Result<T, Failure>> + 'a,
    {
        let config = &self.inner.config;
        let mut last: Option<Failure> = None;
        for attempt in 1..=config.max_attempts.max(1) {
            let Some(permit) = self.inner.breaker.try_acquire() else {
                tracing::debug!(model = %config.model, "gemini circuit open: failing fast");
                return Err(last.map_or(AnswerError::CircuitOpen, |f| f.into_error(self)));
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(AnswerError::Timeout);
            }
            let attempt_deadline = deadline.min(now + config.attempt_timeout);
            let span = tracing::info_span!(
                "gemini.generate",
                model = %config.model,
                attempt,
                streaming,
                outcome = field::Empty,
                http.status = field::Empty,
                aula.fault = field::Empty,
            );
            let result = tokio::time::timeout_at(
                tokio::time::Instant::from_std(attempt_deadline),
                op(span.clone()).instrument(span.clone()),
            )
            .await;
            let failure = match result {
                Ok(Ok(value)) => {
                    span.record("outcome", "ok");
                    permit.success();
                    return Ok(value);
                }
                Ok(Err(failure)) => failure,
                Err(_elapsed) => Failure::Timeout,
            };
            span.record("outcome", failure.outcome());
            if failure.counts_against_upstream() {
                permit.failure();
            } else {
                permit.success();
            }
            if !failure.retryable() || attempt >= config.max_attempts {
                return Err(failure.into_error(self));
            }
            let delay = self.delay_before(attempt + 1, failure.retry_after());
            if Instant::now() + delay >= deadline {
                // Waiting would overrun the caller's deadline: report what went wrong now.
                tracing::warn!(parent: &span, delay_ms = delay.as_millis() as u64,
                    "gemini attempt failed; no time left to retry");
                return Err(failure.into_error(self));
            }
            tracing::warn!(parent: &span, delay_ms = delay.as_millis() as u64,
                error = %failure.redacted(self), "gemini attempt failed; retrying");
            tokio::time::sleep(delay).await;
            last = Some(failure);
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// The runtime's backoff before `attempt` (2 for the first retry), or Retry-After when the
    /// upstream gave a longer one.
    fn delay_before(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let config = &self.inner.config;
        let jittered = Backoff::new(config.backoff_base, config.backoff_max).delay(attempt - 2);
        match retry_after {
            Some(ra) => ra.max(jittered),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::GeminiConfig;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let mut config = GeminiConfig::new("k", "m", "http://h").unwrap();
        config.backoff_base = Duration::from_millis(100);
        config.backoff_max = Duration::from_millis(300);
        let client = GeminiClient::new(config).unwrap();
        for _ in 0..50 {
            let d2 = client.delay_before(2, None);
            assert!(d2 >= Duration::from_millis(50) && d2 <= Duration::from_millis(100));
            let d3 = client.delay_before(3, None);
            assert!(d3 >= Duration::from_millis(100) && d3 <= Duration::from_millis(200));
            let d9 = client.delay_before(9, None);
            assert!(d9 <= Duration::from_millis(300));
            let ra = client.delay_before(2, Some(Duration::from_secs(2)));
            assert_eq!(ra, Duration::from_secs(2));
        }
    }
}
