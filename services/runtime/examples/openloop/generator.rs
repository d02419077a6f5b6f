//! An open-loop load generator that keeps its schedule: call `n` is due at `n / rate` seconds
//! after the start, whatever happened to the calls before it, and its latency counts from that
//! due time (a client or server that stalls is charged for it: no coordinated omission).
//!
//! What keeps the schedule (h2load's timing script fell behind by 36-46% at 9,000 calls/s,
//! BENCHMARKS.md): one thread, one tokio current-thread runtime, and the due times armed on a
//! timerfd (nanoseconds, absolute, CLOCK_MONOTONIC) that the runtime's epoll waits on, instead of
//! tokio's timer (whole milliseconds: calls would go out in 1 ms batches, each up to 1 ms late,
//! and that lateness would count against the server). Each wake sends every call due by then; how
//! late each went out is recorded (`lag_*`), so a run says itself whether it kept the schedule.
//!
//! Calls are plain HTTP requests prepared once: gRPC unary over HTTP/2 (POST with a framed body;
//! the outcome is `grpc-status`, from the trailers or a trailers-only answer), or a GET over
//! HTTP/1.1 keep-alive or HTTP/2. HTTP/2 connections carry calls side by side (round robin);
//! an HTTP/1.1 connection one at a time, so calls due while all of them are busy wait in a queue
//! (their latency still counts from their due time). At most `max_outstanding` calls are in
//! flight or queued: a call due beyond that is not sent, and is counted (`dropped`), never
//! skipped silently.
//!
//! Used by the `openloop` example (scripts/bench-data.sh) and by `overload_probe`
//! (scripts/bench-limits.sh).

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{header, HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{
    collections::{BTreeMap, VecDeque},
    fmt::Write as _,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    io::{unix::AsyncFd, Interest},
    net::TcpStream,
    sync::Notify,
};

/// Latencies are recorded in microseconds, 1 us to 60 s, 3 significant digits.
const MAX_US: u64 = 60_000_000;

// ------------------------------------------------------------------------------ the schedule

/// A fixed rate of calls: a warm-up (sent, not measured), then the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    per_second: f64,
    warmup: Duration,
    measured: Duration,
}

impl Schedule {
    /// `None` unless the rate is a positive, finite number and the measured window is not empty.
    pub fn new(per_second: f64, warmup: Duration, measured: Duration) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0 && !measured.is_zero()).then_some(Self {
            per_second,
            warmup,
            measured,
        })
    }

    pub fn rate(&self) -> f64 {
        self.per_second
    }

    pub fn measured(&self) -> Duration {
        self.measured
    }

    /// When call `n` (from 0) is due, in nanoseconds after the start. From `n` each time rather
    /// than by adding an interval: no drift over long runs.
    pub fn due(&self, n: u64) -> u64 {
        (n as f64 * 1e9 / self.per_second).round() as u64
    }

    /// Calls due before `span`: the first call due at or after `span` is number `count(span)`.
    fn count(&self, span: Duration) -> u64 {
        let n = (span.as_secs_f64() * self.per_second).ceil() as u64;
        // Rounding in `due` can put call n - 1 at exactly `span`: it belongs after.
        if n > 0 && self.due(n - 1) >= span.as_nanos() as u64 {
            n - 1
        } else {
            n
        }
    }

    /// The first measured call (the first due at or after the warm-up).
    pub fn first_measured(&self) -> u64 {
        self.count(self.warmup)
    }

    /// How many calls in all, warm-up included.
    pub fn total(&self) -> u64 {
        self.count(self.warmup + self.measured)
    }

    /// Where the measured window starts, in nanoseconds after the start.
    pub fn window_start(&self) -> u64 {
        self.warmup.as_nanos() as u64
    }
}

// ------------------------------------------------------------------------------ the clock

/// Nanoseconds on CLOCK_MONOTONIC (the clock the timerfd is armed on; vDSO, no system call).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A one-shot alarm at an absolute CLOCK_MONOTONIC time, awaited through the runtime's epoll: a
/// timerfd, nanosecond resolution (tokio's own timer has whole milliseconds).
pub struct Alarm {
    fd: AsyncFd<OwnedFd>,
}

