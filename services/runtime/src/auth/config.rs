//! The `AULA_AUTH*` and `AULA_JWT_*` settings (docs/CONFIG.md, "End-user authentication").

use crate::config::{ConfigError, Env};
use std::{path::PathBuf, time::Duration};

/// Where the JSON Web Key Set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file, re-read when a token names a key it does not hold (rotation without a restart).
    File(PathBuf),
    /// An `https://` URL (an OIDC provider's `jwks_uri`), cached and refetched the same way.
    Url(String),
}

/// How end users are authenticated. `None` in [`crate::Settings::auth`] means off: the seed's
/// behaviour, every caller trusted.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwks: JwksSource,
    /// `AULA_JWT_ISSUER`: the `iss` every token must carry.
    pub issuer: String,
    /// `AULA_JWT_AUDIENCE`: a value the token's `aud` must contain.
    pub audience: String,
    /// `AULA_JWT_USER_CLAIM` (default `sub`): the claim holding the user's `id_usuario`.
    pub user_claim: String,
    /// `AULA_JWT_ROLES_CLAIM` (default `roles`): a list of roles (or a space-separated string);
    /// a dotted path reaches into objects (`realm_access.roles` for Keycloak).
    pub roles_claim: String,
    /// `AULA_STAFF_ROLE` (default `staff`).
    pub staff_role: String,
    /// `AULA_JWT_LEEWAY` (default 30s): clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// `AULA_JWT_JWKS_REFRESH` (default 10s): the least time between two fetches of the key
    /// set caused by tokens naming unknown keys, so garbage `kid`s cannot hammer the provider.
    pub min_refetch: Duration,
    /// `AULA_JWT_JWKS_TTL` (default 10m): keys older than this are refetched on the next call.
    pub ttl: Duration,
    /// `AULA_AUTH_TRUST_NETWORK=1`: calls without a token are accepted from other services
    /// without proof (no mTLS); only for networks nothing else can reach.
    pub trust_network: bool,
    /// `AULA_JWT_JWKS_CA`: PEM CA certificate(s) that alone are trusted for an `https://`
    /// key set URL (a provider inside the cluster with a private CA). Unset: the public roots
    /// (webpki-roots), as for any provider on the internet.
    pub jwks_ca: Option<PathBuf>,
}

