//! Calls to other services: DNS discovery with client-side balancing, deadlines, metrics and
//! trace propagation, behind one `tower::Service` that every generated client accepts.
//!
//! tonic never re-resolves DNS and a Kubernetes ClusterIP balances connections, not requests.
//! A [`PeerChannel`] owns its resolution loop instead: the peer's name resolves to every replica
//! (a compose service or a headless Service), each address gets its own lazily connected
//! channel, every request goes to the less busy of two random replicas (power of two choices),
//! names are re-resolved every `AULA_DNS_REFRESH` and at once after a connection failure, and
//! a replica that failed to connect is skipped for a while.

use crate::{
    metrics::{Metrics, Side},
    observe::{known_methods, ClientCall, MethodTable, ObservedBody},
    spec::ServiceSpec,
};
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, RwLock, Weak,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A balanced, observed channel to every replica of one peer service.
#[derive(Clone)]
pub struct PeerChannel {
    inner: Arc<Inner>,
}

struct Inner {
    peer: &'static str,
    host: String,
    port: u16,
    timeout: Duration,
    refresh: Duration,
    replicas: RwLock<Vec<Arc<Replica>>>,
    resolve_now: tokio::sync::Notify,
    table: MethodTable,
    resolver_started: std::sync::Once,
}

struct Replica {
    addr: SocketAddr,
    channel: Channel,
    in_flight: AtomicUsize,
    /// Set after a failed connection: the replica is skipped until then while others exist.
    down_until: Mutex<Option<Instant>>,
}

/// A peer address that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason} (got {value:?})")]
pub struct BadPeerAddr {
    var: String,
    value: String,
    reason: &'static str,
}

impl PeerChannel {
    /// A channel to `peer` at `addr` (`http://host:port`). Nothing connects until the first call.
    pub fn new(
        peer: &ServiceSpec,
        addr: &str,
        timeout: Duration,
        refresh: Duration,
        metrics: &Metrics,
    ) -> Result<Self, BadPeerAddr> {
        let bad = |reason| BadPeerAddr {
            var: format!("{}_ADDR", peer.env_prefix()),
            value: addr.to_string(),
            reason,
        };
        let rest = addr
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected http://host:port"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (rest, peer.port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                peer: peer.name,
                host: host.to_string(),
                port,
                timeout,
                refresh,
                replicas: RwLock::new(Vec::new()),
                resolve_now: tokio::sync::Notify::new(),
                table: MethodTable::new(
                    metrics,
                    Side::Client,
                    &known_methods(&[peer.grpc_service]),
                ),
                resolver_started: std::sync::Once::new(),
            }),
        })
    }

    /// The peer's service name, for error messages.
    pub fn peer(&self) -> &'static str {
        self.inner.peer
    }

    /// The addresses currently known (for tests and `aula status`).
    pub fn replicas(&self) -> Vec<SocketAddr> {
        self.inner
            .replicas
            .read()
            .unwrap()
            .iter()
            .map(|r| r.addr)
            .collect()
    }

    async fn pick(&self) -> Result<Arc<Replica>, tonic::Status> {
        self.inner
            .resolver_started
            .call_once(|| spawn_resolver(Arc::downgrade(&self.inner)));
        if self.inner.replicas.read().unwrap().is_empty() {
            resolve(&self.inner).await;
        }
        let replicas = self.inner.replicas.read().unwrap();
        let now = Instant::now();
        let up: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(|r| r.down_until.lock().unwrap().is_none_or(|t| t <= now))
            .collect();
        let pool: Vec<&Arc<Replica>> = if up.is_empty() {
            replicas.iter().collect()
        } else {
            up
        };
        match pool.len() {
            0 => Err(tonic::Status::unavailable(format!(
                "{} is unavailable: {} does not resolve to any address",
                self.inner.peer, self.inner.host
            ))),
            1 => Ok(pool[0].clone()),
            n => {
                let a = rand::random_range(0..n);
                let b = (a + 1 + rand::random_range(0..n - 1)) % n;
                let (ra, rb) = (pool[a], pool[b]);
                let pick = if ra.in_flight.load(Ordering::Relaxed)
                    <= rb.in_flight.load(Ordering::Relaxed)
                {
                    ra
                } else {
                    rb
                };
                Ok(pick.clone())
            }
        }
    }
}

