//! A key set behind an `https://` URL, end to end: a real HTTPS server (rustls, hyper) with a
//! certificate from the same development CA as `aula certs`, the verifier trusting that CA
//! through `AULA_JWT_JWKS_CA` and nothing else; the set cached, fetched again when a token
//! names a new key (rotation without a restart), and never fetched from a server it cannot
//! trust.

use super::{dev::*, *};
use crate::{config::Env, tls::certs::DevCa};
use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer};
use std::{
    convert::Infallible,
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

const DAY: Duration = Duration::from_secs(86_400);

/// An identity provider's `jwks_uri`: serves `body` at `/certs` over HTTPS, counting requests.
struct KeyServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyServer {
    async fn start(ca: &DevCa, body: String) -> Self {
        let issued = ca.issue("keycloak", "auth", DAY).unwrap();
        let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/certs", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (body.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, body, hits) = (acceptor.clone(), served.clone(), counted.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends here: no request.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (body, hits) = (body.clone(), hits.clone());
                            async move {
                                let response = if req.uri().path() == "/certs" {
                                    hits.fetch_add(1, Ordering::SeqCst);
                                    let json = body.lock().unwrap().clone();
                                    http::Response::builder()
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(json)))
                                } else {
                                    http::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new()))
                                };
                                Ok::<_, Infallible>(response.unwrap())
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Self {
            url,
            body,
            hits,
            task,
        }
    }

    fn serve(&self, keys: &[&SigningKey]) {
        *self.body.lock().unwrap() = jwks(keys).to_string();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The settings of a service whose key set is `url`, trusting `ca` (a PEM file) if given.
fn config(url: &str, ca: Option<&Path>) -> anyhow::Result<AuthConfig> {
    let mut env = Env::from_pairs(dev_env(url, true));
    if let Some(ca) = ca {
        env.set("AULA_JWT_JWKS_CA", ca.display().to_string());
    }
    Ok(AuthConfig::load(&env)?.expect("auth is on"))
}

fn token(key: &SigningKey, user: &str) -> String {
    key.sign(&claims(user, &[], Duration::from_secs(600)))
}

#[tokio::test]
async fn an_https_key_set_is_cached_and_fetched_again_for_a_new_kid() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("aula.test", DAY).unwrap();
    let ca_file = dir.path().join("idp-ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let first = SigningKey::ed25519("2026-01");
    let server = KeyServer::start(&ca, jwks(&[&first]).to_string()).await;

    let mut config = config(&server.url, Some(&ca_file)).unwrap();
    // Every new kid may fetch at once here; the rate limit has its own test.
    config.min_refetch = Duration::ZERO;
    let v = Verifier::new(config).unwrap();
    assert_eq!(v.jwks().load().await.unwrap(), 1);
    assert_eq!(server.hits(), 1);

    // Cached: tokens of a known key cost no fetch.
    for user in ["1", "2", "3"] {
        let u = v.verify(&token(&first, user)).await.unwrap();
        assert_eq!(u.id.to_string(), user);
    }
    assert_eq!(server.hits(), 1, "known keys are served from the cache");

    // The provider rotates: a token with the new kid makes the verifier fetch again.
    let next = SigningKey::p256("2026-02");
    server.serve(&[&next]);
    assert_eq!(v.verify(&token(&next, "4")).await.unwrap().id.get(), 4);
    assert_eq!(server.hits(), 2, "one fetch for the new kid");
    assert!(v.verify(&token(&next, "5")).await.is_ok());
    assert_eq!(server.hits(), 2);
    // The retired key left the set with the fetch.
    let e = v.verify(&token(&first, "1")).await.unwrap_err();
    assert_eq!(e.reason, Reason::UnknownKey, "{e}");
}

#[tokio::test]
async fn a_key_set_server_outside_the_trusted_ca_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("aula.test", DAY).unwrap();
    let key = SigningKey::ed25519("k");
    let server = KeyServer::start(&ca, jwks(&[&key]).to_string()).await;
    let other = dir.path().join("other-ca.crt");
    std::fs::write(&other, DevCa::new("aula.test", DAY).unwrap().cert_pem()).unwrap();

    // The public roots (no AULA_JWT_JWKS_CA) and another CA: no handshake, no keys.
    for ca_file in [None, Some(other.as_path())] {
        let v = Verifier::new(config(&server.url, ca_file).unwrap()).unwrap();
        let e = v.jwks().load().await.unwrap_err().to_string();
        assert!(
            e.contains(&server.url) && e.to_lowercase().contains("certificate"),
            "{ca_file:?}: the error says which URL and why: {e}"
        );
        let f = v.verify(&token(&key, "1")).await.unwrap_err();
        assert_eq!(f.reason, Reason::KeysUnavailable, "{f}");
        assert!(
            !f.message.contains(&server.url),
            "callers are not told where the keys live: {f}"
        );
    }
    assert_eq!(server.hits(), 0);

    // A CA file that cannot be read stops the start, naming the variable.
    let missing = dir.path().join("missing.crt");
    let e = Verifier::new(config(&server.url, Some(&missing)).unwrap())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("AULA_JWT_JWKS_CA"), "{e}");
    let not_pem = dir.path().join("not-pem.crt");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = Verifier::new(config(&server.url, Some(&not_pem)).unwrap())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("AULA_JWT_JWKS_CA"), "{e}");
}
