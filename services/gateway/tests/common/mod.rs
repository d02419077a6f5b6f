//! The gateway against in-process gRPC backends. Until the six real service crates exist,
//! each backend is a small fake implementing the generated server trait with fixed data (ids
//! "999" are NOT_FOUND, "888" RESOURCE_EXHAUSTED, "abc" INVALID_ARGUMENT), serving
//! `grpc.health.v1` like the real ones, and recording every call with the `traceparent` it
//! carried.
#![allow(dead_code)]

use aula_api::{
    stubbed::{
        chatbot_service_server::{ChatbotService, ChatbotServiceServer},
        cpar_service_server::{CparService, CparServiceServer},
        cursos_service_server::{CursosService, CursosServiceServer},
        insights_service_server::{InsightsService, InsightsServiceServer},
        midia_conteudo_service_server::{MidiaConteudoService, MidiaConteudoServiceServer},
        notificacoes_service_server::{NotificacoesService, NotificacoesServiceServer},
    },
    *,
};
use aula_runtime::{config::Env, spec};
use gateway::RunningGateway;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// One call a fake backend received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub traceparent: Option<String>,
    /// The request message, `{:?}`-formatted.
    pub request: String,
}

#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Call>>>);

impl Seen {
    fn record<T: std::fmt::Debug>(&self, method: &'static str, req: &Request<T>) {
        self.0.lock().unwrap().push(Call {
            method,
            traceparent: req
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            request: format!("{:?}", req.get_ref()),
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self, method: &str) -> Call {
        self.calls()
            .into_iter()
            .rev()
            .find(|c| c.method == method)
            .unwrap_or_else(|| panic!("no call to {method}"))
    }
}

fn status(servico: &str, message: &str) -> StatusResponse {
    StatusResponse {
        message: message.into(),
        servico: servico.into(),
        versao: "test".into(),
        ..Default::default()
    }
}

fn check_id(field: &str, id: &str, what: &str) -> Result<(), Status> {
    match id {
        "999" => Err(Status::not_found(format!("{field} {id}: no such {what}"))),
        // A service at its in-flight limit (AULA_MAX_IN_FLIGHT) sheds the call.
        "888" => Err(Status::resource_exhausted(
            "cursos is handling its limit of 256 calls (AULA_MAX_IN_FLIGHT); retry later",
        )),
        _ if id.parse::<u64>().is_err() => Err(Status::invalid_argument(format!(
            "{field}: must be a positive integer (got {id:?})"
        ))),
        _ => Ok(()),
    }
}

/// What the fake cursos answers when it has sent `message`.
pub fn notice_sent(message: &str) -> String {
    format!("Notificação enviada: {message}")
}

fn course() -> Course {
    Course {
        id: 1,
        nome: "Sistemas Distribuídos".into(),
        descricao: "gRPC, filas e consenso".into(),
        carga_horaria: 60,
        instrutor: "Ana".into(),
        categoria: "computação".into(),
    }
}

fn media(id_curso: &str) -> GetCourseMediaResponse {
    GetCourseMediaResponse {
        midia_curso: format!("Curso {id_curso}: 1 vídeo"),
        itens: vec![MediaItem {
            id: 7,
            titulo: "Introdução".into(),
            tipo: "video".into(),
            url: "https://example.invalid/v/7".into(),
            duracao_segundos: 600,
            ordem: 1,
            descricao: "Primeira aula".into(),
            id_curso: id_curso.into(),
        }],
    }
}

pub struct Fake(pub Seen);

#[tonic::async_trait]
impl CursosService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("cursos.GetStatus", &r);
        Ok(Response::new(status(
            "cursos",
            "Serviço de Cursos funcionando",
        )))
    }
    async fn get_user_courses(
        &self,
        r: Request<GetUserCoursesRequest>,
    ) -> Result<Response<GetUserCoursesResponse>, Status> {
        self.0.record("cursos.GetUserCourses", &r);
        check_id("id_usuario", &r.get_ref().id_usuario, "user")?;
        Ok(Response::new(GetUserCoursesResponse {
            message: format!("Cursos do usuário {}", r.get_ref().id_usuario),
            cursos_inscritos: vec![course()],
        }))
    }
    async fn get_course_media(
        &self,
        r: Request<GetCourseMediaRequest>,
    ) -> Result<Response<GetCourseMediaResponse>, Status> {
        self.0.record("cursos.GetCourseMedia", &r);
        check_id("id_curso", &r.get_ref().id_curso, "course")?;
        Ok(Response::new(media(&r.get_ref().id_curso)))
    }
    async fn ask_question(
        &self,
        r: Request<AskQuestionRequest>,
    ) -> Result<Response<AskQuestionResponse>, Status> {
        self.0.record("cursos.AskQuestion", &r);
        check_id("id_curso", &r.get_ref().id_curso, "course")?;
        Ok(Response::new(AskQuestionResponse {
            resposta: format!("Resposta para: {}", r.get_ref().duvida),
            modelo: "offline".into(),
            id_interacao: "int-1".into(),
            offline: true,
        }))
    }
    async fn send_notification(
        &self,
        r: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        self.0.record("cursos.SendNotification", &r);
        check_id("id_usuario", &r.get_ref().id_usuario, "user")?;
        Ok(Response::new(SendNotificationResponse {
            message: notice_sent(&r.get_ref().message),
            notificacao_servico: Some(status("notificacoes", "Notificação recebida")),
            pendente: false,
            id_notificacao: "n-1".into(),
        }))
    }
}

