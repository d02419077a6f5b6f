//! Calls to other services: DNS discovery with client-side balancing, deadlines, metrics and
//! trace propagation, behind one `tower::Service` that every generated client accepts.
//!
//! tonic never re-resolves DNS and a Kubernetes ClusterIP balances connections, not requests.
//! A [`PeerChannel`] owns its resolution loop instead: the peer's name resolves to every replica
//! (a compose service or a headless Service), each address gets its own lazily connected
//! channel, every request goes to the less busy of two random replicas (power of two choices),
//! names are re-resolved every `AULA_DNS_REFRESH` and soon after a connection failure.
//!
//! - Deadlines: a call gets its own budget (`Request::set_timeout`, which may exceed
//!   `AULA_PEER_TIMEOUT`: the chatbot's answers) or `AULA_PEER_TIMEOUT`, and never more than
//!   what is left of the deadline of the call being served ([`crate::deadline`]). A peer that
//!   does not answer in time is DEADLINE_EXCEEDED naming it; that says nothing about whether
//!   it is up, so it does not take a replica out of rotation.
//! - Reconnects: a replica that failed to connect is dialed again only after a backoff
//!   ([`dial`]); meanwhile calls go to other replicas, or fail at once when none is left.
//! - Errors: [`PeerError`] names the service that failed, also across a chain of calls.

mod dial;
mod error;

pub use crate::deadline::parse_grpc_timeout;
pub use dial::{DialError, RECONNECT};
pub use error::{code_name, PeerError};

use crate::{
    deadline,
    metrics::{Metrics, Side},
    observe::{known_methods, ClientCall, MethodTable, ObservedBody},
    spec::ServiceSpec,
    tls::{connect::ClientTls, Tls},
};
use dial::{DialState, Dialer};
use metrics::Label;
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, RwLock, Weak,
    },
    task::{Context, Poll},
    time::Duration,
};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The budget of a call waiting for the chatbot's answer (cursos' AskQuestion, the gateway's
/// question routes): Gemini may take seconds and is retried within it, far beyond
/// `AULA_PEER_TIMEOUT`. Set with `Request::set_timeout`; still capped by the caller's deadline.
pub const ANSWER_BUDGET: Duration = Duration::from_secs(60);

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
    resolve_now: Arc<tokio::sync::Notify>,
    table: MethodTable,
    connect_attempts: metrics::Counter,
    resolver_started: std::sync::Once,
    /// `Some` for an `https://` address: every connection in TLS with our certificate.
    tls: Option<ClientTls>,
    metrics: Metrics,
    /// The service making the calls, named on calls without a user's token (auth).
    caller: Option<&'static str>,
}

struct Replica {
    addr: SocketAddr,
    channel: Channel,
    in_flight: AtomicUsize,
    dial: Arc<DialState>,
    resolve_now: Arc<tokio::sync::Notify>,
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
    /// A plaintext channel to `peer` at `addr` (`http://host:port`). Nothing connects until
    /// the first call.
    pub fn new(
        peer: &ServiceSpec,
        addr: &str,
        timeout: Duration,
        refresh: Duration,
        metrics: &Metrics,
    ) -> Result<Self, BadPeerAddr> {
        Self::with_tls(peer, addr, timeout, refresh, metrics, None)
    }

