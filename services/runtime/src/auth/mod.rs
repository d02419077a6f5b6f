//! End-user identity (issue #15): who the user is (a JWT), and what they may do.
//!
//! Off unless `AULA_AUTH=jwt` (the seed's clients keep working). When on:
//! - [`AuthLayer`] runs on every server (after authorization of the calling service, before the
//!   deadline): it verifies `authorization: Bearer <JWT>` ([`Verifier`]: signature against the
//!   key set, issuer, audience, expiry), or accepts a call without a token from another service
//!   whose identity the transport proved ([`crate::identity::ServiceIdentity`]). It applies the
//!   role part of the method's rule from [`policy::RULES`] and puts a [`Grant`] in the request.
//! - Handlers of methods whose rule is about a user ([`Rule::OwnUser`], [`Rule::OwnObject`])
//!   call [`own_user`] with the request's `id_usuario` (it fills an empty one with the caller's)
//!   or [`may_act_on`] with the stored owner; both do nothing when auth is off or the caller is
//!   a service.
//! - Calls a handler makes to other services forward the user's token: the layer keeps it in a
//!   task-local and [`crate::peers::PeerChannel`] adds it ([`forward`]). Work a service does
//!   on its own (reminders, the outbox) carries no token and is authorized by its identity.
//!
//! Failures: no, malformed, expired, wrongly signed token: UNAUTHENTICATED saying which check
//! failed (`aula_auth_failures_total{reason}`). Another user's data or a missing role:
//! PERMISSION_DENIED naming the rule (`aula_authz_denied_total{method}`). Tokens never reach
//! logs, spans or messages.

pub mod config;
pub mod dev;
pub mod jwks;
mod layer;
pub mod policy;
pub mod verify;

#[cfg(test)]
mod algorithm_tests;
#[cfg(test)]
mod jwks_url_tests;
#[cfg(test)]
mod tests;

pub use config::{AuthConfig, JwksSource};
pub use layer::{bearer, AuthLayer, AuthService, Failures};
pub use policy::{Rule, RULES};
pub use verify::{AuthFailure, Reason, User, Verifier};

pub use crate::ids::UserId;
use std::{future::Future, sync::Arc};

/// The header services add to calls they make without a user's token, naming themselves. It
/// proves nothing: it is believed only with `AULA_AUTH_TRUST_NETWORK=1` (otherwise the
/// transport's verified identity is what counts).
pub const SERVICE_HEADER: &str = "x-aula-service";

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user, proved by a token.
    User(Arc<User>),
    /// Another service, proved by the transport (mTLS), or named by [`SERVICE_HEADER`] on a
    /// trusted network.
    Service(Arc<str>),
}

/// What the layer puts in each authenticated request's extensions.
#[derive(Debug, Clone)]
pub struct Grant {
    pub caller: Caller,
    /// The gRPC method (`Service/Method`), for messages.
    pub method: Arc<str>,
    /// The service's registry, for `aula_authz_denied_total{method}` (the counter mTLS's
    /// authorization counts its denials in too).
    metrics: crate::metrics::Metrics,
}

impl Grant {
    /// The grant of a request, if auth is on.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Grant> {
        request.extensions().get::<Grant>()
    }

    /// The user calling, if it is one.
    pub fn user(&self) -> Option<&User> {
        match &self.caller {
            Caller::User(u) => Some(u),
            Caller::Service(_) => None,
        }
    }

    fn deny(&self, why: String) -> tonic::Status {
        self.metrics
            .counter(
                "aula_authz_denied_total",
                vec![metrics::Label::new("method", format!("/{}", self.method))],
            )
            .increment(1);
        tracing::info!(method = %self.method, why, "permission denied");
        tonic::Status::permission_denied(format!("permission denied: {why}"))
    }
}

/// Checks that the caller may act on the user in `id_usuario`: their own, or anyone's with the
/// staff role, or a service's. An empty field becomes the caller's id (so a client need not
/// repeat the token's user). Does nothing when auth is off. A field that is not an id is left
/// for the handler's own check (INVALID_ARGUMENT naming it).
pub fn own_user<T>(
    request: &mut tonic::Request<T>,
    id_usuario: impl FnOnce(&mut T) -> &mut String,
) -> Result<(), tonic::Status> {
    let Some(grant) = request.extensions().get::<Grant>().cloned() else {
        return Ok(());
    };
    let Some(user) = grant.user() else {
        return Ok(());
    };
    let field = id_usuario(request.get_mut());
    if field.trim().is_empty() {
        *field = user.id.to_string();
        return Ok(());
    }
    match UserId::parse(field) {
        Ok(asked) if asked != user.id && !user.staff => Err(grant.deny(format!(
            "{} acts on the caller's own id_usuario only: the token is user {}'s, the request \
             names user {asked} (the staff role may act on anyone's)",
            grant.method, user.id
        ))),
        _ => Ok(()),
    }
}

/// [`own_user`], then the request's message: for a handler that needs nothing else of the
/// request.
pub fn own_message<T>(
    mut request: tonic::Request<T>,
    id_usuario: impl FnOnce(&mut T) -> &mut String,
) -> Result<T, tonic::Status> {
    own_user(&mut request, id_usuario)?;
    Ok(request.into_inner())
}

/// [`own_message`] for a handler acting on the user the request names: the message, and that
/// user (a field that is not an id is INVALID_ARGUMENT naming `id_usuario`).
pub fn own_message_user<T>(
    request: tonic::Request<T>,
    id_usuario: impl Fn(&mut T) -> &mut String,
) -> Result<(T, UserId), tonic::Status> {
    let mut message = own_message(request, &id_usuario)?;
    let user = UserId::parse(id_usuario(&mut message))?;
    Ok((message, user))
}

/// Checks that the caller may act on an object owned by `owner` (a stored schedule's user).
pub fn may_act_on<T>(request: &tonic::Request<T>, owner: UserId) -> Result<(), tonic::Status> {
    let Some(grant) = Grant::of(request) else {
        return Ok(());
    };
    match grant.user() {
        Some(user) if user.id != owner && !user.staff => Err(grant.deny(format!(
            "{} acts on the caller's own objects only: this one belongs to another user (the \
             staff role may act on anyone's)",
            grant.method
        ))),
        _ => Ok(()),
    }
}

tokio::task_local! {
    /// The `authorization` value of the call being served, for the calls it makes.
    static FORWARD: http::HeaderValue;
}

/// Runs `fut` as part of a call made with this `authorization` value.
pub fn scope<F: Future>(
    authorization: http::HeaderValue,
    fut: F,
) -> impl Future<Output = F::Output> {
    FORWARD.scope(authorization, fut)
}

/// Adds the caller's token to a call to another service, if the call being served has one and
/// the outgoing call sets none; else names the calling service (`caller`).
pub fn forward(headers: &mut http::HeaderMap, caller: Option<&'static str>) {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return;
    }
    match FORWARD.try_with(Clone::clone) {
        Ok(mut value) => {
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Err(_) => {
            if let Some(name) = caller {
                headers.insert(SERVICE_HEADER, http::HeaderValue::from_static(name));
            }
        }
    }
}
