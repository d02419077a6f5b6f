//! A local stand-in for Gemini speaking its REST protocol (`generateContent` JSON and
//! `streamGenerateContent?alt=sse`), bound on 127.0.0.1:0. Tests script its replies in order and
//! read back what it received. Usable by any test of this crate: `mod common;`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use chatbot::{CourseContext, GeminiClient, GeminiConfig, Material, Question};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// The key tests configure; it must never show up anywhere but the request header.
pub const KEY: &str = "AIzaSy-TEST-KEY-must-never-leak-42";
pub const MODEL: &str = "gemini-test";

/// One scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// Status, JSON body and extra headers.
    Json(u16, Value, Vec<(&'static str, String)>),
    /// Status, content type and raw body.
    Raw(u16, &'static str, String),
    /// Never answers.
    Hang,
    /// A `text/event-stream` body sent step by step.
    Sse(Vec<SseStep>),
}

#[derive(Clone)]
pub enum SseStep {
    /// Sends `data: <json>\r\n\r\n`.
    Event(Value),
    /// Waits until the test releases it (proves the client reads before the body ends).
    Wait(Arc<Notify>),
}

/// What the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: Method,
    /// Path and query, exactly as requested.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Value,
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl StandIn {
    /// Starts a stand-in whose unscripted replies are `fallback`.
    pub async fn start(fallback: Reply) -> StandIn {
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(fallback),
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandIn { addr, shared }
    }

    /// Queues replies, served before the fallback.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A config for tests: short backoff so retries take milliseconds.
    pub fn config(&self) -> GeminiConfig {
        let mut config = GeminiConfig::new(KEY, MODEL, &self.base_url()).unwrap();
        config.attempt_timeout = Duration::from_secs(5);
        config.backoff_base = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(100);
        config.default_budget = Duration::from_secs(10);
        config
    }

    pub fn client(&self) -> GeminiClient {
        GeminiClient::new(self.config()).unwrap()
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        at: Instant::now(),
        method,
        uri: uri.to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| shared.fallback.lock().unwrap().clone());
    match reply {
        Reply::Json(status, value, extra) => {
            let mut response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/json; charset=UTF-8");
            for (name, value) in extra {
                response = response.header(name, value);
            }
            response.body(Body::from(value.to_string())).unwrap()
        }
        Reply::Raw(status, content_type, body) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
        Reply::Hang => std::future::pending().await,
        Reply::Sse(steps) => {
            let events = futures::stream::unfold(steps.into_iter(), |mut steps| async move {
                loop {
                    match steps.next()? {
                        SseStep::Event(v) => {
                            let frame = format!("data: {v}\r\n\r\n");
                            return Some((Ok::<_, std::convert::Infallible>(frame), steps));
                        }
                        SseStep::Wait(notify) => notify.notified().await,
                    }
                }
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(events))
                .unwrap()
        }
    }
}

/// A `generateContent` response (or SSE event) with text and token counts.
pub fn answer_json(text: &str, tokens_in: u32, tokens_out: u32) -> Value {
    json!({
        "candidates": [{
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out
        },
        "modelVersion": MODEL
    })
}

/// A streamed event carrying only text (no finish reason yet).
pub fn delta_json(text: &str) -> Value {
    json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]})
}

pub fn ok(text: &str) -> Reply {
    Reply::Json(200, answer_json(text, 11, 7), vec![])
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
pub fn error(code: u16, status: &str, message: &str) -> Reply {
    Reply::Json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
        vec![],
    )
}

pub fn question() -> Question {
    Question {
        aula_contexto: "Aula 4: ownership e empréstimos em Rust".into(),
        duvida: "Qual a diferença entre &T e &mut T?".into(),
        course: Some(CourseContext {
            id: "42".into(),
            nome: "Rust para Backend".into(),
            descricao: "Serviços seguros e rápidos com Rust.".into(),
            material: vec![
                Material {
                    titulo: "Vídeo: Referências e Borrowing".into(),
                    descricao: "Como o compilador verifica empréstimos mutáveis e imutáveis."
                        .into(),
                    tipo: "video".into(),
                },
                Material {
                    titulo: "Apostila: Lifetimes".into(),
                    descricao: "Anotações de tempo de vida em funções e structs.".into(),
                    tipo: "pdf".into(),
                },
            ],
        }),
    }
}

pub fn in_ms(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// The key must not appear in what a caller or a log could see of an error.
pub fn assert_no_key(e: &impl std::fmt::Debug) {
    let text = format!("{e:?}");
    assert!(!text.contains(KEY), "key leaked: {text}");
}

/// The chatbot service in-process, a client of it, and its data directory.
pub struct Chatbot {
    pub service: aula_runtime::testing::TestService,
    pub client: aula_api::chatbot_service_client::ChatbotServiceClient<tonic::transport::Channel>,
    pub _dir: tempfile::TempDir,
}

/// The chatbot with `env`, in a temporary directory of its own.
pub async fn chatbot(env: &[(&str, String)]) -> Chatbot {
    chatbot_in(tempfile::tempdir().unwrap(), env).await
}

/// The chatbot with `env`, its data in `dir` (where a test put its flags file).
pub async fn chatbot_in(dir: tempfile::TempDir, env: &[(&str, String)]) -> Chatbot {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let service = aula_runtime::testing::spawn(chatbot::service(), dir.path(), &env)
        .await
        .unwrap();
    let client = aula_api::chatbot_service_client::ChatbotServiceClient::new(service.channel());
    Chatbot {
        service,
        client,
        _dir: dir,
    }
}

/// The chatbot's settings in Gemini mode against the stand-in (insights pointed at a closed
/// port).
pub fn gemini_env(gemini: &StandIn) -> Vec<(&'static str, String)> {
    vec![
        ("GEMINI_API_KEY", KEY.to_string()),
        ("GEMINI_MODEL", MODEL.to_string()),
        ("GEMINI_BASE_URL", gemini.base_url()),
        ("INSIGHTS_ADDR", aula_runtime::testing::closed_url()),
    ]
}

/// A question of the Rust course through gRPC, with a 10 s deadline.
pub fn rust_question() -> tonic::Request<aula_api::ChatbotDuvidaRequest> {
    let mut req = tonic::Request::new(aula_api::ChatbotDuvidaRequest {
        aula_contexto: "Aula 4: ownership".into(),
        duvida: "Qual a diferença entre &T e &mut T?".into(),
        nome_curso: "Rust para Backend".into(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_secs(10));
    req
}

/// A 200 with `body` as JSON.
pub fn ok_json(body: Value) -> Reply {
    Reply::Json(200, body, vec![])
}

/// A 200 that is an HTML page, not JSON (a proxy's error page).
pub fn html_page() -> Reply {
    Reply::Raw(
        200,
        "text/html",
        "<html><body>Bad gateway, have a nice day</body></html>".into(),
    )
}

/// A streamed answer in three chunks, the second and third held until `release` is notified:
/// "Primeiro, " "segundo, " "terceiro." (21 tokens in, 9 out).
pub fn three_chunks(release: &Arc<Notify>) -> Reply {
    Reply::Sse(vec![
        SseStep::Event(delta_json("Primeiro, ")),
        SseStep::Wait(release.clone()),
        SseStep::Event(delta_json("segundo, ")),
        SseStep::Event(answer_json("terceiro.", 21, 9)),
    ])
}
