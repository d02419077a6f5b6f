//! Mutual TLS between services (issue #14): settings, the live certificates, their rotation.
//!
//! TLS is on when `AULA_TLS_CERT`, `AULA_TLS_KEY` and `AULA_TLS_CA` (PEM files) are set, and
//! off (plaintext, today's behaviour) when none is: an explicit choice, never a fallback. With
//! TLS on, every gRPC server speaks TLS only ([`accept`]), requires a client certificate
//! signed by the CA unless `AULA_TLS_CLIENT_AUTH=none`, and every peer client presents the
//! service's own certificate and verifies the server against the same CA ([`connect`]).
//!
//! Rotation: [`Tls::watch`] re-reads the three files every `AULA_TLS_RELOAD_INTERVAL` (5 s)
//! and, when any changed, builds new rustls configurations that every *new* handshake uses;
//! connections already open keep theirs. A half-written set (a new certificate beside the old
//! key) is refused and retried on the next tick, the old configuration staying in force.
//! cert-manager and kubelet swap a Secret's files atomically, so that is rare.
//!
//! rustls with the ring provider (already in the build for sqlx and reqwest); TLS 1.2 and 1.3;
//! ALPN `h2`, which grpc-go clients (grpcurl) require.

pub mod accept;
pub mod cert;
#[cfg(feature = "certs")]
pub mod certs;
pub mod connect;

use crate::{config::ConfigError, config::Env, identity::ServiceIdentity, metrics::Metrics};
use anyhow::Context as _;
use rustls::{
    client::WebPkiServerVerifier,
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};
use std::{
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

/// The TLS settings of a process (a service or the gateway), from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `AULA_TLS_CERT`: this process's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// `AULA_TLS_KEY`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `AULA_TLS_CA`: the CA certificates (PEM) that sign servers and clients.
    pub ca: PathBuf,
    /// `AULA_TLS_CLIENT_AUTH`: `require` (default) or `none`.
    pub client_auth: ClientAuth,
    /// `AULA_TLS_ADMIN_IDENTITIES`: identities that may call any RPC (default `operator`).
    pub admin_identities: Vec<String>,
    /// `AULA_TLS_RELOAD_INTERVAL`: how often the files are checked for changes (default 5 s).
    pub reload_interval: Duration,
    /// `AULA_TLS_TRUST_DOMAIN`: when set, a client certificate's SPIFFE ID must be in this
    /// trust domain to name anyone (unset: any trust domain the CA signs for).
    pub trust_domain: Option<String>,
}

/// Whether a server requires a verified client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client presents a certificate signed by the CA; its identity is checked per RPC.
    Require,
    /// Encryption and server authentication only: no client identity, no per-RPC check.
    None,
}

fn bad(var: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

impl TlsSettings {
    /// `None` when TLS is off (none of the three files set).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        const FILES: [&str; 3] = ["AULA_TLS_CERT", "AULA_TLS_KEY", "AULA_TLS_CA"];
        let set: Vec<Option<&str>> = FILES.iter().map(|v| env.get(v)).collect();
        if set.iter().all(Option::is_none) {
            for var in [
                "AULA_TLS_CLIENT_AUTH",
                "AULA_TLS_ADMIN_IDENTITIES",
                "AULA_TLS_RELOAD_INTERVAL",
                "AULA_TLS_TRUST_DOMAIN",
            ] {
                if let Some(v) = env.get(var) {
                    return Err(bad(
                        var,
                        v,
                        "TLS is off: set AULA_TLS_CERT, AULA_TLS_KEY and AULA_TLS_CA to turn it on",
                    ));
                }
            }
            return Ok(None);
        }
        if let Some(i) = set.iter().position(Option::is_none) {
            let given = FILES
                .iter()
                .zip(&set)
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(bad(
                FILES[i],
                "",
                format!("TLS needs all of AULA_TLS_CERT, AULA_TLS_KEY and AULA_TLS_CA; only {given} set"),
            ));
        }
        let client_auth = match env.get("AULA_TLS_CLIENT_AUTH").map(str::trim) {
            None | Some("require") => ClientAuth::Require,
            Some("none") => ClientAuth::None,
            Some(v) => return Err(bad("AULA_TLS_CLIENT_AUTH", v, "expected require or none")),
        };
        let admin_identities = match env.get("AULA_TLS_ADMIN_IDENTITIES") {
            None => vec!["operator".to_string()],
            Some(v) => {
                let ids: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(id) = ids.iter().find(|id| crate::spec::is_known(id)) {
                    return Err(bad(
                        "AULA_TLS_ADMIN_IDENTITIES",
                        v,
                        format!("{id} is a service: an admin identity must be a person's or a tool's, not a service's"),
                    ));
                }
                ids
            }
        };
        let reload_interval = env.duration("AULA_TLS_RELOAD_INTERVAL", Duration::from_secs(5))?;
        if reload_interval.is_zero() || reload_interval > Duration::from_secs(10) {
            return Err(bad(
                "AULA_TLS_RELOAD_INTERVAL",
                env.get("AULA_TLS_RELOAD_INTERVAL").unwrap_or(""),
                "must be between 1ms and 10s (rotated certificates are picked up within 10 s)",
            ));
        }
        let trust_domain = match env.get("AULA_TLS_TRUST_DOMAIN").map(str::trim) {
            None | Some("") => None,
            Some(td) if valid_trust_domain(td) => Some(td.to_string()),
            Some(td) => {
                return Err(bad(
                    "AULA_TLS_TRUST_DOMAIN",
                    td,
                    "a SPIFFE trust domain: lower-case letters, digits, '.', '-' and '_' (e.g. cluster.local), without spiffe://",
                ))
            }
        };
        let path = |i: usize| PathBuf::from(set[i].expect("checked above"));
        Ok(Some(Self {
            cert: path(0),
            key: path(1),
            ca: path(2),
            client_auth,
            admin_identities,
            reload_interval,
            trust_domain,
        }))
    }

    /// Whether `identity` may call anything.
    pub fn is_admin(&self, identity: &str) -> bool {
        self.admin_identities.iter().any(|a| a == identity)
    }
}

