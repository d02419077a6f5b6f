//! The deadline of the call being served, so that calls it makes to other services get the
//! caller's remaining time instead of a fresh budget per hop.
//!
//! [`DeadlineLayer`] (installed on every server by [`crate::server`]) reads the caller's
//! `grpc-timeout` and runs the handler inside a task-local holding the deadline;
//! [`crate::peers::PeerChannel`] reads it back with [`remaining`]. Work spawned onto other tasks
//! does not inherit it (it is no longer part of the call).

use futures::{future::Either, stream::BoxStream, Stream, StreamExt as _};
use std::{
    future::Future,
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::task::futures::TaskLocalFuture;
use tonic::Status;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The time left to the call being served, if its caller set a deadline.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// Runs `fut` as part of a call that must finish by `deadline`.
pub fn scope<F: Future>(deadline: Instant, fut: F) -> TaskLocalFuture<Instant, F> {
    DEADLINE.scope(deadline, fut)
}

/// What to give the next hop out of `left`: a little less, so that when a peer further down
/// does not answer, the hop that called it reports it (naming it) before its own caller gives
/// up on the whole chain.
pub fn for_next_hop(left: Duration) -> Duration {
    left.saturating_sub((left / 20).min(Duration::from_millis(100)))
}

/// A server stream that ends at the call's deadline: tonic enforces `grpc-timeout` only until
/// the response headers, so a stream that waits for events (SubscribeNotifications) would
/// otherwise run on long after its caller gave up, holding its place among the open streams.
/// When the deadline passes the stream yields DEADLINE_EXCEEDED and ends; one that ends
/// sooner (the service draining, the source closing) ends as it would have. Call it in the
/// handler, where the deadline is in scope; no deadline, no change.
pub fn ends_at_deadline<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
) -> BoxStream<'static, Result<T, Status>> {
    let Some(left) = remaining() else {
        return stream.boxed();
    };
    let deadline = tokio::time::Instant::now() + left;
    let expired = futures::stream::once(async move {
        (tokio::time::Instant::now() >= deadline).then(|| {
            Err(Status::deadline_exceeded(
                "the call's deadline (grpc-timeout) passed; the stream ends here",
            ))
        })
    })
    .filter_map(futures::future::ready);
    stream
        .take_until(tokio::time::sleep_until(deadline))
        .chain(expired)
        .boxed()
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

/// A `grpc-timeout` header value for `d` (milliseconds, at least 1: gRPC has no zero).
pub fn grpc_timeout_value(d: Duration) -> http::HeaderValue {
    let ms = d.as_millis().clamp(1, 99_999_999);
    http::HeaderValue::from_str(&format!("{ms}m")).expect("digits and a unit")
}

/// The server layer putting each call's deadline in scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

middleware!(DeadlineLayer => DeadlineService, stateless);

impl<S, B> tower_service::Service<http::Request<B>> for DeadlineService<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    // The inner future itself, not a box: this runs on every call.
    type Future = Either<S::Future, TaskLocalFuture<Instant, S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
            .map(|t| Instant::now() + t);
        let fut = self.inner.call(req);
        match deadline {
            Some(d) => Either::Right(scope(d, fut)),
            None => Either::Left(fut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_ends_at_the_deadline() {
        use futures::StreamExt;
        let forever = futures::stream::pending::<Result<u8, Status>>();
        let d = Instant::now() + Duration::from_millis(50);
        let mut s = scope(d, async { ends_at_deadline(forever) }).await;
        let end = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("the stream ends at its deadline");
        assert_eq!(
            end.unwrap().unwrap_err().code(),
            tonic::Code::DeadlineExceeded
        );
        assert!(s.next().await.is_none());
        // A stream that ends first ends as it would have; no deadline, no change.
        let short = futures::stream::iter([Ok::<u8, Status>(1)]);
        let far = Instant::now() + Duration::from_secs(60);
        let items: Vec<_> = scope(far, async { ends_at_deadline(short) })
            .await
            .collect()
            .await;
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
        let unbounded = ends_at_deadline(futures::stream::iter([Ok::<u8, Status>(2)]));
        assert_eq!(unbounded.collect::<Vec<_>>().await.len(), 1);
    }

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(grpc_timeout_value(Duration::ZERO), "1m");
        assert_eq!(grpc_timeout_value(Duration::from_secs(2)), "2000m");
    }

    #[tokio::test]
    async fn the_deadline_is_in_scope_and_shrinks() {
        assert_eq!(remaining(), None);
        let d = Instant::now() + Duration::from_secs(2);
        let left = scope(d, async { remaining() }).await.unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1));
        assert!(for_next_hop(left) < left);
        assert_eq!(
            for_next_hop(Duration::from_secs(10)),
            Duration::from_millis(9900)
        );
    }
}