fn bad(var: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// True when a service can prove who it is to another: mutual TLS (#14, docs/CONFIG.md "Mutual
/// TLS") with client certificates required.
pub fn service_identity_configured(env: &Env) -> bool {
    env.get("AULA_TLS_CERT").is_some()
        && env
            .get("AULA_TLS_CLIENT_AUTH")
            .is_none_or(|v| v.trim() != "none")
}

impl AuthConfig {
    /// `Ok(None)` when `AULA_AUTH` is unset or `off`.
    pub fn load(env: &Env) -> Result<Option<Self>, ConfigError> {
        match env.get("AULA_AUTH").map(str::trim) {
            None | Some("off") => return Ok(None),
            Some("jwt") => {}
            Some(other) => {
                return Err(bad(
                    "AULA_AUTH",
                    other,
                    "expected `jwt` (end-user tokens) or `off`",
                ))
            }
        }
        let required = |var: &str, what: &str| {
            env.get(var)
                .map(str::to_string)
                .ok_or_else(|| bad(var, "", format!("required with AULA_AUTH=jwt: {what}")))
        };
        let raw = required(
            "AULA_JWT_JWKS",
            "the JSON Web Key Set verifying tokens, a file path or an https:// URL",
        )?;
        let jwks = if raw.starts_with("https://") {
            JwksSource::Url(raw)
        } else if raw.starts_with("http://") {
            // Keys over plain HTTP can be swapped by anyone on the path: only for tests on
            // the loopback interface.
            let host = url::Url::parse(&raw)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string));
            match host.as_deref() {
                Some("127.0.0.1" | "localhost" | "[::1]") => JwksSource::Url(raw),
                _ => {
                    return Err(bad(
                        "AULA_JWT_JWKS",
                        &raw,
                        "a key set must come over https:// (plain http only from localhost)",
                    ))
                }
            }
        } else {
            JwksSource::File(PathBuf::from(raw))
        };
        let jwks_ca = match (env.get("AULA_JWT_JWKS_CA"), &jwks) {
            (None, _) => None,
            (Some(ca), JwksSource::Url(url)) if url.starts_with("https://") => {
                Some(PathBuf::from(ca))
            }
            (Some(ca), _) => {
                return Err(bad(
                    "AULA_JWT_JWKS_CA",
                    ca,
                    "only for an https:// AULA_JWT_JWKS (the CA that signs the key set server's certificate)",
                ))
            }
        };
        let trust_network = match env.get("AULA_AUTH_TRUST_NETWORK") {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(v) => return Err(bad("AULA_AUTH_TRUST_NETWORK", v, "expected 1 or 0")),
        };
        if !trust_network && !service_identity_configured(env) {
            return Err(bad(
                "AULA_AUTH",
                "jwt",
                "services cannot prove who they are to each other (mutual TLS is not configured: \
                 AULA_TLS_CERT/KEY/CA with AULA_TLS_CLIENT_AUTH=require), so work a service does on its \
                 own (reminders, the outbox) would be refused; configure mTLS, or set \
                 AULA_AUTH_TRUST_NETWORK=1 to accept calls without a token from the network",
            ));
        }
        let name = |var: &str, default: &str| -> Result<String, ConfigError> {
            let v = env.get(var).unwrap_or(default).trim().to_string();
            if v.is_empty() || v.len() > 128 {
                return Err(bad(var, &v, "must be 1 to 128 characters"));
            }
            Ok(v)
        };
        Ok(Some(Self {
            jwks,
            issuer: required("AULA_JWT_ISSUER", "the `iss` tokens must carry")?,
            audience: required("AULA_JWT_AUDIENCE", "the `aud` tokens must carry")?,
            user_claim: name("AULA_JWT_USER_CLAIM", "sub")?,
            roles_claim: name("AULA_JWT_ROLES_CLAIM", "roles")?,
            staff_role: name("AULA_STAFF_ROLE", "staff")?,
            leeway: env.duration("AULA_JWT_LEEWAY", Duration::from_secs(30))?,
            min_refetch: env.duration("AULA_JWT_JWKS_REFRESH", Duration::from_secs(10))?,
            ttl: env.duration("AULA_JWT_JWKS_TTL", Duration::from_secs(600))?,
            trust_network,
            jwks_ca,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(extra: &[(&str, &str)]) -> Env {
        let mut env = Env::from_pairs([
            ("AULA_AUTH", "jwt"),
            ("AULA_JWT_JWKS", "/etc/aula/jwks.json"),
            ("AULA_JWT_ISSUER", "https://id.example"),
            ("AULA_JWT_AUDIENCE", "aula"),
            ("AULA_AUTH_TRUST_NETWORK", "1"),
        ]);
        for (k, v) in extra {
            env.set(*k, *v);
        }
        env
    }

    #[test]
    fn off_unless_asked() {
        assert!(AuthConfig::load(&Env::default()).unwrap().is_none());
        assert!(AuthConfig::load(&Env::from_pairs([("AULA_AUTH", "off")]))
            .unwrap()
            .is_none());
        let err = AuthConfig::load(&Env::from_pairs([("AULA_AUTH", "yes")])).unwrap_err();
        assert_eq!(err.var, "AULA_AUTH");
    }

    #[test]
    fn defaults_and_sources() {
        let c = AuthConfig::load(&jwt(&[])).unwrap().unwrap();
        assert_eq!(c.jwks, JwksSource::File("/etc/aula/jwks.json".into()));
        assert_eq!(
            (c.user_claim.as_str(), c.roles_claim.as_str()),
            ("sub", "roles")
        );
        assert_eq!(c.staff_role, "staff");
        assert!(c.trust_network);
        let c = AuthConfig::load(&jwt(&[("AULA_JWT_JWKS", "https://id.example/certs")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.jwks, JwksSource::Url("https://id.example/certs".into()));
        let err =
            AuthConfig::load(&jwt(&[("AULA_JWT_JWKS", "http://id.example/certs")])).unwrap_err();
        assert_eq!(err.var, "AULA_JWT_JWKS");
        assert_eq!(c.jwks_ca, None);
        let c = AuthConfig::load(&jwt(&[
            ("AULA_JWT_JWKS", "https://keycloak.auth.svc/certs"),
            ("AULA_JWT_JWKS_CA", "/etc/aula/idp-ca.crt"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.jwks_ca, Some("/etc/aula/idp-ca.crt".into()));
        // A CA for a file makes no sense: named rather than ignored.
        let err =
            AuthConfig::load(&jwt(&[("AULA_JWT_JWKS_CA", "/etc/aula/idp-ca.crt")])).unwrap_err();
        assert_eq!(err.var, "AULA_JWT_JWKS_CA");
    }

    #[test]
    fn required_settings_are_named() {
        for var in ["AULA_JWT_JWKS", "AULA_JWT_ISSUER", "AULA_JWT_AUDIENCE"] {
            let err = AuthConfig::load(&jwt(&[(var, "")])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn no_service_identity_is_refused_unless_the_network_is_trusted() {
        let err = AuthConfig::load(&jwt(&[("AULA_AUTH_TRUST_NETWORK", "")])).unwrap_err();
        assert_eq!(err.var, "AULA_AUTH");
        assert!(
            err.to_string().contains("AULA_AUTH_TRUST_NETWORK=1"),
            "{err}"
        );
        let tls = jwt(&[
            ("AULA_AUTH_TRUST_NETWORK", ""),
            ("AULA_TLS_CERT", "/etc/aula/cursos.crt"),
        ]);
        assert!(!AuthConfig::load(&tls).unwrap().unwrap().trust_network);
        let no_client_auth = jwt(&[
            ("AULA_AUTH_TRUST_NETWORK", ""),
            ("AULA_TLS_CERT", "/etc/aula/cursos.crt"),
            ("AULA_TLS_CLIENT_AUTH", "none"),
        ]);
        assert!(AuthConfig::load(&no_client_auth).is_err());
    }
}
