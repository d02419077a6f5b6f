//! The whole platform in the test process: the six services on ephemeral ports, wired to
//! each other as in production (real gRPC between them), data in a temporary directory.
#![allow(dead_code)]

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cpar_service_client::CparServiceClient,
    cursos_service_client::CursosServiceClient, insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient, *,
};
// Not every test binary uses each helper.
#[allow(unused_imports)]
pub use aula_runtime::testing::eventually;
use aula_runtime::{
    testing::{spawn, TestService},
    tls::Tls,
};
use std::{path::Path, time::Duration};
use tonic::transport::Channel;

/// How long a test waits for what the platform does in the background (a notice, a count).
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Platform {
    pub dir: tempfile::TempDir,
    pub notificacoes: TestService,
    pub insights: TestService,
    pub midia: TestService,
    pub chatbot: TestService,
    pub cpar: TestService,
    pub cursos: TestService,
    /// The certificate the test's clients present when the services speak only mutual TLS.
    pub client_tls: Option<Tls>,
}

/// Starts the six, leaves first, each caller pointed at its peers.
pub async fn spawn_platform() -> Platform {
    let dir = tempfile::tempdir().unwrap();
    spawn_in(dir).await
}

pub async fn spawn_in(dir: tempfile::TempDir) -> Platform {
    spawn_with(dir, &[]).await
}

/// [`spawn_in`] with settings every service gets (`AULA_AUTH=jwt` and its keys).
pub async fn spawn_with(dir: tempfile::TempDir, all: &[(String, String)]) -> Platform {
    spawn_each(dir, |_| all.to_vec(), None).await
}

/// Starts the six with the settings `own(name)` gives each (its certificate, with mutual TLS),
/// the test's clients presenting `client_tls`.
pub async fn spawn_each(
    dir: tempfile::TempDir,
    own: impl Fn(&str) -> Vec<(String, String)>,
    client_tls: Option<Tls>,
) -> Platform {
    let p = dir.path();
    let with = |name: &str, peers: &[&TestService]| {
        let mut env = own(name);
        env.extend(peers.iter().map(|s| s.addr_var()));
        env
    };
    let notificacoes = spawn(notificacoes::service(), p, &with("notificacoes", &[]))
        .await
        .unwrap();
    let insights = spawn(insights::service(), p, &with("insights", &[]))
        .await
        .unwrap();
    let midia = spawn(midia::service(), p, &with("midia", &[]))
        .await
        .unwrap();
    let chatbot = spawn(chatbot::service(), p, &with("chatbot", &[&insights]))
        .await
        .unwrap();
    let cpar = spawn(cpar::service(), p, &with("cpar", &[&notificacoes]))
        .await
        .unwrap();
    let cursos = spawn(
        cursos::service(),
        p,
        &with("cursos", &[&midia, &chatbot, &notificacoes]),
    )
    .await
    .unwrap();
    Platform {
        dir,
        notificacoes,
        insights,
        midia,
        chatbot,
        cpar,
        cursos,
        client_tls,
    }
}

impl Platform {
    /// A lazily connected channel to `s`, in mutual TLS with [`Platform::client_tls`] when set.
    pub fn channel(&self, s: &TestService) -> Channel {
        match &self.client_tls {
            None => s.channel(),
            Some(tls) => tls_channel(&s.url, tls),
        }
    }
    pub fn cursos(&self) -> CursosServiceClient<Channel> {
        CursosServiceClient::new(self.channel(&self.cursos))
    }
    pub fn chatbot(&self) -> ChatbotServiceClient<Channel> {
        ChatbotServiceClient::new(self.channel(&self.chatbot))
    }
    pub fn cpar(&self) -> CparServiceClient<Channel> {
        CparServiceClient::new(self.channel(&self.cpar))
    }
    pub fn notificacoes(&self) -> NotificacoesServiceClient<Channel> {
        NotificacoesServiceClient::new(self.channel(&self.notificacoes))
    }
    pub fn insights(&self) -> InsightsServiceClient<Channel> {
        InsightsServiceClient::new(self.channel(&self.insights))
    }
    pub fn midia(&self) -> MidiaConteudoServiceClient<Channel> {
        MidiaConteudoServiceClient::new(self.channel(&self.midia))
    }

