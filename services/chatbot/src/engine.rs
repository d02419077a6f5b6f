//! The [`Engine`] that answers questions: Gemini when a key is configured, the offline answerer
//! otherwise, chosen from the environment at start-up.

use std::path::Path;
use std::time::Instant;

use futures::stream::{self, BoxStream, StreamExt};

use crate::domain::{Answer, AnswerError, Chunk, ConfigError, Question};
use crate::gemini::{
    GeminiClient, GeminiConfig, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_MODEL,
};
use crate::offline::OfflineAnswerer;

/// What answers questions: Gemini when a key is configured, the offline answerer otherwise.
#[derive(Debug, Clone)]
pub enum Engine {
    Offline(OfflineAnswerer),
    Gemini(GeminiClient),
}

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
            // The runtime's one duration syntax: the unit is required, so `20` is refused.
            Some(v) => aula_runtime::config::parse_duration(&v)
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
            Engine::Offline(o) => o.answer_within(q, deadline).await,
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
            Engine::Offline(o) => {
                let (o, q) = (o.clone(), q.clone());
                stream::once(async move { o.chunks_within(&q, deadline).await })
                    .flat_map(|chunks| match chunks {
                        Ok(chunks) => stream::iter(chunks.into_iter().map(Ok)).left_stream(),
                        Err(e) => stream::once(async move { Err(e) }).right_stream(),
                    })
                    .boxed()
            }
            Engine::Gemini(g) => g.answer_stream(q, deadline),
        }
    }

    /// Reads the fault flags (`fault.chatbot.gemini_outage`, docs/FLAGS.md). The offline
    /// answerer calls nothing a flag could break.
    pub fn set_flags(&self, flags: aula_runtime::flags::Flags) {
        if let Engine::Gemini(g) = self {
            g.set_flags(flags);
        }
    }

    /// Counts Gemini's calls in `metrics`, the service's registry (the offline answerer
    /// records nothing of its own).
    pub fn set_metrics(&self, metrics: &aula_runtime::metrics::Metrics) {
        if let Engine::Gemini(g) = self {
            g.set_metrics(crate::gemini::GeminiMetrics::register(metrics));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::{collections::HashMap, time::Duration};

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
        // Each bad value next to a good key, and the two ways of giving no usable key.
        let mut cases: Vec<(Vec<(&str, &str)>, &str)> = [
            ("GEMINI_TIMEOUT", "soon"),
            ("GEMINI_TIMEOUT", "0s"),
            ("GEMINI_BASE_URL", "not a url"),
            ("GEMINI_BASE_URL", "ftp://x"),
            ("GEMINI_MODEL", "../../x?y"),
        ]
        .into_iter()
        .map(|(var, value)| (vec![("GEMINI_API_KEY", "k"), (var, value)], var))
        .collect();
        cases.push((
            vec![("GEMINI_API_KEY_FILE", "/nonexistent/key")],
            "GEMINI_API_KEY_FILE",
        ));
        cases.push((
            vec![("GEMINI_API_KEY", "k"), ("GEMINI_API_KEY_FILE", "/k")],
            "GEMINI_API_KEY",
        ));
        for (pairs, var) in cases {
            let err = Engine::from_env(&env_of(&pairs)).unwrap_err();
            assert_eq!(err.var, var, "{pairs:?}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }
}
