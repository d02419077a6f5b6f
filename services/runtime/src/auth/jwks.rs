//! The keys that sign users' tokens: a JSON Web Key Set from a file or an OIDC provider's
//! `jwks_uri`, cached, and fetched again when a token names a key the cache does not hold (the
//! provider rotated its keys) at most once per `AULA_JWT_JWKS_REFRESH`, or when older than
//! `AULA_JWT_JWKS_TTL`. A failed fetch keeps the keys already known.

use super::config::{AuthConfig, JwksSource};
use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};
use std::{
    str::FromStr,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

/// The largest key set accepted (a provider publishes a handful of keys).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long one fetch of a remote key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification key and the algorithms it may verify.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Key>,
    /// When the set was last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last attempted (success or not), for the refetch rate limit.
    attempted: Option<Instant>,
}

/// The key set, shared by every call of a service.
pub struct Jwks {
    source: JwksSource,
    min_refetch: Duration,
    ttl: Duration,
    http: Option<reqwest::Client>,
    cache: RwLock<Arc<Cache>>,
    /// One fetch at a time; callers arriving meanwhile wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

/// Why no key could be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the token's key {0:?} is not in the key set (AULA_JWT_JWKS)")]
    UnknownKid(String),
    #[error("no key in the key set (AULA_JWT_JWKS) verifies {0:?} tokens")]
    NoKeyFor(String),
    /// The key the token names exists but is not for the token's algorithm: the key decides
    /// (its type, and its `alg` when the set gives one), never the token's header alone.
    #[error("the token's key {kid:?} verifies {allowed} tokens, not {alg}")]
    WrongAlgorithm {
        kid: String,
        alg: String,
        allowed: String,
    },
    #[error("the key set (AULA_JWT_JWKS) could not be loaded: {0}")]
    Unavailable(String),
}

