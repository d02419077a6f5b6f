//! The Gemini client against a local server speaking Gemini's REST protocol.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatbot::gemini::{BreakerConfig, BreakerState};
use chatbot::{AnswerError, Engine, GeminiClient};
use common::*;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Notify;

/// Generous bound for "returned promptly" on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

fn assert_key_only_in_header(req: &Recorded) {
    assert_eq!(req.headers["x-goog-api-key"], KEY);
    assert!(!req.uri.contains(KEY), "key in URL {}", req.uri);
    assert!(
        !req.uri.contains("key="),
        "key parameter in URL {}",
        req.uri
    );
}

fn blocked(reason: &str) -> AnswerError {
    AnswerError::Blocked {
        reason: reason.into(),
    }
}

#[tokio::test]
async fn success_returns_the_answer_and_sends_a_grounded_prompt() {
    let gemini = StandIn::start(ok("Use &mut T para alterar; &T só lê.")).await;
    let engine = Engine::Gemini(gemini.client());
    assert_eq!(engine.mode(), "gemini");
    assert_eq!(engine.model(), MODEL);

    let answer = engine
        .answer(&question(), Some(in_ms(5_000)))
        .await
        .unwrap();

    assert_eq!(answer.text, "Use &mut T para alterar; &T só lê.");
    assert_eq!(answer.model, MODEL);
    assert!(!answer.offline);
    assert_eq!((answer.tokens_in, answer.tokens_out), (11, 7));
    let requests = gemini.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri, "/v1beta/models/gemini-test:generateContent");
    assert_key_only_in_header(req);
    let system = req.body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(system.contains("português"), "{system}");
    let prompt = req.body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    for needle in [
        "Rust para Backend",
        "Serviços seguros e rápidos com Rust.",
        "Vídeo: Referências e Borrowing",
        "Como o compilador verifica empréstimos mutáveis e imutáveis.",
        "Apostila: Lifetimes",
        "Aula 4: ownership e empréstimos em Rust",
        "Qual a diferença entre &T e &mut T?",
    ] {
        assert!(
            prompt.contains(needle),
            "{needle:?} missing from prompt:\n{prompt}"
        );
    }
    assert_eq!(req.body["contents"][0]["role"], "user");
}

#[tokio::test]
async fn engine_from_env_points_at_the_configured_base_url() {
    let gemini = StandIn::start(ok("oi")).await;
    let base = gemini.base_url();
    let env = move |k: &str| match k {
        "GEMINI_API_KEY" => Some(KEY.to_owned()),
        "GEMINI_MODEL" => Some("gemini-from-env".to_owned()),
        "GEMINI_BASE_URL" => Some(format!("{base}/")),
        "GEMINI_TIMEOUT" => Some("3s".to_owned()),
        _ => None,
    };
    let engine = Engine::from_env(&env).unwrap();
    assert!(!format!("{engine:?}").contains(KEY));
    let answer = engine.answer(&question(), None).await.unwrap();
    assert_eq!(answer.model, "gemini-from-env");
    let req = &gemini.requests()[0];
    assert_eq!(req.uri, "/v1beta/models/gemini-from-env:generateContent");
    assert_key_only_in_header(req);
}

#[tokio::test]
async fn two_429s_then_success_honouring_retry_after() {
    let gemini = StandIn::start(ok("enfim")).await;
    gemini.push([
        // Retry-After header, in seconds.
        Reply::Json(
            429,
            json!({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}),
            vec![("retry-after", "1".into())],
        ),
        // Gemini's own hint: a google.rpc.RetryInfo detail in the body.
        Reply::Json(
            429,
            json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.4s"}]}}),
            vec![],
        ),
    ]);
    let client = gemini.client();

    let answer = client
        .answer(&question(), Some(in_ms(10_000)))
        .await
        .unwrap();

    assert_eq!(answer.text, "enfim");
    let requests = gemini.requests();
    assert_eq!(requests.len(), 3);
    // Backoff alone would be <= 100ms: the waits prove the hints were honoured.
    let first_wait = requests[1].at - requests[0].at;
    let second_wait = requests[2].at - requests[1].at;
    assert!(first_wait >= Duration::from_millis(950), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(380), "{second_wait:?}");
    for r in &requests {
        assert_key_only_in_header(r);
    }
}