    /// The courses `user` is enrolled in, through cursos, or the error it answered.
    pub async fn try_user_courses(
        &self,
        user: &str,
    ) -> Result<GetUserCoursesResponse, tonic::Status> {
        let user = GetUserCoursesRequest {
            id_usuario: user.into(),
        };
        let answer = self.cursos().get_user_courses(user).await;
        answer.map(tonic::Response::into_inner)
    }

    /// The courses `user` is enrolled in.
    pub async fn user_courses(&self, user: &str) -> GetUserCoursesResponse {
        let courses = self.try_user_courses(user).await;
        courses.expect("GetUserCourses answers")
    }

    /// Enrols `user` in `course`, through cursos.
    pub async fn enroll(&self, user: &str, course: &str) {
        let enroll = EnrollRequest {
            id_usuario: user.into(),
            id_curso: course.into(),
        };
        self.cursos().enroll(enroll).await.expect("Enroll answers");
    }

    /// A course's media through cursos (cursos -> midia), or the error cursos answered.
    pub async fn try_course_media(
        &self,
        course: &str,
    ) -> Result<GetCourseMediaResponse, tonic::Status> {
        let course = GetCourseMediaRequest {
            id_curso: course.into(),
        };
        let answer = self.cursos().get_course_media(course).await;
        answer.map(tonic::Response::into_inner)
    }

    /// A course's media through cursos.
    pub async fn course_media(&self, course: &str) -> GetCourseMediaResponse {
        let media = self.try_course_media(course).await;
        media.expect("GetCourseMedia answers")
    }

    /// A course's media asked of midia itself.
    pub async fn media(&self, course: &str) -> GetCourseMediaResponse {
        let course = GetCourseMediaRequest {
            id_curso: course.into(),
        };
        let media = self.midia().get_media(course).await;
        media.expect("GetMedia answers").into_inner()
    }

    /// `SendNotification` through cursos (cursos -> notificacoes).
    pub async fn send_notification(&self, user: &str, message: &str) -> SendNotificationResponse {
        send_notification(self.channel(&self.cursos), user, message).await
    }

    /// `user`'s inbox, or the error notificacoes answered.
    pub async fn try_inbox(&self, user: &str) -> Result<ListNotificationsResponse, tonic::Status> {
        let inbox = ListNotificationsRequest {
            id_usuario: user.into(),
            ..Default::default()
        };
        let answer = self.notificacoes().list_notifications(inbox).await;
        answer.map(tonic::Response::into_inner)
    }

    /// `user`'s inbox.
    pub async fn inbox(&self, user: &str) -> ListNotificationsResponse {
        self.try_inbox(user)
            .await
            .expect("ListNotifications answers")
    }

    /// What insights counts for `course`, or the error it answered.
    pub async fn try_course_insights(&self, course: &str) -> Result<CourseInsights, tonic::Status> {
        let course = GetCourseInsightsRequest {
            id_curso: course.into(),
        };
        let answer = self.insights().get_course_insights(course).await;
        answer.map(tonic::Response::into_inner)
    }

    /// cursos -> chatbot -> insights: a question asked through cursos is answered, and insights
    /// comes to count it.
    pub async fn a_question_reaches_insights(&self) -> AskQuestionResponse {
        let before = self
            .try_course_insights("1")
            .await
            .expect("insights answers");
        let answer = self
            .cursos()
            .ask_question(AskQuestionRequest {
                id_curso: "1".into(),
                aula_contexto: "Aula 1".into(),
                duvida: "O que é uma variável?".into(),
                id_usuario: "1".into(),
            })
            .await
            .expect("AskQuestion answers")
            .into_inner();
        assert!(
            !answer.resposta.is_empty() && !answer.id_interacao.is_empty(),
            "{answer:?}"
        );
        eventually(WAIT, "the question to reach insights", || async {
            let now = self.try_course_insights("1").await.ok()?;
            (now.total_perguntas > before.total_perguntas).then_some(())
        })
        .await;
        answer
    }