impl Alarm {
    pub fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create has no memory arguments; a negative result is an error.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor this process owns and nothing else holds; an OwnedFd
        // keeps it open, and the same, for as long as the AsyncFd that owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Self { fd })
    }

    /// Returns at `at` (nanoseconds on [`now_ns`]'s clock), or at once if that has passed.
    pub async fn until(&self, at: u64) -> io::Result<()> {
        if now_ns() >= at {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / 1_000_000_000) as libc::time_t,
                tv_nsec: (at % 1_000_000_000) as libc::c_long,
            },
        };
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: spec outlives the call; the old value is not asked for (null).
        if unsafe {
            libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into an 8-byte buffer.
            let n = unsafe { libc::read(fd, expirations.as_mut_ptr().cast(), 8) };
            // Either way the counter is drained now: the next expiry makes it readable again.
            ready.clear_ready();
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
        }
    }
}

/// CPU time this process has used (user + system), for the generator's own cost.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

// ------------------------------------------------------------------------------ the calls

/// The one request every call sends, prepared once.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    /// Absolute (HTTP/2 takes :scheme and :authority from it).
    uri: Uri,
    /// Origin form, for HTTP/1.1's request line.
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
    grpc: bool,
}

/// gRPC's frame around a message: no compression, the length big-endian.
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed.into()
}

impl Call {
    /// A unary gRPC call: `url` is the server and the method's path
    /// (`http://host:port/package.Service/Method`), `message` the request's protobuf bytes.
    pub fn grpc(url: &Uri, message: &[u8], timeout: Duration) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        // The server gives up when the generator does (milliseconds, as tonic sends it).
        headers.insert(
            "grpc-timeout",
            HeaderValue::from_str(&format!("{}m", timeout.as_millis().max(1))).expect("digits"),
        );
        Self::new(Method::POST, url, headers, grpc_frame(message), true)
    }

    /// A GET of `url`.
    pub fn get(url: &Uri) -> Self {
        Self::new(Method::GET, url, HeaderMap::new(), Bytes::new(), false)
    }

    fn new(method: Method, url: &Uri, mut headers: HeaderMap, body: Bytes, grpc: bool) -> Self {
        let authority = url.authority().expect("an absolute URL").as_str();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(authority).expect("an authority is a valid header"),
        );
        let path = url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .expect("a path");
        Self {
            method,
            uri: url.clone(),
            path,
            headers,
            body,
            grpc,
        }
    }

    fn request(&self, http2: bool) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(self.body.clone()));
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = if http2 {
            self.uri.clone()
        } else {
            self.path.clone()
        };
        *r.headers_mut() = self.headers.clone();
        if http2 {
            // :authority says it (a Host header next to it is refused by some servers).
            r.headers_mut().remove(header::HOST);
        }
        r
    }
}

/// gRPC's status codes by number, as tonic spells them (`tonic::Code`'s Debug).
const GRPC_CODES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// A call's outcome: OK, or what went wrong (a gRPC code name, `http_<status>`, `transport`,
/// `no_grpc_status`).
pub type Outcome = Result<(), String>;

/// The outcome of an answer: its HTTP status, then (gRPC) `grpc-status` from the trailers or,
/// for a trailers-only answer, the headers.
pub fn outcome_of(
    status: http::StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    grpc: bool,
) -> Outcome {
    if !status.is_success() {
        return Err(format!("http_{}", status.as_u16()));
    }
    if !grpc {
        return Ok(());
    }
    let code = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match code {
        Some(0) => Ok(()),
        Some(c) => Err(GRPC_CODES
            .get(c)
            .map_or_else(|| format!("grpc_{c}"), |n| n.to_string())),
        None => Err("no_grpc_status".into()),
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn call(&mut self, call: &Call) -> Outcome {
        let answer = match self {
            Sender::H1(s) => {
                // Ready once the previous answer was read to its end (keep-alive).
                if s.ready().await.is_err() {
                    return Err("transport".into());
                }
                s.send_request(call.request(false)).await
            }
            Sender::H2(s) => s.send_request(call.request(true)).await,
        };
        let (parts, body) = answer.map_err(|_| "transport".to_string())?.into_parts();
        let body = body.collect().await.map_err(|_| "transport".to_string())?;
        outcome_of(parts.status, &parts.headers, body.trailers(), call.grpc)
    }
}

/// HTTP/1.1 (one call at a time per connection) or HTTP/2 (any number, side by side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

async fn connect(url: &Uri, protocol: Protocol) -> io::Result<Sender> {
    let authority = url.authority().expect("an absolute URL").as_str();
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to {authority}: {e}")))?;
    tcp.set_nodelay(true)?;
    let io = TokioIo::new(tcp);
    let failed = |e: hyper::Error| io::Error::other(format!("handshake with {authority}: {e}"));
    Ok(match protocol {
        Protocol::Http1 => {
            let (send, conn) = http1::handshake(io).await.map_err(failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(send)
        }
        Protocol::Http2 => {
            let (mut send, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            send.ready().await.map_err(failed)?;
            Sender::H2(send)
        }
    })
}

// ------------------------------------------------------------------------------ the numbers

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds")
}

fn micros(ns: u64) -> u64 {
    (ns / 1000).min(MAX_US)
}

/// What the measured calls did (warm-up calls are sent, and left out of these).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of the OK calls from their due time, microseconds.
    pub ok: Histogram<u64>,
    /// Failed calls by what failed.
    pub errors: BTreeMap<String, u64>,
    /// How late each call went out after its due time, microseconds.
    pub lag: Histogram<u64>,
    /// Calls sent, and calls not sent because `max_outstanding` were out already.
    pub sent: u64,
    pub dropped: u64,
    /// When the first and the last measured call went out, and the last one answered (ns after
    /// the start).
    pub first_sent: u64,
    pub last_sent: u64,
    pub last_done: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            ok: histogram(),
            errors: BTreeMap::new(),
            lag: histogram(),
            sent: 0,
            dropped: 0,
            first_sent: u64::MAX,
            last_sent: 0,
            last_done: 0,
        }
    }
}

