//! The server layer authenticating every call and applying the role part of its rule.

use super::{
    policy::{self, Rule},
    verify::{AuthFailure, Reason, Verifier},
    Caller, Grant, SERVICE_HEADER,
};
use crate::{identity::ServiceIdentity, metrics::Metrics};
use futures::future::Either;
use metrics::Label;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

const GATEWAY: &str = crate::spec::GATEWAY.name;

/// Authenticates calls when auth is on; passes everything through when it is off.
#[derive(Clone)]
pub struct AuthLayer {
    inner: Option<Arc<Shared>>,
}

struct Shared {
    verifier: Arc<Verifier>,
    failures: Failures,
    metrics: Metrics,
}

impl AuthLayer {
    /// A layer that does nothing (`AULA_AUTH` unset).
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// The layer of a service: off without a configuration; else a verifier whose key set is
    /// loaded now (a file that cannot be read stops the start; an unreachable provider is
    /// retried on the first call).
    pub async fn start(
        config: Option<&super::AuthConfig>,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let Some(config) = config else {
            return Ok(Self::off());
        };
        let verifier = Arc::new(Verifier::new(config.clone())?);
        match (verifier.jwks().load().await, &config.jwks) {
            (Ok(n), _) => {
                tracing::info!(keys = n, issuer = %config.issuer, "end-user authentication on (AULA_AUTH=jwt)")
            }
            (Err(e), super::JwksSource::File(_)) => anyhow::bail!("AULA_JWT_JWKS: {e}"),
            (Err(e), super::JwksSource::Url(_)) => {
                tracing::warn!(error = %e, "end-user authentication on, but the key set is not loaded yet; retrying on the first call")
            }
        }
        Ok(Self::new(verifier, metrics))
    }

    /// A layer verifying with `verifier`, counting into `metrics`.
    pub fn new(verifier: Arc<Verifier>, metrics: &Metrics) -> Self {
        let failures = Failures::new(metrics);
        Self {
            inner: Some(Arc::new(Shared {
                verifier,
                failures,
                metrics: metrics.clone(),
            })),
        }
    }
}

/// `aula_auth_failures_total{reason}`, every reason registered at start (alerts see zeros).
#[derive(Clone)]
pub struct Failures(Arc<HashMap<&'static str, metrics::Counter>>);

impl Failures {
    pub fn new(metrics: &Metrics) -> Self {
        Self(Arc::new(
            Reason::ALL
                .iter()
                .map(|r| {
                    let c = metrics.counter(
                        "aula_auth_failures_total",
                        vec![Label::new("reason", r.label())],
                    );
                    (r.label(), c)
                })
                .collect(),
        ))
    }

    /// Counts and logs a failure (its reason and message; never the token).
    pub fn record(&self, what: &str, f: &AuthFailure) {
        if let Some(c) = self.0.get(f.reason.label()) {
            c.increment(1);
        }
        tracing::info!(what, reason = f.reason.label(), why = %f.message, "authentication failed");
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.inner.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Option<Arc<Shared>>,
}

/// The token of an `authorization` header: `Bearer <token>`.
pub fn bearer(value: &http::HeaderValue) -> Result<&str, AuthFailure> {
    let text = value
        .to_str()
        .map_err(|_| AuthFailure::new(Reason::Malformed, "the authorization header is not text"))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::new(
            Reason::Malformed,
            "the authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

impl Shared {
    fn fail(&self, method: &str, f: AuthFailure) -> tonic::Status {
        self.failures.record(method, &f);
        f.into()
    }

    /// Who calls, or why the call is refused.
    async fn authenticate(&self, presented: Presented) -> Result<Caller, AuthFailure> {
        if let Some(value) = presented.authorization {
            let token = bearer(&value)?;
            let user = self.verifier.verify(token).await?;
            return Ok(Caller::User(Arc::new(user)));
        }
        // A service's own work, proved by mTLS. Not the gateway's: it serves only users, so a
        // call of its without a token is a user's without one (a gateway with auth off).
        if let Some(id) = presented.identity.filter(|id| id.name() != GATEWAY) {
            return Ok(Caller::Service(id.0));
        }
        if self.verifier.config().trust_network {
            if let Some(name) = presented
                .service_header
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .filter(|n| *n != GATEWAY && crate::spec::is_known(n))
            {
                return Ok(Caller::Service(name.into()));
            }
        }
        Err(AuthFailure::new(
            Reason::Missing,
            "no token: send `authorization: Bearer <JWT>`",
        ))
    }
}

/// What a request presents to prove who sends it.
struct Presented {
    authorization: Option<http::HeaderValue>,
    identity: Option<ServiceIdentity>,
    service_header: Option<http::HeaderValue>,
}

impl Presented {
    fn of<B>(req: &http::Request<B>) -> Self {
        Self {
            authorization: req.headers().get(http::header::AUTHORIZATION).cloned(),
            identity: ServiceIdentity::of(req).cloned(),
            service_header: req.headers().get(SERVICE_HEADER).cloned(),
        }
    }
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for AuthService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    /// Auth off, or a public method: the inner future as it is (no box on every call).
    type Future =
        Either<S::Future, Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let Some(shared) = self.shared.clone() else {
            return Either::Left(self.inner.call(req));
        };
        let rule = policy::rule_for(req.uri().path());
        if rule == Some(Rule::Public) {
            return Either::Left(self.inner.call(req));
        }
        let path = req.uri().path().to_string();
        // The ready service handles this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let presented = Presented::of(&req);
        Either::Right(Box::pin(async move {
            let method = path.trim_start_matches('/');
            let caller = match shared.authenticate(presented).await {
                Ok(c) => c,
                Err(f) => return Ok(shared.fail(method, f).into_http()),
            };
            let grant = Grant {
                caller,
                method: method.into(),
                metrics: shared.metrics.clone(),
            };
            let refusal = match (rule, grant.user()) {
                (None, _) => Some(format!(
                    "{method} is not in the authorization table (auth::policy::RULES)"
                )),
                (Some(Rule::Staff), Some(u)) if !u.staff => Some(format!(
                    "{method} requires the staff role ({}); user {} does not have it",
                    shared.verifier.config().staff_role,
                    u.id
                )),
                _ => None,
            };
            if let Some(why) = refusal {
                return Ok(grant.deny(why).into_http());
            }
            let token = req.headers().get(http::header::AUTHORIZATION).cloned();
            req.extensions_mut().insert(grant);
            match token {
                Some(t) => super::scope(t, inner.call(req)).await,
                None => inner.call(req).await,
            }
        }))
    }
}