/// A trust domain as the SPIFFE ID standard writes one: `[a-z0-9._-]`, at most 255 characters.
fn valid_trust_domain(td: &str) -> bool {
    !td.is_empty()
        && td.len() <= 255
        && td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// `AULA_TLS_CERT`, `AULA_TLS_KEY` and `AULA_TLS_CA` for identity `name` in a directory laid
/// out as `aula certs --out DIR` writes it (`<name>.crt`, `<name>.key`, `ca.crt`).
pub fn cert_env(dir: &std::path::Path, name: &str) -> Vec<(String, String)> {
    let file = |f: String| dir.join(f).display().to_string();
    vec![
        ("AULA_TLS_CERT".into(), file(format!("{name}.crt"))),
        ("AULA_TLS_KEY".into(), file(format!("{name}.key"))),
        ("AULA_TLS_CA".into(), file("ca.crt".into())),
    ]
}

/// The crypto every configuration uses: ring, whatever else a dependency installed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The live TLS state of a process: the configurations in force, swapped on rotation.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Live>,
}

struct Live {
    settings: TlsSettings,
    current: RwLock<Arc<Loaded>>,
}

/// One consistent set of files and the configurations built from them.
struct Loaded {
    files: [Vec<u8>; 3],
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// The identity our own certificate proves, and when it expires (Unix seconds).
    identity: Option<ServiceIdentity>,
    not_after: u64,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl Tls {
    /// Reads and checks the files; an error names the variable and the file.
    pub fn load(settings: &TlsSettings) -> anyhow::Result<Self> {
        let files = read_files(settings)?;
        let loaded = build(settings, files)?;
        Ok(Self {
            inner: Arc::new(Live {
                settings: settings.clone(),
                current: RwLock::new(Arc::new(loaded)),
            }),
        })
    }

    /// Loads TLS when the environment turns it on.
    pub fn from_env(env: &Env) -> anyhow::Result<Option<Self>> {
        match TlsSettings::from_env(env)? {
            Some(s) => Ok(Some(Self::load(&s)?)),
            None => Ok(None),
        }
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.inner.settings
    }

    /// The configuration for the next accepted connection.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.current.read().unwrap().server.clone()
    }

