//! Connecting to one replica, with a reconnect backoff per replica address.
//!
//! tonic's channel dials again on every call while a peer is down: with notificacoes down,
//! one cursos made ~100 connection attempts a second. Worse, on one host the services' ports
//! lie inside Linux's ephemeral range, so a storm of connects to a closed local port sooner or
//! later connects a socket to itself, which then holds the port in TIME_WAIT and the restarted
//! peer cannot bind it for a minute. Every dial therefore goes through a [`Dialer`], which
//! refuses to dial while its replica waits out a backoff after a failure: at most one attempt
//! per backoff period per replica, whatever the call rate, and calls fail at once meanwhile.

use crate::{
    backoff::Backoff,
    metrics::Metrics,
    tls::connect::{count_failure, ClientTls, PeerIo},
};
use hyper_util::rt::TokioIo;
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::net::TcpStream;

/// 250 ms doubling to 2 s: a peer that comes back is called again within ~2 s.
pub const RECONNECT: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a replica can be dialed, shared by its dialer and the channel that picks replicas.
#[derive(Debug, Default)]
pub struct DialState {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Connection attempts that failed in a row.
    failures: u32,
    /// No dial before this (set after a failure, and while a probe is running).
    not_before: Option<Instant>,
}

impl DialState {
    /// How long until this replica may be dialed again; `None` when it may be dialed now.
    pub fn waiting(&self) -> Option<Duration> {
        let s = self.inner.lock().unwrap();
        let now = Instant::now();
        s.not_before.filter(|t| *t > now).map(|t| t - now)
    }

    /// True after a failed connection, until a connection succeeds.
    pub fn failing(&self) -> bool {
        self.inner.lock().unwrap().failures > 0
    }

    /// Claims the right to dial now: false while backing off. After a failure only one caller
    /// gets it per backoff period (the probe); the others wait for its outcome.
    fn claim(&self) -> bool {
        let mut s = self.inner.lock().unwrap();
        let now = Instant::now();
        if s.not_before.is_some_and(|t| t > now) {
            return false;
        }
        if s.failures > 0 {
            s.not_before = Some(now + CONNECT_TIMEOUT);
        }
        true
    }

    /// The replica answered a call: it is up. (A TCP connection alone does not prove it: a
    /// listener that accepts and closes, or a process still starting, would storm again.)
    pub fn answered(&self) {
        let mut s = self.inner.lock().unwrap();
        if s.failures > 0 {
            *s = State::default();
        }
    }

    /// Connecting, or the connection, failed: back off before the next attempt.
    pub fn failed(&self) {
        let mut s = self.inner.lock().unwrap();
        s.not_before = Some(Instant::now() + RECONNECT.delay(s.failures));
        s.failures = s.failures.saturating_add(1);
    }
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The replica failed recently; it is not dialed again before its backoff ends.
    #[error("not reconnecting for another {0:?} after the last failure")]
    BackingOff(Duration),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {0}: no answer within {CONNECT_TIMEOUT:?}")]
    TimedOut(SocketAddr),
    /// Connected, but the TLS handshake failed (`reason` as in the handshake metric).
    #[error("TLS handshake with {addr} failed ({reason}): {source}")]
    Tls {
        addr: SocketAddr,
        reason: &'static str,
        source: std::io::Error,
    },
}

/// The connector of one replica's channel.
#[derive(Clone)]
pub struct Dialer {
    pub addr: SocketAddr,
    pub state: Arc<DialState>,
    /// `aula_peer_connect_attempts_total{peer}`.
    pub attempts: metrics::Counter,
    /// Woken after a failed connection, to re-resolve the peer's name.
    pub on_failure: Arc<dyn Fn() + Send + Sync>,
    /// TLS to the peer (`https://` addresses).
    pub tls: Option<ClientTls>,
    /// For `aula_tls_handshake_failures_total{side="client"}`.
    pub metrics: Metrics,
}

impl tower_service::Service<http::Uri> for Dialer {
    type Response = TokioIo<PeerIo>;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, DialError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DialError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if !this.state.claim() {
                let wait = this.state.waiting().unwrap_or_default();
                return Err(DialError::BackingOff(wait));
            }
            this.attempts.increment(1);
            let connect = async {
                let tcp =
                    TcpStream::connect(this.addr)
                        .await
                        .map_err(|source| DialError::Connect {
                            addr: this.addr,
                            source,
                        })?;
                // Small messages must not wait for Nagle + delayed ACK (40 ms stalls).
                let _ = tcp.set_nodelay(true);
                match &this.tls {
                    None => Ok(PeerIo::Plain(tcp)),
                    Some(tls) => tls.handshake(tcp).await.map_err(|source| DialError::Tls {
                        addr: this.addr,
                        reason: count_failure(&this.metrics, &source),
                        source,
                    }),
                }
            };
            let result = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(r) => r,
                Err(_) => Err(DialError::TimedOut(this.addr)),
            };
            match result {
                Ok(io) => Ok(TokioIo::new(io)),
                Err(e) => {
                    this.state.failed();
                    (this.on_failure)();
                    Err(e)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_backoff_period() {
        let s = DialState::default();
        assert!(s.claim() && s.claim(), "a healthy replica is dialed freely");
        s.failed();
        assert!(s.failing());
        assert!(s.waiting().is_some());
        assert!(!s.claim(), "no dial while backing off");
        // Once the backoff is over, one probe; the next caller waits for its outcome.
        s.inner.lock().unwrap().not_before = Some(Instant::now());
        assert!(s.claim());
        assert!(!s.claim());
        s.answered();
        assert!(!s.failing() && s.waiting().is_none() && s.claim());
    }
}
