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

mod call;
mod conn;
mod report;
mod run;
mod schedule;
mod stats;
#[cfg(test)]
mod tests;

pub use call::Call;
pub use conn::Protocol;
pub use run::{run, Plan};
pub use schedule::Schedule;
