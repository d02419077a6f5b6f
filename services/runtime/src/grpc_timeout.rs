//! The caller's `grpc-timeout`, enforced by the server: a call still running at its deadline
//! is answered CANCELLED ("Timeout expired") and its handler dropped, so no work is done for a
//! caller that has given up.
//!
//! tonic's `Server` did this with a layer of its own (private to tonic, and always on); the
//! runtime serves connections itself ([`crate::serve`]), so it keeps the behaviour here: same
//! error (`tonic::TimeoutExpired`, which `tonic::service::RecoverError` turns into the same
//! status), same place (around every layer but shedding). The clock starts when the call is
//! called, which is at its stream's arrival ([`crate::arrival`]).

use crate::deadline::parse_grpc_timeout;
use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};
use tokio::time::Sleep;

/// What tonic's `RecoverError` turns into a status.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer; stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTimeoutLayer;

middleware!(GrpcTimeoutLayer => GrpcTimeout, stateless);

impl<S, B> tower_service::Service<http::Request<B>> for GrpcTimeout<S>
where
    S: tower_service::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // A malformed value is ignored, as tonic did: the call runs without a deadline.
        let sleep = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
            .map(tokio::time::sleep);
        TimeoutFuture {
            inner: self.inner.call(req),
            sleep,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r.map_err(Into::into));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => {
                ready!(sleep.poll(cx));
                Poll::Ready(Err(tonic::TimeoutExpired(()).into()))
            }
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tower::ServiceExt as _;
    use tower_layer::Layer as _;

    #[tokio::test]
    async fn a_call_past_its_grpc_timeout_is_cancelled_and_a_malformed_one_is_ignored() {
        const WORK: Duration = Duration::from_millis(300);
        let slow = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(WORK).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
        let svc = tonic::service::RecoverErrorLayer::new().layer(GrpcTimeoutLayer.layer(slow));
        let req = |timeout: &str| {
            http::Request::builder()
                .uri("/services.CursosService/GetStatus")
                .header("grpc-timeout", timeout)
                .body(())
                .unwrap()
        };
        let started = Instant::now();
        let answer = svc.clone().oneshot(req("50m")).await.unwrap();
        let status = tonic::Status::from_header_map(answer.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
        assert!(
            started.elapsed() < WORK,
            "cancelled after {:?}",
            started.elapsed()
        );

        let started = Instant::now();
        let answer = svc.clone().oneshot(req("soon")).await.unwrap();
        assert!(tonic::Status::from_header_map(answer.headers()).is_none());
        assert!(started.elapsed() >= WORK);
    }
}
