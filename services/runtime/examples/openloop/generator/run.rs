//! The run: sends each call when due, over HTTP/2 streams or HTTP/1.1 workers, then drains.

use super::{
    call::Call,
    conn::{connect, Protocol, Sender},
    report::Report,
    schedule::{cpu_time, now_ns, Alarm, Schedule},
    stats::Stats,
};
use http::Uri;
use std::{
    collections::VecDeque,
    io,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::Notify;
/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Uri,
    pub call: Call,
    pub protocol: Protocol,
    pub connections: usize,
    pub schedule: Schedule,
    /// Calls in flight or queued at most; beyond, a due call is dropped (and counted).
    pub max_outstanding: usize,
    /// How long the run waits, after the last call went out, for the answers still out.
    pub drain: Duration,
}

/// The calls due on HTTP/1.1 connections while none was free, oldest first, for whichever
/// connection frees up first.
#[derive(Default)]
struct Queue {
    due: Mutex<VecDeque<(u64, bool)>>,
    more: Notify,
    closed: AtomicBool,
}

struct Shared {
    stats: Mutex<Stats>,
    outstanding: AtomicUsize,
    call: Call,
    /// The run's start on [`now_ns`]'s clock.
    start: u64,
}

impl Shared {
    async fn send(&self, sender: &mut Sender, due: u64, measured: bool) {
        if measured {
            let sent = now_ns() - self.start;
            lock(&self.stats).sent_at(due, sent);
        }
        let outcome = sender.call(&self.call).await;
        let done = now_ns() - self.start;
        if measured {
            lock(&self.stats).done(due, done, outcome);
        }
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `plan` on the current runtime (a current-thread one: the schedule's precision relies on
/// nothing else running beside it) and reports the measured window.
pub async fn run(plan: Plan) -> io::Result<Report> {
    let mut senders = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections.max(1) {
        senders.push(connect(&plan.url, plan.protocol).await?);
    }
    let alarm = Alarm::new()?;
    // The first call is due a little after the connections are up, not as they settle.
    let start = now_ns() + 20_000_000;
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::default()),
        outstanding: AtomicUsize::new(0),
        call: plan.call.clone(),
        start,
    });
    let queue = Arc::new(Queue::default());
    let mut h2 = Vec::new();
    let mut workers = Vec::new();
    for sender in senders {
        match sender {
            Sender::H2(s) => h2.push(s),
            Sender::H1(s) => workers.push(tokio::spawn(http1_worker(
                Sender::H1(s),
                queue.clone(),
                shared.clone(),
            ))),
        }
    }
    let schedule = plan.schedule;
    let (first_measured, total) = (schedule.first_measured(), schedule.total());
    alarm.until(start).await?;
    let (cpu0, wall0) = (cpu_time(), now_ns());
    let mut n = 0;
    while n < total {
        let at = start + schedule.due(n);
        if now_ns() < at {
            alarm.until(at).await?;
        } else {
            // Behind (a burst of answers took the thread): let them be read before sending
            // more, or a generator that cannot keep up would only ever send, and then drop.
            tokio::task::yield_now().await;
        }
        let now = now_ns() - start;
        // Every call due by now goes out now: after a late wake, the ones it missed too.
        while n < total && schedule.due(n) <= now {
            let (due, measured) = (schedule.due(n), n >= first_measured);
            n += 1;
            if shared.outstanding.load(Ordering::Relaxed) >= plan.max_outstanding {
                if measured {
                    lock(&shared.stats).dropped += 1;
                }
                continue;
            }
            shared.outstanding.fetch_add(1, Ordering::Relaxed);
            if h2.is_empty() {
                lock(&queue.due).push_back((due, measured));
                queue.more.notify_one();
            } else {
                let mut sender = Sender::H2(h2[n as usize % h2.len()].clone());
                let shared = shared.clone();
                tokio::spawn(async move { shared.send(&mut sender, due, measured).await });
            }
        }
    }
    queue.closed.store(true, Ordering::Relaxed);
    queue.more.notify_waiters();
    // The answers still out, for as long as the drain allows.
    let until = now_ns() + plan.drain.as_nanos() as u64;
    while shared.outstanding.load(Ordering::Relaxed) > 0 && now_ns() < until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (cpu, wall) = (cpu_time() - cpu0, Duration::from_nanos(now_ns() - wall0));
    for w in workers {
        w.abort();
    }
    let stats = lock(&shared.stats).clone();
    Ok(stats.report(&schedule, plan.protocol, plan.connections, cpu, wall))
}

async fn http1_worker(mut sender: Sender, queue: Arc<Queue>, shared: Arc<Shared>) {
    loop {
        let notified = queue.more.notified();
        tokio::pin!(notified);
        // Registered before looking, so a call queued in between still wakes this worker.
        notified.as_mut().enable();
        let next = lock(&queue.due).pop_front();
        match next {
            Some((due, measured)) => shared.send(&mut sender, due, measured).await,
            None if queue.closed.load(Ordering::Relaxed) => return,
            None => notified.await,
        }
    }
}
