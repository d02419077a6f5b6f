//! The calls: generated clients on tonic channels, and the request each RPC of the mix sends.
//!
//! Requests look like a real user's: random users 1000..1999 (a range of their own, so load
//! never touches the demo users' data), courses 1..5, schedules in the future. The gateway's
//! routes go over HTTP (reqwest, a pool of keep-alive connections), its answers mapped back to
//! the gRPC code behind them so the report counts them alike. With `--token`, every gRPC call
//! and every gateway request carries `authorization: Bearer <token>` ([`Bearer`]).

use super::mix::{Route, Rpc, Target};
use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cpar_service_client::CparServiceClient,
    cursos_service_client::CursosServiceClient, insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient, *,
};
use aula_runtime::tls::{
    connect::{split_addr, ClientTls, Connector},
    Tls,
};
use rand::{rngs::StdRng, Rng};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::{
    metadata::AsciiMetadataValue,
    service::{interceptor::InterceptedService, Interceptor},
    transport::{Channel, Endpoint},
};

/// The first load user: the mix acts on users 1000..1999 (a range of their own, so load never
/// touches the demo users' data). With end-user auth on, only a staff token may do that.
pub const FIRST_LOAD_USER: u32 = 1000;

/// The user token of `--token`, as the `authorization` value of gRPC metadata and of HTTP;
/// `None` sends none. Never printed: `Debug` says only whether there is one.
#[derive(Clone, Default)]
pub struct Bearer {
    grpc: Option<AsciiMetadataValue>,
    http: Option<reqwest::header::HeaderValue>,
}

impl Bearer {
    /// From `--token` / `AULA_TOKEN`: the JWT itself (a leading `Bearer ` is accepted too, as
    /// copied from a curl command). Errors name the option and never quote the value.
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        let Some(token) = token else {
            return Ok(Self::default());
        };
        // `$(aula token ...)` ends with a newline; a failed one leaves nothing.
        let mut token = token.trim();
        let (scheme, rest) = token.split_at(token.find(char::is_whitespace).unwrap_or(token.len()));
        if scheme.eq_ignore_ascii_case("bearer") {
            token = rest.trim();
        }
        if token.is_empty() {
            return Err("--token (or AULA_TOKEN) is empty: did the command making it fail?".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("--token is not a token: a JWT is printable ASCII without spaces".into());
        }
        let value = format!("Bearer {token}");
        let grpc = AsciiMetadataValue::try_from(value.as_str())
            .map_err(|_| "--token cannot be sent as gRPC metadata".to_string())?;
        let mut http = reqwest::header::HeaderValue::try_from(value)
            .map_err(|_| "--token cannot be sent as an HTTP header".to_string())?;
        // Kept out of HTTP/2 header compression tables and of reqwest's debug output.
        http.set_sensitive(true);
        Ok(Self {
            grpc: Some(grpc),
            http: Some(http),
        })
    }