#[tokio::test]
async fn quota_after_retries_is_quota() {
    let gemini = StandIn::start(error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")).await;

    let err = gemini.client().answer(&question(), None).await.unwrap_err();

    assert!(matches!(err, AnswerError::Quota { .. }), "{err:?}");
    assert_eq!(gemini.requests().len(), 3);
    assert_no_key(&err);
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_fails_now_with_quota() {
    let gemini = StandIn::start(ok("tarde demais")).await;
    gemini.push([Reply::Json(
        429,
        json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}),
        vec![("retry-after", "30".into())],
    )]);
    let started = Instant::now();

    let err = gemini
        .client()
        .answer(&question(), Some(in_ms(3_000)))
        .await
        .unwrap_err();

    assert_eq!(
        err,
        AnswerError::Quota {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert!(err.to_string().contains("retry after 30"), "{err}");
    assert_eq!(
        gemini.requests().len(),
        1,
        "no point waiting past the deadline"
    );
    assert!(started.elapsed() < SLACK, "{:?}", started.elapsed());
}

#[tokio::test]
async fn persistent_500_is_unavailable_after_three_attempts() {
    let gemini = StandIn::start(error(500, "INTERNAL", "An internal error has occurred")).await;

    let err = gemini.client().answer(&question(), None).await.unwrap_err();

    let AnswerError::Unavailable { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(detail.contains("500"), "{detail}");
    assert!(
        detail.contains("An internal error has occurred"),
        "{detail}"
    );
    assert_eq!(gemini.requests().len(), 3);
    assert_no_key(&err);
}

#[tokio::test]
async fn a_503_then_success_is_retried() {
    let gemini = StandIn::start(ok("voltou")).await;
    gemini.push([error(503, "UNAVAILABLE", "The model is overloaded.")]);
    let answer = gemini.client().answer(&question(), None).await.unwrap();
    assert_eq!(answer.text, "voltou");
    assert_eq!(gemini.requests().len(), 2);
}

#[tokio::test]
async fn a_hang_past_the_deadline_times_out_within_the_deadline() {
    let gemini = StandIn::start(Reply::Hang).await;
    let client = gemini.client(); // attempt timeout 5s: the deadline is what cuts it
    let started = Instant::now();
    let deadline = started + Duration::from_millis(800);

    let err = client
        .answer(&question(), Some(deadline))
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert_eq!(err, AnswerError::Timeout);
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(800) + SLACK, "{elapsed:?}");
    assert_eq!(gemini.requests().len(), 1);
}

#[tokio::test]
async fn each_attempt_has_its_own_timeout() {
    let gemini = StandIn::start(ok("finalmente")).await;
    gemini.push([Reply::Hang]);
    let mut config = gemini.config();
    config.attempt_timeout = Duration::from_millis(300);
    let client = GeminiClient::new(config).unwrap();

    let answer = client
        .answer(&question(), Some(in_ms(10_000)))
        .await
        .unwrap();

    assert_eq!(answer.text, "finalmente");
    assert_eq!(gemini.requests().len(), 2);
}

#[tokio::test]
async fn a_prompt_safety_block_is_blocked_with_the_reason() {
    let gemini = StandIn::start(ok_json(
        json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
    ))
    .await;

    let err = gemini.client().answer(&question(), None).await.unwrap_err();

    assert_eq!(err, blocked("SAFETY"));
    assert!(err.to_string().contains("SAFETY"));
    assert_eq!(gemini.requests().len(), 1, "a block is not retried");
}

#[tokio::test]
async fn an_answer_stopped_for_safety_is_blocked() {
    let gemini = StandIn::start(ok_json(
        json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]}),
    ))
    .await;
    let err = gemini.client().answer(&question(), None).await.unwrap_err();
    assert_eq!(err, blocked("SAFETY"));
}

