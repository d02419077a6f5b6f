//! Shared test helpers: cursos and its peers in-process, a stand-in chatbot that records what
//! it was asked, and addresses where nothing listens.
#![allow(dead_code)]

use aula_api::{
    cursos_service_client::CursosServiceClient,
    stubbed::chatbot_service_server::{ChatbotService, ChatbotServiceServer},
    ChatbotDuvidaRequest, ChatbotDuvidaResponse, EnrollRequest, GetCourseMediaRequest,
    GetCourseRequest, GetUserCoursesRequest, SendNotificationRequest, UnenrollRequest,
};
// Not every test binary uses each helper.
#[allow(unused_imports)]
pub use aula_runtime::testing::{closed_url, eventually, vars, Reply, SETTLE};
use aula_runtime::testing::{serve_fake, spawn, TestService};
use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};
use tonic::{service::Routes, transport::Channel, Request, Response, Status};

/// Peers cursos should not reach unless a test says otherwise: all pointed at closed ports, so
/// a service running on the machine's default ports is never touched.
pub fn isolated(overrides: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["MIDIA_ADDR", "CHATBOT_ADDR", "NOTIFICACOES_ADDR"]
        .iter()
        .filter(|k| !overrides.iter().any(|(o, _)| o == *k))
        .map(|k| (k.to_string(), closed_url()))
        .collect();
    env.extend(overrides.iter().cloned());
    env
}

pub async fn start_cursos(
    dir: &Path,
    peers: &[(String, String)],
) -> (TestService, CursosServiceClient<Channel>) {
    let svc = spawn(cursos::service(), &dir.join("cursos"), &isolated(peers))
        .await
        .expect("cursos starts");
    let client = CursosServiceClient::new(svc.channel());
    (svc, client)
}

/// cursos alone (its peers down) in a temporary directory of its own.
pub async fn cursos_alone() -> (tempfile::TempDir, TestService, CursosServiceClient<Channel>) {
    cursos_with(&[]).await
}

/// cursos with `settings`, in a temporary directory of its own.
pub async fn cursos_with(
    settings: &[(&str, &str)],
) -> (tempfile::TempDir, TestService, CursosServiceClient<Channel>) {
    let dir = tempfile::tempdir().unwrap();
    let (svc, client) = start_cursos(dir.path(), &vars(settings)).await;
    (dir, svc, client)
}

/// cursos asking the stand-in `bot` (served here), with `extra` settings.
pub async fn cursos_asking(
    dir: &Path,
    bot: &RecordingChatbot,
    extra: &[(&str, &str)],
) -> (TestService, CursosServiceClient<Channel>) {
    let url = serve_chatbot(bot.clone()).await;
    let mut env = vars(extra);
    env.push(("CHATBOT_ADDR".into(), url));
    start_cursos(dir, &env).await
}

/// A stand-in chatbot that thinks `delay` before each answer.
pub fn slow_chatbot(delay: Duration) -> RecordingChatbot {
    RecordingChatbot {
        delay,
        ..Default::default()
    }
}

pub fn user(id: &str) -> GetUserCoursesRequest {
    GetUserCoursesRequest {
        id_usuario: id.into(),
    }
}

pub fn course(id: &str) -> GetCourseRequest {
    GetCourseRequest {
        id_curso: id.into(),
    }
}

pub fn media(id: &str) -> GetCourseMediaRequest {
    GetCourseMediaRequest {
        id_curso: id.into(),
    }
}

pub fn enroll(u: &str, c: &str) -> EnrollRequest {
    EnrollRequest {
        id_usuario: u.into(),
        id_curso: c.into(),
    }
}

pub fn unenroll(u: &str, c: &str) -> UnenrollRequest {
    UnenrollRequest {
        id_usuario: u.into(),
        id_curso: c.into(),
    }
}

/// A notice to `user` with no key of the caller's.
pub fn notice(user: &str, message: &str) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: user.into(),
        message: message.into(),
        ..Default::default()
    }
}

pub async fn start_midia(dir: &Path) -> TestService {
    spawn(midia::service(), &dir.join("midia"), &[])
        .await
        .expect("midia starts")
}

/// A chatbot stand-in: records each question and answers from it.
#[derive(Clone, Default)]
pub struct RecordingChatbot {
    pub asked: Arc<Mutex<Vec<ChatbotDuvidaRequest>>>,
    /// The deadline each question came with (`grpc-timeout`), as the stand-in saw it.
    pub deadlines: Arc<Mutex<Vec<Option<Duration>>>>,
    /// How long the stand-in thinks before answering.
    pub delay: Duration,
}

#[tonic::async_trait]
impl ChatbotService for RecordingChatbot {
    async fn resolve_duvida(
        &self,
        request: Request<ChatbotDuvidaRequest>,
    ) -> Result<Response<ChatbotDuvidaResponse>, Status> {
        self.deadlines.lock().unwrap().push(
            request
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| aula_runtime::peers::parse_grpc_timeout(v.to_str().ok()?)),
        );
        tokio::time::sleep(self.delay).await;
        let r = request.into_inner();
        let resposta = format!(
            "Sobre '{}' em {}: veja {}",
            r.duvida,
            r.nome_curso,
            r.material
                .first()
                .map_or("a descrição do curso", |m| m.titulo.as_str())
        );
        self.asked.lock().unwrap().push(r);
        Ok(Response::new(ChatbotDuvidaResponse {
            resposta,
            modelo: "stand-in".into(),
            id_interacao: "int-1".into(),
            offline: true,
            ..Default::default()
        }))
    }
}

/// Serves the stand-in on an ephemeral port; returns its URL.
pub async fn serve_chatbot(bot: RecordingChatbot) -> String {
    serve_fake(Routes::new(ChatbotServiceServer::new(bot))).await
}
