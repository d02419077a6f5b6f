//! The domain of the chatbot: questions, answers, errors and the [`Engine`] that picks Gemini or the
//! offline answerer. No tonic, no prost: `grpc.rs` converts at the edge.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream, StreamExt};

use crate::gemini::{GeminiClient, GeminiConfig};
use crate::offline::OfflineAnswerer;

/// Longest question accepted, in characters: a question is a few sentences, not a document.
pub const MAX_DUVIDA_CHARS: usize = 4_000;
/// Longest lesson context accepted, in characters (keeps prompts and offline indexing bounded).
pub const MAX_CONTEXTO_CHARS: usize = 50_000;
/// Most material items used for grounding; the rest are ignored.
pub const MAX_MATERIAL_ITEMS: usize = 200;

/// A student's question, with what grounds the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Question {
    /// What the lesson is about (free text from the caller).
    pub aula_contexto: String,
    /// The question itself; must not be blank.
    pub duvida: String,
    /// The course the question was asked in, when it came through `cursos.AskQuestion`.
    pub course: Option<CourseContext>,
}

/// The course a question belongs to and its material.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourseContext {
    pub id: String,
    pub nome: String,
    pub descricao: String,
    pub material: Vec<Material>,
}

/// One media item of a course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Material {
    pub titulo: String,
    pub descricao: String,
    pub tipo: String,
}

impl Question {
    /// Checks what every engine needs: a non-blank question and bounded sizes.
    pub fn validate(&self) -> Result<(), AnswerError> {
        if self.duvida.trim().is_empty() {
            return Err(AnswerError::Invalid {
                field: "duvida",
                reason: "must not be empty".into(),
            });
        }
        if self.duvida.chars().count() > MAX_DUVIDA_CHARS {
            return Err(AnswerError::Invalid {
                field: "duvida",
                reason: format!("must be at most {MAX_DUVIDA_CHARS} characters"),
            });
        }
        if self.aula_contexto.chars().count() > MAX_CONTEXTO_CHARS {
            return Err(AnswerError::Invalid {
                field: "aula_contexto",
                reason: format!("must be at most {MAX_CONTEXTO_CHARS} characters"),
            });
        }
        Ok(())
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// The model that answered (`offline-bm25` for the offline answerer).
    pub model: String,
    pub offline: bool,
    /// Prompt tokens as counted by the model (0 offline).
    pub tokens_in: u32,
    /// Answer tokens as counted by the model (0 offline).
    pub tokens_out: u32,
}

/// One piece of a streamed answer.
///
/// Every stream that ends well ends with exactly one chunk with `is_final == true`; its `text` may be
/// empty, and it is the only one carrying the token counts (the model reports them at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub is_final: bool,
    pub model: String,
    pub offline: bool,
    pub tokens_in: u32,
    pub tokens_out: u32,
}

/// Why a question could not be answered. `grpc.rs` maps each variant to one status code.
///
/// Display texts are safe to show to callers: they never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Bad input -> INVALID_ARGUMENT.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Gemini's quota is exhausted, after retries -> RESOURCE_EXHAUSTED.
    #[error("Gemini quota exhausted{}", retry_hint(.retry_after))]
    Quota { retry_after: Option<Duration> },
    /// Gemini's safety filters refused the prompt or the answer -> FAILED_PRECONDITION.
    #[error("blocked by Gemini's safety filters: {reason}")]
    Blocked { reason: String },
    /// No answer before the deadline -> DEADLINE_EXCEEDED.
    #[error("Gemini did not answer before the deadline")]
    Timeout,
    /// Gemini unreachable, failing or answering nonsense -> UNAVAILABLE.
    #[error("Gemini unavailable: {detail}")]
    Unavailable { detail: String },
    /// Gemini kept failing; the breaker fails fast until a probe succeeds -> UNAVAILABLE.
    #[error("Gemini is failing repeatedly; not calling it for a while (circuit open)")]
    CircuitOpen,
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {:.1}s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl AnswerError {
    /// The `outcome` label of `aula_gemini_requests_total` for this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            AnswerError::Invalid { .. } => "error",
            AnswerError::Quota { .. } => "quota",
            AnswerError::Blocked { .. } => "blocked",
            AnswerError::Timeout => "timeout",
            AnswerError::Unavailable { .. } => "unavailable",
            AnswerError::CircuitOpen => "circuit_open",
        }
    }
}

/// A configuration variable with a bad value; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            var,
            reason: reason.into(),
        }
    }
}

/// What answers questions: Gemini when a key is configured, the offline answerer otherwise.
#[derive(Debug, Clone)]
pub enum Engine {
    Offline(OfflineAnswerer),
    Gemini(GeminiClient),
}

pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