impl Stats {
    /// A measured call due at `due` went out at `sent` (ns after the start).
    pub fn sent_at(&mut self, due: u64, sent: u64) {
        self.sent += 1;
        self.lag.saturating_record(micros(sent.saturating_sub(due)));
        self.first_sent = self.first_sent.min(sent);
        self.last_sent = self.last_sent.max(sent);
    }

    /// A measured call due at `due` ended at `done` (ns after the start) with `outcome`.
    pub fn done(&mut self, due: u64, done: u64, outcome: Outcome) {
        match outcome {
            Ok(()) => self
                .ok
                .saturating_record(micros(done.saturating_sub(due)).max(1)),
            Err(what) => *self.errors.entry(what).or_insert(0) += 1,
        }
        self.last_done = self.last_done.max(done);
    }

    pub fn completed(&self) -> u64 {
        self.ok.len() + self.errors.values().sum::<u64>()
    }

    /// The report of a run of `schedule` over `connections`, which used `cpu` over `wall`.
    pub fn report(
        &self,
        schedule: &Schedule,
        protocol: Protocol,
        connections: usize,
        cpu: Duration,
        wall: Duration,
    ) -> Report {
        let completed = self.completed();
        // The measured window, or until the last answer when that came after it.
        let window_end = schedule.window_start() + schedule.measured().as_nanos() as u64;
        let window = self.last_done.max(window_end) - schedule.window_start();
        let ms = |q: f64| {
            if self.ok.is_empty() {
                0.0
            } else {
                self.ok.value_at_quantile(q) as f64 / 1000.0
            }
        };
        Report {
            asked_rate: schedule.rate(),
            protocol,
            connections,
            seconds: schedule.measured().as_secs_f64(),
            scheduled: self.sent + self.dropped,
            sent: self.sent,
            // n calls span n - 1 intervals.
            sent_rate: if self.sent > 1 && self.last_sent > self.first_sent {
                (self.sent - 1) as f64 * 1e9 / (self.last_sent - self.first_sent) as f64
            } else {
                0.0
            },
            completed,
            rate: if window > 0 {
                completed as f64 * 1e9 / window as f64
            } else {
                0.0
            },
            ok: self.ok.len(),
            errors: self.errors.clone(),
            dropped: self.dropped,
            unfinished: self.sent.saturating_sub(completed),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: if self.ok.is_empty() {
                0.0
            } else {
                self.ok.max() as f64 / 1000.0
            },
            lag_p50_us: self.lag.value_at_quantile(0.50),
            lag_p99_us: self.lag.value_at_quantile(0.99),
            lag_max_us: self.lag.max(),
            late_1ms: self.lag.count_between(1000, MAX_US),
            cpu_pct: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        }
    }
}

