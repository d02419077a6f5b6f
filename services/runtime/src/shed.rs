//! Load shedding instead of queueing: a service handles at most `AULA_MAX_IN_FLIGHT` calls at
//! once ([`crate::limits::Limits::max_in_flight`]); the next call is answered
//! RESOURCE_EXHAUSTED at once, with a retry hint, instead of waiting in a queue until its
//! deadline. Overloaded, a service keeps answering what it admits at its normal latency and
//! tells everyone else to come back later, and its memory stays bounded.
//!
//! Health checks are never shed: a busy service is still alive and serving, and a probe that
//! failed under load would have its pod restarted exactly when it is needed most.
//!
//! The in-flight limit must leave room for calls waiting on a peer or a database, so it is
//! large, and on its own it lets that many calls wait for the CPU: 256 GetUserCourses queued
//! behind one core made every admitted call, and every connection's next read, wait one pass of
//! the runtime's run queue over all of them (BENCHMARKS.md, "Limits under load"). So a second,
//! smaller bound counts only the calls admitted and not yet started (`AULA_MAX_QUEUED`, by
//! default 128 per core: [`crate::limits::Limits::max_queued`]); beyond it a call is refused the
//! same way, if its connection holds its share of the queue
//! ([`crate::serve::paced::Debt::holds_share`]): heavy clients filling the queue do not get a
//! light client's calls refused, and those start ahead of theirs ([`crate::serve::starts`]). A
//! call waiting on a peer has started and no longer counts: the bound is on the time a call
//! waits for the CPU, not on the service's concurrency.
//!
//! A call holds its place until its response has been sent in full (a streamed answer is work
//! too), or its client went away; subscriptions, which live as long as their clients like and
//! are bounded by limits of their own, hold it only until their headers.
//!
//! The limit counts a call from its stream's arrival: the runtime calls this layer inside
//! hyper's `Service::call`, in the connection's task, the moment the stream's HEADERS are read
//! ([`crate::arrival`]). Counted only when a stream's task first ran (tonic's adapter), calls
//! queued in tokio's run queue were invisible to it: under overload nothing was refused and
//! admitted calls waited hundreds of milliseconds (BENCHMARKS.md, "Overload").
//!
//! A refusal must cost as little as it can: under overload most calls are refused, and every
//! instruction a refusal takes is taken from the calls being served on the same cores. So this
//! layer is the outermost of the server's own (before the observing layer's span, clock and
//! per-call state, before authorization, routing and decoding), and a refusal does a semaphore
//! try, two counters and one copy of an answer built at start (its header map: the only
//! allocation). Its answer is ready at once, so it is sent from the connection's task without
//! a task of its own ([`crate::arrival::StreamExec`]): no spawn, no wait in the run queue. It
//! is still counted in `grpc_server_started_total` and
//! `grpc_server_handled_total{grpc_code="ResourceExhausted"}`, so error ratios and dashboards see
//! shed calls as before, and in `aula_shed_total`. What remains of a refusal's cost is what
//! hyper and h2 do for any stream (the frames, HPACK, the request's head): BENCHMARKS.md has the
//! figures.

use crate::{
    limits::Limits,
    metrics::Metrics,
    observe::MethodTable,
    serve::paced::{Debt, Open, Waiting},
};
use metrics::{Counter, Gauge, Label};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Admitted calls not yet started (their task not yet run): waiting for the CPU.
    queued: AtomicUsize,
    max_queued: usize,
    shed: Counter,
    shed_queued: Counter,
    in_flight: Gauge,
    /// The per-method gRPC metrics (the observing layer's), for counting refusals.
    methods: MethodTable,
    /// The refusals' headers (trailers-only: status, message, retry hint), built once: at
    /// the in-flight limit, and at the queue's.
    refusal: http::HeaderMap,
    refusal_queued: http::HeaderMap,
}