    /// A channel to `peer` at `addr`: `https://host:port` with TLS on (the server's
    /// certificate must be valid for `host`), `http://host:port` with it off.
    pub fn with_tls(
        peer: &ServiceSpec,
        addr: &str,
        timeout: Duration,
        refresh: Duration,
        metrics: &Metrics,
        tls: Option<&Tls>,
    ) -> Result<Self, BadPeerAddr> {
        let bad = |reason| BadPeerAddr {
            var: format!("{}_ADDR", peer.env_prefix()),
            value: addr.to_string(),
            reason,
        };
        let rest = match (addr.split_once("://"), tls) {
            (Some(("http", rest)), None) | (Some(("https", rest)), Some(_)) => rest,
            (Some(("http", _)), Some(_)) => {
                return Err(bad("TLS is on (AULA_TLS_CERT): write https://host:port"))
            }
            (Some(("https", _)), None) => {
                return Err(bad(
                    "https:// needs AULA_TLS_CERT, AULA_TLS_KEY and AULA_TLS_CA",
                ))
            }
            _ if tls.is_some() => return Err(bad("expected https://host:port")),
            _ => return Err(bad("expected http://host:port")),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (rest, peer.port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let tls = match tls {
            Some(t) => Some(
                ClientTls::new(t.clone(), host)
                    .map_err(|_| bad("the host is not a valid TLS server name"))?,
            ),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                peer: peer.name,
                host: host.to_string(),
                port,
                timeout,
                refresh,
                replicas: RwLock::new(Vec::new()),
                resolve_now: Arc::new(tokio::sync::Notify::new()),
                table: MethodTable::new(
                    metrics,
                    Side::Client,
                    &known_methods(&[peer.grpc_service]),
                ),
                connect_attempts: metrics.counter(
                    "aula_peer_connect_attempts_total",
                    vec![Label::new("peer", peer.name)],
                ),
                resolver_started: std::sync::Once::new(),
                tls,
                metrics: metrics.clone(),
                caller: None,
            }),
        })
    }

    /// Names `service` as the caller of calls made without a user's token ([`crate::auth`]).
    pub fn calling_as(mut self, service: &'static str) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.caller = Some(service);
        }
        self
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

    /// True while every known replica of the peer failed its last connection attempt and waits
    /// out its reconnect backoff: a call now would fail at once without dialing. Callers with
    /// something better to do than fail (the outbox answering "queued") check this first.
    /// False when nothing is known yet (no call made, or the name never resolved).
    pub fn is_known_down(&self) -> bool {
        let replicas = self.inner.replicas.read().unwrap();
        !replicas.is_empty()
            && replicas
                .iter()
                .all(|r| r.dial.failing() && r.dial.waiting().is_some())
    }

    /// The failure of a call to this peer, as a value naming the service that failed.
    pub fn error(&self, status: tonic::Status) -> PeerError {
        PeerError::from_status(self.inner.peer, status)
    }

    async fn pick(&self) -> Result<Arc<Replica>, PeerError> {
        self.inner
            .resolver_started
            .call_once(|| spawn_resolver(Arc::downgrade(&self.inner)));
        if self.inner.replicas.read().unwrap().is_empty() {
            resolve(&self.inner).await;
        }
        let replicas = self.inner.replicas.read().unwrap();
        // Replicas whose last connection failed are left out until their backoff is over (then
        // one call probes them) while others are fine; when none is, every replica is a
        // candidate and its dialer fails the call at once until it is time to retry.
        let up: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(|r| !r.dial.failing() || r.dial.waiting().is_none())
            .collect();
        let pool: Vec<&Arc<Replica>> = if up.is_empty() {
            replicas.iter().collect()
        } else {
            up
        };
        match pool.len() {
            0 => Err(PeerError::new(
                self.inner.peer,
                tonic::Code::Unavailable,
                format!(
                    "unavailable: {} does not resolve to any address",
                    self.inner.host
                ),
            )),
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
                    // Re-resolve at most five times a second however many calls fail.
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
            None => next.push(Arc::new(new_replica(inner, addr))),
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

fn new_replica(inner: &Inner, addr: SocketAddr) -> Replica {
    let dial = Arc::new(DialState::default());
    let resolve_now = inner.resolve_now.clone();
    let dialer = Dialer {
        addr,
        state: dial.clone(),
        attempts: inner.connect_attempts.clone(),
        on_failure: Arc::new(move || resolve_now.notify_one()),
        tls: inner.tls.clone(),
        metrics: inner.metrics.clone(),
    };
    let resolve_now = inner.resolve_now.clone();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid URI")
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(dialer);
    Replica {
        addr,
        channel,
        in_flight: AtomicUsize::new(0),
        dial,
        resolve_now,
    }
}

struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The call's deadline: its own budget (`grpc-timeout` set by `Request::set_timeout`) or the
/// peer default, and never beyond what is left of the call being served.
fn deadline_of(headers: &http::HeaderMap, default: Duration) -> Duration {
    let budget = headers
        .get("grpc-timeout")
        .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
        .unwrap_or(default);
    match deadline::remaining() {
        Some(left) => budget.min(deadline::for_next_hop(left)),
        None => budget,
    }
}

/// tonic's channel enforces the `grpc-timeout` we set too, and may notice first.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Why a call failed without an answer from the peer, in words.
fn transport_failure(replica: &Replica, e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(d) = err.downcast_ref::<DialError>() {
            return d.to_string(); // the dialer has counted it
        }
        source = err.source();
    }
    // Connected, but the connection failed (closed at once, reset, not HTTP/2): as bad as a
    // refused connection for the next attempt's backoff.
    replica.dial.failed();
    replica.resolve_now.notify_one();
    e.source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Records a call that got no answer and returns its error as the status the client sees.
fn failed<T>(call: ClientCall, e: PeerError) -> Result<T, BoxError> {
    call.fail(e.code());
    Err(Box::new(tonic::Status::from(e)))
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
        // Read here, inside the call being served (the future below runs there too, but this
        // is where the caller's intent is).
        let timeout = deadline_of(req.headers(), this.inner.timeout);
        // The user's token of the call being served goes on to the peer (read here, in it).
        crate::auth::forward(req.headers_mut(), this.inner.caller);
        Box::pin(async move {
            let inner = &this.inner;
            let path = req.uri().path().to_string();
            let call = ClientCall::start(&inner.table, inner.peer, req.headers_mut(), &path);
            if timeout.is_zero() {
                return failed(
                    call,
                    PeerError::new(
                        inner.peer,
                        tonic::Code::DeadlineExceeded,
                        "not called: the caller's deadline has passed",
                    ),
                );
            }
            req.headers_mut()
                .insert("grpc-timeout", deadline::grpc_timeout_value(timeout));
            let replica = match this.pick().await {
                Ok(r) => r,
                Err(e) => return failed(call, e),
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
                    replica.dial.answered();
                    Ok(call.response(response))
                }
                Ok(Err(e)) if !is_timeout(&e) => failed(
                    call,
                    PeerError::new(
                        inner.peer,
                        tonic::Code::Unavailable,
                        format!(
                            "unavailable ({}): {}",
                            replica.addr,
                            transport_failure(&replica, &e)
                        ),
                    ),
                ),
                // No answer in time (our timer, or tonic's own, reading the same grpc-timeout)
                // says nothing about whether the replica is up: it stays in rotation.
                _ => failed(
                    call,
                    PeerError::new(
                        inner.peer,
                        tonic::Code::DeadlineExceeded,
                        format!("no answer within {timeout:?} ({})", replica.addr),
                    ),
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests;
