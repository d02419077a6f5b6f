//! The Gemini client: `generateContent` and `streamGenerateContent?alt=sse` over reqwest (rustls),
//! with a timeout per attempt, an overall bound set by the caller's deadline, retries with
//! exponential backoff and jitter honouring Retry-After, and a circuit breaker.
//!
//! The API key travels only in the `x-goog-api-key` header (marked sensitive), never in the URL;
//! it is redacted from `Debug` and scrubbed from every error detail, so it cannot reach a log, a
//! trace or a caller.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream, StreamExt};
use futures::Future;
use rand::Rng;
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use tracing::{field, Instrument, Span};

use super::breaker::{Breaker, BreakerConfig, BreakerState};
use super::prompt;
use super::protocol::{ErrorResponse, GenerateContentRequest, GenerateContentResponse};
use super::sse::SseParser;
use crate::engine::{Answer, AnswerError, Chunk, ConfigError, Question};

/// Largest response body read (a generateContent answer is a few KiB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Longest upstream error message kept in an error detail.
const MAX_DETAIL: usize = 300;

/// Settings of a [`GeminiClient`]. Build with [`GeminiConfig::new`], then adjust the public fields.
#[derive(Clone)]
pub struct GeminiConfig {
    /// Private: only ever read to build the request header.
    api_key: String,
    /// Model id without the `models/` prefix; validated to be safe in a URL path.
    pub model: String,
    /// Scheme, host and optional path prefix, without a trailing `/`.
    pub base_url: String,
    /// Bound of one attempt (connect, send, response headers and, unary, the body).
    pub attempt_timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Kept free before the caller's deadline, so the error reaches the caller in time.
    pub deadline_margin: Duration,
    /// Overall bound when the caller sets no deadline.
    pub default_budget: Duration,
    pub breaker: BreakerConfig,
}

impl fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiConfig")
            .field("api_key", &"[REDACTED]")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("deadline_margin", &self.deadline_margin)
            .field("default_budget", &self.default_budget)
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl GeminiConfig {
    /// Validates the key (a header value), the model (a URL path segment) and the base URL; the
    /// other settings get production defaults.
    pub fn new(
        api_key: impl Into<String>,
        model: &str,
        base_url: &str,
    ) -> Result<GeminiConfig, ConfigError> {
        let api_key = api_key.into().trim().to_owned();
        if api_key.is_empty() || HeaderValue::from_str(&api_key).is_err() {
            // Never echo the key, not even a bad one.
            return Err(ConfigError {
                var: "GEMINI_API_KEY",
                reason: "must be a non-empty, printable ASCII string".into(),
            });
        }
        let model = model.trim();
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.is_empty()
            || !model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            || model.starts_with('.')
        {
            return Err(ConfigError {
                var: "GEMINI_MODEL",
                reason: format!("{model:?} is not a model id (e.g. gemini-2.5-flash)"),
            });
        }
        let bad_url = |why: &str| ConfigError {
            var: "GEMINI_BASE_URL",
            reason: format!("{base_url:?} {why}"),
        };
        let url = reqwest::Url::parse(base_url.trim())
            .map_err(|e| bad_url(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url("must be http:// or https://"));
        }
        if url.host().is_none() {
            return Err(bad_url("has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(bad_url(
                "must have no query, fragment or credentials (the key goes in GEMINI_API_KEY)",
            ));
        }
        Ok(GeminiConfig {
            api_key,
            model: model.to_owned(),
            base_url: url.as_str().trim_end_matches('/').to_owned(),
            attempt_timeout: crate::engine::DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(4),
            deadline_margin: Duration::from_millis(50),
            default_budget: Duration::from_secs(60),
            breaker: BreakerConfig::default(),
        })
    }

    /// Whether `candidate` is the configured key (for tests; the key itself is never exposed).
    pub fn key_matches(&self, candidate: &str) -> bool {
        self.api_key == candidate
    }
}

/// A Gemini client; cheap to clone, clones share the connection pool and the circuit breaker.
#[derive(Clone)]
pub struct GeminiClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: GeminiConfig,
    http: reqwest::Client,
    key_header: HeaderValue,
    breaker: Breaker,
    generate_url: String,
    stream_url: String,
}

impl fmt::Debug for GeminiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiClient")
            .field("config", &self.inner.config)
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

impl GeminiClient {
    pub fn new(config: GeminiConfig) -> Result<GeminiClient, ConfigError> {
        let mut key_header = HeaderValue::from_str(&config.api_key).map_err(|_| ConfigError {
            var: "GEMINI_API_KEY",
            reason: "must be a non-empty, printable ASCII string".into(),
        })?;
        key_header.set_sensitive(true);
        let http = reqwest::Client::builder()
            // A redirect could carry the key header to another host; Gemini never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.attempt_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("aula-chatbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError {
                var: "GEMINI_BASE_URL",
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let models = format!("{}/v1beta/models/{}", config.base_url, config.model);
        Ok(GeminiClient {
            inner: Arc::new(Inner {
                generate_url: format!("{models}:generateContent"),
                stream_url: format!("{models}:streamGenerateContent?alt=sse"),
                breaker: Breaker::new(config.breaker),
                config,
                http,
                key_header,
            }),
        })
    }

