//! Per-RPC authorization (issue #14): who may call which RPC of this service.
//!
//! [`AuthzLayer`] sits on every server between load shedding and end-user authentication. It
//! first moves what the TLS handshake proved ([`crate::tls::accept::TlsConnectInfo`]) into the
//! request's extensions: the caller's [`ServiceIdentity`] (read by later layers and handlers)
//! and tonic's `TcpConnectInfo` (so `Request::remote_addr` keeps working). Then, when clients
//! must present a certificate (`AULA_TLS_CLIENT_AUTH=require`, the default with TLS), it lets
//! an RPC of the service through only for
//! - the callers services/catalogue.toml lists for that RPC ([`ServiceSpec::allows`]; the
//!   gateway is listed for the RPCs it serves),
//! - the admin identities (`AULA_TLS_ADMIN_IDENTITIES`, default `operator`),
//!
//! and answers anyone else PERMISSION_DENIED naming the identity and the method, counted in
//! `aula_authz_denied_total{method}`. Health and reflection answer any verified client. Paths
//! the server does not serve go on to the router's UNIMPLEMENTED. Without TLS, or with
//! `AULA_TLS_CLIENT_AUTH=none`, nobody is identified and nothing is checked: that is the
//! explicit insecure mode.

use crate::{
    identity::ServiceIdentity,
    metrics::Metrics,
    observe::known_methods,
    spec::ServiceSpec,
    tls::{accept::TlsConnectInfo, ClientAuth, TlsSettings},
};
use futures::future::{Either, Ready};
use metrics::{Counter, Label};
use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
};

/// The rule for one service.
#[derive(Debug)]
pub struct Policy {
    spec: ServiceSpec,
    admins: Vec<String>,
    /// `AULA_TLS_TRUST_DOMAIN`, for the message refusing a certificate that names nobody.
    trust_domain: Option<String>,
    /// `aula_authz_denied_total{method}` per RPC of the service.
    denied: HashMap<String, Counter>,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl Policy {
    pub fn new(spec: ServiceSpec, admins: Vec<String>, metrics: &Metrics) -> Self {
        let denied = known_methods(&[spec.grpc_service])
            .into_iter()
            .map(|(path, _)| {
                let c = metrics.counter(
                    "aula_authz_denied_total",
                    vec![Label::new("method", path.clone())],
                );
                (path, c)
            })
            .collect();
        Self {
            spec,
            admins,
            trust_domain: None,
            denied,
        }
    }

    /// Names `trust_domain` in refusals of certificates that name nobody (the identity itself
    /// is read at the handshake, [`crate::tls::cert::identity_from_sans`]).
    pub fn in_trust_domain(mut self, trust_domain: Option<String>) -> Self {
        self.trust_domain = trust_domain;
        self
    }

    /// Whether `identity` may call `path` (`/package.Service/Method`).
    pub fn check(&self, path: &str, identity: Option<&ServiceIdentity>) -> Result<(), Denied> {
        let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
            return Ok(()); // not a gRPC path: the router answers it
        };
        if service == "grpc.health.v1.Health" || service.starts_with("grpc.reflection.") {
            return Ok(()); // any verified client
        }
        if service != self.spec.grpc_service {
            return Ok(()); // not served here: UNIMPLEMENTED from the router
        }
        let denied = |why: String| {
            if let Some(c) = self.denied.get(path) {
                c.increment(1);
            }
            Err(Denied(why))
        };
        let Some(id) = identity else {
            let td = self.trust_domain.as_deref().unwrap_or("<trust-domain>");
            let scope = match &self.trust_domain {
                Some(td) => format!(" in trust domain {td} (AULA_TLS_TRUST_DOMAIN)"),
                None => String::new(),
            };
            return denied(format!(
                "{service}/{method}: the client certificate names no identity{scope} (a SPIFFE URI SAN spiffe://{td}/ns/<ns>/sa/<name>, or a DNS SAN and no SPIFFE URI)"
            ));
        };
        let name = id.name();
        if self.admins.iter().any(|a| a == name) || self.spec.allows(name, method) {
            return Ok(());
        }
        denied(format!(
            "{name} may not call {service}/{method}: its callers are listed in services/catalogue.toml ({}), admin identities in AULA_TLS_ADMIN_IDENTITIES",
            match self.spec.callers_of(method).collect::<Vec<_>>() {
                v if v.is_empty() => "none: admin identities only".to_string(),
                v => v.join(", "),
            }
        ))
    }
}