#[tonic::async_trait]
impl ChatbotService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("chatbot.GetStatus", &r);
        let mut s = status("chatbot", "Serviço de Chatbot funcionando");
        s.modo = "offline".into();
        Ok(Response::new(s))
    }
    async fn resolve_duvida(
        &self,
        r: Request<ChatbotDuvidaRequest>,
    ) -> Result<Response<ChatbotDuvidaResponse>, Status> {
        self.0.record("chatbot.ResolveDuvida", &r);
        Ok(Response::new(ChatbotDuvidaResponse {
            resposta: format!(
                "Sobre {}: {}",
                r.get_ref().aula_contexto,
                r.get_ref().duvida
            ),
            modelo: "offline".into(),
            id_interacao: "int-2".into(),
            tokens_entrada: 3,
            tokens_saida: 5,
            offline: true,
        }))
    }
    async fn register_metrics(
        &self,
        r: Request<RegisterMetricsRequest>,
    ) -> Result<Response<RegisterMetricsResponse>, Status> {
        self.0.record("chatbot.RegisterMetrics", &r);
        Ok(Response::new(RegisterMetricsResponse {
            message: "Métricas registradas".into(),
            id_interacao: r.get_ref().id_interacao.clone(),
            insights_servico: Some(status("insights", "Métricas recebidas")),
        }))
    }
}

#[tonic::async_trait]
impl CparService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("cpar.GetStatus", &r);
        Ok(Response::new(status("cpar", "Serviço CPAR funcionando")))
    }
    async fn notify_schedule(
        &self,
        r: Request<NotifyScheduleRequest>,
    ) -> Result<Response<NotifyScheduleResponse>, Status> {
        self.0.record("cpar.NotifySchedule", &r);
        check_id("id_agendamento", &r.get_ref().id_agendamento, "appointment")?;
        Ok(Response::new(NotifyScheduleResponse {
            message: "Agendamento notificado".into(),
            id_agendamento: r.get_ref().id_agendamento.clone(),
            notificacao_servico: Some(status("notificacoes", "Notificação recebida")),
            pendente: false,
        }))
    }
}

#[tonic::async_trait]
impl NotificacoesService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("notificacoes.GetStatus", &r);
        Ok(Response::new(status(
            "notificacoes",
            "Serviço de Notificações funcionando",
        )))
    }
}

#[tonic::async_trait]
impl InsightsService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("insights.GetStatus", &r);
        let mut s = status("insights", "Serviço de Insights funcionando");
        s.contagens.insert("interacoes".into(), 4);
        Ok(Response::new(s))
    }
}

#[tonic::async_trait]
impl MidiaConteudoService for Fake {
    async fn get_status(&self, r: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        self.0.record("midia.GetStatus", &r);
        Ok(Response::new(status(
            "midia",
            "Serviço de Mídia e Conteúdo funcionando",
        )))
    }
    async fn get_media(
        &self,
        r: Request<GetCourseMediaRequest>,
    ) -> Result<Response<GetCourseMediaResponse>, Status> {
        self.0.record("midia.GetMedia", &r);
        check_id("id_curso", &r.get_ref().id_curso, "course")?;
        Ok(Response::new(media(&r.get_ref().id_curso)))
    }
}

