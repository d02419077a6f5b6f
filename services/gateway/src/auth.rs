//! End-user authentication at the edge (`AULA_AUTH=jwt`, docs/AUTH.md): every route but the
//! health endpoints needs `authorization: Bearer <JWT>`; a missing or bad token is 401 with
//! an RFC 6750 `WWW-Authenticate: Bearer` challenge (`error="invalid_token"` and which check
//! failed for a bad one) before any service is called. The token then travels with each
//! gRPC call ([`aula_runtime::auth::scope`]) and the services apply the rules of
//! [`aula_runtime::auth::RULES`]: another user's data is their PERMISSION_DENIED, a 403 here.

use crate::{error::ApiError, state::AppState};
use aula_runtime::{
    auth::{self, AuthConfig, Failures, Verifier},
    metrics::Metrics,
};
use http::HeaderValue;
use std::sync::Arc;

/// Paths answered without a token: probes must not need one.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz"];

/// The gateway's verifier and its failure counters.
#[derive(Clone)]
pub struct EdgeAuth {
    verifier: Arc<Verifier>,
    failures: Failures,
}

impl EdgeAuth {
    /// `None` when `AULA_AUTH` is off.
    pub fn new(config: Option<AuthConfig>, metrics: &Metrics) -> anyhow::Result<Option<Self>> {
        let Some(config) = config else {
            return Ok(None);
        };
        Ok(Some(Self {
            verifier: Arc::new(Verifier::new(config)?),
            failures: Failures::new(metrics),
        }))
    }

    /// Loads the key set at start: an unreadable file stops the gateway, naming the variable.
    pub async fn load(&self) -> anyhow::Result<()> {
        match (
            self.verifier.jwks().load().await,
            &self.verifier.config().jwks,
        ) {
            (Ok(n), _) => {
                tracing::info!(keys = n, "end-user authentication on (AULA_AUTH=jwt)");
                Ok(())
            }
            (Err(e), auth::JwksSource::File(_)) => anyhow::bail!("AULA_JWT_JWKS: {e}"),
            (Err(e), auth::JwksSource::Url(_)) => {
                tracing::warn!(error = %e, "the key set is not loaded yet; retrying on the first request");
                Ok(())
            }
        }
    }
}

/// The token of a request for `path` with `headers`, when it needs one and it verifies
/// (`Ok(None)`: authentication is off, or a public path); the caller runs the rest of the
/// request in [`auth::scope`] of it, so that the services see the same token and decide what
/// this user may do. (The parts, not the request: a body is not `Sync`, so a future holding a
/// borrowed request across the key set's `await` could not move between threads.)
pub async fn check(
    state: &AppState,
    path: &str,
    headers: &http::HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(edge) = &state.auth else {
        return Ok(None);
    };
    if PUBLIC_PATHS.contains(&path) {
        return Ok(None);
    }
    let Some(value) = headers.get(http::header::AUTHORIZATION).cloned() else {
        let f = auth::AuthFailure::new(
            auth::Reason::Missing,
            "no token: send `authorization: Bearer <JWT>`",
        );
        edge.failures.record(path, &f);
        return Err(ApiError::Unauthenticated(f));
    };
    let checked = match auth::bearer(&value) {
        Ok(token) => edge.verifier.verify(token).await.map(|_| ()),
        Err(f) => Err(f),
    };
    if let Err(f) = checked {
        edge.failures.record(path, &f);
        return Err(ApiError::Unauthenticated(f));
    }
    Ok(Some(value))
}

/// Every REST route and the RPC it calls: its rule is that RPC's ([`aula_runtime::auth::RULES`]).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/cursos", "services.CursosService/GetStatus"),
    (
        "GET",
        "/cursos/ver_inscricoes_do_usuario/{id}",
        "services.CursosService/GetUserCourses",
    ),
    (
        "GET",
        "/cursos/consumir_midia_curso/{id}",
        "services.CursosService/GetCourseMedia",
    ),
    (
        "POST",
        "/cursos/tirar_duvida/{id}",
        "services.CursosService/AskQuestion",
    ),
    (
        "GET",
        "/cursos/enviar_notificacao/{id}",
        "services.CursosService/SendNotification",
    ),
    ("GET", "/chatbot", "services.ChatbotService/GetStatus"),
    (
        "POST",
        "/chatbot/duvida",
        "services.ChatbotService/ResolveDuvida",
    ),
    (
        "GET",
        "/chatbot/registrar_metricas/{id}",
        "services.ChatbotService/RegisterMetrics",
    ),
    ("GET", "/cpar", "services.CPARService/GetStatus"),
    (
        "GET",
        "/cpar/notificar_agendamento/{id}",
        "services.CPARService/NotifySchedule",
    ),
    (
        "GET",
        "/notificacoes",
        "services.NotificacoesService/GetStatus",
    ),
    ("GET", "/insights", "services.InsightsService/GetStatus"),
    (
        "GET",
        "/midia_conteudo",
        "services.MidiaConteudoService/GetStatus",
    ),
    (
        "GET",
        "/midia_conteudo/{id}",
        "services.MidiaConteudoService/GetMedia",
    ),
];

/// docs/AUTH.md's two tables: every RPC, then every REST route, and who may call it.
pub fn markdown() -> String {
    let mut out = aula_runtime::auth::policy::markdown();
    out.push_str("\n| REST route | RPC | Who may call it |\n|---|---|---|\n");
    for path in PUBLIC_PATHS {
        out.push_str(&format!("| `GET {path}` | | anyone, no token |\n"));
    }
    for (method, path, rpc) in ROUTES {
        let rule = aula_runtime::auth::policy::rule_for(&format!("/{rpc}"))
            .expect("every route's RPC has a rule");
        let short = rpc.trim_start_matches("services.");
        out.push_str(&format!(
            "| `{method} {path}` | `{short}` | {} |\n",
            rule.describe()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    /// docs/AUTH.md shows the tables the code enforces.
    #[test]
    fn docs_auth_md_is_the_code_table() {
        let doc = include_str!("../../../docs/AUTH.md");
        let (_, rest) = doc
            .split_once("<!-- tables: generated -->\n")
            .expect("docs/AUTH.md marks its tables");
        let (tables, _) = rest
            .split_once("<!-- end of tables -->")
            .expect("docs/AUTH.md ends its tables");
        let expected = super::markdown();
        assert_eq!(
            tables.trim(),
            expected.trim(),
            "docs/AUTH.md is out of date; paste this between the markers:\n{expected}"
        );
    }
}