/// A run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub asked_rate: f64,
    pub protocol: Protocol,
    pub connections: usize,
    /// The measured window.
    pub seconds: f64,
    /// Measured calls due; each was either sent or dropped.
    pub scheduled: u64,
    pub sent: u64,
    /// Calls sent per second, from the first measured send to the last.
    pub sent_rate: f64,
    /// Calls answered (OK or not), and per second: over the measured window, or from its start
    /// to the last answer when that came later (a server that fell behind).
    pub completed: u64,
    pub rate: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Due while `max_outstanding` calls were out: not sent.
    pub dropped: u64,
    /// Sent, and not answered by the end of the drain.
    pub unfinished: u64,
    /// Of the OK calls, from their due time.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How late calls went out after their due time.
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Calls that went out 1 ms or more after their due time.
    pub late_1ms: u64,
    /// The generator's own CPU over the whole run, percent of one core.
    pub cpu_pct: f64,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `key<TAB>value` lines (scripts/bench-data.sh prefixes the keys with the run's name).
    pub fn tsv(&self) -> String {
        let mut out = String::new();
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(out, "{k}\t{v}");
        };
        kv("asked_rate", format!("{:.0}", self.asked_rate));
        kv(
            "protocol",
            match self.protocol {
                Protocol::Http1 => "http1",
                Protocol::Http2 => "h2",
            }
            .into(),
        );
        kv("connections", self.connections.to_string());
        kv("seconds", format!("{}", self.seconds));
        kv("scheduled", self.scheduled.to_string());
        kv("sent", self.sent.to_string());
        kv("sent_rate", format!("{:.0}", self.sent_rate));
        kv("completed", self.completed.to_string());
        kv("rate", format!("{:.0}", self.rate));
        kv("ok", self.ok.to_string());
        kv("errors", self.error_count().to_string());
        for (what, n) in &self.errors {
            kv(&format!("errors.{what}"), n.to_string());
        }
        kv("dropped", self.dropped.to_string());
        kv("unfinished", self.unfinished.to_string());
        kv("p50_ms", format!("{:.3}", self.p50_ms));
        kv("p90_ms", format!("{:.3}", self.p90_ms));
        kv("p99_ms", format!("{:.3}", self.p99_ms));
        kv("max_ms", format!("{:.3}", self.max_ms));
        kv("lag_p50_us", self.lag_p50_us.to_string());
        kv("lag_p99_us", self.lag_p99_us.to_string());
        kv("lag_max_us", self.lag_max_us.to_string());
        kv("late_1ms", self.late_1ms.to_string());
        kv("cpu_pct", format!("{:.1}", self.cpu_pct));
        out
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "asked {:.0}/s, sent {:.0}/s, answered {:.0}/s over {} connections; {} OK, {} errors, \
             {} dropped, {} unfinished; p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms max {:.3} ms; \
             sent late p50 {} us p99 {} us max {} us ({} by 1 ms or more); generator CPU {:.1}%",
            self.asked_rate,
            self.sent_rate,
            self.rate,
            self.connections,
            self.ok,
            self.error_count(),
            self.dropped,
            self.unfinished,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.lag_p50_us,
            self.lag_p99_us,
            self.lag_max_us,
            self.late_1ms,
            self.cpu_pct,
        )
    }
}