    pub fn model(&self) -> &str {
        &self.inner.config.model
    }

    pub fn config(&self) -> &GeminiConfig {
        &self.inner.config
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// The bound of the whole call: the caller's deadline minus the margin, or the default budget.
    fn effective_deadline(&self, deadline: Option<Instant>) -> Instant {
        let config = &self.inner.config;
        let now = Instant::now();
        let budget = now + config.default_budget;
        match deadline {
            Some(d) => d
                .checked_sub(config.deadline_margin)
                .unwrap_or(d)
                .max(now)
                .min(budget),
            None => budget,
        }
    }

    /// One question, one answer, with retries.
    pub async fn answer(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> Result<Answer, AnswerError> {
        let started = Instant::now();
        let deadline = self.effective_deadline(deadline);
        let body = prompt::build_request(q);
        let result = self
            .with_retries(deadline, false, |span| self.generate_once(&body, span))
            .await
            .and_then(|r| {
                let text = r.text();
                if text.trim().is_empty() {
                    return Err(AnswerError::Unavailable {
                        detail: format!(
                            "Gemini returned no text (finishReason {})",
                            r.finish_reason().unwrap_or("unknown")
                        ),
                    });
                }
                let usage = r.usage_metadata.unwrap_or_default();
                Ok(Answer {
                    text,
                    model: self.model().to_owned(),
                    offline: false,
                    tokens_in: usage.prompt_token_count,
                    tokens_out: usage.candidates_token_count,
                })
            });
        match &result {
            Ok(a) => record_call("ok", started, a.tokens_in, a.tokens_out),
            Err(e) => {
                tracing::warn!(model = %self.model(), outcome = e.outcome(), error = %e, "gemini call failed");
                record_call(e.outcome(), started, 0, 0)
            }
        }
        result
    }

    /// The answer as Gemini writes it, each SSE event's text relayed as it arrives, then a final
    /// chunk with the token counts. Retries happen only before the first byte of the answer.
    pub fn answer_stream(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> BoxStream<'static, Result<Chunk, AnswerError>> {
        let state = StreamState::Connecting {
            client: self.clone(),
            body: prompt::build_request(q),
            deadline: self.effective_deadline(deadline),
            started: Instant::now(),
        };
        let span = tracing::info_span!("gemini.stream", model = %self.model());
        stream::unfold(state, move |state| {
            let span = span.clone();
            async move { state.step().await }.instrument(span)
        })
        .boxed()
    }

    /// Runs `op` up to `max_attempts` times, each in a `gemini.generate` span, bounded by the attempt
    /// timeout and `deadline`, guarded by the breaker.
    async fn with_retries<'a, T, F, Fut>(
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

    /// Exponential backoff with "equal jitter", or Retry-After when the upstream gave one.
    fn delay_before(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let config = &self.inner.config;
        let exp = config
            .backoff_base
            .saturating_mul(1 << (attempt - 2).min(16))
            .min(config.backoff_max);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        match retry_after {
            Some(ra) => ra.max(jittered),
            None => jittered,
        }
    }

    fn post(&self, url: &str, body: &GenerateContentRequest) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header("x-goog-api-key", self.inner.key_header.clone())
            .json(body)
    }

    async fn generate_once(
        &self,
        body: &GenerateContentRequest,
        span: Span,
    ) -> Result<GenerateContentResponse, Failure> {
        let response = self
            .post(&self.inner.generate_url, body)
            .send()
            .await
            .map_err(Failure::transport)?;
        span.record("http.status", response.status().as_u16());
        if !response.status().is_success() {
            return Err(Failure::from_status(response).await);
        }
        let bytes = read_limited(response).await?;
        let parsed: GenerateContentResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Malformed(format!("response is not a generateContent JSON body: {e}"))
        })?;
        if let Some(reason) = parsed.block_reason() {
            return Err(Failure::Blocked(reason));
        }
        Ok(parsed)
    }

    async fn open_stream(
        &self,
        body: &GenerateContentRequest,
        span: Span,
    ) -> Result<reqwest::Response, Failure> {
        let response = self
            .post(&self.inner.stream_url, body)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(Failure::transport)?;
        span.record("http.status", response.status().as_u16());
        if !response.status().is_success() {
            return Err(Failure::from_status(response).await);
        }
        Ok(response)
    }

    /// Removes the key from text that may have come from elsewhere (an upstream message, an error).
    fn scrub(&self, text: &str) -> String {
        let key = &self.inner.config.api_key;
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key.as_str(), "[REDACTED]")
        }
    }
}

