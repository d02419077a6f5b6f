//! Which admitted call starts next: a call from a connection with no other call open goes
//! ahead of the calls of connections that have many.
//!
//! tokio's run queue is one FIFO. Overloaded, it held every admitted call waiting for the CPU
//! (up to `AULA_MAX_QUEUED`, 128 per core), so a light client's call, arriving behind a heavy
//! client's hundred, waited for all of them: at 3x cursos' maximum the light probe's p99 was
//! 3.4-4.0 ms against 0.6 ms at half load (BENCHMARKS.md, "Limits under load"). A smaller queue
//! bound shortened that wait but refused a quarter of the work. So the calls waiting to start
//! are held here instead, and only [`Starts::max_runnable`] of them are in tokio's run queue at
//! a time; when one starts (its task's first poll), the next is spawned, and the next is
//! chosen the way fq_codel (RFC 8290) favours sparse flows: a call whose connection had no
//! other call waiting to start when it arrived ("sparse") before one queued behind another of
//! its connection's ("bulk"). A client sending a call at a time waits for a handful of calls,
//! not for the queue, even when its previous call is still running or being answered (when
//! that call waited in turn, a light client on a slow machine had two open, was refused, and
//! starved: 2 runs of 5, 2026-12-06). A client with many calls queued waits as before, and
//! loses nothing it is owed: its calls are served in the order they came, and at most
//! [`SPARSE_IN_A_ROW`] sparse calls start before the next bulk one, so many light clients
//! cannot starve it. A connection has at most one sparse call waiting at a time.
//!
//! A call counts as runnable only until its first poll: after that, a call waiting on a peer or
//! a database holds no place here, and its later polls are tokio's as before. Health checks and
//! calls the layers answered at once never wait here ([`crate::arrival::Start`]).

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

/// At most this many sparse calls start in a row while bulk calls wait: bulk calls get at
/// least one start in nine however many light clients there are.
pub const SPARSE_IN_A_ROW: usize = 8;

/// A call waiting to be spawned.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The calls of one server waiting to start; shared by its connections' executors.
#[derive(Clone)]
pub struct Starts(Arc<Shared>);

struct Shared {
    max_runnable: usize,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Spawned and not yet polled.
    runnable: usize,
    sparse: VecDeque<Job>,
    bulk: VecDeque<Job>,
    sparse_in_a_row: usize,
}

impl Starts {
    /// `max_runnable`: calls in tokio's run queue at once (at least 1).
    pub fn new(max_runnable: usize) -> Self {
        Self(Arc::new(Shared {
            max_runnable: max_runnable.max(1),
            queue: Mutex::default(),
        }))
    }

    pub fn max_runnable(&self) -> usize {
        self.0.max_runnable
    }

    /// Spawns `call` now if fewer than `max_runnable` calls wait in the run queue; otherwise
    /// holds it until its turn.
    pub fn start<F>(&self, call: F, sparse: bool)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        {
            let mut q = self.queue();
            if q.runnable >= self.0.max_runnable {
                let job: Job = Box::pin(async move {
                    call.await;
                });
                if sparse {
                    q.sparse.push_back(job);
                } else {
                    q.bulk.push_back(job);
                }
                return;
            }
            q.runnable += 1;
        }
        tokio::spawn(First::new(call, self.clone()));
    }

    /// Calls waiting here, not yet spawned.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        let q = self.queue();
        q.sparse.len() + q.bulk.len()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-changed (every change is
        // one push, pop or count), so a poisoned lock is used as it is.
        self.0.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A runnable call started (or was dropped unstarted): the next waiting call takes its
    /// place in the run queue.
    fn started(&self) {
        let next = {
            let mut q = self.queue();
            let bulk_waits = !q.bulk.is_empty();
            let next =
                if bulk_waits && (q.sparse.is_empty() || q.sparse_in_a_row >= SPARSE_IN_A_ROW) {
                    q.sparse_in_a_row = 0;
                    q.bulk.pop_front()
                } else {
                    q.sparse_in_a_row += usize::from(bulk_waits);
                    q.sparse.pop_front()
                };
            if next.is_none() {
                q.runnable -= 1;
            }
            next
        };
        if let Some(job) = next {
            // Outside a runtime (it is shutting down and dropping its tasks), the call is
            // dropped with the rest: its stream is reset, as the others' are.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(First::new(job, self.clone()));
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A runnable call: holds its place in the run queue until its first poll.
    struct First<F> {
        #[pin]
        call: F,
        place: Option<Place>,
    }
}

impl<F> First<F> {
    fn new(call: F, starts: Starts) -> Self {
        Self {
            call,
            place: Some(Place(starts)),
        }
    }
}

/// A place among the runnable calls, handed on when dropped.
struct Place(Starts);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.started();
    }
}

impl<F: Future> Future for First<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Started: the next call is queued behind this one before it runs.
        this.place.take();
        this.call.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = Arc<Mutex<Vec<&'static str>>>;

    fn call(log: &Log, name: &'static str) -> impl Future<Output = ()> + Send + 'static {
        let log = log.clone();
        async move { log.lock().unwrap().push(name) }
    }

    /// Runs the runtime's other tasks until `n` calls have run; their names in order.
    async fn ran(log: &Log, n: usize) -> Vec<&'static str> {
        while log.lock().unwrap().len() < n {
            tokio::task::yield_now().await;
        }
        log.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_with_none_of_its_connections_waiting_starts_before_busy_connections_calls() {
        let log = Log::default();
        let starts = Starts::new(1);
        starts.start(call(&log, "bulk 1"), false);
        starts.start(call(&log, "bulk 2"), false);
        starts.start(call(&log, "bulk 3"), false);
        starts.start(call(&log, "sparse"), true);
        assert_eq!(starts.waiting(), 3, "one call runnable, the rest held");
        assert_eq!(ran(&log, 4).await, ["bulk 1", "sparse", "bulk 2", "bulk 3"]);
        assert_eq!(starts.0.queue.lock().unwrap().runnable, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sparse_calls_cannot_starve_a_busy_connection() {
        let log = Log::default();
        let starts = Starts::new(1);
        starts.start(call(&log, "bulk 1"), false);
        starts.start(call(&log, "bulk 2"), false);
        for _ in 0..20 {
            starts.start(call(&log, "sparse"), true);
        }
        let log = ran(&log, 22).await;
        let second = log.iter().position(|n| *n == "bulk 2").unwrap();
        assert_eq!(
            second,
            1 + SPARSE_IN_A_ROW,
            "bulk 2 started after {SPARSE_IN_A_ROW} sparse calls: {log:?}"
        );
    }

    #[test]
    fn a_call_dropped_before_it_started_hands_its_place_on() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let log = Log::default();
        let starts = Starts::new(1);
        rt.block_on(async {
            starts.start(std::future::pending::<()>(), false);
            starts.start(call(&log, "next"), false);
            assert_eq!(starts.waiting(), 1);
        });
        // The runtime drops the pending call's task; its place goes to nobody (no runtime).
        drop(rt);
        assert_eq!(
            starts.waiting(),
            0,
            "the held call was dropped with the runtime"
        );
        assert!(log.lock().unwrap().is_empty());
    }
}
