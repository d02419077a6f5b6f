//! The gRPC services behind the gateway (its callees in services/catalogue.toml): one [`PeerChannel`] each (DNS-discovered replicas,
//! client-side balancing, deadlines, client metrics, trace propagation), and typed clients.

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cpar_service_client::CparServiceClient,
    cursos_service_client::CursosServiceClient, insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient,
};
use aula_runtime::{
    config::{peer_addr, Env, ServerSettings},
    metrics::Metrics,
    peers::PeerChannel,
    spec::{self, ServiceSpec},
    tls::Tls,
};

/// Channels to every service the gateway calls, in the catalogue's order.
#[derive(Clone)]
pub struct Backends {
    channels: Vec<(ServiceSpec, PeerChannel)>,
}

impl Backends {
    /// Channels from `<NAME>_ADDR` (default `http://127.0.0.1:<port>`, `https://` with mTLS
    /// on: `AULA_TLS_*`, the gateway presenting its own certificate); nothing connects yet.
    pub fn new(env: &Env, settings: &ServerSettings, metrics: &Metrics) -> anyhow::Result<Self> {
        let tls = Tls::from_env(env)?;
        if let Some(t) = &tls {
            t.watch(metrics);
        }
        let channels = spec::peers_of(spec::GATEWAY.name)
            .map(|spec| {
                let ch = PeerChannel::with_tls(
                    spec,
                    &peer_addr(env, spec),
                    settings.peer_timeout,
                    settings.dns_refresh,
                    metrics,
                    tls.as_ref(),
                )?;
                Ok((*spec, ch))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { channels })
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
            .expect(
                "services/catalogue.toml lists the gateway as a caller of every service it calls",
            )
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