#[tokio::test]
async fn a_non_json_body_is_unavailable() {
    let gemini = StandIn::start(html_page()).await;

    let err = gemini.client().answer(&question(), None).await.unwrap_err();

    let AnswerError::Unavailable { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(detail.contains("not a generateContent JSON"), "{detail}");
    assert_eq!(gemini.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // nothing listens there now
    let mut config = chatbot::GeminiConfig::new(KEY, MODEL, &format!("http://{addr}")).unwrap();
    config.backoff_base = Duration::from_millis(10);
    let client = GeminiClient::new(config).unwrap();

    let err = client.answer(&question(), None).await.unwrap_err();

    assert!(matches!(err, AnswerError::Unavailable { .. }), "{err:?}");
    assert_no_key(&err);
}

#[tokio::test]
async fn an_upstream_echoing_the_key_does_not_leak_it() {
    let gemini = StandIn::start(error(
        400,
        "INVALID_ARGUMENT",
        &format!("API key not valid: {KEY}"),
    ))
    .await;

    let err = gemini.client().answer(&question(), None).await.unwrap_err();

    let AnswerError::Unavailable { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(detail.contains("INVALID_ARGUMENT"), "{detail}");
    assert!(detail.contains("[REDACTED]"), "{detail}");
    assert_no_key(&err);
    assert!(!err.to_string().contains(KEY));
    assert_eq!(gemini.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_fails_fast() {
    let gemini = StandIn::start(error(500, "INTERNAL", "boom")).await;
    let mut config = gemini.config();
    config.breaker = BreakerConfig {
        failure_threshold: 5,
        open_for: Duration::from_secs(30),
    };
    let client = GeminiClient::new(config).unwrap();

    // 3 failed attempts, then 2 more: the fifth opens the circuit and the third attempt of the
    // second call is refused.
    let first = client.answer(&question(), None).await.unwrap_err();
    assert!(matches!(first, AnswerError::Unavailable { .. }));
    let second = client.answer(&question(), None).await.unwrap_err();
    assert!(matches!(second, AnswerError::Unavailable { .. }));
    assert_eq!(gemini.requests().len(), 5);
    assert_eq!(client.breaker_state(), BreakerState::Open);

    let started = Instant::now();
    let third = client.answer(&question(), None).await.unwrap_err();
    assert_eq!(third, AnswerError::CircuitOpen);
    assert!(started.elapsed() < SLACK);
    let mut stream = client.answer_stream(&question(), None);
    assert_eq!(stream.next().await, Some(Err(AnswerError::CircuitOpen)));
    assert_eq!(gemini.requests().len(), 5, "failing fast sends nothing");
}

#[tokio::test]
async fn after_the_open_period_one_probe_closes_the_breaker() {
    let gemini = StandIn::start(error(503, "UNAVAILABLE", "overloaded")).await;
    let mut config = gemini.config();
    config.max_attempts = 1;
    // Zero: the open period is over at once, so the probe needs no waiting in the test.
    config.breaker = BreakerConfig {
        failure_threshold: 2,
        open_for: Duration::ZERO,
    };
    let client = GeminiClient::new(config).unwrap();
    client.answer(&question(), None).await.unwrap_err();
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    client.answer(&question(), None).await.unwrap_err();
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);

    gemini.push([ok("de volta")]);
    let answer = client.answer(&question(), None).await.unwrap();

    assert_eq!(answer.text, "de volta");
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(gemini.requests().len(), 3);
}

#[tokio::test]
async fn the_stream_relays_chunks_in_order_as_they_arrive() {
    let release = Arc::new(Notify::new());
    let gemini = StandIn::start(three_chunks(&release)).await;
    let engine = Engine::Gemini(gemini.client());

    let mut stream = engine.answer_stream(&question(), Some(in_ms(10_000)));

    // The server holds the rest of the body until released: the first chunk can only arrive
    // here if the client relays events as they come instead of buffering the body.
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first chunk must arrive before the server finishes")
        .unwrap()
        .unwrap();
    assert_eq!(first.text, "Primeiro, ");
    assert!(!first.is_final);
    assert_eq!(first.model, MODEL);
    release.notify_one();
    let rest: Vec<_> = stream.collect().await;
    let rest: Vec<_> = rest.into_iter().map(Result::unwrap).collect();
    let texts: Vec<&str> = rest.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["segundo, ", "terceiro.", ""]);
    let last = rest.last().unwrap();
    assert!(last.is_final);
    assert_eq!((last.tokens_in, last.tokens_out), (21, 9));
    assert!(rest[..2].iter().all(|c| !c.is_final));

    let req = &gemini.requests()[0];
    assert_eq!(
        req.uri,
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    );
    assert_key_only_in_header(req);
    assert!(req.body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Rust para Backend"));
}

#[tokio::test]
async fn the_stream_retries_before_the_first_byte() {
    let gemini = StandIn::start(Reply::Sse(vec![SseStep::Event(answer_json("ok", 1, 1))])).await;
    gemini.push([error(503, "UNAVAILABLE", "overloaded")]);
    let chunks: Vec<_> = gemini
        .client()
        .answer_stream(&question(), None)
        .collect()
        .await;
    let texts: Vec<String> = chunks.into_iter().map(|c| c.unwrap().text).collect();
    assert_eq!(texts, ["ok", ""]);
    assert_eq!(gemini.requests().len(), 2);
}

#[tokio::test]
async fn a_block_mid_stream_ends_the_stream_with_blocked() {
    let gemini = StandIn::start(Reply::Sse(vec![
        SseStep::Event(delta_json("Começo")),
        SseStep::Event(json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]})),
        SseStep::Event(delta_json("nunca visto")),
    ]))
    .await;
    let items: Vec<_> = gemini
        .client()
        .answer_stream(&question(), None)
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().text, "Começo");
    assert_eq!(
        items[1],
        Err(AnswerError::Blocked {
            reason: "SAFETY".into()
        })
    );
}

#[tokio::test]
async fn a_stalled_stream_times_out_within_the_deadline() {
    let never = Arc::new(Notify::new());
    let script = vec![SseStep::Event(delta_json("Começo")), SseStep::Wait(never)];
    let gemini = StandIn::start(Reply::Sse(script)).await;
    let started = Instant::now();
    let items: Vec<_> = gemini
        .client()
        .answer_stream(&question(), Some(started + Duration::from_millis(800)))
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[1], Err(AnswerError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(800) + SLACK);
}
