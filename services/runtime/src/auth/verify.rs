//! Verifying a bearer token: signature (RS*, PS*, ES256, ES384, EdDSA against the key set;
//! `none` and HMAC refused before anything else), `iss`, `aud`, `exp` and `nbf` (with leeway),
//! then the user and roles claims. Every failure has a [`Reason`] (the metric's label) and a
//! message saying which check failed; neither ever contains the token.

use super::{config::AuthConfig, jwks::Jwks, jwks::KeyError};
use crate::ids::UserId;
use jsonwebtoken::{errors::ErrorKind, Algorithm as Alg, Validation};
use serde_json::{Map, Value};

/// The longest token accepted: a few KB covers any provider's tokens with many roles.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a request is not authenticated: the `reason` label of `aula_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Subject,
    KeysUnavailable,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::Algorithm,
        Reason::UnknownKey,
        Reason::Signature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Issuer,
        Reason::Audience,
        Reason::Subject,
        Reason::KeysUnavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Algorithm => "algorithm",
            Reason::UnknownKey => "unknown_key",
            Reason::Signature => "signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Issuer => "issuer",
            Reason::Audience => "audience",
            Reason::Subject => "subject",
            Reason::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// A request that could not be authenticated.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    pub reason: Reason,
    pub message: String,
}

impl AuthFailure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl From<AuthFailure> for tonic::Status {
    fn from(f: AuthFailure) -> Self {
        tonic::Status::unauthenticated(format!("authentication failed: {}", f.message))
    }
}

/// An authenticated end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub roles: Vec<String>,
    /// Holds the staff role (`AULA_STAFF_ROLE`): may act on anyone's data.
    pub staff: bool,
}

/// At most 64 characters of something a caller sent, for a message.
pub fn clip(s: &str) -> &str {
    crate::fields::clip(s, 64)
}

/// Verifies tokens against a configuration and its key set.
pub struct Verifier {
    config: AuthConfig,
    jwks: Jwks,
}

impl Verifier {
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        let jwks = Jwks::new(&config)?;
        Ok(Self { config, jwks })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The user a token proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<User, AuthFailure> {
        use Reason::*;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::new(
                Malformed,
                format!("the token is longer than {MAX_TOKEN_BYTES} bytes"),
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` (and any name outside the JOSE list) fails here.
            ErrorKind::Json(_) if token_alg_is_none(token) => {
                AuthFailure::new(Algorithm, "unsigned tokens (alg none) are not accepted")
            }
            _ => AuthFailure::new(
                Malformed,
                "the bearer value is not a JWT (header.payload.signature)",
            ),
        })?;
        let alg = header.alg;
        if matches!(alg, Alg::HS256 | Alg::HS384 | Alg::HS512) {
            return Err(AuthFailure::new(
                Algorithm,
                format!("{alg:?} (HMAC) tokens are not accepted: use RS256, ES256 or EdDSA"),
            ));
        }
        let keys = self
            .jwks
            .keys_for(header.kid.as_deref(), alg)
            .await
            .map_err(|e| match e {
                // Why (a URL inside the cluster, a CA, a file path) is for the operator, in
                // the warning the fetch logged; the caller learns only that it is not theirs.
                KeyError::Unavailable(_) => AuthFailure::new(
                    KeysUnavailable,
                    "the key set (AULA_JWT_JWKS) could not be loaded; the service's log says why",
                ),
                KeyError::WrongAlgorithm { .. } => AuthFailure::new(Algorithm, e.to_string()),
                _ => AuthFailure::new(UnknownKey, e.to_string()),
            })?;
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut last = None;
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
                Ok(data) => return self.user(&data.claims),
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("at least one candidate key");
        Err(match e.kind() {
            ErrorKind::InvalidSignature => {
                AuthFailure::new(Signature, "the signature does not verify with the key set")
            }
            ErrorKind::ExpiredSignature => AuthFailure::new(Expired, "the token has expired (exp)"),
            ErrorKind::ImmatureSignature => {
                AuthFailure::new(NotYetValid, "the token is not valid yet (nbf)")
            }
            ErrorKind::InvalidIssuer => AuthFailure::new(
                Issuer,
                format!("the token's issuer (iss) is not {:?}", self.config.issuer),
            ),
            ErrorKind::InvalidAudience => AuthFailure::new(
                Audience,
                format!(
                    "the token's audience (aud) does not include {:?}",
                    self.config.audience
                ),
            ),
            ErrorKind::MissingRequiredClaim(c) => {
                AuthFailure::new(Malformed, format!("the token has no {c} claim"))
            }
            ErrorKind::InvalidAlgorithm => AuthFailure::new(
                Algorithm,
                format!("the key set's key does not verify {alg:?} tokens"),
            ),
            _ => AuthFailure::new(Malformed, "the token could not be decoded"),
        })
    }

    fn user(&self, claims: &Map<String, Value>) -> Result<User, AuthFailure> {
        let claim = &self.config.user_claim;
        let raw = match claim_at(claims, claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(AuthFailure::new(
                    Reason::Subject,
                    format!("the user claim {claim:?} is not a string or a number"),
                ))
            }
            None => {
                return Err(AuthFailure::new(
                    Reason::Subject,
                    format!("the token has no user claim {claim:?} (AULA_JWT_USER_CLAIM)"),
                ))
            }
        };
        let id = UserId::parse(&raw).map_err(|_| {
            AuthFailure::new(
                Reason::Subject,
                format!(
                    "the user claim {claim:?} is {:?}, not a valid id_usuario (a positive integer)",
                    clip(&raw)
                ),
            )
        })?;
        let roles: Vec<String> = match claim_at(claims, &self.config.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let staff = roles.iter().any(|r| r == &self.config.staff_role);
        Ok(User { id, roles, staff })
    }
}

/// A claim by name, or by a dotted path into nested objects (`realm_access.roles`). A name
/// that exists as is wins over the path.
fn claim_at<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// True when the token's header says `"alg": "none"` (jsonwebtoken does not parse it).
fn token_alg_is_none(token: &str) -> bool {
    use base64::Engine as _;
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<Map<String, Value>>(&bytes)
        .ok()
        .and_then(|h| {
            h.get("alg")
                .and_then(|a| a.as_str())
                .map(|a| a.eq_ignore_ascii_case("none"))
        })
        .unwrap_or(false)
}