impl Jwks {
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let http = match &config.jwks {
            JwksSource::Url(url) => {
                let mut builder = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    // An https:// key set is never fetched over plain HTTP, even redirected.
                    .https_only(url.starts_with("https://"));
                if let Some(path) = &config.jwks_ca {
                    builder = builder.tls_built_in_root_certs(false);
                    for ca in read_ca(path)? {
                        builder = builder.add_root_certificate(ca);
                    }
                }
                Some(builder.build()?)
            }
            JwksSource::File(_) => None,
        };
        Ok(Self {
            source: config.jwks.clone(),
            min_refetch: config.min_refetch,
            ttl: config.ttl,
            http,
            cache: RwLock::new(Arc::new(Cache::default())),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads the set now (start-up): a missing or unreadable file is an error at once.
    pub async fn load(&self) -> Result<usize, KeyError> {
        self.refetch(true).await?;
        Ok(self.cache.read().unwrap().keys.len())
    }

    /// The candidate keys for a token with this `kid` and algorithm.
    pub async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<Key>, KeyError> {
        let stale = {
            let cache = self.cache.read().unwrap().clone();
            cache.fetched.is_none_or(|t| t.elapsed() >= self.ttl)
        };
        if stale {
            // Old keys still verify while the provider is unreachable.
            let _ = self.refetch(false).await;
        }
        if let Some(found) = self.lookup(kid, alg)? {
            return Ok(found);
        }
        // A key we do not know: the provider may have rotated. Fetch again (rate-limited).
        self.refetch(false).await?;
        self.lookup(kid, alg)?.ok_or_else(|| match kid {
            Some(k) => KeyError::UnknownKid(super::verify::clip(k).to_string()),
            None => KeyError::NoKeyFor(format!("{alg:?}")),
        })
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<Vec<Key>>, KeyError> {
        let cache = self.cache.read().unwrap().clone();
        if cache.fetched.is_none() {
            return Ok(None);
        }
        let named: Vec<&Key> = cache
            .keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .collect();
        let found: Vec<Key> = named
            .iter()
            .filter(|k| k.algorithms.contains(&alg))
            .map(|k| (*k).clone())
            .collect();
        if found.is_empty() {
            // A known kid with another algorithm (an RS256 key's kid on an HS256 or PS256
            // token): refused without a refetch, naming what the key is for.
            if let (Some(kid), Some(key)) = (kid, named.first()) {
                let names: Vec<String> = key.algorithms.iter().map(|a| format!("{a:?}")).collect();
                return Err(KeyError::WrongAlgorithm {
                    kid: super::verify::clip(kid).to_string(),
                    alg: format!("{alg:?}"),
                    allowed: names.join("/"),
                });
            }
            return Ok(None);
        }
        Ok(Some(found))
    }

    /// Fetches the set unless another fetch happened within `AULA_JWT_JWKS_REFRESH` (or
    /// `force`). A failure keeps the old keys.
    async fn refetch(&self, force: bool) -> Result<(), KeyError> {
        let _one = self.fetching.lock().await;
        let previous = self.cache.read().unwrap().clone();
        if !force
            && previous
                .attempted
                .is_some_and(|t| t.elapsed() < self.min_refetch)
        {
            return if previous.fetched.is_some() {
                Ok(())
            } else {
                Err(KeyError::Unavailable(
                    "the last attempt failed; retrying soon".into(),
                ))
            };
        }
        let result = self.fetch().await;
        let mut next = Cache {
            keys: previous.keys.clone(),
            fetched: previous.fetched,
            attempted: Some(Instant::now()),
        };
        let outcome = match result {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "loaded the JWT key set");
                next.keys = keys;
                next.fetched = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not load the JWT key set; keeping the known keys");
                Err(KeyError::Unavailable(e))
            }
        };
        *self.cache.write().unwrap() = Arc::new(next);
        outcome
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let body = match &self.source {
            JwksSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("reading {}: {e}", path.display()))?,
            JwksSource::Url(url) => {
                let http = self.http.as_ref().expect("a client for a URL source");
                let mut response = http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("fetching {url}: {}", crate::error::chain(&e)))?;
                if !response.status().is_success() {
                    return Err(format!("fetching {url}: HTTP {}", response.status()));
                }
                // Read up to the limit, not the whole of whatever the server sends.
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| format!("fetching {url}: {}", crate::error::chain(&e)))?
                {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(format!(
                            "fetching {url}: larger than {MAX_JWKS_BYTES} bytes"
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        parse_set(&body)
    }
}

/// The CA certificates of `AULA_JWT_JWKS_CA`; an error names the variable and the file.
fn read_ca(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("AULA_JWT_JWKS_CA: cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("AULA_JWT_JWKS_CA: {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("AULA_JWT_JWKS_CA: {} holds no CERTIFICATE", path.display());
    }
    Ok(certs)
}

/// Parses a key set, keeping the signature keys this verifier can use and skipping (with a
/// warning) symmetric keys, encryption keys and kinds it does not know.
pub fn parse_set(body: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let mut keys = Vec::new();
    for value in raw.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a key of the set that could not be read");
                continue;
            }
        };
        match key_of(&jwk) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(kid = ?jwk.common.key_id, why, "skipping a key of the set"),
        }
    }
    if keys.is_empty() {
        return Err("the set holds no RSA, EC (P-256, P-384) or Ed25519 signature key".into());
    }
    Ok(keys)
}

fn key_of(jwk: &Jwk) -> Result<Key, &'static str> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key");
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an unsupported curve"),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKeyPair(_) => return Err("an unsupported curve"),
        // A shared secret cannot be published: whoever can verify could sign.
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric (HMAC) key"),
    };
    let algorithms = match &jwk.common.key_algorithm {
        None => by_type,
        Some(declared) => {
            let alg = key_algorithm(declared).ok_or("an algorithm that does not sign")?;
            if !by_type.contains(&alg) {
                return Err("an algorithm that does not fit the key type");
            }
            vec![alg]
        }
    };
    let decoding = DecodingKey::from_jwk(jwk).map_err(|_| "a key that could not be read")?;
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        decoding,
        algorithms,
    })
}

fn key_algorithm(k: &KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::from_str(&k.to_string()).ok()
}
