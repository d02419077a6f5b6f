//! The Gemini client: `generateContent` and `streamGenerateContent?alt=sse` over reqwest (rustls),
//! with a timeout per attempt, an overall bound set by the caller's deadline, retries with
//! exponential backoff and jitter honouring Retry-After ([`super::retry`]), and a circuit
//! breaker ([`super::breaker`]). How an attempt fails is [`super::failure`]; the streamed answer
//! is [`super::stream`]; what each call records is [`super::observe`].
//!
//! The API key travels only in the `x-goog-api-key` header (marked sensitive), never in the URL;
//! it is redacted from `Debug` and scrubbed from every error detail, so it cannot reach a log, a
//! trace or a caller.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use reqwest::header::HeaderValue;
use tracing::Span;

use super::breaker::{Breaker, BreakerState};
use super::config::GeminiConfig;
use super::failure::{read_limited, Failure};
use super::observe::GeminiMetrics;
use super::prompt;
use super::protocol::{GenerateContentRequest, GenerateContentResponse};
use crate::domain::{Answer, AnswerError, Chunk, ConfigError, Question};

/// A Gemini client; cheap to clone, clones share the connection pool and the circuit breaker.
#[derive(Clone)]
pub struct GeminiClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: GeminiConfig,
    http: reqwest::Client,
    key_header: HeaderValue,
    pub(super) breaker: Breaker,
    generate_url: String,
    stream_url: String,
    /// The service's fault flags, for `fault.chatbot.gemini_outage` (docs/FLAGS.md).
    flags: std::sync::OnceLock<aula_runtime::flags::Flags>,
    /// Where each call is counted (the chatbot's registry); unset, nothing is.
    metrics: std::sync::OnceLock<GeminiMetrics>,
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
                flags: std::sync::OnceLock::new(),
                metrics: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn model(&self) -> &str {
        &self.inner.config.model
    }

    pub fn config(&self) -> &GeminiConfig {
        &self.inner.config
    }

    /// Reads `fault.chatbot.gemini_outage` from `flags` from now on (the first call wins).
    pub fn set_flags(&self, flags: aula_runtime::flags::Flags) {
        let _ = self.inner.flags.set(flags);
    }

    /// Counts every call in `metrics` from now on (the first call wins).
    pub fn set_metrics(&self, metrics: GeminiMetrics) {
        let _ = self.inner.metrics.set(metrics);
    }

    pub(super) fn metrics(&self) -> Option<&GeminiMetrics> {
        self.inner.metrics.get()
    }

    /// When `fault.chatbot.gemini_outage` is on: the failure a 503 from Gemini would be, counted
    /// and labelled as injected, in place of sending the attempt.
    pub(super) fn injected_outage(&self, span: &Span) -> Option<Failure> {
        use aula_runtime::flags::GEMINI_OUTAGE;
        if !self.inner.flags.get()?.enabled(GEMINI_OUTAGE) {
            return None;
        }
        self.record_injected_outage();
        span.record("http.status", 503u16);
        span.record("aula.fault", GEMINI_OUTAGE);
        Some(Failure::Status {
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
            detail: format!(
                "HTTP 503 Service Unavailable UNAVAILABLE: injected fault ({GEMINI_OUTAGE})"
            ),
        })
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// The bound of the whole call: the caller's deadline minus the margin, or the default budget.
    pub(super) fn effective_deadline(&self, deadline: Option<Instant>) -> Instant {
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
            Ok(a) => self.record_call("ok", started, a.tokens_in, a.tokens_out),
            Err(e) => {
                tracing::warn!(model = %self.model(), outcome = e.outcome(), error = %e, "gemini call failed");
                self.record_call(e.outcome(), started, 0, 0)
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
        super::stream::answer(
            self.clone(),
            prompt::build_request(q),
            self.effective_deadline(deadline),
        )
    }

    fn post(&self, url: &str, body: &GenerateContentRequest) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header("x-goog-api-key", self.inner.key_header.clone())
            .json(body)
    }

    pub(super) async fn generate_once(
        &self,
        body: &GenerateContentRequest,
        span: Span,
    ) -> Result<GenerateContentResponse, Failure> {
        if let Some(outage) = self.injected_outage(&span) {
            return Err(outage);
        }
        let response = send(self.post(&self.inner.generate_url, body), &span).await?;
        let bytes = read_limited(response).await?;
        let parsed: GenerateContentResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Malformed(format!("response is not a generateContent JSON body: {e}"))
        })?;
        if let Some(reason) = parsed.block_reason() {
            return Err(Failure::Blocked(reason));
        }
        Ok(parsed)
    }

    pub(super) async fn open_stream(
        &self,
        body: &GenerateContentRequest,
        span: Span,
    ) -> Result<reqwest::Response, Failure> {
        if let Some(outage) = self.injected_outage(&span) {
            return Err(outage);
        }
        let request = self
            .post(&self.inner.stream_url, body)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        send(request, &span).await
    }

    /// Removes the key from text that may have come from elsewhere (an upstream message, an error).
    pub(super) fn scrub(&self, text: &str) -> String {
        let key = &self.inner.config.api_key;
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key.as_str(), "[REDACTED]")
        }
    }
}

/// Sends a request to Gemini: the HTTP status goes on the call's span, and a status other than
/// 2xx is the failure it stands for (quota, overload, a bad key...).
async fn send(request: reqwest::RequestBuilder, span: &Span) -> Result<reqwest::Response, Failure> {
    let response = request.send().await.map_err(Failure::transport)?;
    span.record("http.status", response.status().as_u16());
    if !response.status().is_success() {
        return Err(Failure::from_status(response).await);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
