//! The six services: names, gRPC service names and ports. The single table every other part
//! (the `aula` CLI, peers' defaults, docs/CONFIG.md) agrees with.

/// What identifies one service everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The one name: folder, binary, image, Helm key, `OTEL_SERVICE_NAME`, compose service.
    pub name: &'static str,
    /// The fully qualified gRPC service name (health checks and reflection).
    pub grpc_service: &'static str,
    pub port: u16,
    pub metrics_port: u16,
}

impl ServiceSpec {
    /// The prefix of this service's own variables (`CURSOS_ADDR`, `CURSOS_DATABASE_URL`).
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase()
    }
}

pub const CURSOS: ServiceSpec = ServiceSpec {
    name: "cursos",
    grpc_service: aula_api::names::CURSOS,
    port: 50051,
    metrics_port: 9051,
};
pub const CHATBOT: ServiceSpec = ServiceSpec {
    name: "chatbot",
    grpc_service: aula_api::names::CHATBOT,
    port: 50052,
    metrics_port: 9052,
};
pub const CPAR: ServiceSpec = ServiceSpec {
    name: "cpar",
    grpc_service: aula_api::names::CPAR,
    port: 50053,
    metrics_port: 9053,
};
pub const NOTIFICACOES: ServiceSpec = ServiceSpec {
    name: "notificacoes",
    grpc_service: aula_api::names::NOTIFICACOES,
    port: 50054,
    metrics_port: 9054,
};
pub const INSIGHTS: ServiceSpec = ServiceSpec {
    name: "insights",
    grpc_service: aula_api::names::INSIGHTS,
    port: 50055,
    metrics_port: 9055,
};
pub const MIDIA: ServiceSpec = ServiceSpec {
    name: "midia",
    grpc_service: aula_api::names::MIDIA,
    port: 50056,
    metrics_port: 9056,
};

/// All six, in port order.
pub const ALL: [ServiceSpec; 6] = [CURSOS, CHATBOT, CPAR, NOTIFICACOES, INSIGHTS, MIDIA];

/// Looks a service up by its name.
pub fn by_name(name: &str) -> Option<&'static ServiceSpec> {
    ALL.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_prefixes_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.port, b.port);
                assert_ne!(a.metrics_port, b.metrics_port);
            }
            assert_eq!(by_name(a.name), Some(a));
        }
        assert_eq!(CURSOS.env_prefix(), "CURSOS");
    }
}