// ------------------------------------------------------------------------------ the run

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

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, warmup_ms: u64, measured_ms: u64) -> Schedule {
        Schedule::new(
            rate,
            Duration::from_millis(warmup_ms),
            Duration::from_millis(measured_ms),
        )
        .unwrap()
    }

    #[test]
    fn calls_are_due_at_fixed_intervals_without_drift() {
        let s = schedule(10_000.0, 0, 1000);
        assert_eq!(s.due(0), 0);
        assert_eq!(s.due(1), 100_000);
        assert_eq!(s.due(10_000), 1_000_000_000);
        // The ten-millionth call is due at exactly 1000 s: nothing accumulates.
        assert_eq!(s.due(10_000_000), 1_000_000_000_000);
        // A rate that does not divide a second: each interval within a nanosecond of 1/rate.
        let s = schedule(7_919.0, 0, 1000);
        let exact = 1e9 / 7_919.0;
        assert!((1..10_000).all(|n| ((s.due(n) - s.due(n - 1)) as f64 - exact).abs() <= 1.0));
        assert!((s.due(7_919_000) as f64 - 1e12).abs() <= 1.0);
    }

    #[test]
    fn warmup_and_window_split_the_calls() {
        // 5,000/s: 1 s of warm-up is calls 0..5000, 10 s measured are 5000..55000.
        let s = schedule(5_000.0, 1000, 10_000);
        assert_eq!(s.first_measured(), 5_000);
        assert_eq!(s.total(), 55_000);
        assert_eq!(s.due(s.first_measured()), s.window_start());
        assert!(s.due(s.first_measured() - 1) < s.window_start());
        assert!(s.due(s.total() - 1) < s.window_start() + 10_000_000_000);
        // A rate that does not divide the spans: still every call due inside its span.
        for rate in [3.0, 7_919.0, 12_345.6] {
            let s = schedule(rate, 700, 1_300);
            let (first, total) = (s.first_measured(), s.total());
            assert!(s.due(first) >= s.window_start(), "{rate}");
            assert!(first == 0 || s.due(first - 1) < s.window_start(), "{rate}");
            assert!(s.due(total - 1) < 2_000_000_000, "{rate}");
            assert!(s.due(total) >= 2_000_000_000, "{rate}");
        }
        // No warm-up: the first call is measured.
        assert_eq!(schedule(200.0, 0, 10_000).first_measured(), 0);
        assert_eq!(schedule(200.0, 0, 10_000).total(), 2_000);
    }

    #[test]
    fn only_positive_finite_rates_and_a_window() {
        let s = |r: f64, m: u64| Schedule::new(r, Duration::ZERO, Duration::from_millis(m));
        assert!(s(0.0, 10).is_none());
        assert!(s(-1.0, 10).is_none());
        assert!(s(f64::NAN, 10).is_none());
        assert!(s(f64::INFINITY, 10).is_none());
        assert!(s(10.0, 0).is_none());
        assert!(s(10.0, 10).is_some());
    }

    #[test]
    fn latency_counts_from_the_due_time_and_rates_from_what_happened() {
        let s = schedule(1_000.0, 1000, 1000);
        let mut st = Stats::default();
        // 1,000 measured calls due 1 ms apart from 1 s, each sent 20 us late; call i answered
        // (i % 100 + 1) * 10 us after its due time; call 999 failed.
        for i in 0..1000u64 {
            let due = s.due(s.first_measured() + i);
            st.sent_at(due, due + 20_000);
            let outcome = if i == 999 {
                Err("Unavailable".to_string())
            } else {
                Ok(())
            };
            st.done(due, due + (i % 100 + 1) * 10_000, outcome);
        }
        st.dropped = 5;
        let r = st.report(
            &s,
            Protocol::Http2,
            8,
            Duration::from_millis(300),
            Duration::from_secs(2),
        );
        assert_eq!((r.sent, r.scheduled, r.dropped), (1000, 1005, 5));
        assert_eq!(
            (r.ok, r.error_count(), r.completed, r.unfinished),
            (999, 1, 1000, 0)
        );
        assert_eq!(r.errors, BTreeMap::from([("Unavailable".to_string(), 1)]));
        // 10 us .. 1000 us, ten of each: below 2048 us HdrHistogram is exact.
        assert_eq!((r.p50_ms, r.p90_ms, r.p99_ms), (0.5, 0.9, 0.99));
        assert_eq!(r.max_ms, 1.0);
        assert_eq!(
            (r.lag_p50_us, r.lag_p99_us, r.lag_max_us, r.late_1ms),
            (20, 20, 20, 0)
        );
        // Sent 1 ms apart; all answered within the 1 s window.
        assert!((r.sent_rate - 1000.0).abs() < 1e-6, "{}", r.sent_rate);
        assert!((r.rate - 1000.0).abs() < 1e-6, "{}", r.rate);
        assert!((r.cpu_pct - 15.0).abs() < 1e-9);
        // Had the last answer come 250 ms after the window, the rate is over 1.25 s.
        st.done(
            s.due(s.total() - 1),
            s.window_start() + 1_250_000_000,
            Ok(()),
        );
        let r = st.report(
            &s,
            Protocol::Http2,
            8,
            Duration::ZERO,
            Duration::from_secs(2),
        );
        assert!((r.rate - 1001.0 / 1.25).abs() < 1e-6, "{}", r.rate);
    }

    #[test]
    fn a_stalled_client_is_charged_not_excused() {
        // Ten calls due 100 us apart all went out 5 ms after the first was due (the generator
        // stalled): each counts from its own due time, and the lag says they were late.
        let s = schedule(10_000.0, 0, 1);
        let mut st = Stats::default();
        for n in 0..10 {
            let due = s.due(n);
            st.sent_at(due, 5_000_000);
            st.done(due, 5_100_000, Ok(()));
        }
        let r = st.report(
            &s,
            Protocol::Http2,
            1,
            Duration::ZERO,
            Duration::from_secs(1),
        );
        // Above 2048 us a value is kept to 3 significant digits (5,100 us is 5,103's bucket).
        assert!((r.max_ms - 5.1).abs() < 0.005, "{}", r.max_ms);
        assert!(r.p50_ms >= 4.6, "{}", r.p50_ms);
        assert_eq!(r.late_1ms, 10);
        assert!(r.lag_max_us >= 5000 - 1, "{}", r.lag_max_us);
    }

    #[test]
    fn nothing_answered_reports_zeros_and_unfinished() {
        let s = schedule(100.0, 0, 1000);
        let mut st = Stats::default();
        st.sent_at(0, 10);
        let r = st.report(
            &s,
            Protocol::Http1,
            1,
            Duration::ZERO,
            Duration::from_secs(1),
        );
        assert_eq!((r.ok, r.completed, r.unfinished), (0, 0, 1));
        assert_eq!(
            (r.rate, r.sent_rate, r.p99_ms, r.max_ms),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn tsv_has_one_key_per_line_and_every_error_kind() {
        let s = schedule(100.0, 0, 1000);
        let mut st = Stats::default();
        st.sent_at(0, 0);
        st.done(0, 2_000, Err("ResourceExhausted".into()));
        st.sent_at(10_000_000, 10_000_000);
        st.done(10_000_000, 10_300_000, Ok(()));
        let tsv = st
            .report(
                &s,
                Protocol::Http1,
                2,
                Duration::ZERO,
                Duration::from_secs(1),
            )
            .tsv();
        let kv: BTreeMap<&str, &str> = tsv
            .lines()
            .map(|l| l.split_once('\t').expect("key<TAB>value"))
            .collect();
        assert_eq!(kv.len(), tsv.lines().count(), "a key twice: {tsv}");
        assert_eq!(kv["asked_rate"], "100");
        assert_eq!(kv["ok"], "1");
        assert_eq!(kv["errors"], "1");
        assert_eq!(kv["errors.ResourceExhausted"], "1");
        assert_eq!(kv["p50_ms"], "0.300");
        assert_eq!(kv["connections"], "2");
        assert_eq!(kv["protocol"], "http1");
        for key in [
            "rate",
            "sent_rate",
            "dropped",
            "unfinished",
            "p99_ms",
            "lag_p99_us",
            "cpu_pct",
        ] {
            assert!(kv.contains_key(key), "{key}: {tsv}");
        }
    }

    #[test]
    fn grpc_status_from_trailers_or_a_trailers_only_answer() {
        let ok = http::StatusCode::OK;
        let with = |code: &str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-status", HeaderValue::from_str(code).unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(outcome_of(ok, &none, Some(&with("0")), true), Ok(()));
        assert_eq!(
            outcome_of(ok, &none, Some(&with("8")), true),
            Err("ResourceExhausted".into())
        );
        // Trailers-only: the status is in the headers.
        assert_eq!(
            outcome_of(ok, &with("14"), None, true),
            Err("Unavailable".into())
        );
        assert_eq!(
            outcome_of(ok, &none, None, true),
            Err("no_grpc_status".into())
        );
        assert_eq!(
            outcome_of(ok, &none, Some(&with("42")), true),
            Err("grpc_42".into())
        );
        let unavailable = http::StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            outcome_of(unavailable, &none, None, false),
            Err("http_503".into())
        );
        assert_eq!(outcome_of(ok, &none, None, false), Ok(()));
    }

    #[test]
    fn a_request_is_prepared_for_each_protocol() {
        let url: Uri = "http://127.0.0.1:51051/services.CursosService/GetUserCourses"
            .parse()
            .unwrap();
        let call = Call::grpc(&url, b"\x0a\x011", Duration::from_secs(5));
        assert_eq!(&call.body[..], b"\x00\x00\x00\x00\x03\x0a\x011");
        let h2 = call.request(true);
        assert_eq!(h2.uri(), &url);
        assert_eq!(h2.method(), Method::POST);
        assert_eq!(h2.headers()["content-type"], "application/grpc");
        assert_eq!(h2.headers()["te"], "trailers");
        assert_eq!(h2.headers()["grpc-timeout"], "5000m");
        assert!(h2.headers().get("host").is_none());
        let get: Uri = "http://127.0.0.1:51080/cursos/ver_inscricoes_do_usuario/1?x=1"
            .parse()
            .unwrap();
        let h1 = Call::get(&get).request(false);
        assert_eq!(h1.uri(), "/cursos/ver_inscricoes_do_usuario/1?x=1");
        assert_eq!(h1.method(), Method::GET);
        assert_eq!(h1.headers()["host"], "127.0.0.1:51080");
    }
}
