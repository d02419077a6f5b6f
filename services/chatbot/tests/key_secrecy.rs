//! The API key appears in the request header and nowhere else: not in the URL, not in any log line
//! or span at TRACE level (reqwest's `log` records included), not in errors.
//!
//! Its own test binary, because it installs a global subscriber that captures everything.

mod common;

use std::time::Duration;

use chatbot::{AnswerError, GeminiClient};
use common::*;
use futures::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_sent_in_the_header_and_never_logged() {
    let logs = aula_runtime::testing::capture_all_logs();

    let gemini = StandIn::start(ok("resposta")).await;
    gemini.push([
        error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
        ok("resposta"),
        error(500, "INTERNAL", &format!("echoing {KEY}")),
        error(500, "INTERNAL", &format!("echoing {KEY}")),
        error(500, "INTERNAL", &format!("echoing {KEY}")),
        Reply::Raw(200, "text/plain", format!("not json {KEY}")),
        Reply::Sse(vec![
            SseStep::Event(delta_json("a")),
            SseStep::Event(answer_json("b", 1, 1)),
        ]),
        Reply::Json(
            200,
            json!({"promptFeedback": {"blockReason": "OTHER"}}),
            vec![],
        ),
        Reply::Hang,
    ]);
    let mut config = gemini.config();
    config.attempt_timeout = Duration::from_millis(300);
    config.max_attempts = 3;
    let client = GeminiClient::new(config).unwrap();
    tracing::info!(client = ?client, "client built");

    let mut errors: Vec<AnswerError> = Vec::new();
    client.answer(&question(), None).await.unwrap(); // 429, then ok
    errors.push(client.answer(&question(), None).await.unwrap_err()); // 3 x 500
    errors.push(client.answer(&question(), None).await.unwrap_err()); // not JSON
    let chunks: Vec<_> = client.answer_stream(&question(), None).collect().await;
    assert!(chunks.iter().all(Result::is_ok), "{chunks:?}");
    errors.push(client.answer(&question(), None).await.unwrap_err()); // blocked
                                                                      // Hang: per-attempt timeouts, then the fallback answers.
    client.answer(&question(), None).await.unwrap();

    assert_eq!(errors.len(), 3);
    for e in &errors {
        assert!(!e.to_string().contains(KEY), "{e}");
        assert!(!format!("{e:?}").contains(KEY), "{e:?}");
    }
    let requests = gemini.requests();
    assert!(requests.len() >= 10, "{}", requests.len());
    for r in &requests {
        assert_eq!(r.headers["x-goog-api-key"], KEY);
        assert!(!r.uri.contains(KEY), "{}", r.uri);
    }

    let text = logs.text();
    assert!(
        text.contains("gemini.generate"),
        "spans are logged:\n{text}"
    );
    assert!(text.contains("attempt"), "{text}");
    assert!(text.contains("outcome"), "{text}");
    assert!(
        text.contains("REDACTED"),
        "the client's Debug was logged:\n{text}"
    );
    assert!(!text.contains(KEY), "the key leaked into the logs:\n{text}");
}