fn record_call(outcome: &'static str, started: Instant, tokens_in: u32, tokens_out: u32) {
    metrics::counter!("aula_gemini_requests_total", "outcome" => outcome).increment(1);
    metrics::histogram!("aula_gemini_request_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    if tokens_in > 0 {
        metrics::counter!("aula_gemini_tokens_total", "direction" => "input")
            .increment(u64::from(tokens_in));
    }
    if tokens_out > 0 {
        metrics::counter!("aula_gemini_tokens_total", "direction" => "output")
            .increment(u64::from(tokens_out));
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::Malformed(format!(
                "response body larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How one attempt went wrong.
#[derive(Debug)]
enum Failure {
    /// An HTTP error status, with the upstream's message and its retry hint.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Could not connect, or the connection broke.
    Transport(String),
    Timeout,
    /// A body that is not what Gemini sends.
    Malformed(String),
    Blocked(String),
}

impl Failure {
    fn transport(e: reqwest::Error) -> Failure {
        // A connect timeout means unreachable (UNAVAILABLE), not a slow answer (DEADLINE_EXCEEDED).
        if e.is_timeout() && !e.is_connect() {
            return Failure::Timeout;
        }
        // reqwest's Display names the URL (no key in it) and the sources say why.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Failure::Transport(text)
    }

    async fn from_status(response: reqwest::Response) -> Failure {
        let status = response.status();
        let header_retry = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_limited(response).await.unwrap_or_default();
        let parsed = serde_json::from_slice::<ErrorResponse>(&body).ok();
        let mut detail = format!("HTTP {status}");
        if let Some(e) = &parsed {
            if !e.error.status.is_empty() {
                detail.push(' ');
                detail.push_str(&e.error.status);
            }
            if !e.error.message.is_empty() {
                detail.push_str(": ");
                detail.extend(e.error.message.chars().take(MAX_DETAIL));
            }
        }
        Failure::Status {
            status,
            retry_after: header_retry.or_else(|| parsed.and_then(|e| e.error.retry_delay())),
            detail,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
            }
            Failure::Transport(_) | Failure::Timeout => true,
            Failure::Malformed(_) | Failure::Blocked(_) => false,
        }
    }

    /// Whether this says the upstream is unhealthy (feeds the breaker). A quota error, a refused
    /// request or a safety block come from a healthy upstream.
    fn counts_against_upstream(&self) -> bool {
        match self {
            Failure::Status { status, .. } => status.is_server_error(),
            Failure::Transport(_) | Failure::Timeout | Failure::Malformed(_) => true,
            Failure::Blocked(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            Failure::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => "quota",
            Failure::Status { .. } | Failure::Transport(_) | Failure::Malformed(_) => "unavailable",
            Failure::Timeout => "timeout",
            Failure::Blocked(_) => "blocked",
        }
    }

    fn redacted(&self, client: &GeminiClient) -> String {
        match self {
            Failure::Status { detail, .. } | Failure::Transport(detail) => client.scrub(detail),
            Failure::Malformed(detail) => client.scrub(detail),
            Failure::Timeout => "timed out".into(),
            Failure::Blocked(reason) => format!("blocked: {}", client.scrub(reason)),
        }
    }

    fn into_error(self, client: &GeminiClient) -> AnswerError {
        match self {
            Failure::Status {
                status,
                retry_after,
                ..
            } if status == StatusCode::TOO_MANY_REQUESTS => AnswerError::Quota { retry_after },
            Failure::Status { detail, .. }
            | Failure::Transport(detail)
            | Failure::Malformed(detail) => AnswerError::Unavailable {
                detail: client.scrub(&detail),
            },
            Failure::Timeout => AnswerError::Timeout,
            Failure::Blocked(reason) => AnswerError::Blocked {
                reason: client.scrub(&reason),
            },
        }
    }
}

/// `Retry-After`: delta-seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (when - time::OffsetDateTime::now_utc()).as_seconds_f64();
    Some(Duration::from_secs_f64(secs.max(0.0)))
}

/// The streaming call as a state machine driven by `stream::unfold`.
enum StreamState {
    Connecting {
        client: GeminiClient,
        body: GenerateContentRequest,
        deadline: Instant,
        started: Instant,
    },
    Reading(Box<Reading>),
    Done,
}

struct Reading {
    client: GeminiClient,
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    parser: SseParser,
    pending: VecDeque<Chunk>,
    deadline: Instant,
    started: Instant,
    tokens_in: u32,
    tokens_out: u32,
    saw_text: bool,
    ended: bool,
}

impl StreamState {
    async fn step(self) -> Option<(Result<Chunk, AnswerError>, StreamState)> {
        match self {
            StreamState::Done => None,
            StreamState::Connecting {
                client,
                body,
                deadline,
                started,
            } => {
                let opened = client
                    .with_retries(deadline, true, |span| client.open_stream(&body, span))
                    .await;
                match opened {
                    Err(e) => {
                        tracing::warn!(outcome = e.outcome(), error = %e, "gemini stream failed");
                        record_call(e.outcome(), started, 0, 0);
                        Some((Err(e), StreamState::Done))
                    }
                    Ok(response) => {
                        let reading = Reading {
                            client: client.clone(),
                            body: response
                                .bytes_stream()
                                .map(|r| r.map(|b| b.to_vec()))
                                .boxed(),
                            parser: SseParser::default(),
                            pending: VecDeque::new(),
                            deadline,
                            started,
                            tokens_in: 0,
                            tokens_out: 0,
                            saw_text: false,
                            ended: false,
                        };
                        Box::new(reading).next().await
                    }
                }
            }
            StreamState::Reading(reading) => reading.next().await,
        }
    }
}

impl Reading {
    async fn next(mut self: Box<Self>) -> Option<(Result<Chunk, AnswerError>, StreamState)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((Ok(chunk), StreamState::Reading(self)));
            }
            if self.ended {
                return Some(self.finish());
            }
            // Between events, the attempt timeout bounds silence, the deadline bounds the whole.
            let config = &self.client.inner.config;
            let wait_until = self.deadline.min(Instant::now() + config.attempt_timeout);
            let next = tokio::time::timeout_at(
                tokio::time::Instant::from_std(wait_until),
                self.body.next(),
            )
            .await;
            let events = match next {
                Err(_elapsed) => return Some(self.fail(AnswerError::Timeout)),
                Ok(Some(Err(e))) => {
                    let detail = Failure::transport(e).redacted(&self.client);
                    return Some(self.fail(AnswerError::Unavailable {
                        detail: format!("the answer stream broke: {detail}"),
                    }));
                }
                Ok(Some(Ok(bytes))) => match self.parser.push(&bytes) {
                    Ok(events) => events,
                    Err(_) => {
                        return Some(self.fail(AnswerError::Unavailable {
                            detail: "the answer stream sent an oversized event".into(),
                        }))
                    }
                },
                Ok(None) => {
                    self.ended = true;
                    self.parser.finish().into_iter().collect()
                }
            };
            for data in events {
                if let Err(e) = self.event(&data) {
                    return Some(self.fail(e));
                }
            }
        }
    }

    fn event(&mut self, data: &str) -> Result<(), AnswerError> {
        let event: GenerateContentResponse =
            serde_json::from_str(data).map_err(|e| AnswerError::Unavailable {
                detail: format!("the answer stream sent an event that is not JSON: {e}"),
            })?;
        if let Some(reason) = event.block_reason() {
            return Err(AnswerError::Blocked {
                reason: self.client.scrub(&reason),
            });
        }
        if let Some(usage) = event.usage_metadata {
            self.tokens_in = usage.prompt_token_count;
            self.tokens_out = usage.candidates_token_count;
        }
        let text = event.text();
        if !text.is_empty() {
            self.saw_text = true;
            self.pending.push_back(Chunk {
                text,
                is_final: false,
                model: self.client.model().to_owned(),
                offline: false,
                tokens_in: 0,
                tokens_out: 0,
            });
        }
        Ok(())
    }

    fn finish(&self) -> (Result<Chunk, AnswerError>, StreamState) {
        if !self.saw_text {
            return self.fail(AnswerError::Unavailable {
                detail: "the answer stream ended without any text".into(),
            });
        }
        record_call("ok", self.started, self.tokens_in, self.tokens_out);
        let chunk = Chunk {
            text: String::new(),
            is_final: true,
            model: self.client.model().to_owned(),
            offline: false,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
        };
        (Ok(chunk), StreamState::Done)
    }

    fn fail(&self, e: AnswerError) -> (Result<Chunk, AnswerError>, StreamState) {
        tracing::warn!(error = %e, "gemini answer stream failed");
        record_call(e.outcome(), self.started, self.tokens_in, self.tokens_out);
        (Err(e), StreamState::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(100);
        let http_date = later
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        let d = parse_retry_after(&http_date).unwrap();
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn urls_carry_no_key_and_debug_redacts_it() {
        let config =
            GeminiConfig::new("AIza-secret", "models/gemini-2.5-flash", "http://h:1/").unwrap();
        let client = GeminiClient::new(config).unwrap();
        assert_eq!(
            client.inner.generate_url,
            "http://h:1/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            client.inner.stream_url,
            "http://h:1/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert!(!format!("{client:?}").contains("AIza-secret"));
        assert!(format!("{client:?}").contains("REDACTED"));
        assert_eq!(client.scrub("x AIza-secret y"), "x [REDACTED] y");
    }

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
