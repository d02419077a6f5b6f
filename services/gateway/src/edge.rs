//! The one layer every request passes on its way to its route, in this order: observed
//! ([`crate::observe`]: span, metrics), authenticated ([`crate::auth`]), held to its client's
//! rate, given an in-flight place, and its body read within its deadline ([`crate::limits`]).
//!
//! These were five `axum::middleware::from_fn` layers. Each one cloned the state, split and
//! rebuilt the request to extract it, boxed the rest of the stack as a `Next` and boxed its own
//! future, on every request (~21k instructions per request, callgrind). Here a request costs
//! one future and one clone of the state; what each step does, and the order, are the same.

use crate::{auth, limits, observe::Observed, state::AppState};
use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use futures::future::BoxFuture;
use std::{
    convert::Infallible,
    task::{Context, Poll},
};
use tower::{Layer, Service};
use tracing::Instrument;

/// Wraps each route (`Router::layer`, so that the matched route is known to the metrics).
#[derive(Clone)]
pub struct EdgeLayer(pub AppState);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The route polled ready is the one to call; a clone stays for the next request.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let observed = Observed::start(&req);
            let response = guarded(&state, ready, req)
                .instrument(observed.span().clone())
                .await;
            observed.finish(&state, &response);
            Ok(response)
        })
    }
}

/// Everything after observing, inside the request's span: a refusal is an answer like any other
/// (counted by `finish`), and no step after it runs.
async fn guarded<S>(state: &AppState, mut route: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let token = match auth::check(state, req.uri().path(), req.headers()).await {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    // A client over its rate is refused before it takes an in-flight place.
    if let Err(refused) = limits::check_rate(state, &req) {
        return refused.into_response();
    }
    let _place = match limits::take_place(state, &req) {
        Ok(place) => place,
        Err(refused) => return refused.into_response(),
    };
    // Inside the in-flight place: a body slow to arrive holds it for GATEWAY_BODY_TIMEOUT at most.
    let req = match limits::read_body(state, req).await {
        Ok(req) => req,
        Err(refused) => return refused.into_response(),
    };
    let answered = async move { route.call(req).await };
    let Ok(response) = match token {
        // The services see the same token and decide what this user may do.
        Some(token) => aula_runtime::auth::scope(token, answered).await,
        None => answered.await,
    };
    response
}
