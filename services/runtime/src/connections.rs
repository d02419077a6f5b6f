//! Bounds on the connections of a gRPC server, whatever the transport (plaintext or TLS):
//! - at most `AULA_MAX_CONNECTIONS` are open; beyond it new ones wait in the kernel's accept
//!   queue instead of each costing a task and its buffers;
//! - a new connection must send the 24-byte HTTP/2 preface within `AULA_HTTP2_PREFACE_TIMEOUT`,
//!   or it is closed. hyper has no such timeout, so a socket that connects and sends nothing
//!   (or half a preface) was held until `AULA_MAX_CONNECTION_AGE` and its grace ran out.
//!
//! - a connection still open `AULA_MAX_CONNECTION_AGE` + `AULA_MAX_CONNECTION_AGE_GRACE` after
//!   it was accepted is closed. At the age itself hyper sends GOAWAY ([`crate::serve`]): no new
//!   calls, the open ones finish; the grace bounds how long they may take, from under hyper,
//!   whatever the connection is doing.
//!
//! Once HTTP/2 runs, keepalive PINGs close dead peers, idle or not, within
//! `AULA_HTTP2_KEEPALIVE_INTERVAL` + `AULA_HTTP2_KEEPALIVE_TIMEOUT`; a live idle connection gets
//! its GOAWAY at the age ([`crate::limits::Limits`]).

use crate::metrics::Metrics;
use futures::{Stream, StreamExt as _};
use metrics::Gauge;
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tonic::transport::server::Connected;

/// What a client sends first on an HTTP/2 connection.
const PREFACE_LEN: usize = 24;

/// The bounds [`guard`] puts on each connection.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// `AULA_MAX_CONNECTIONS`.
    pub max: usize,
    /// `AULA_HTTP2_PREFACE_TIMEOUT`.
    pub preface_timeout: Duration,
    /// `AULA_MAX_CONNECTION_AGE` + `AULA_MAX_CONNECTION_AGE_GRACE`: closed then, whatever runs.
    pub lifetime: Duration,
}

impl Bounds {
    pub fn of(limits: &crate::limits::Limits) -> Self {
        Self {
            max: limits.max_connections,
            preface_timeout: limits.preface_timeout,
            lifetime: limits
                .max_connection_age
                .saturating_add(limits.max_connection_age_grace),
        }
    }
}

/// Caps `incoming` at `bounds.max` open connections, gives each `bounds.preface_timeout` to
/// start HTTP/2 and closes it after `bounds.lifetime`.
pub fn guard<S, IO>(
    incoming: S,
    bounds: Bounds,
    metrics: &Metrics,
) -> impl Stream<Item = io::Result<Guarded<IO>>>
where
    S: Stream<Item = io::Result<IO>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(bounds.max));
    let open = metrics.gauge("aula_grpc_connections_open", vec![]);
    let state = (Box::pin(incoming), slots, open);
    futures::stream::unfold(state, move |(mut incoming, slots, open)| async move {
        // A free slot first: at the cap, the next connection stays in the accept queue.
        let permit = slots.clone().acquire_owned().await.ok()?;
        let next = incoming.next().await?;
        let guarded = next.map(|io| Guarded::new(io, permit, bounds, open.clone()));
        Some((guarded, (incoming, slots, open)))
    })
}

/// One open connection's place among the allowed ones; given back when the connection closes.
type Slot = crate::shed::Place;

pin_project_lite::pin_project! {
    /// A connection holding its slot, with a deadline on its HTTP/2 preface.
    pub struct Guarded<IO> {
        #[pin]
        io: IO,
        preface_left: usize,
        // Some until the preface has arrived.
        deadline: Option<Pin<Box<Sleep>>>,
        // When the connection is closed whatever runs on it (age + grace).
        end_of_life: Pin<Box<Sleep>>,
        slot: Slot,
    }
}

impl<IO> Guarded<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit, bounds: Bounds, open: Gauge) -> Self {
        Self {
            io,
            preface_left: PREFACE_LEN,
            deadline: Some(Box::pin(tokio::time::sleep(bounds.preface_timeout))),
            end_of_life: Box::pin(tokio::time::sleep(bounds.lifetime)),
            slot: Slot::take(permit, open),
        }
    }
}

impl<IO: AsyncRead> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        // A peer sending without pause never lets the read below be Pending: checked here too.
        if this.end_of_life.is_elapsed() {
            return Poll::Ready(Err(past_lifetime()));
        }
        let before = buf.filled().len();
        match this.io.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.deadline.is_some() {
                    let n = buf.filled().len() - before;
                    *this.preface_left = this.preface_left.saturating_sub(n);
                    // The preface is in (or the peer closed): no deadline from here on.
                    if *this.preface_left == 0 || n == 0 {
                        *this.deadline = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within AULA_HTTP2_PREFACE_TIMEOUT",
                    )));
                }
                // hyper keeps a read pending for the connection's whole life, so this is
                // polled (and its timer registered) however busy the connection is.
                if this.end_of_life.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(past_lifetime()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

fn past_lifetime() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "open past AULA_MAX_CONNECTION_AGE + AULA_MAX_CONNECTION_AGE_GRACE",
    )
}

/// `AsyncWrite` for a pinned wrapper whose `io` field does the writing: the wrappers here
/// (this module's `Guarded`, serve's `Paced`) act on reads and pass writes through unchanged.
macro_rules! forward_write {
    ($wrapper:ident) => {
        impl<IO: tokio::io::AsyncWrite> tokio::io::AsyncWrite for $wrapper<IO> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.project().io.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.project().io.poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.project().io.poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.project().io.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.io.is_write_vectored()
            }
        }
    };
}
pub(crate) use forward_write;

forward_write!(Guarded);

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