    /// The configuration for the next connection to a peer.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.inner.current.read().unwrap().client.clone()
    }

    /// The identity our own certificate proves (`cursos`, `gateway`, `operator`).
    pub fn own_identity(&self) -> Option<ServiceIdentity> {
        self.inner.current.read().unwrap().identity.clone()
    }

    /// When our certificate expires, in seconds since the Unix epoch.
    pub fn not_after(&self) -> u64 {
        self.inner.current.read().unwrap().not_after
    }

    /// Re-reads the files; `Ok(true)` when they changed and the new set is in force.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let files = read_files(&self.inner.settings)?;
        if self.inner.current.read().unwrap().files == files {
            return Ok(false);
        }
        let loaded = build(&self.inner.settings, files)?;
        *self.inner.current.write().unwrap() = Arc::new(loaded);
        Ok(true)
    }

    /// Polls the files every reload interval while this `Tls` is alive, and publishes
    /// `aula_tls_certificate_expiry_seconds` (the Unix time our certificate expires).
    pub fn watch(&self, metrics: &Metrics) {
        let expiry = metrics.gauge("aula_tls_certificate_expiry_seconds", vec![]);
        expiry.set(self.not_after() as f64);
        let weak: Weak<Live> = Arc::downgrade(&self.inner);
        let every = self.inner.settings.reload_interval;
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let tls = Tls { inner };
                // File reads are small and quick; a blocking pool hop would cost more.
                match tls.reload() {
                    Ok(true) => {
                        failing = false;
                        expiry.set(tls.not_after() as f64);
                        tracing::info!(
                            identity = ?tls.own_identity().map(|i| i.to_string()),
                            not_after = tls.not_after(),
                            "TLS certificate, key or CA changed: new connections use them"
                        );
                    }
                    Ok(false) => failing = false,
                    // Once per failure streak: a rotation caught half-written is retried.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "TLS files changed but cannot be used yet; keeping the previous ones"
                        );
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

fn read_files(s: &TlsSettings) -> anyhow::Result<[Vec<u8>; 3]> {
    let read = |var: &str, p: &PathBuf| {
        std::fs::read(p).with_context(|| format!("{var}: cannot read {}", p.display()))
    };
    Ok([
        read("AULA_TLS_CERT", &s.cert)?,
        read("AULA_TLS_KEY", &s.key)?,
        read("AULA_TLS_CA", &s.ca)?,
    ])
}

fn certs(
    var: &str,
    path: &std::path::Path,
    pem: &[u8],
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{var}: {} is not PEM", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{var}: {} holds no CERTIFICATE", path.display());
    }
    Ok(certs)
}

fn build(s: &TlsSettings, files: [Vec<u8>; 3]) -> anyhow::Result<Loaded> {
    let chain = certs("AULA_TLS_CERT", &s.cert, &files[0])?;
    let key = PrivateKeyDer::from_pem_slice(&files[1])
        .with_context(|| format!("AULA_TLS_KEY: {} holds no private key", s.key.display()))?;
    let mut roots = RootCertStore::empty();
    for ca in certs("AULA_TLS_CA", &s.ca, &files[2])? {
        roots
            .add(ca)
            .with_context(|| format!("AULA_TLS_CA: {} is not a CA certificate", s.ca.display()))?;
    }
    let roots = Arc::new(roots);
    let leaf = cert::Leaf::parse(&chain[0])
        .with_context(|| format!("AULA_TLS_CERT: {}", s.cert.display()))?;
    if let (Some(td), Some(id)) = (&s.trust_domain, leaf.spiffe_id()) {
        // Our own certificate from another trust domain would make peers refuse us: say so
        // now rather than through every call's PERMISSION_DENIED.
        if leaf.identity(Some(td)).is_none() {
            anyhow::bail!(
                "AULA_TLS_CERT: {} names {id}, outside AULA_TLS_TRUST_DOMAIN {td}",
                s.cert.display()
            );
        }
    }

    let provider = provider();
    let client_verifier = match s.client_auth {
        ClientAuth::Require => {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .context("AULA_TLS_CA: cannot verify clients with it")?
        }
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .with_context(|| {
            format!(
                "AULA_TLS_KEY: {} does not match the certificate in {}",
                s.key.display(),
                s.cert.display()
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec()];

    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .context("AULA_TLS_CA: cannot verify servers with it")?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(server_verifier)
        .with_client_auth_cert(chain, key)
        .context("AULA_TLS_KEY: does not match AULA_TLS_CERT")?;
    client.alpn_protocols = vec![b"h2".to_vec()];

    Ok(Loaded {
        files,
        server: Arc::new(server),
        client: Arc::new(client),
        identity: leaf.identity(s.trust_domain.as_deref()),
        not_after: leaf.not_after,
    })
}

/// Why a handshake failed, as the `reason` label of `aula_tls_handshake_failures_total`: a
/// short, bounded set, so an operator can tell a plaintext client from an unknown CA.
pub fn failure_reason(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    if e.kind() == std::io::ErrorKind::TimedOut {
        return "timeout";
    }
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "closed",
            _ => "io",
        };
    };
    match tls {
        E::NoCertificatesPresented => "no_client_certificate",
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => "unknown_ca",
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "expired",
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "wrong_name"
        }
        E::InvalidCertificate(_) => "bad_certificate",
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => "not_tls",
        E::AlertReceived(_) => "alert_received",
        E::PeerIncompatible(_) | E::NoApplicationProtocol => "incompatible",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
