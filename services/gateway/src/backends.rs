//! The six gRPC services behind the gateway: one [`PeerChannel`] each (DNS-discovered replicas,
//! client-side balancing, deadlines, client metrics, trace propagation), and typed clients.

use crate::config::GatewayConfig;
use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cpar_service_client::CparServiceClient,
    cursos_service_client::CursosServiceClient, insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient,
};
use aula_runtime::{
    config::{peer_addr, Env},
    metrics::Metrics,
    peers::PeerChannel,
    spec::{self, ServiceSpec},
};

/// Channels to every service the gateway calls, in docs/CONFIG.md's order.
#[derive(Clone)]
pub struct Backends {
    channels: [(ServiceSpec, PeerChannel); 6],
}

impl Backends {
    /// Channels from `<NAME>_ADDR` (default `http://127.0.0.1:<port>`); nothing connects yet.
    pub fn new(env: &Env, config: &GatewayConfig, metrics: &Metrics) -> anyhow::Result<Self> {
        let channel = |spec: ServiceSpec| -> anyhow::Result<(ServiceSpec, PeerChannel)> {
            let ch = PeerChannel::new(
                &spec,
                &peer_addr(env, &spec),
                config.peer_timeout,
                config.dns_refresh,
                metrics,
            )?;
            Ok((spec, ch))
        };
        Ok(Self {
            channels: [
                channel(spec::CURSOS)?,
                channel(spec::CHATBOT)?,
                channel(spec::CPAR)?,
                channel(spec::NOTIFICACOES)?,
                channel(spec::INSIGHTS)?,
                channel(spec::MIDIA)?,
            ],
        })
    }

    /// Every service and its channel.
    pub fn all(&self) -> &[(ServiceSpec, PeerChannel)] {
        &self.channels
    }

    fn channel(&self, spec: &ServiceSpec) -> PeerChannel {
        self.channels
            .iter()
            .find(|(s, _)| s.name == spec.name)
            .map(|(_, c)| c.clone())
            .expect("every service has a channel")
    }

    pub fn cursos(&self) -> CursosServiceClient<PeerChannel> {
        CursosServiceClient::new(self.channel(&spec::CURSOS))
    }

    pub fn chatbot(&self) -> ChatbotServiceClient<PeerChannel> {
        ChatbotServiceClient::new(self.channel(&spec::CHATBOT))
    }

    pub fn cpar(&self) -> CparServiceClient<PeerChannel> {
        CparServiceClient::new(self.channel(&spec::CPAR))
    }

    pub fn notificacoes(&self) -> NotificacoesServiceClient<PeerChannel> {
        NotificacoesServiceClient::new(self.channel(&spec::NOTIFICACOES))
    }

    pub fn insights(&self) -> InsightsServiceClient<PeerChannel> {
        InsightsServiceClient::new(self.channel(&spec::INSIGHTS))
    }

    pub fn midia(&self) -> MidiaConteudoServiceClient<PeerChannel> {
        MidiaConteudoServiceClient::new(self.channel(&spec::MIDIA))
    }
}
