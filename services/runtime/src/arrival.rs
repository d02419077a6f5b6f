//! A call meets the server's layers when its stream arrives, not when its task first runs.
//!
//! hyper's HTTP/2 server reads a stream's HEADERS in the connection's task, calls the service
//! there (`Service::call`, synchronously) and hands the future it gets to the executor, which
//! spawns it. tonic's adapter (hyper-util's `TowerToHyperService`) returns a `Oneshot` from that
//! call, so the tower layers ran only at the spawned task's first poll: under overload
//! thousands of stream tasks sat in tokio's run queue before the shedding layer
//! ([`crate::shed`]) counted any of them, nothing was refused, and admitted calls waited
//! hundreds of milliseconds behind them (BENCHMARKS.md, "Overload").
//!
//! [`Arrival`] calls the layers at once instead, inside hyper's call: the in-flight limit is
//! taken at the stream's arrival, so at most `AULA_MAX_IN_FLIGHT` calls are ever queued or
//! running, and a call's clocks (its deadline, its handling time) start when it arrived.
//! [`StreamExec`], the executor hyper is given, then answers a refused call right there in
//! the connection's task, without spawning it: a refusal costs no task and no trip through
//! the run queue, and never waits behind admitted calls. Each refusal also charges the
//! connection's [`Debt`] (if it has admitted calls open), so that it reads its next calls
//! after the admitted ones have run ([`crate::serve::paced`] says why).

use crate::serve::paced::Debt;
use std::{
    cell::Cell,
    future::Future,
    task::{Context, Poll, Waker},
};
use tower::{util::Oneshot, ServiceExt as _};

thread_local! {
    /// Set by [`Arrival`] when the call it just made was answered at once; read by
    /// [`StreamExec::execute`], which hyper calls right after, on the same thread, with that
    /// call's stream.
    static ANSWERED: Cell<bool> = const { Cell::new(false) };
}

/// A response future that may already hold its answer (a refusal), so that polling it once
/// sends it.
pub trait Answered {
    fn is_answered(&self) -> bool;
}

/// The hyper service of one connection: the server's tower stack, called at arrival; what
/// the connection's transport knows of the peer (tonic's `Connected::connect_info`, in every
/// request's extensions as tonic put it there: the peer's address, its proved identity); and
/// what the connection owes for its refused calls.
#[derive(Clone)]
pub struct Arrival<S, C> {
    stack: S,
    info: C,
    debt: Debt,
}

impl<S, C> Arrival<S, C> {
    pub fn new(stack: S, info: C, debt: Debt) -> Self {
        Self { stack, info, debt }
    }
}

type Req = http::Request<tonic::body::Body>;

impl<S, C> hyper::service::Service<http::Request<hyper::body::Incoming>> for Arrival<S, C>
where
    S: tower_service::Service<Req> + Clone,
    S::Future: Answered,
    C: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<S::Future, Oneshot<S, Req>>;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        // A stale mark (a call that fell back to its task below) must not answer another.
        ANSWERED.set(false);
        req.extensions_mut().insert(self.info.clone());
        // For the shedding layer, which counts the connection's admitted calls on it.
        req.extensions_mut().insert(self.debt.clone());
        let req = req.map(tonic::body::Body::new);
        let mut stack = self.stack.clone();
        // The runtime's layers and tonic's routes are always ready. Should one ever not be,
        // the call waits for it in its own task, as it did under tonic (shed at first poll).
        match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {
                let fut = stack.call(req);
                if fut.is_answered() {
                    ANSWERED.set(true);
                    self.debt.charge();
                }
                futures::future::Either::Left(fut)
            }
            _ => futures::future::Either::Right(stack.oneshot(req)),
        }
    }
}

/// hyper's executor: spawns each stream's task on tokio, except a stream whose answer is ready
/// ([`Answered`]), which it polls once in place: the answer is queued on the connection and
/// the stream is done. Should that poll not finish it (it always does: a ready answer with an
/// empty body is one HEADERS frame), the stream goes on in a task of its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamExec;

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        if !ANSWERED.replace(false) {
            tokio::spawn(fut);
            return;
        }
        let mut fut = Box::pin(fut);
        // No waker is needed: a future still pending after this poll is spawned, and a task's
        // first poll registers its own.
        if fut
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            tokio::spawn(fut);
        }
    }
}
