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
}

/// A typed client of each service, on its channel: `backends.cursos()` and so on.
macro_rules! clients {
    ($($name:ident: $client:ident = $spec:ident),+ $(,)?) => {
        impl Backends {$(
            pub fn $name(&self) -> $client<PeerChannel> {
                $client::new(self.channel(&spec::$spec))
            }
        )+}
    };
}

clients! {
    cursos: CursosServiceClient = CURSOS,
    chatbot: ChatbotServiceClient = CHATBOT,
    cpar: CparServiceClient = CPAR,
    notificacoes: NotificacoesServiceClient = NOTIFICACOES,
    insights: InsightsServiceClient = INSIGHTS,
    midia: MidiaConteudoServiceClient = MIDIA,
}