/// A fake backend serving one service and `grpc.health.v1`.
struct Backend {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve_fake(name: &str, seen: &Seen) -> (String, Backend) {
    let grpc_service = spec::by_name(name).expect("a service").grpc_service;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(grpc_service, tonic_health::ServingStatus::Serving)
        .await;
    let fake = || Fake(seen.clone());
    let builder = tonic::transport::Server::builder().add_service(health);
    let router = match name {
        "cursos" => builder.add_service(CursosServiceServer::new(fake())),
        "chatbot" => builder.add_service(ChatbotServiceServer::new(fake())),
        "cpar" => builder.add_service(CparServiceServer::new(fake())),
        "notificacoes" => builder.add_service(NotificacoesServiceServer::new(fake())),
        "insights" => builder.add_service(InsightsServiceServer::new(fake())),
        "midia" => builder.add_service(MidiaConteudoServiceServer::new(fake())),
        other => panic!("unknown service {other}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        drop(reporter);
    });
    (url, Backend { stop, done })
}

/// A question as the seed's clients post it to `/chatbot/duvida`.
pub const QUESTION: &str = r#"{"aula_contexto": "aula 2", "duvida": "e REST?"}"#;

/// Asserts an error body's `erro` names `what` (the field, setting or service to look at).
pub fn assert_erro_names(body: &serde_json::Value, what: &str) {
    let erro = body["erro"]
        .as_str()
        .unwrap_or_else(|| panic!("no erro: {body}"));
    assert!(erro.contains(what), "the error names {what}: {body}");
}

/// An address where nothing listens (a service that is down): a socket bound but never
/// listening refuses connections, and holding it keeps the port from being reused by another
/// test's server.
pub fn refusing_port() -> (String, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    (url, socket)
}

/// The gateway and its backends.
pub struct App {
    pub gateway: RunningGateway,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub metrics_url: String,
    pub seen: Seen,
    pub http: reqwest::Client,
    backends: Vec<Backend>,
    _refusing: Vec<tokio::net::TcpSocket>,
}

/// The six services' names, in the catalogue's order.
pub fn all() -> impl Iterator<Item = &'static str> {
    spec::ALL.iter().map(|s| s.name)
}

/// Starts fakes of every service except those in `down` (which point at closed ports), and
/// the gateway on ephemeral ports.
pub async fn spawn_app(down: &[&str]) -> App {
    spawn_app_with(down, &[]).await
}

/// [`spawn_app`] with `extra` settings; a service whose address `extra` sets (`CURSOS_ADDR`,
/// a real or a stalled one) gets no fake.
pub async fn spawn_app_with(down: &[&str], extra: &[(&str, &str)]) -> App {
    let seen = Seen::default();
    let mut env = Env::from_pairs([
        ("AULA_PEER_TIMEOUT", "5s"),
        ("AULA_DNS_REFRESH", "1s"),
        ("AULA_SHUTDOWN_GRACE", "5s"),
        ("GATEWAY_DRAIN_DELAY", "0s"),
    ]);
    let mut backends = Vec::new();
    let mut refusing = Vec::new();
    for name in all() {
        let var = format!("{}_ADDR", name.to_uppercase());
        if extra.iter().any(|(k, _)| *k == var) {
            continue;
        }
        let url = if down.contains(&name) {
            let (url, socket) = refusing_port();
            refusing.push(socket);
            url
        } else {
            let (url, backend) = serve_fake(name, &seen).await;
            backends.push(backend);
            url
        };
        env.set(var, url);
    }
    for (k, v) in extra {
        env.set(*k, *v);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = gateway::start(&env, listener, Some(metrics)).await.unwrap();
    App {
        base: format!("http://{}", gateway.addr()),
        metrics_url: format!("http://{}/metrics", gateway.metrics_addr().unwrap()),
        gateway,
        seen,
        http: reqwest::Client::new(),
        backends,
        _refusing: refusing,
    }
}

impl App {
    /// `GET path`: the whole response (its headers too).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        let get = self.http.get(format!("{}{path}", self.base));
        get.send().await.unwrap()
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get_response(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// `GET path`'s JSON body, which must come with `status`.
    pub async fn get_as(&self, path: &str, status: u16) -> serde_json::Value {
        expect(path, status, self.get(path).await)
    }

    /// `POST path` with a JSON `body`: the JSON answer, which must come with `status`.
    pub async fn post_as(&self, path: &str, body: &str, status: u16) -> serde_json::Value {
        expect(path, status, self.post(path, body).await)
    }

    /// `POST path` with a JSON `body`: the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn metrics_text(&self) -> String {
        self.http
            .get(&self.metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the gateway and the backends.
    pub async fn stop(self) {
        self.gateway.stop().await.unwrap();
        for b in self.backends {
            let _ = b.stop.send(());
            let _ = b.done.await;
        }
    }
}

fn expect(path: &str, status: u16, (got, body): (u16, serde_json::Value)) -> serde_json::Value {
    assert_eq!(got, status, "{path}: {body}");
    body
}