impl Engine {
    /// Builds the engine from the environment, given as a lookup function so tests need no real
    /// environment: `Engine::from_env(&|k| std::env::var(k).ok())`.
    ///
    /// `GEMINI_API_KEY` or `GEMINI_API_KEY_FILE` (contents trimmed) selects Gemini; neither selects
    /// the offline answerer. Empty values count as unset. `GEMINI_MODEL`, `GEMINI_BASE_URL` and
    /// `GEMINI_TIMEOUT` (per attempt) are checked only in Gemini mode.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<Engine, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let key = match (get("GEMINI_API_KEY"), get("GEMINI_API_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "GEMINI_API_KEY",
                    "set either GEMINI_API_KEY or GEMINI_API_KEY_FILE, not both",
                ))
            }
            (Some(key), None) => key.trim().to_owned(),
            (None, Some(path)) => read_key_file(Path::new(path.trim()))?,
            (None, None) => return Ok(Engine::Offline(OfflineAnswerer::new())),
        };
        let model = get("GEMINI_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let base_url = get("GEMINI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let attempt_timeout = match get("GEMINI_TIMEOUT") {
            Some(v) => parse_duration(v.trim())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    ConfigError::new(
                        "GEMINI_TIMEOUT",
                        format!("{v:?} is not a positive duration (e.g. 500ms, 20s, 1m)"),
                    )
                })?,
            None => DEFAULT_ATTEMPT_TIMEOUT,
        };
        let mut config = GeminiConfig::new(key, &model, &base_url)?;
        config.attempt_timeout = attempt_timeout;
        Ok(Engine::Gemini(GeminiClient::new(config)?))
    }

    /// Answers a question, finishing no later than `deadline` (the caller's gRPC deadline).
    pub async fn answer(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> Result<Answer, AnswerError> {
        q.validate()?;
        match self {
            Engine::Offline(o) => Ok(o.answer(q)),
            Engine::Gemini(g) => g.answer(q, deadline).await,
        }
    }

    /// Answers a question piece by piece, as the model writes it. The stream owns what it needs
    /// (`'static`), so it can be handed to a gRPC response directly.
    pub fn answer_stream(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> BoxStream<'static, Result<Chunk, AnswerError>> {
        if let Err(e) = q.validate() {
            return stream::once(async move { Err(e) }).boxed();
        }
        match self {
            Engine::Offline(o) => stream::iter(o.answer_chunks(q).into_iter().map(Ok)).boxed(),
            Engine::Gemini(g) => g.answer_stream(q, deadline),
        }
    }

    /// `gemini` or `offline`, for `GetStatus` and the `mode` metric label.
    pub fn mode(&self) -> &'static str {
        match self {
            Engine::Offline(_) => "offline",
            Engine::Gemini(_) => "gemini",
        }
    }

    /// The model answering questions.
    pub fn model(&self) -> &str {
        match self {
            Engine::Offline(_) => crate::offline::MODEL,
            Engine::Gemini(g) => g.model(),
        }
    }
}

fn read_key_file(path: &Path) -> Result<String, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "GEMINI_API_KEY_FILE",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let key = contents.trim();
    if key.is_empty() {
        return Err(ConfigError::new(
            "GEMINI_API_KEY_FILE",
            format!("{} is empty", path.display()),
        ));
    }
    Ok(key.to_owned())
}

/// Parses `500ms`, `10s`, `5m`, `1h` (the spelling of CONFIG.md). A bare number is refused: the
/// unit is part of the value, so `GEMINI_TIMEOUT=20` cannot be misread as milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = if split == 0 {
        return None;
    } else {
        s.split_at(split)
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_key_means_offline() {
        let engine = Engine::from_env(&env_of(&[("GEMINI_MODEL", "x")])).unwrap();
        assert_eq!(engine.mode(), "offline");
        assert_eq!(engine.model(), "offline-bm25");
        let engine = Engine::from_env(&env_of(&[("GEMINI_API_KEY", "  ")])).unwrap();
        assert_eq!(engine.mode(), "offline");
    }

    #[test]
    fn key_means_gemini_with_defaults() {
        let engine = Engine::from_env(&env_of(&[("GEMINI_API_KEY", "k-123")])).unwrap();
        assert_eq!(engine.mode(), "gemini");
        assert_eq!(engine.model(), "gemini-2.5-flash");
        let Engine::Gemini(g) = &engine else { panic!() };
        assert_eq!(g.config().attempt_timeout, Duration::from_secs(20));
        assert_eq!(g.config().base_url, DEFAULT_BASE_URL);
        assert!(!format!("{engine:?}").contains("k-123"));
    }

    #[test]
    fn key_file_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("chatbot-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "secret-from-file\n").unwrap();
        let env = env_of(&[
            ("GEMINI_API_KEY_FILE", path.to_str().unwrap()),
            ("GEMINI_MODEL", "gemini-2.5-pro"),
            ("GEMINI_TIMEOUT", "1500ms"),
        ]);
        let engine = Engine::from_env(&env).unwrap();
        let Engine::Gemini(g) = &engine else { panic!() };
        assert_eq!(g.model(), "gemini-2.5-pro");
        assert_eq!(g.config().attempt_timeout, Duration::from_millis(1500));
        assert!(g.config().key_matches("secret-from-file"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("GEMINI_API_KEY_FILE", "/nonexistent/key")],
                "GEMINI_API_KEY_FILE",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_TIMEOUT", "soon")],
                "GEMINI_TIMEOUT",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_TIMEOUT", "0s")],
                "GEMINI_TIMEOUT",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_BASE_URL", "not a url")],
                "GEMINI_BASE_URL",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_BASE_URL", "ftp://x")],
                "GEMINI_BASE_URL",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_MODEL", "../../x?y")],
                "GEMINI_MODEL",
            ),
            (
                &[("GEMINI_API_KEY", "k"), ("GEMINI_API_KEY_FILE", "/k")],
                "GEMINI_API_KEY",
            ),
        ];
        for (pairs, var) in cases {
            let err = Engine::from_env(&env_of(pairs)).unwrap_err();
            assert_eq!(err.var, *var, "{pairs:?}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10x"), None);
    }

    #[test]
    fn validation_names_the_field() {
        let q = Question {
            duvida: "   ".into(),
            ..Default::default()
        };
        assert!(matches!(
            q.validate(),
            Err(AnswerError::Invalid {
                field: "duvida",
                ..
            })
        ));
        let q = Question {
            duvida: "ok?".into(),
            aula_contexto: "x".repeat(MAX_CONTEXTO_CHARS + 1),
            ..Default::default()
        };
        assert!(matches!(
            q.validate(),
            Err(AnswerError::Invalid {
                field: "aula_contexto",
                ..
            })
        ));
    }
}