    pub fn is_some(&self) -> bool {
        self.grpc.is_some()
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

/// Adds the token to every gRPC call, the streams' included.
impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.grpc {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry the [`Bearer`] token.
type Grpc = InterceptedService<Channel, Bearer>;

/// One connection to each service (and a client for the gateway).
#[derive(Clone)]
pub struct Conn {
    http: reqwest::Client,
    /// The gateway's base URL, `http://host:port`.
    gateway: String,
    /// The whole of a streaming call (the channels bound each unary call themselves).
    timeout: Duration,
    cursos: CursosServiceClient<Grpc>,
    chatbot: ChatbotServiceClient<Grpc>,
    cpar: CparServiceClient<Grpc>,
    notificacoes: NotificacoesServiceClient<Grpc>,
    insights: InsightsServiceClient<Grpc>,
    midia: MidiaConteudoServiceClient<Grpc>,
}

impl Conn {
    /// Lazily connected channels (nothing connects until the first call) to where `addrs` says
    /// each service is (`http://host:port`, or `https://host:port` with `tls`: mutual TLS with
    /// the certificate of `AULA_TLS_*`), each request bounded by `timeout` and carrying `bearer`.
    pub fn new(
        addrs: &dyn Fn(Target) -> String,
        timeout: Duration,
        tls: Option<&Tls>,
        bearer: &Bearer,
    ) -> anyhow::Result<Self> {
        let channel = |t: Target| -> anyhow::Result<Channel> {
            let url = addrs(t);
            let (secure, host, port) =
                split_addr(&url).map_err(|e| anyhow::anyhow!("{}: bad address: {e}", t.name()))?;
            // The scheme tonic sees stays http: the connector does TLS itself.
            let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
                .map_err(|e| anyhow::anyhow!("{}: bad address {url:?}: {e}", t.name()))?
                .connect_timeout(Duration::from_secs(3))
                .timeout(timeout);
            if !secure {
                return Ok(endpoint.tcp_nodelay(true).connect_lazy());
            }
            let tls = tls.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: {url} needs a certificate: set AULA_TLS_CERT, AULA_TLS_KEY and AULA_TLS_CA",
                    t.name()
                )
            })?;
            let tls = ClientTls::new(tls.clone(), &host).map_err(anyhow::Error::msg)?;
            Ok(endpoint.connect_with_connector_lazy(Connector {
                host,
                port,
                tls: Some(tls),
                timeout: Duration::from_secs(3),
            }))
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = &bearer.http {
            headers.insert(reqwest::header::AUTHORIZATION, value.clone());
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| anyhow::anyhow!("the HTTP client for the gateway: {e}"))?;
        Ok(Self {
            http,
            gateway: addrs(Target::Gateway).trim_end_matches('/').to_string(),
            timeout,
            cursos: CursosServiceClient::with_interceptor(channel(Target::Cursos)?, bearer.clone()),
            chatbot: ChatbotServiceClient::with_interceptor(
                channel(Target::Chatbot)?,
                bearer.clone(),
            ),
            cpar: CparServiceClient::with_interceptor(channel(Target::Cpar)?, bearer.clone()),
            notificacoes: NotificacoesServiceClient::with_interceptor(
                channel(Target::Notificacoes)?,
                bearer.clone(),
            ),
            insights: InsightsServiceClient::with_interceptor(
                channel(Target::Insights)?,
                bearer.clone(),
            ),
            midia: MidiaConteudoServiceClient::with_interceptor(
                channel(Target::Midia)?,
                bearer.clone(),
            ),
        })
    }

    /// Sends one request of `rpc`; the answer's content is not checked, only its status.
    pub async fn call(&mut self, rpc: Rpc, rng: &mut StdRng) -> Result<(), tonic::Status> {
        match rpc {
            Rpc::ListCourses => {
                let req = ListCoursesRequest {
                    page_size: 10,
                    page_token: String::new(),
                };
                self.cursos.list_courses(req).await.map(drop)
            }
            Rpc::GetCourse => {
                let req = GetCourseRequest {
                    id_curso: course(rng),
                };
                self.cursos.get_course(req).await.map(drop)
            }
            Rpc::GetUserCourses => {
                let req = GetUserCoursesRequest {
                    id_usuario: user(rng),
                };
                self.cursos.get_user_courses(req).await.map(drop)
            }
            Rpc::Enroll => {
                let req = EnrollRequest {
                    id_usuario: user(rng),
                    id_curso: course(rng),
                };
                self.cursos.enroll(req).await.map(drop)
            }
            Rpc::Unenroll => {
                let req = UnenrollRequest {
                    id_usuario: user(rng),
                    id_curso: course(rng),
                };
                self.cursos.unenroll(req).await.map(drop)
            }
            Rpc::GetCourseMedia => {
                let req = GetCourseMediaRequest {
                    id_curso: course(rng),
                };
                self.cursos.get_course_media(req).await.map(drop)
            }
            Rpc::GetMedia => {
                let req = GetCourseMediaRequest {
                    id_curso: course(rng),
                };
                self.midia.get_media(req).await.map(drop)
            }
            Rpc::AskQuestion => {
                let req = question(rng);
                self.cursos.ask_question(req).await.map(drop)
            }
            Rpc::SendNotification => {
                let req = SendNotificationRequest {
                    id_usuario: user(rng),
                    message: "Nova aula disponível (aula load)".into(),
                    ..Default::default()
                };
                self.cursos.send_notification(req).await.map(drop)
            }
            Rpc::ListNotifications => {
                let req = ListNotificationsRequest {
                    id_usuario: user(rng),
                    unread_only: false,
                    page_size: 10,
                    page_token: String::new(),
                };
                self.notificacoes.list_notifications(req).await.map(drop)
            }
            Rpc::CreateSchedule => {
                let req = schedule(rng, SystemTime::now());
                self.cpar.create_schedule(req).await.map(drop)
            }
            Rpc::ListSchedules => {
                let req = ListSchedulesRequest {
                    id_usuario: user(rng),
                    page_size: 10,
                    page_token: String::new(),
                };
                self.cpar.list_schedules(req).await.map(drop)
            }
            Rpc::NotifySchedule => {
                let req = NotifyScheduleRequest {
                    id_agendamento: "1".into(),
                    ..Default::default()
                };
                self.cpar.notify_schedule(req).await.map(drop)
            }
            Rpc::GetStatus(t) => match t {
                Target::Cursos => self.cursos.get_status(Empty {}).await.map(drop),
                Target::Chatbot => self.chatbot.get_status(Empty {}).await.map(drop),
                Target::Cpar => self.cpar.get_status(Empty {}).await.map(drop),
                Target::Notificacoes => self.notificacoes.get_status(Empty {}).await.map(drop),
                Target::Insights => self.insights.get_status(Empty {}).await.map(drop),
                Target::Midia => self.midia.get_status(Empty {}).await.map(drop),
                Target::Gateway => self.route(Route::CursosStatus, rng).await,
            },
            Rpc::SubscribeNotifications => {
                let within = self.timeout;
                tokio::time::timeout(within, self.delivery(rng))
                    .await
                    .unwrap_or_else(|_| {
                        Err(tonic::Status::deadline_exceeded(format!(
                            "the notification did not arrive on the stream within {within:?}"
                        )))
                    })
            }
            Rpc::ResolveDuvidaStream => {
                let q = question(rng);
                let req = ChatbotDuvidaRequest {
                    aula_contexto: q.aula_contexto,
                    duvida: q.duvida,
                    id_curso: q.id_curso,
                    id_usuario: q.id_usuario,
                    ..Default::default()
                };
                let within = self.timeout;
                let read = async {
                    let mut chunks = self.chatbot.resolve_duvida_stream(req).await?.into_inner();
                    while chunks.message().await?.is_some() {}
                    Ok(())
                };
                tokio::time::timeout(within, read)
                    .await
                    .unwrap_or_else(|_| {
                        Err(tonic::Status::deadline_exceeded(format!(
                            "the answer's stream did not end within {within:?}"
                        )))
                    })
            }
            Rpc::Http(route) => self.route(route, rng).await,
        }
    }

    /// One call to `target` that needs what the mix will need from the token: an authenticated
    /// user for every service, and with `on_users` (the mix acts on load users there) the right
    /// to act on a load user's data. A read, so it changes nothing. The chatbot's only such RPC
    /// is a question (Gemini's quota): it is asked for authentication alone.
    pub async fn probe(&mut self, target: Target, on_users: bool) -> Result<(), tonic::Status> {
        let id_usuario = FIRST_LOAD_USER.to_string();
        match (target, on_users) {
            (Target::Cursos, true) => self
                .cursos
                .get_user_courses(GetUserCoursesRequest { id_usuario })
                .await
                .map(drop),
            (Target::Cpar, true) => self
                .cpar
                .list_schedules(ListSchedulesRequest {
                    id_usuario,
                    page_size: 1,
                    page_token: String::new(),
                })
                .await
                .map(drop),
            (Target::Notificacoes, true) => self
                .notificacoes
                .list_notifications(ListNotificationsRequest {
                    id_usuario,
                    unread_only: false,
                    page_size: 1,
                    page_token: String::new(),
                })
                .await
                .map(drop),
            (Target::Gateway, on_users) => {
                let path = if on_users {
                    format!("/cursos/ver_inscricoes_do_usuario/{id_usuario}")
                } else {
                    "/cursos".to_string()
                };
                self.probe_gateway(&path).await
            }
            (t, _) => {
                let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(0);
                self.call(Rpc::GetStatus(t), &mut rng).await
            }
        }
    }

    /// `GET path` on the gateway; a refusal carries the gateway's own message (`erro`), which
    /// says which check failed, rather than only the HTTP status.
    async fn probe_gateway(&self, path: &str) -> Result<(), tonic::Status> {
        let response = self
            .http
            .get(format!("{}{path}", self.gateway))
            .send()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("gateway GET {path}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = match body["erro"].as_str() {
            Some(erro) => erro.to_string(),
            None => format!("gateway GET {path}: HTTP {status}"),
        };
        Err(tonic::Status::new(grpc_code(status.as_u16()), message))
    }

    /// Subscribes as a load user, sends that user a notification with a token of its own, and
    /// waits for it on the stream. The subscription is registered before the answer's headers
    /// come back, so the notification cannot slip by before it; others to the same user
    /// (another worker's) are skipped.
    async fn delivery(&mut self, rng: &mut StdRng) -> Result<(), tonic::Status> {
        let id_usuario = user(rng);
        let token = format!("aula load {:016x}", rng.random::<u64>());
        let mut stream = self
            .notificacoes
            .subscribe_notifications(SubscribeNotificationsRequest {
                id_usuario: id_usuario.clone(),
            })
            .await?
            .into_inner();
        self.notificacoes
            .send_notification(SendNotificationRequest {
                id_usuario,
                message: token.clone(),
                ..Default::default()
            })
            .await?;
        while let Some(n) = stream.message().await? {
            if n.message == token {
                return Ok(());
            }
        }
        Err(tonic::Status::unavailable(
            "the stream ended before the notification arrived",
        ))
    }

    /// One request to a gateway route; a non-2xx answer is the gRPC code behind it.
    async fn route(&self, route: Route, rng: &mut StdRng) -> Result<(), tonic::Status> {
        let base = &self.gateway;
        let request = match route {
            Route::CursosStatus => self.http.get(format!("{base}/cursos")),
            Route::UserCourses => self.http.get(format!(
                "{base}/cursos/ver_inscricoes_do_usuario/{}",
                user(rng)
            )),
            Route::CourseMedia => self.http.get(format!(
                "{base}/cursos/consumir_midia_curso/{}",
                course(rng)
            )),
            Route::Media => self
                .http
                .get(format!("{base}/midia_conteudo/{}", course(rng))),
            Route::Question => {
                let q = question(rng);
                self.http
                    .post(format!("{base}/chatbot/duvida"))
                    .json(&serde_json::json!({
                        "aula_contexto": q.aula_contexto,
                        "duvida": q.duvida,
                        "id_curso": q.id_curso,
                        "id_usuario": q.id_usuario,
                    }))
            }
        };
        let response = request.send().await.map_err(|e| {
            let code = if e.is_timeout() {
                tonic::Code::DeadlineExceeded
            } else {
                tonic::Code::Unavailable
            };
            tonic::Status::new(code, format!("gateway {}: {e}", route.label()))
        })?;
        let status = response.status();
        // The body is read so the connection goes back to the pool for the next request.
        let _ = response.bytes().await;
        if status.is_success() {
            return Ok(());
        }
        Err(tonic::Status::new(
            grpc_code(status.as_u16()),
            format!("gateway {}: HTTP {status}", route.label()),
        ))
    }
}

/// The gRPC code an HTTP status of the gateway stands for (its README's table, read backwards).
fn grpc_code(status: u16) -> tonic::Code {
    use tonic::Code;
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        422 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        500 => Code::Internal,
        _ => Code::Unknown,
    }
}

