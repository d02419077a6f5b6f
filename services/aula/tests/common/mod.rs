//! The whole platform in the test process: the six services on ephemeral ports, wired to
//! each other as in production (real gRPC between them), data in a temporary directory.
#![allow(dead_code)]

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cpar_service_client::CparServiceClient,
    cursos_service_client::CursosServiceClient, insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient,
};
// Not every test binary uses each helper.
#[allow(unused_imports)]
pub use aula_runtime::testing::eventually;
use aula_runtime::testing::{spawn, TestService};
use std::path::Path;
use tonic::transport::Channel;

pub struct Platform {
    pub dir: tempfile::TempDir,
    pub notificacoes: TestService,
    pub insights: TestService,
    pub midia: TestService,
    pub chatbot: TestService,
    pub cpar: TestService,
    pub cursos: TestService,
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
    let p = dir.path();
    let with = |peers: &[(String, String)]| [all, peers].concat();
    let notificacoes = spawn(notificacoes::service(), p, all).await.unwrap();
    let insights = spawn(insights::service(), p, all).await.unwrap();
    let midia = spawn(midia::service(), p, all).await.unwrap();
    let chatbot = spawn(chatbot::service(), p, &with(&[insights.addr_var()]))
        .await
        .unwrap();
    let cpar = spawn(cpar::service(), p, &with(&[notificacoes.addr_var()]))
        .await
        .unwrap();
    let cursos = spawn(
        cursos::service(),
        p,
        &with(&[
            midia.addr_var(),
            chatbot.addr_var(),
            notificacoes.addr_var(),
        ]),
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
    }
}

impl Platform {
    pub fn cursos(&self) -> CursosServiceClient<Channel> {
        CursosServiceClient::new(self.cursos.channel())
    }
    pub fn chatbot(&self) -> ChatbotServiceClient<Channel> {
        ChatbotServiceClient::new(self.chatbot.channel())
    }
    pub fn cpar(&self) -> CparServiceClient<Channel> {
        CparServiceClient::new(self.cpar.channel())
    }
    pub fn notificacoes(&self) -> NotificacoesServiceClient<Channel> {
        NotificacoesServiceClient::new(self.notificacoes.channel())
    }
    pub fn insights(&self) -> InsightsServiceClient<Channel> {
        InsightsServiceClient::new(self.insights.channel())
    }
    pub fn midia(&self) -> MidiaConteudoServiceClient<Channel> {
        MidiaConteudoServiceClient::new(self.midia.channel())
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
    use aula_runtime::auth::dev::{jwks, DEV_AUDIENCE, DEV_ISSUER};
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks(keys).to_string()).unwrap();
    [
        ("AULA_AUTH", "jwt"),
        ("AULA_JWT_JWKS", path.to_str().unwrap()),
        ("AULA_JWT_ISSUER", DEV_ISSUER),
        ("AULA_JWT_AUDIENCE", DEV_AUDIENCE),
        ("AULA_AUTH_TRUST_NETWORK", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