impl ShedLayer {
    /// `methods`: the observing layer's table ([`crate::observe::ServerLayer::methods`]),
    /// which this layer's refusals never reach.
    pub fn new(
        metrics: &Metrics,
        service: &'static str,
        limits: &Limits,
        methods: MethodTable,
    ) -> Self {
        let Limits {
            max_in_flight,
            max_queued,
            ..
        } = *limits;
        metrics
            .gauge("aula_max_in_flight", vec![])
            .set(max_in_flight as f64);
        metrics
            .gauge("aula_max_queued", vec![])
            .set(max_queued as f64);
        let headers = |r: http::Response<()>| r.into_parts().0.headers;
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                queued: AtomicUsize::new(0),
                max_queued,
                shed: metrics.counter("aula_shed_total", vec![Label::new("reason", "in_flight")]),
                shed_queued: metrics
                    .counter("aula_shed_total", vec![Label::new("reason", "queued")]),
                in_flight: metrics.gauge("aula_in_flight_calls", vec![]),
                methods,
                refusal: headers(shed_response(
                    service,
                    format_args!(
                        "is handling its limit of {max_in_flight} calls (AULA_MAX_IN_FLIGHT)"
                    ),
                )),
                refusal_queued: headers(shed_response(
                    service,
                    format_args!("has {max_queued} calls waiting for the CPU (AULA_MAX_QUEUED)"),
                )),
            }),
        }
    }
}

middleware!(ShedLayer => ShedService);

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ShedService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<HeldBody<ResBody>>;
    type Error = S::Error;
    type Future = ShedFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        if path.starts_with(HEALTH_PREFIX) {
            return ShedFuture::Admitted {
                inner: self.inner.call(req),
                place: None,
                until_headers: true,
                queued: None,
            };
        }
        let layer = &self.layer.inner;
        let debt = req.extensions().get::<Debt>();
        // Enough admitted calls already wait for the CPU: one more would wait behind them all,
        // so it is refused as one beyond the in-flight limit is; but only from a connection
        // holding its share of the queue. A light client's call is admitted while heavy
        // clients fill the queue, and starts ahead of theirs ([`crate::serve::starts`]):
        // connections below their share add at most `max_queued` calls between them, and the
        // in-flight limit still bounds everything.
        let holds_share = debt.is_none_or(|d| d.holds_share(layer.max_queued));
        let queue_full = holds_share && layer.queued.load(Relaxed) >= layer.max_queued;
        // At a limit, refused without touching the semaphore's reference count.
        let permit = match layer.permits.available_permits() {
            _ if queue_full => None,
            0 => None,
            _ => layer.permits.clone().try_acquire_owned().ok(),
        };
        let Some(permit) = permit else {
            let (counter, headers) = if queue_full {
                (&layer.shed_queued, &layer.refusal_queued)
            } else {
                (&layer.shed, &layer.refusal)
            };
            counter.increment(1);
            // Its connection reads its next calls later ([`crate::serve::paced`]), if it holds
            // its share: those are the clients that replace each refusal at once.
            if let Some(debt) = debt.filter(|_| holds_share) {
                debt.charge();
            }
            let method = layer.methods.get(path);
            method.started();
            // No time was spent on it: the handling histogram gets a zero, as it did when the
            // observing layer timed a refusal.
            method.handled(tonic::Code::ResourceExhausted, Duration::ZERO);
            let mut response = http::Response::new(HeldBody::free(ResBody::default()));
            *response.headers_mut() = headers.clone();
            return ShedFuture::Shed {
                response: Some(response),
            };
        };
        let until_headers = HELD_UNTIL_HEADERS.iter().any(|p| path.starts_with(p));
        let mut place = Place::take(permit, layer.in_flight.clone());
        // Open on its connection as long as it holds its place, and waiting until it starts
        // (its connection's share of the queue, [`crate::serve::paced`]; its turn to start,
        // [`crate::serve::starts`]).
        place.open = debt.map(Debt::opened);
        let queued = Queued::enter(layer, debt.map(Debt::waiting));
        ShedFuture::Admitted {
            inner: self.inner.call(req),
            place: Some(place),
            until_headers,
            queued: Some(queued),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a call through the layer: a plain state machine rather than a boxed
    /// `async` block, since every call goes through it.
    #[project = ShedFutureProj]
    pub enum ShedFuture<F, B> {
        /// Admitted, holding its place (health: none).
        Admitted {
            #[pin]
            inner: F,
            place: Option<Place>,
            until_headers: bool,
            // Among the calls waiting for the CPU until first polled.
            queued: Option<Queued>,
        },
        /// Answered RESOURCE_EXHAUSTED at once.
        Shed { response: Option<http::Response<HeldBody<B>>> },
    }
}

