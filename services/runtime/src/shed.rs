//! Load shedding instead of queueing: a service handles at most `AULA_MAX_IN_FLIGHT` calls at
//! once ([`crate::limits::Limits::max_in_flight`]); the next call is answered
//! RESOURCE_EXHAUSTED at once, with a retry hint, instead of waiting in a queue until its
//! deadline. Overloaded, a service keeps answering what it admits at its normal latency and
//! tells everyone else to come back later, and its memory stays bounded.
//!
//! Health checks are never shed: a busy service is still alive and serving, and a probe that
//! failed under load would have its pod restarted exactly when it is needed most.
//!
//! A call holds its place until its handler has answered (the response headers); a server
//! stream then runs outside the limit (notificacoes bounds its streams itself). The same layer
//! gives an oversized message gRPC's standard code: tonic reports it as OUT_OF_RANGE, the gRPC
//! specification (and every other implementation) as RESOURCE_EXHAUSTED.

use crate::metrics::Metrics;
use metrics::{Counter, Gauge, Label};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::sync::Semaphore;

/// The retry hint sent with a shed call (`grpc-retry-pushback-ms`, read by gRPC clients with a
/// retry policy and by the gateway for its `Retry-After`).
pub const RETRY_PUSHBACK_MS: u64 = 1000;

/// Paths never shed.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// The layer; one per service, shared by all its connections.
#[derive(Clone)]
pub struct ShedLayer {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    limit: usize,
    service: &'static str,
    shed: Counter,
    in_flight: Gauge,
}

impl ShedLayer {
    pub fn new(metrics: &Metrics, service: &'static str, max_in_flight: usize) -> Self {
        metrics
            .gauge("aula_max_in_flight", vec![])
            .set(max_in_flight as f64);
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                limit: max_in_flight,
                service,
                shed: metrics.counter("aula_shed_total", vec![Label::new("reason", "in_flight")]),
                in_flight: metrics.gauge("aula_in_flight_calls", vec![]),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ShedService<S> {
    inner: S,
    layer: ShedLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ShedService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        if req.uri().path().starts_with(HEALTH_PREFIX) {
            return Box::pin(self.inner.call(req));
        }
        let layer = &self.layer.inner;
        let Ok(permit) = layer.permits.clone().try_acquire_owned() else {
            layer.shed.increment(1);
            return Box::pin(std::future::ready(Ok(shed_response(
                layer.service,
                layer.limit,
            ))));
        };
        layer.in_flight.increment(1.0);
        let in_flight = layer.in_flight.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            drop(permit);
            in_flight.decrement(1.0);
            result.map(oversized_is_resource_exhausted)
        })
    }
}

/// The answer to a call beyond the limit.
fn shed_response<B: Default>(service: &str, limit: usize) -> http::Response<B> {
    let mut status = tonic::Status::resource_exhausted(format!(
        "{service} is handling its limit of {limit} calls (AULA_MAX_IN_FLIGHT); retry later"
    ));
    status.metadata_mut().insert(
        "grpc-retry-pushback-ms",
        tonic::metadata::MetadataValue::from(RETRY_PUSHBACK_MS),
    );
    status.into_http()
}

/// tonic answers a request over the message size limit with OUT_OF_RANGE ("Error, decoded
/// message length too large: ..."); gRPC's code for it is RESOURCE_EXHAUSTED. Only a
/// trailers-only answer (how tonic reports a failed decode of a unary request) is rewritten.
fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    // The cheap test first: almost every answer is something else.
    if response
        .headers()
        .get("grpc-status")
        .is_none_or(|v| v != "11")
    {
        return response;
    }
    let Some(original) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let Some(sizes) = original
        .message()
        .strip_prefix("Error, decoded message length too large: found ")
    else {
        return response;
    };
    // "5242885 bytes, the limit is: 4194304 bytes"
    let (found, limit) = sizes
        .split_once(", the limit is: ")
        .unwrap_or((sizes, "the limit"));
    let status = tonic::Status::resource_exhausted(format!(
        "request message is {found}, larger than {limit} (AULA_MAX_MESSAGE_SIZE)"
    ));
    // Replaces grpc-status and grpc-message (percent-encoded as gRPC wants).
    let _ = status.add_header(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_request_is_resource_exhausted_naming_the_limit() {
        let status = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5242885 bytes, the limit is: 4194304 bytes",
        );
        let response: http::Response<()> = oversized_is_resource_exhausted(status.into_http());
        let back = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(back.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            back.message(),
            "request message is 5242885 bytes, larger than 4194304 bytes (AULA_MAX_MESSAGE_SIZE)"
        );
        // Anything else passes untouched.
        let other: http::Response<()> = tonic::Status::out_of_range("page 9").into_http();
        let same = oversized_is_resource_exhausted(other);
        let back = tonic::Status::from_header_map(same.headers()).unwrap();
        assert_eq!(back.code(), tonic::Code::OutOfRange);
    }

    #[test]
    fn a_shed_call_says_when_to_come_back() {
        let response: http::Response<()> = shed_response("cursos", 3);
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("AULA_MAX_IN_FLIGHT"));
        assert_eq!(response.headers()["grpc-retry-pushback-ms"], "1000");
    }
}