fn spawn_resolver(inner: Weak<Inner>) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    if strong.host.parse::<std::net::IpAddr>().is_ok() {
        return; // an address literal never changes
    }
    let refresh = strong.refresh;
    drop(strong);
    tokio::spawn(async move {
        loop {
            let Some(inner) = inner.upgrade() else { return };
            let notified = inner.resolve_now.notified();
            tokio::select! {
                _ = tokio::time::sleep(refresh) => {}
                _ = notified => {
                    // Re-resolve at most once a second however many calls fail.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            resolve(&inner).await;
        }
    });
}

async fn resolve(inner: &Inner) {
    let mut addrs: Vec<SocketAddr> = match tokio::net::lookup_host((
        inner.host.as_str(),
        inner.port,
    ))
    .await
    {
        Ok(a) => a.collect(),
        Err(e) => {
            tracing::debug!(peer = inner.peer, host = %inner.host, error = %e, "peer name does not resolve");
            return; // keep what we had: DNS hiccups must not empty a healthy pool
        }
    };
    // DNS servers rotate their answers; the pool is a set, kept in address order.
    addrs.sort_unstable();
    addrs.dedup();
    let mut replicas = inner.replicas.write().unwrap();
    let mut next: Vec<Arc<Replica>> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match replicas.iter().find(|r| r.addr == addr) {
            Some(existing) => next.push(existing.clone()),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .expect("a socket address is a valid URI")
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_while_idle(true);
                next.push(Arc::new(Replica {
                    addr,
                    channel: endpoint.connect_lazy(),
                    in_flight: AtomicUsize::new(0),
                    down_until: Mutex::new(None),
                }));
            }
        }
    }
    if next
        .iter()
        .map(|r| r.addr)
        .ne(replicas.iter().map(|r| r.addr))
    {
        tracing::info!(peer = inner.peer, replicas = ?next.iter().map(|r| r.addr).collect::<Vec<_>>(), "peer replicas changed");
    }
    *replicas = next;
}

struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The call's deadline: the caller's `grpc-timeout` if shorter than the peer timeout.
fn deadline_of(headers: &http::HeaderMap, default: Duration) -> Duration {
    headers
        .get("grpc-timeout")
        .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
        .map_or(default, |t| t.min(default))
}

/// A `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    if num.is_empty() || num.len() > 8 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl tower_service::Service<http::Request<tonic::body::Body>> for PeerChannel {
    type Response = http::Response<ObservedBody<tonic::body::Body>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let inner = &this.inner;
            let path = req.uri().path().to_string();
            let call = ClientCall::start(&inner.table, inner.peer, req.headers_mut(), &path);
            let timeout = deadline_of(req.headers(), inner.timeout);
            if let Ok(v) = http::HeaderValue::from_str(&format!("{}m", timeout.as_millis())) {
                req.headers_mut().insert("grpc-timeout", v);
            }
            let replica = match this.pick().await {
                Ok(r) => r,
                Err(status) => {
                    call.fail(status.code() as i32);
                    return Err(Box::new(status) as BoxError);
                }
            };
            replica.in_flight.fetch_add(1, Ordering::Relaxed);
            let guard = InFlight(replica.clone());
            let span = call.span().clone();
            let mut channel = replica.channel.clone();
            let sent =
                tokio::time::timeout(
                    timeout,
                    async move { channel.ready().await?.call(req).await },
                )
                .instrument(span)
                .await;
            drop(guard);
            match sent {
                Ok(Ok(response)) => {
                    *replica.down_until.lock().unwrap() = None;
                    Ok(call.response(response))
                }
                Ok(Err(e)) => {
                    *replica.down_until.lock().unwrap() =
                        Some(Instant::now() + Duration::from_secs(2));
                    inner.resolve_now.notify_one();
                    call.fail(tonic::Code::Unavailable as i32);
                    let detail = std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| e.to_string());
                    Err(Box::new(tonic::Status::unavailable(format!(
                        "{} is unavailable ({}): {detail}",
                        inner.peer, replica.addr
                    ))) as BoxError)
                }
                Err(_) => {
                    call.fail(tonic::Code::DeadlineExceeded as i32);
                    Err(Box::new(tonic::Status::deadline_exceeded(format!(
                        "{} did not answer within {timeout:?}",
                        inner.peer
                    ))) as BoxError)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MIDIA;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[tokio::test]
    async fn bad_addresses_name_the_variable() {
        let m = Metrics::new();
        let err = PeerChannel::new(
            &MIDIA,
            "midia:50056",
            Duration::from_secs(1),
            Duration::from_secs(1),
            &m,
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("MIDIA_ADDR"), "{err}");
        assert!(PeerChannel::new(
            &MIDIA,
            "http://midia:x",
            Duration::from_secs(1),
            Duration::from_secs(1),
            &m
        )
        .is_err());
        let ok = PeerChannel::new(
            &MIDIA,
            "http://localhost:50056",
            Duration::from_secs(1),
            Duration::from_secs(1),
            &m,
        )
        .unwrap();
        assert_eq!(ok.peer(), "midia");
    }

    #[tokio::test]
    async fn a_peer_that_is_down_is_unavailable_naming_it() {
        let m = Metrics::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let ch = PeerChannel::new(
            &MIDIA,
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(5),
            Duration::from_secs(1),
            &m,
        )
        .unwrap();
        let mut client =
            aula_api::midia_conteudo_service_client::MidiaConteudoServiceClient::new(ch);
        let err = client.get_status(aula_api::Empty {}).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        assert!(err.message().contains("midia"), "{err:?}");
        let text = m.render();
        assert!(text.contains(r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.MidiaConteudoService",grpc_method="GetStatus",grpc_code="Unavailable"} 1"#), "{text}");
    }
}
