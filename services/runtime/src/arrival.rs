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
//! the run queue, and never waits behind admitted calls. An admitted call is spawned when its
//! turn comes ([`crate::serve::starts`]): one whose connection has no other call waiting to
//! start goes ahead of the calls of connections that have. Every request carries its connection's [`Debt`],
//! with which the shedding layer counts the connection's open calls and paces a connection
//! whose calls it refuses ([`crate::serve::paced`] says why).

use crate::serve::{paced::Debt, starts::Starts};
use std::{
    cell::Cell,
    future::Future,
    task::{Context, Poll, Waker},
};
use tower::{util::Oneshot, ServiceExt as _};

thread_local! {
    /// Set by [`Arrival`] to how the call it just made is to start; read by
    /// [`StreamExec::execute`], which hyper calls right after, on the same thread, with that
    /// call's stream.
    static START: Cell<Start> = const { Cell::new(Start::Spawn) };
}

/// How a call's stream is to start, as the layers decided at its arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Its answer is ready (a refusal): polling it once sends it.
    Answered,
    /// Admitted, none of its connection's other calls waiting to start: ahead of busy
    /// connections' calls.
    Sparse,
    /// Admitted behind another call of its connection still waiting to start: in turn.
    Bulk,
    /// Not counted among the admitted calls (health): spawned at once.
    Spawn,
}

/// A response future that knows how its call is to start.
pub trait Arrived {
    fn start(&self) -> Start;
}

/// The hyper service of one connection: the server's tower stack, called at arrival; what
/// the connection's transport knows of the peer (tonic's `Connected::connect_info`, in every
/// request's extensions as tonic put it there: the peer's address, its proved identity); and
/// the connection's calls open and what it owes for its refused ones.
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
    S::Future: Arrived,
    C: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<S::Future, Oneshot<S, Req>>;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        // A stale mark (a call that fell back to its task below) must not answer another.
        START.set(Start::Spawn);
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
                START.set(fut.start());
                futures::future::Either::Left(fut)
            }
            _ => futures::future::Either::Right(stack.oneshot(req)),
        }
    }
}

/// hyper's executor. A stream whose answer is ready ([`Start::Answered`]) is polled once in
/// place: the answer is queued on the connection and the stream is done (should that poll not
/// finish it, and it always does, a ready answer with an empty body being one HEADERS frame,
/// the stream goes on in a task of its own). An admitted call waits for its turn to be spawned
/// ([`Starts`]); anything else is spawned on tokio at once.
#[derive(Clone)]
pub struct StreamExec {
    starts: Starts,
}

impl StreamExec {
    pub fn new(starts: Starts) -> Self {
        Self { starts }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        match START.replace(Start::Spawn) {
            Start::Spawn => {
                tokio::spawn(fut);
            }
            Start::Sparse => self.starts.start(fut, true),
            Start::Bulk => self.starts.start(fut, false),
            Start::Answered => {
                let mut fut = Box::pin(fut);
                // No waker is needed: a future still pending after this poll is spawned, and
                // a task's first poll registers its own.
                if fut
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
                    .is_pending()
                {
                    tokio::spawn(fut);
                }
            }
        }
    }
}