    /// cpar -> notificacoes: NotifySchedule of appointment 1 brings a notice naming it to the
    /// appointment's own user.
    pub async fn an_appointment_notice_arrives(&self) -> NotifyScheduleResponse {
        let schedule = self
            .cpar()
            .get_schedule(GetScheduleRequest {
                id_agendamento: "1".into(),
            })
            .await
            .expect("GetSchedule answers")
            .into_inner();
        let notified = self
            .cpar()
            .notify_schedule(NotifyScheduleRequest {
                id_agendamento: "1".into(),
                ..Default::default()
            })
            .await
            .expect("NotifySchedule answers")
            .into_inner();
        assert_eq!(notified.id_agendamento, "1");
        eventually(WAIT, "the appointment notice", || async {
            let inbox = self.try_inbox(&schedule.id_usuario).await.ok()?;
            let mut messages = inbox.notificacoes.iter().map(|n| &n.message);
            messages.any(|m| m.contains(&schedule.titulo)).then_some(())
        })
        .await;
        notified
    }

    /// The REST gateway in front of the six on an ephemeral port, with `settings` besides
    /// their addresses, its metrics on `metrics` when given.
    pub async fn start_gateway(
        &self,
        settings: &[(String, String)],
        metrics: Option<tokio::net::TcpListener>,
    ) -> gateway::RunningGateway {
        let mut env = aula_runtime::Env::from_pairs(settings.to_vec());
        for (k, v) in self.all().map(|s| s.addr_var()) {
            env.set(k, v);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        gateway::start(&env, listener, metrics)
            .await
            .expect("the gateway starts")
    }

    /// Asserts every service still answers SERVING (after a fuzz run, say).
    pub async fn assert_serving(&self) {
        for s in self.all() {
            s.assert_serving().await;
        }
    }

    pub fn all(&self) -> [&TestService; 6] {
        [
            &self.cursos,
            &self.chatbot,
            &self.cpar,
            &self.notificacoes,
            &self.insights,
            &self.midia,
        ]
    }

    /// Stops every service (drain, then wait) and hands back the data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        for s in [
            self.cursos,
            self.cpar,
            self.chatbot,
            self.midia,
            self.insights,
            self.notificacoes,
        ] {
            s.running.stop().await.unwrap();
        }
        self.dir
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `SendNotification` to cursos at `cursos`, answered.
pub async fn send_notification(
    cursos: Channel,
    user: &str,
    message: &str,
) -> SendNotificationResponse {
    let send = SendNotificationRequest {
        id_usuario: user.into(),
        message: message.into(),
        ..Default::default()
    };
    let sent = CursosServiceClient::new(cursos)
        .send_notification(send)
        .await;
    sent.expect("SendNotification answers").into_inner()
}

/// A lazily connected channel to `url` (`https://`) presenting `tls`'s certificate.
pub fn tls_channel(url: &str, tls: &Tls) -> Channel {
    use aula_runtime::tls::connect::{split_addr, ClientTls, Connector};
    let (_, host, port) = split_addr(url).expect("a host:port URL");
    // The scheme tonic sees stays http: the connector does TLS itself.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{host}:{port}"));
    let connector = Connector {
        tls: Some(ClientTls::new(tls.clone(), &host).expect("a TLS server name")),
        host,
        port,
        timeout: Duration::from_secs(5),
    };
    endpoint.unwrap().connect_with_connector_lazy(connector)
}

/// The settings as `(name, value)` pairs, the form the spawn helpers take.
pub fn pairs(settings: &[(&str, &str)]) -> Vec<(String, String)> {
    let pair = |(k, v): &(&str, &str)| (k.to_string(), v.to_string());
    settings.iter().map(pair).collect()
}

/// Runs `cmd` (the `aula` binary), failing the test with `finishes` unless it ends within
/// `within`.
pub async fn output_within(
    cmd: &mut tokio::process::Command,
    within: Duration,
    finishes: &str,
) -> std::process::Output {
    let out = cmd.kill_on_drop(true).output();
    let out = tokio::time::timeout(within, out).await;
    out.unwrap_or_else(|_| panic!("{finishes}"))
        .expect("the aula binary runs")
}

/// `GET path` over plain HTTP/1.0 on `addr` (`host:port`): the status code and the whole
/// response, head and body.
pub async fn http_get(addr: impl std::fmt::Display, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr.to_string();
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    (
        code.unwrap_or_else(|| panic!("an HTTP status line: {out}")),
        out,
    )
}

/// A text field as an attacker or a broken client fills it (the fuzz tests): numbers past
/// i64, negative and zero ids, blank, arbitrary Unicode, control characters, token-like
/// garbage (page tokens), texts past every limit, URLs of every scheme.
pub fn attacker_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        "[0-9]{1,25}",
        "-?[0-9]{1,6}",
        Just(String::new()),
        Just("0".to_string()),
        Just(" \t\n".to_string()),
        "\\PC{0,40}",
        "[\\x00-\\x1f\\x7f]{1,8}",
        "[A-Za-z0-9_=+/-]{0,80}",
        (150usize..4000).prop_map(|n| "é".repeat(n)),
        "(javascript|data|file|http|https)://[a-z0-9./%-]{0,40}",
    ]
}