/// A load user: 1000..1999.
fn user(rng: &mut StdRng) -> String {
    rng.random_range(FIRST_LOAD_USER..FIRST_LOAD_USER + 1000)
        .to_string()
}

/// One of the demo courses, 1..5.
fn course(rng: &mut StdRng) -> String {
    rng.random_range(1..=5u32).to_string()
}

const QUESTIONS: &[(&str, &str)] = &[
    ("Introdução", "Qual é o objetivo deste curso?"),
    (
        "Aula 2",
        "Pode explicar de novo o conceito principal da aula?",
    ),
    ("Aula 3", "Onde encontro o material complementar?"),
    ("Revisão", "Quais tópicos caem na avaliação final?"),
];

fn question(rng: &mut StdRng) -> AskQuestionRequest {
    let (aula, duvida) = QUESTIONS[rng.random_range(0..QUESTIONS.len())];
    AskQuestionRequest {
        id_curso: course(rng),
        aula_contexto: aula.into(),
        duvida: duvida.into(),
        id_usuario: user(rng),
    }
}

/// A schedule two to thirty days ahead: well past cpar's reminder lead, so load does not
/// trigger reminders.
fn schedule(rng: &mut StdRng, now: SystemTime) -> CreateScheduleRequest {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let ahead = rng.random_range(2 * 86_400..30 * 86_400i64);
    CreateScheduleRequest {
        id_usuario: user(rng),
        titulo: "Sessão de estudo (aula load)".into(),
        inicio: Some(prost_types::Timestamp {
            seconds: now + ahead,
            nanos: 0,
        }),
        duracao_minutos: 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn requests_stay_in_their_ranges() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let u: u32 = user(&mut rng).parse().unwrap();
            assert!((1000..2000).contains(&u));
            let c: u32 = course(&mut rng).parse().unwrap();
            assert!((1..=5).contains(&c));
        }
        let q = question(&mut rng);
        assert!(!q.duvida.is_empty() && !q.aula_contexto.is_empty() && !q.id_usuario.is_empty());
    }

    #[test]
    fn the_token_is_sent_as_a_bearer_and_never_quoted() {
        let header = |b: &Bearer| b.grpc.as_ref().map(|v| v.to_str().unwrap().to_string());
        assert_eq!(header(&Bearer::new(None).unwrap()), None);
        // As `$(aula token ...)` gives it, or copied with its scheme from a curl command.
        for given in ["a.b.c\n", "Bearer a.b.c", "bearer  a.b.c "] {
            let b = Bearer::new(Some(given)).unwrap();
            assert_eq!(header(&b).as_deref(), Some("Bearer a.b.c"), "{given:?}");
            assert_eq!(b.http.as_ref().unwrap(), "Bearer a.b.c");
            assert!(b.http.as_ref().unwrap().is_sensitive());
            assert_eq!(format!("{b:?}"), "Bearer(<redacted>)");
        }
        for (given, why) in [
            ("", "is empty"),
            ("\n", "is empty"),
            ("Bearer ", "is empty"),
            ("two words-secret", "not a token"),
            ("caf\u{e9}-secret", "not a token"),
        ] {
            let e = Bearer::new(Some(given)).unwrap_err();
            assert!(
                e.starts_with("--token ") && e.contains(why),
                "{given:?}: {e}"
            );
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn every_grpc_call_carries_the_token() {
        let mut b = Bearer::new(Some("a.b.c")).unwrap();
        let req = b.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer a.b.c");
        let mut none = Bearer::default();
        let req = none.call(tonic::Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
    }

    #[test]
    fn gateway_statuses_map_back_to_their_codes() {
        use tonic::Code;
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::FailedPrecondition,
        ] {
            let http = gateway::error::http_status(code).as_u16();
            assert_eq!(grpc_code(http), code, "HTTP {http}");
        }
        assert_eq!(grpc_code(418), Code::Unknown);
    }

    #[test]
    fn schedules_are_in_the_future_beyond_a_day() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..100 {
            let s = schedule(&mut rng, now).inicio.unwrap().seconds;
            assert!((1_800_000_000 + 2 * 86_400..1_800_000_000 + 30 * 86_400).contains(&s));
        }
    }
}