/// The layer; see the module's documentation.
#[derive(Clone, Debug)]
pub struct AuthzLayer {
    policy: Option<Arc<Policy>>,
}

impl AuthzLayer {
    /// Checks calls when `tls` requires client certificates; otherwise only passes on what
    /// the connection proved.
    pub fn new(spec: ServiceSpec, tls: Option<&TlsSettings>, metrics: &Metrics) -> Self {
        let policy = tls
            .filter(|t| t.client_auth == ClientAuth::Require)
            .map(|t| {
                Arc::new(
                    Policy::new(spec, t.admin_identities.clone(), metrics)
                        .in_trust_domain(t.trust_domain.clone()),
                )
            });
        Self { policy }
    }
}

impl<S> tower_layer::Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Authz<S> {
    inner: S,
    policy: Option<Arc<Policy>>,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Authz<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(info) = req.extensions_mut().remove::<TlsConnectInfo>() {
            req.extensions_mut().insert(info.tcp);
            if let Some(id) = info.identity {
                req.extensions_mut().insert(id);
            }
        }
        if let Some(policy) = &self.policy {
            if let Err(Denied(why)) = policy.check(req.uri().path(), ServiceIdentity::of(&req)) {
                tracing::info!(path = req.uri().path(), reason = %why, "call refused");
                let status = tonic::Status::permission_denied(why);
                return Either::Left(futures::future::ready(Ok(status.into_http())));
            }
        }
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CURSOS, NOTIFICACOES};

    fn id(s: &str) -> ServiceIdentity {
        ServiceIdentity::new(s)
    }

    #[test]
    fn the_catalogue_decides() {
        let m = Metrics::new();
        let p = Policy::new(NOTIFICACOES, vec!["operator".into()], &m);
        let send = "/services.NotificacoesService/SendNotification";
        assert_eq!(p.check(send, Some(&id("cursos"))), Ok(()));
        assert_eq!(p.check(send, Some(&id("operator"))), Ok(()));
        let Err(Denied(why)) = p.check(send, Some(&id("midia"))) else {
            panic!("midia may not send notifications");
        };
        assert!(
            why.contains("midia") && why.contains("SendNotification"),
            "{why}"
        );
        // The gateway calls what it serves, and nothing else.
        assert!(p
            .check(
                "/services.NotificacoesService/GetStatus",
                Some(&id("gateway"))
            )
            .is_ok());
        assert!(p.check(send, Some(&id("gateway"))).is_err());
        assert!(p.check(send, None).is_err());
        // Health and reflection: any verified client; other services' paths: the router.
        assert!(p
            .check("/grpc.health.v1.Health/Check", Some(&id("midia")))
            .is_ok());
        assert!(p.check("/grpc.health.v1.Health/Check", None).is_ok());
        assert!(p
            .check(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                None
            )
            .is_ok());
        assert!(p
            .check("/services.CursosService/Enroll", Some(&id("midia")))
            .is_ok());
        assert!(m.render().contains(
            r#"aula_authz_denied_total{method="/services.NotificacoesService/SendNotification"} 3"#
        ));
        let c = Policy::new(CURSOS, vec![], &m);
        assert!(c
            .check(
                "/services.CursosService/GetUserCourses",
                Some(&id("gateway"))
            )
            .is_ok());
        assert!(c
            .check(
                "/services.CursosService/GetUserCourses",
                Some(&id("operator"))
            )
            .is_err());
    }
}
