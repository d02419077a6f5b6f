//! The chatbot through gRPC, in-process: offline and Gemini modes (Gemini played by the local
//! stand-in of `tests/common`), error codes, streaming, metrics, and the chain to insights (the
//! real `insights` service, in-process) that records every answered question.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_api::{
    insights_service_client::InsightsServiceClient, ChatbotDuvidaRequest, CourseInsights, Empty,
    GetCourseInsightsRequest, MaterialItem, RegisterMetricsRequest,
};
use aula_runtime::testing::Reply as _;
use aula_runtime::testing::{self, assert_code, assert_status, metric_line, TestService};
use common::*;
use serde_json::json;
use tonic::{Code, Request};

/// Generous bound for "promptly" on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

async fn offline_chatbot() -> Chatbot {
    chatbot(&[("INSIGHTS_ADDR", testing::closed_url())]).await
}

async fn gemini_chatbot(gemini: &StandIn) -> Chatbot {
    chatbot(&gemini_env(gemini)).await
}

/// Asks the chatbot a question of the cooking course.
async fn ask(
    bot: &mut Chatbot,
    duvida: &str,
) -> Result<tonic::Response<aula_api::ChatbotDuvidaResponse>, tonic::Status> {
    bot.client.resolve_duvida(cooking(duvida)).await
}

/// Asks for a streamed answer to a question of the cooking course.
async fn ask_streamed(
    bot: &mut Chatbot,
    duvida: &str,
) -> tonic::Streaming<aula_api::ChatbotDuvidaChunk> {
    bot.client
        .resolve_duvida_stream(cooking(duvida))
        .await
        .answer()
}

fn metrics_of(id_interacao: &str) -> RegisterMetricsRequest {
    RegisterMetricsRequest {
        id_interacao: id_interacao.into(),
    }
}

fn cooking(duvida: &str) -> ChatbotDuvidaRequest {
    ChatbotDuvidaRequest {
        aula_contexto: "Aula 2: massas e molhos básicos.".into(),
        duvida: duvida.into(),
        id_curso: "1".into(),
        nome_curso: "Culinária Italiana".into(),
        descricao_curso: "Técnicas clássicas da cozinha italiana.".into(),
        material: vec![
            MaterialItem {
                titulo: "Massa fresca".into(),
                descricao: "Como preparar massa fresca com farinha e ovos. O descanso da massa \
                            leva trinta minutos na geladeira."
                    .into(),
                tipo: "video".into(),
            },
            MaterialItem {
                titulo: "Pizza napolitana".into(),
                descricao: "O forno a lenha chega a 450 graus e assa a pizza em noventa segundos."
                    .into(),
                tipo: "video".into(),
            },
        ],
        id_usuario: "9".into(),
    }
}

// ------------------------------------------------------------------ offline

#[tokio::test]
async fn offline_mode_answers_from_the_material_in_the_request() {
    let mut bot = offline_chatbot().await;

    let status = bot.client.get_status(Empty {}).await.answer();
    assert_eq!(status.modo, "offline");
    assert_eq!(
        status.message,
        "Chatbot em modo offline (BM25 sobre o material do curso)"
    );
    assert_status(&status, "chatbot", &[]);

    let massa = ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .answer();
    let forno = ask(&mut bot, "Qual a temperatura do forno para pizza?")
        .await
        .answer();

    assert!(massa.offline && forno.offline);
    assert_eq!(massa.modelo, "offline-bm25");
    assert!(
        massa.resposta.contains("trinta minutos"),
        "{}",
        massa.resposta
    );
    assert!(forno.resposta.contains("450 graus"), "{}", forno.resposta);
    assert_ne!(massa.resposta, forno.resposta);
    assert_eq!((massa.tokens_entrada, massa.tokens_saida), (0, 0));
    assert!(!massa.id_interacao.is_empty());
    assert_ne!(massa.id_interacao, forno.id_interacao);
}