/// A refusal's answer is ready when the call is made: [`crate::arrival::StreamExec`] sends it
/// from the connection's task instead of spawning a task for it. An admitted call starts in
/// its turn, ahead of busy connections' calls if none of its connection's others is waiting to
/// start ([`crate::serve::starts`]: fq_codel's sparse flow); health, never counted, at once.
impl<F, B> crate::arrival::Arrived for ShedFuture<F, B> {
    fn start(&self) -> crate::arrival::Start {
        use crate::arrival::Start;
        match self {
            Self::Shed { .. } => Start::Answered,
            // Its connection had another call waiting to start: this one waits its turn.
            Self::Admitted {
                queued: Some(Queued(_, Some(waiting))),
                ..
            } if waiting.calls() > 1 => Start::Bulk,
            Self::Admitted { place: Some(_), .. } => Start::Sparse,
            Self::Admitted { place: None, .. } => Start::Spawn,
        }
    }
}

impl<F, B, E> Future for ShedFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<HeldBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ShedFutureProj::Shed { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            ShedFutureProj::Admitted {
                inner,
                place,
                until_headers,
                queued,
            } => {
                // Its task runs: no longer waiting for the CPU.
                *queued = None;
                // An error drops the place with the future.
                let response = ready!(inner.poll(cx))?;
                let place = place.take();
                Poll::Ready(Ok(if *until_headers {
                    drop(place);
                    response.map(HeldBody::free)
                } else {
                    response.map(|inner| HeldBody { inner, place })
                }))
            }
        }
    }
}

/// An admitted call whose task has not run yet, counted among the calls waiting for the CPU
/// until dropped: at the call's first poll, or with the call should it never run.
/// Counted among its connection's too (`waiting`: [`crate::serve::starts`] favours a connection
/// with none waiting).
pub struct Queued(Arc<Inner>, Option<Waiting>);

impl Queued {
    fn enter(inner: &Arc<Inner>, waiting: Option<Waiting>) -> Self {
        inner.queued.fetch_add(1, Relaxed);
        Self(inner.clone(), waiting)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Relaxed);
    }
}

/// Long-lived streams bounded by limits of their own (notificacoes' per-user and total stream
/// limits; reflection is a cheap lookup): they hold an in-flight place only until their
/// headers, so that open subscriptions cannot fill `AULA_MAX_IN_FLIGHT`. Every other call holds
/// its place until its response has been sent in full (a streamed answer is still work).
const HELD_UNTIL_HEADERS: &[&str] = &[
    "/services.NotificacoesService/SubscribeNotifications",
    "/grpc.reflection.",
];

/// A place among a bounded number (a call's among the in-flight ones, a connection's among the
/// open ones): counted on its gauge from when it is taken until it is given back (dropped).
pub struct Place {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
    /// A call's: open on its connection until it gives its place back.
    open: Option<Open>,
}

