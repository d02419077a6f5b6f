//! The services of Aula, generated at build time from `services/catalogue.toml` (build.rs): names,
//! gRPC service names (tonic's `SERVICE_NAME` constants), ports, storage, and who calls what.
//! The `aula` CLI, peers, the gateway and notificacoes read it here; the chart, compose files,
//! Dockerfile, scripts and docs are generated from or tested against the same file.

/// One gRPC service: what identifies it everywhere, and who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The one name: folder, crate, binary, image, Helm key, `OTEL_SERVICE_NAME`, compose service.
    pub name: &'static str,
    /// The fully qualified gRPC service name (health checks, reflection, probes).
    pub grpc_service: &'static str,
    pub port: u16,
    pub metrics_port: u16,
    /// It owns tables, so its `ServiceDef` declares migrations (a test in `aula` checks the two
    /// agree): one SQLite file per process, or its own schema on PostgreSQL.
    pub stateful: bool,
    /// What it owns, in a few words.
    pub summary: &'static str,
    /// Every other service that calls it, with the RPCs each calls. Nothing else calls it
    /// except clients (users through the gateway, operators).
    pub callers: &'static [Caller],
}

/// A service calling another, and the RPCs (method names, as in the proto) it calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub name: &'static str,
    pub rpcs: &'static [&'static str],
}

/// An HTTP entry of the catalogue (the REST gateway): public, with no gRPC service of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSpec {
    pub name: &'static str,
    pub port: u16,
    pub metrics_port: u16,
    pub summary: &'static str,
}

impl ServiceSpec {
    /// This service's GetStatus answer: `message`, its name, the platform's version (one for
    /// every crate of the workspace) and its `counts`.
    pub fn status(&self, message: String, counts: &[(&str, i64)]) -> aula_api::StatusResponse {
        aula_api::StatusResponse {
            message,
            servico: self.name.to_string(),
            versao: env!("CARGO_PKG_VERSION").to_string(),
            contagens: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            modo: String::new(),
        }
    }

    /// The prefix of this service's own variables (`CURSOS_ADDR`, `CURSOS_DATABASE_URL`).
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// Whether service `caller` calls `rpc` (a method name such as `SendNotification`).
    pub fn allows(&self, caller: &str, rpc: &str) -> bool {
        self.callers
            .iter()
            .any(|c| c.name == caller && c.rpcs.contains(&rpc))
    }

    /// The services that call `rpc`.
    pub fn callers_of<'a>(&self, rpc: &'a str) -> impl Iterator<Item = &'static str> + 'a {
        self.callers
            .iter()
            .filter(move |c| c.rpcs.contains(&rpc))
            .map(|c| c.name)
    }

    /// Whether `caller` calls any of this service's RPCs.
    pub fn is_called_by(&self, caller: &str) -> bool {
        self.callers.iter().any(|c| c.name == caller)
    }
}

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// The gRPC service called `name`.
pub fn by_name(name: &str) -> Option<&'static ServiceSpec> {
    ALL.iter().find(|s| s.name == name)
}

/// The gRPC services that `caller` (a service or the gateway) calls, in catalogue order.
pub fn peers_of(caller: &str) -> impl Iterator<Item = &'static ServiceSpec> + '_ {
    ALL.iter().filter(move |s| s.is_called_by(caller))
}

/// Whether `name` is in the catalogue (a gRPC service or an HTTP entry).
pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_prefixes_are_unique() {
        let ports: Vec<u16> = ALL
            .iter()
            .flat_map(|s| [s.port, s.metrics_port])
            .chain(HTTP.iter().flat_map(|s| [s.port, s.metrics_port]))
            .collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        for s in &ALL {
            assert_eq!(by_name(s.name), Some(s));
            assert!(is_known(s.name));
        }
        assert_eq!(NAMES.len(), ALL.len() + HTTP.len());
        assert_eq!(CURSOS.env_prefix(), "CURSOS");
    }

    #[test]
    fn grpc_names_are_tonics() {
        // The generated constants are tonic's own; prost renames CPARService's types.
        assert_eq!(
            CPAR.grpc_service,
            aula_api::cpar_service_server::SERVICE_NAME
        );
        assert_eq!(CPAR.grpc_service, "services.CPARService");
        assert_eq!(MIDIA.grpc_service, "services.MidiaConteudoService");
    }

    #[test]
    fn callers_per_rpc() {
        assert!(NOTIFICACOES.allows("cursos", "SendNotification"));
        assert!(NOTIFICACOES.allows("cpar", "NotifySchedule"));
        assert!(!NOTIFICACOES.allows("midia", "SendNotification"));
        assert!(!NOTIFICACOES.allows("cursos", "ListNotifications"));
        let mut c: Vec<_> = NOTIFICACOES.callers_of("SendNotification").collect();
        c.sort_unstable();
        assert_eq!(c, ["cursos"]);
        let peers: Vec<_> = peers_of("cursos").map(|s| s.name).collect();
        assert_eq!(peers, ["chatbot", "notificacoes", "midia"]);
        assert_eq!(peers_of("gateway").count(), ALL.len());
        assert_eq!(peers_of("midia").count(), 0);
    }
}