#[tokio::test]
async fn a_blank_question_is_invalid_naming_the_field() {
    let mut bot = offline_chatbot().await;
    assert_code(
        ask(&mut bot, "   ").await,
        Code::InvalidArgument,
        "duvida: ",
    );

    let mut stream = ask_streamed(&mut bot, "").await;
    let err = stream.message().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

#[tokio::test]
async fn offline_stream_ends_with_one_final_chunk() {
    let mut bot = offline_chatbot().await;
    let mut stream = ask_streamed(&mut bot, "Quanto tempo a massa descansa?").await;
    let mut chunks = Vec::new();
    while let Some(c) = stream.message().await.unwrap() {
        chunks.push(c);
    }
    assert!(!chunks.is_empty());
    assert_eq!(chunks.iter().filter(|c| c.r#final).count(), 1);
    assert!(chunks.last().unwrap().r#final);
    let id = &chunks[0].id_interacao;
    assert!(!id.is_empty());
    assert!(chunks
        .iter()
        .all(|c| &c.id_interacao == id && c.modelo == "offline-bm25"));
    let text: String = chunks.iter().map(|c| c.texto.as_str()).collect();
    assert!(text.contains("trinta minutos"), "{text}");
}

#[tokio::test]
async fn bad_gemini_config_fails_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GEMINI_API_KEY".to_string(), KEY.to_string()),
        ("GEMINI_TIMEOUT".to_string(), "soon".to_string()),
    ];
    let err = testing::spawn(chatbot::service(), dir.path(), &env)
        .await
        .err()
        .expect("start-up fails");
    let text = format!("{err:#}");
    assert!(text.contains("GEMINI_TIMEOUT"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

// ------------------------------------------------------------------ gemini

#[tokio::test]
async fn gemini_mode_answers_with_model_and_tokens() {
    let gemini = StandIn::start(ok("Use &mut T para alterar; &T só lê.")).await;
    let mut bot = gemini_chatbot(&gemini).await;

    let status = bot.client.get_status(Empty {}).await.answer();
    assert_eq!(status.modo, "gemini");
    assert_eq!(status.message, format!("Chatbot em modo Gemini ({MODEL})"));

    let answer = bot.client.resolve_duvida(rust_question()).await.answer();

    assert_eq!(answer.resposta, "Use &mut T para alterar; &T só lê.");
    assert_eq!(answer.modelo, MODEL);
    assert!(!answer.offline);
    assert_eq!((answer.tokens_entrada, answer.tokens_saida), (11, 7));
    assert!(!answer.id_interacao.is_empty());
    let requests = gemini.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["x-goog-api-key"], KEY);
    let prompt = requests[0].body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(prompt.contains("Rust para Backend"), "{prompt}");
}

#[tokio::test]
async fn quota_is_resource_exhausted() {
    let gemini = StandIn::start(error(429, "RESOURCE_EXHAUSTED", "quota exceeded")).await;
    let mut bot = gemini_chatbot(&gemini).await;
    let err = ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .refusal();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_no_key(&err);
}

#[tokio::test]
async fn a_safety_block_is_failed_precondition_with_the_reason() {
    let gemini = StandIn::start(ok_json(json!({"promptFeedback": {"blockReason": "SAFETY"},
               "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}})))
    .await;
    let mut bot = gemini_chatbot(&gemini).await;
    let err = ask(&mut bot, "Como fazer algo perigoso?").await.refusal();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("SAFETY"), "{err:?}");
}

#[tokio::test]
async fn a_hang_is_deadline_exceeded_before_the_callers_deadline() {
    let gemini = StandIn::start(Reply::Hang).await;
    let mut bot = gemini_chatbot(&gemini).await;
    let deadline = Duration::from_secs(2);
    let mut req = Request::new(cooking("Quanto tempo a massa descansa?"));
    req.set_timeout(deadline);
    let started = Instant::now();
    // tonic enforces the same grpc-timeout on the client side (answering CANCELLED): a
    // DEADLINE_EXCEEDED can only come from the chatbot, answering in time.
    let err = tokio::time::timeout(deadline + SLACK, bot.client.resolve_duvida(req))
        .await
        .expect("the call returns")
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?} after {took:?}");
    assert!(took < deadline, "{took:?}");
    assert!(
        took >= Duration::from_millis(1000),
        "gave up early: {took:?}"
    );

    // The service stays SERVING.
    bot.service.assert_serving().await;
}

#[tokio::test]
async fn a_malformed_upstream_is_unavailable_and_the_service_keeps_serving() {
    let gemini = StandIn::start(html_page()).await;
    let mut bot = gemini_chatbot(&gemini).await;
    let err = assert_code(
        ask(&mut bot, "Quanto tempo a massa descansa?").await,
        Code::Unavailable,
        "gemini: ",
    );
    assert_no_key(&err);

    bot.service.assert_serving().await;
    let status = bot.client.get_status(Empty {}).await.answer();
    assert_eq!(status.modo, "gemini");
}

#[tokio::test]
async fn the_stream_relays_gemini_chunks_in_order() {
    let release = Arc::new(tokio::sync::Notify::new());
    let gemini = StandIn::start(three_chunks(&release)).await;
    let mut bot = gemini_chatbot(&gemini).await;
    let mut stream = ask_streamed(&mut bot, "Quanto tempo a massa descansa?").await;

    // The first chunk arrives while Gemini is still writing.
    let first = tokio::time::timeout(SLACK * 3, stream.message())
        .await
        .expect("the first chunk is relayed before the answer ends")
        .unwrap()
        .unwrap();
    assert_eq!(first.texto, "Primeiro, ");
    assert!(!first.r#final);
    release.notify_one();

    let mut rest = Vec::new();
    while let Some(c) = stream.message().await.unwrap() {
        rest.push(c);
    }
    let texts: Vec<&str> = rest.iter().map(|c| c.texto.as_str()).collect();
    assert_eq!(texts.concat(), "segundo, terceiro.");
    let last = rest.last().unwrap();
    assert!(last.r#final);
    assert_eq!((last.tokens_entrada, last.tokens_saida), (21, 9));
    assert_eq!(last.modelo, MODEL);
    assert!(rest.iter().all(|c| c.id_interacao == first.id_interacao));
    assert_eq!(rest.iter().filter(|c| c.r#final).count(), 1);
}

// ------------------------------------------------------------------ metrics

#[tokio::test]
async fn questions_are_counted_by_mode_and_outcome() {
    let mut bot = offline_chatbot().await;
    ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .unwrap();
    ask(&mut bot, " ").await.unwrap_err();

    let text = bot.service.metrics_text().await;
    let questions = "aula_chatbot_questions_total";
    let ok = metric_line(&text, questions, &[r#"mode="offline""#, r#"outcome="ok""#]);
    assert!(ok.ends_with(" 1"), "{ok}");
    let error = metric_line(
        &text,
        questions,
        &[r#"mode="offline""#, r#"outcome="error""#],
    );
    assert!(error.ends_with(" 1"), "{error}");
}

#[tokio::test]
async fn gemini_outcomes_are_counted_in_gemini_mode() {
    let gemini = StandIn::start(ok("oi")).await;
    let mut bot = gemini_chatbot(&gemini).await;
    let mut stream = ask_streamed(&mut bot, "Quanto tempo a massa descansa?").await;
    // The stand-in answers the SSE request with plain JSON: whatever the outcome, the streamed
    // question is counted once it settles.
    while let Ok(Some(_)) = stream.message().await {}
    ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .unwrap();
    let service = &bot.service;
    testing::eventually(SLACK, "the gemini counters", || async {
        let text = service.metrics_text().await;
        let total: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("aula_chatbot_questions_total{") && l.contains(r#"mode="gemini""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (total == 2.0).then_some(())
    })
    .await;
}

// ------------------------------------------------------------------ insights

/// insights, in-process.
async fn insights_service(dir: &std::path::Path) -> TestService {
    testing::spawn(insights::service(), dir, &[]).await.unwrap()
}

async fn course_insights(insights: &TestService, id_curso: &str) -> CourseInsights {
    InsightsServiceClient::new(insights.channel())
        .get_course_insights(GetCourseInsightsRequest {
            id_curso: id_curso.into(),
        })
        .await
        .answer()
}

/// Waits until insights counts `n` questions for `id_curso`, and returns its statistics.
async fn await_questions(insights: &TestService, id_curso: &str, n: i64) -> CourseInsights {
    let until = Instant::now() + SLACK * 3;
    loop {
        let c = course_insights(insights, id_curso).await;
        if c.total_perguntas >= n {
            return c;
        }
        assert!(
            Instant::now() < until,
            "insights shows {} questions for course {id_curso}, expected {n}",
            c.total_perguntas
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn answered_questions_reach_insights_and_metrics_are_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let insights = insights_service(dir.path()).await;
    let (var, url) = insights.addr_var();
    assert_eq!(var, "INSIGHTS_ADDR");
    let mut bot = chatbot(&[("INSIGHTS_ADDR", url)]).await;

    let answer = ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .answer();
    let mut stream = ask_streamed(&mut bot, "Qual a temperatura do forno?").await;
    while stream.message().await.unwrap().is_some() {}

    let stats = await_questions(&insights, "1", 2).await;
    assert_eq!(stats.total_perguntas, 2);
    assert_eq!(stats.taxa_sucesso, 1.0);
    assert_eq!(stats.usuarios_distintos, 1);
    assert_eq!(stats.perguntas_por_modelo.get("offline-bm25"), Some(&2));

    let registered = bot
        .client
        .register_metrics(metrics_of(&answer.id_interacao))
        .await
        .answer();
    assert_eq!(registered.id_interacao, answer.id_interacao);
    assert!(
        registered.message.contains(&answer.id_interacao),
        "{}",
        registered.message
    );
    let servico = registered.insights_servico.expect("insights' status");
    assert_eq!(servico.servico, "insights");

    assert_code(
        bot.client.register_metrics(metrics_of("  ")).await,
        Code::InvalidArgument,
        "id_interacao: ",
    );
}

#[tokio::test]
async fn failed_answers_reach_insights_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    let insights = insights_service(dir.path()).await;
    let gemini = StandIn::start(Reply::Raw(200, "text/html", "<html></html>".into())).await;
    let mut bot = chatbot(&[
        ("GEMINI_API_KEY", KEY.to_string()),
        ("GEMINI_MODEL", MODEL.to_string()),
        ("GEMINI_BASE_URL", gemini.base_url()),
        ("INSIGHTS_ADDR", insights.url.clone()),
    ])
    .await;
    let err = ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .refusal();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    let stats = await_questions(&insights, "1", 1).await;
    assert_eq!(stats.taxa_sucesso, 0.0);
    assert_eq!(stats.perguntas_por_modelo.get(MODEL), Some(&1));
}

#[tokio::test]
async fn insights_down_answers_promptly_and_register_metrics_is_unavailable() {
    let mut bot = offline_chatbot().await;

    for _ in 0..3 {
        let started = Instant::now();
        let answer = ask(&mut bot, "Quanto tempo a massa descansa?")
            .await
            .answer();
        assert!(answer.resposta.contains("trinta minutos"));
        assert!(
            started.elapsed() < SLACK,
            "answering waited for insights: {:?}",
            started.elapsed()
        );
    }

    let err = bot
        .client
        .register_metrics(metrics_of("0f0e0d0c-0b0a-4908-8706-050403020100"))
        .await
        .refusal();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("insights"), "{err:?}");

    // Stopping does not hang on records insights never took (grace 3s in tests).
    let started = Instant::now();
    bot.service.running.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3) + SLACK);
}

#[tokio::test]
async fn records_queued_while_insights_is_down_arrive_when_it_comes_back() {
    // Reserve insights' port; the chatbot starts pointing at it while nothing listens there.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let mut bot = chatbot(&[("INSIGHTS_ADDR", format!("http://{addr}"))]).await;
    let answer = ask(&mut bot, "Quanto tempo a massa descansa?")
        .await
        .answer();
    assert!(!answer.id_interacao.is_empty());

    // insights comes back on that port while the recorder is still retrying.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let insights = testing::spawn_on(insights::service(), dir.path(), &[], listener)
        .await
        .unwrap();

    let stats = await_questions(&insights, "1", 1).await;
    assert_eq!(stats.total_perguntas, 1);
}