impl Place {
    pub(crate) fn take(permit: OwnedSemaphorePermit, gauge: Gauge) -> Self {
        gauge.increment(1.0);
        Self {
            _permit: permit,
            gauge,
            open: None,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its call's in-flight place until its end (or until it is
    /// dropped: the client went away).
    pub struct HeldBody<B> {
        #[pin]
        inner: B,
        place: Option<Place>,
    }
}

impl<B> HeldBody<B> {
    fn free(inner: B) -> Self {
        Self { inner, place: None }
    }
}

impl<B: Default> Default for HeldBody<B> {
    fn default() -> Self {
        Self::free(B::default())
    }
}

impl<B: http_body::Body> http_body::Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            // Trailers or the end: the call is over.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => *this.place = None,
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => *this.place = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a call beyond a limit, which `why` names.
fn shed_response<B: Default>(service: &str, why: std::fmt::Arguments) -> http::Response<B> {
    let mut status = tonic::Status::resource_exhausted(format!("{service} {why}; retry later"));
    status.metadata_mut().insert(
        "grpc-retry-pushback-ms",
        tonic::metadata::MetadataValue::from(RETRY_PUSHBACK_MS),
    );
    status.into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response body that ends at once, or never (a long streamed answer).
    #[derive(Default)]
    struct TestBody {
        endless: bool,
    }

    impl http_body::Body for TestBody {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            if self.endless {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        }
    }

    fn is_shed<B>(r: &http::Response<B>) -> bool {
        r.headers().get("grpc-status").is_some_and(|v| {
            tonic::Code::from_bytes(v.as_bytes()) == tonic::Code::ResourceExhausted
        })
    }

    /// `inner` behind a shedding layer with one in-flight place.
    fn one_place<S>(service: &'static str, inner: S) -> ShedService<S> {
        use tower_layer::Layer as _;
        let metrics = Metrics::new();
        let methods = MethodTable::new(&metrics, crate::metrics::Side::Server, &[]);
        let limits = Limits {
            max_in_flight: 1,
            ..Limits::default()
        };
        ShedLayer::new(&metrics, service, &limits, methods).layer(inner)
    }

    #[tokio::test]
    async fn a_streamed_answer_holds_its_place_until_it_ends_and_a_subscription_does_not() {
        use tower::ServiceExt as _;
        let inner = tower::service_fn(|req: http::Request<()>| async move {
            let endless = req.uri().path() != "/services.CursosService/GetStatus";
            Ok::<_, std::convert::Infallible>(http::Response::new(TestBody { endless }))
        });
        let svc = one_place("chatbot", inner);
        let call = |path: &'static str| {
            let svc = svc.clone();
            async move {
                let req = http::Request::builder().uri(path).body(()).unwrap();
                svc.oneshot(req).await.unwrap()
            }
        };
        let streamed = call("/services.ChatbotService/ResolveDuvidaStream").await;
        assert!(!is_shed(&streamed));
        // Its headers are sent, its answer is still streaming: the one place is taken.
        assert!(is_shed(&call("/services.CursosService/GetStatus").await));
        assert!(!is_shed(&call("/grpc.health.v1.Health/Check").await));
        drop(streamed); // the client went away
        assert!(!is_shed(&call("/services.CursosService/GetStatus").await));

        // A subscription gives its place back with its headers.
        let subscription = call("/services.NotificacoesService/SubscribeNotifications").await;
        assert!(!is_shed(&subscription));
        assert!(!is_shed(&call("/services.CursosService/GetStatus").await));
    }

    #[tokio::test]
    async fn an_admitted_call_is_open_on_its_connection_until_its_answer_ends() {
        use tower::ServiceExt as _;
        let inner = tower::service_fn(|_: http::Request<()>| async move {
            Ok::<_, std::convert::Infallible>(http::Response::new(TestBody { endless: false }))
        });
        let svc = one_place("cursos", inner);
        let debt = Debt::default();
        let call = || {
            let mut req = http::Request::builder()
                .uri("/services.CursosService/GetStatus")
                .body(())
                .unwrap();
            req.extensions_mut().insert(debt.clone());
            svc.clone().oneshot(req)
        };
        let answer = call().await.unwrap();
        assert!(!is_shed(&answer));
        // Its answer not sent yet: open on its connection, and holding the one place.
        assert_eq!(debt.open_calls(), 1);
        assert!(is_shed(&call().await.unwrap()));
        assert_eq!(debt.open_calls(), 1, "a refused call is never open");

        let mut body = std::pin::pin!(answer.into_body());
        let end = std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await;
        assert!(end.is_none());
        assert_eq!(debt.open_calls(), 0, "answered in full: no longer open");
        assert!(!is_shed(&call().await.unwrap()), "the place was given back");
    }

    /// A shedding layer with `limits` over a service that answers at once.
    fn answering_at_once(
        limits: &Limits,
    ) -> ShedService<
        impl tower_service::Service<
            http::Request<()>,
            Response = http::Response<TestBody>,
            Error = std::convert::Infallible,
        >,
    > {
        use tower_layer::Layer as _;
        let metrics = Metrics::new();
        let methods = MethodTable::new(&metrics, crate::metrics::Side::Server, &[]);
        let inner = tower::service_fn(|_: http::Request<()>| async move {
            Ok::<_, std::convert::Infallible>(http::Response::new(TestBody::default()))
        });
        ShedLayer::new(&metrics, "cursos", limits, methods).layer(inner)
    }

    /// A call from the connection of `debt`, made and not polled: admitted, it waits for the
    /// CPU (queued).
    fn call_from<S>(svc: &mut ShedService<S>, debt: &Debt) -> ShedFuture<S::Future, TestBody>
    where
        S: tower_service::Service<http::Request<()>, Response = http::Response<TestBody>>,
    {
        let mut req = http::Request::builder()
            .uri("/services.CursosService/GetUserCourses")
            .body(())
            .unwrap();
        req.extensions_mut().insert(debt.clone());
        tower_service::Service::call(svc, req)
    }

    #[test]
    fn a_full_queue_refuses_and_paces_only_connections_holding_their_share() {
        use crate::{
            arrival::{Arrived as _, Start},
            serve::paced::Active,
        };
        let mut svc = answering_at_once(&Limits {
            max_in_flight: 16,
            max_queued: 2,
            ..Limits::default()
        });
        let active = Active::default();
        let (heavy, light) = (Debt::new(active.clone()), Debt::new(active));
        let heavy1 = call_from(&mut svc, &heavy);
        assert_eq!(
            heavy1.start(),
            Start::Sparse,
            "none of its connection's waits"
        );
        let heavy2 = call_from(&mut svc, &heavy);
        assert_eq!(heavy2.start(), Start::Bulk);
        // The queue is full, and the heavy connection holds all of it.
        let refused = call_from(&mut svc, &heavy);
        assert_eq!(refused.start(), Start::Answered);
        assert!(heavy.owed() > 0, "a refusal holding its share is paced");

        // The light connection's first call is admitted all the same, and starts first.
        let light1 = call_from(&mut svc, &light);
        assert_eq!(light1.start(), Start::Sparse);
        // Its second one would hold its share (2 of the 2 places split between two): refused,
        // and, since it holds its share, paced.
        assert_eq!(call_from(&mut svc, &light).start(), Start::Answered);
        assert!(light.owed() > 0);
        drop((heavy1, heavy2, light1));
        assert_eq!(light.open_calls() + heavy.open_calls(), 0);
    }

    #[test]
    fn a_call_waits_its_turn_only_behind_its_connections_calls_still_waiting() {
        use crate::arrival::{Arrived as _, Start};
        let mut svc = answering_at_once(&Limits::default());
        let debt = Debt::default();
        let mut first = Box::pin(call_from(&mut svc, &debt));
        assert_eq!(first.start(), Start::Sparse);
        // Started (its first poll) and still open: its answer is not sent yet.
        let Poll::Ready(Ok(answer)) = first
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        else {
            panic!("the call did not start");
        };
        assert_eq!(debt.open_calls(), 1);
        let second = call_from(&mut svc, &debt);
        assert_eq!(
            second.start(),
            Start::Sparse,
            "none of its connection's waits"
        );
        let third = call_from(&mut svc, &debt);
        assert_eq!(
            third.start(),
            Start::Bulk,
            "behind the second, still waiting"
        );
        drop((answer, second, third));
    }

    #[test]
    fn a_shed_call_says_when_to_come_back() {
        let response: http::Response<()> = shed_response(
            "cursos",
            format_args!("is handling its limit of 3 calls (AULA_MAX_IN_FLIGHT)"),
        );
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("AULA_MAX_IN_FLIGHT"));
        assert_eq!(response.headers()["grpc-retry-pushback-ms"], "1000");
    }
}
