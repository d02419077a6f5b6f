//! Signing keys for development and tests: `aula up --auth` generates one in its data directory
//! (with the key set services verify against) and `aula token` mints tokens with it. Production
//! tokens come from an identity provider (docs/AUTH.md); nothing here is used to verify.

use anyhow::Context as _;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The issuer and audience of development tokens (`aula up --auth` sets them).
pub const DEV_ISSUER: &str = "aula-dev";
pub const DEV_AUDIENCE: &str = "aula";

/// A private signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {:?})", self.kid, self.alg)
    }
}

impl SigningKey {
    /// A new Ed25519 key (EdDSA).
    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system's random source works")
            .as_ref()
            .to_vec();
        Self::from_ed25519_pkcs8(kid, pkcs8).expect("a key ring just generated")
    }

    fn from_ed25519_pkcs8(kid: &str, pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": B64.encode(pair.public_key().as_ref()),
        });
        Ok(Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            pkcs8,
            jwk,
        })
    }

    /// A new P-256 key (ES256).
    pub fn p256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system's random source works")
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .expect("a key ring just generated");
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            pkcs8,
            jwk,
        }
    }

    /// The public half, as a JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `claims` (any JSON object) with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let key = match self.alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&self.pkcs8),
            _ => EncodingKey::from_ec_der(&self.pkcs8),
        };
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key).expect("signing with a valid key")
    }
}

/// A key set of these keys' public halves.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The claims of a development token for `user` with `roles`, valid for `ttl`.
pub fn claims(user: &str, roles: &[&str], ttl: Duration) -> Value {
    let now = now();
    json!({
        "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": user, "roles": roles,
        "iat": now, "nbf": now, "exp": now + ttl.as_secs(),
    })
}

/// The settings that verify development tokens against the key set at `jwks` (a file or an
/// https URL): `AULA_AUTH=jwt` with the development issuer and audience; calls between the
/// services without a user's token trusted when `trust_network` (nothing proves who makes
/// them). `aula up --auth` and the tests run with them.
pub fn dev_env(jwks: &str, trust_network: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AULA_AUTH", "jwt".to_string()),
        ("AULA_JWT_JWKS", jwks.to_string()),
        ("AULA_JWT_ISSUER", DEV_ISSUER.to_string()),
        ("AULA_JWT_AUDIENCE", DEV_AUDIENCE.to_string()),
    ];
    if trust_network {
        env.push(("AULA_AUTH_TRUST_NETWORK", "1".to_string()));
    }
    env
}

/// The development key of a data directory: `<dir>/auth/dev-signing-key.pk8` (private, mode
/// 0600) and `<dir>/auth/jwks.json` (what services verify against).
pub struct DevKeys {
    pub dir: PathBuf,
}

impl DevKeys {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("auth"),
        }
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.dir.join("jwks.json")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("dev-signing-key.pk8")
    }

    /// The key, generated (with its key set) on first use.
    pub fn load_or_create(&self) -> anyhow::Result<SigningKey> {
        if self.key_path().exists() {
            return self.load();
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let key = SigningKey::ed25519(&format!("aula-dev-{}", now()));
        write_private(&self.key_path(), &key.pkcs8)?;
        let set = serde_json::to_vec_pretty(&jwks(&[&key]))?;
        std::fs::write(self.jwks_path(), set)
            .with_context(|| format!("writing {}", self.jwks_path().display()))?;
        Ok(key)
    }

    /// The key `aula up --auth` generated; an error saying so when there is none.
    pub fn load(&self) -> anyhow::Result<SigningKey> {
        let path = self.key_path();
        let pkcs8 = std::fs::read(&path).with_context(|| {
            format!(
                "reading the development signing key {} (start `aula up --auth` first)",
                path.display()
            )
        })?;
        let set: Value = serde_json::from_slice(
            &std::fs::read(self.jwks_path())
                .with_context(|| format!("reading {}", self.jwks_path().display()))?,
        )?;
        let kid = set["keys"][0]["kid"]
            .as_str()
            .context("the development key set names no key")?;
        SigningKey::from_ed25519_pkcs8(kid, pkcs8)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