/// A runtime of two worker threads, for tests whose driver is synchronous (the fuzz runner).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a property against a live stack: `AULA_FUZZ_CASES` cases (else `default_cases`) drawn
/// from `strategy`, each checked by `check` on `rt`. A failure panics with proptest's report of
/// the smallest failing case found in `max_shrink_iters` steps (each re-runs a whole case
/// against live services: a few steps say enough). Returns how many cases ran.
pub fn run_cases<S, F, Fut>(
    rt: &tokio::runtime::Runtime,
    strategy: S,
    default_cases: u32,
    max_shrink_iters: u32,
    check: F,
) -> u32
where
    S: proptest::strategy::Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), proptest::test_runner::TestCaseError>>,
{
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("AULA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |value| rt.block_on(check(value))) {
        panic!("{e}");
    }
    cases
}

/// [`run_cases`] against the six started once, which must all still be serving afterwards.
pub fn run_cases_on_platform<S: proptest::strategy::Strategy, Fut>(
    strategy: S,
    default_cases: u32,
    max_shrink_iters: u32,
    check: impl Fn(std::sync::Arc<Platform>, S::Value) -> Fut,
) -> u32
where
    Fut: std::future::Future<Output = Result<(), proptest::test_runner::TestCaseError>>,
{
    let rt = runtime();
    let platform = std::sync::Arc::new(rt.block_on(spawn_platform()));
    let cases = run_cases(&rt, strategy, default_cases, max_shrink_iters, |value| {
        check(platform.clone(), value)
    });
    rt.block_on(platform.assert_serving());
    cases
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// End-user auth on (`AULA_AUTH=jwt`), verifying tokens of `keys` through a key set written
/// to `dir`; calls between services without a token trusted (no mTLS here).
pub fn auth_env(
    dir: &Path,
    keys: &[&aula_runtime::auth::dev::SigningKey],
) -> Vec<(String, String)> {
    let path = dir.join("jwks.json");
    std::fs::write(&path, aula_runtime::auth::dev::jwks(keys).to_string()).unwrap();
    jwt_env(&path)
}

/// End-user auth on (`AULA_AUTH=jwt`) with the dev issuer and audience, verifying tokens
/// against the key set at `jwks`; calls between services without a token trusted (no mTLS in
/// these tests, so they carry no proof).
pub fn jwt_env(jwks: &Path) -> Vec<(String, String)> {
    let env = aula_runtime::auth::dev::dev_env(jwks.to_str().unwrap(), true);
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
