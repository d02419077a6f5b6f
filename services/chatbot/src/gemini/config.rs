//! The Gemini client's settings: the key, the model and the base URL validated at start-up (a
//! bad value fails naming its variable), and the production defaults of everything else.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::breaker::BreakerConfig;
use crate::domain::ConfigError;

pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of a [`GeminiClient`]. Build with [`GeminiConfig::new`], then adjust the public fields.
#[derive(Clone)]
pub struct GeminiConfig {
    /// Private to the client: only ever read to build the request header (and to scrub it).
    pub(super) api_key: String,
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
                reason: format!(
                    "{} is not a model id (e.g. gemini-2.5-flash)",
                    aula_runtime::fields::quote(model)
                ),
            });
        }
        // insights records the model of every answer, and takes names up to this long.
        if model.len() > aula_api::limits::MODEL_CHARS {
            return Err(ConfigError {
                var: "GEMINI_MODEL",
                reason: format!(
                    "must be at most {} characters",
                    aula_api::limits::MODEL_CHARS
                ),
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
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
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
