//! The explicit limits of every gRPC server: how much one caller can make a service hold.
//!
//! Each limit is an environment variable with a safe default (docs/CONFIG.md, "Limits"):
//! message sizes, HTTP/2 streams per connection and the reset-stream floods' mitigations,
//! keepalive and connection age, connections open and how soon they must start HTTP/2
//! ([`crate::connections`]), calls in flight (beyond which calls are shed at once, see
//! [`crate::shed`]), and whether reflection is served.

use crate::config::{ConfigError, Env};
use std::time::Duration;

/// The largest gRPC message a service decodes or encodes by default: 4 MiB, gRPC's usual
/// receive limit, so any client's default accepts what a service sends.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// `AULA_MAX_QUEUED`'s default, per core the process may use: 128 calls waiting for one core
/// are ~3-4 ms of GetUserCourses. Measured at 3x cursos' maximum (BENCHMARKS.md, "Limits under
/// load"; one core, shared machine, 2026-12-05): 64 kept the probe's p99 within 1.5x of half
/// load's but served 77% of the maximum (short turns of the run queue batch less); 128: 1.8x
/// and 101%; 192: 2.4x and 89%; unbounded (the in-flight limit's 256): 12x and 94%.
pub const QUEUED_PER_CORE: usize = 128;

/// `AULA_MAX_RUNNABLE`'s default, per core: admitted calls in tokio's run queue at once, the
/// rest of the queued ones held in turn ([`crate::serve::starts`]). Measured at 3x cursos'
/// maximum (BENCHMARKS.md, "Fair starts"; one core, slowed machine, 2026-12-06): 8 served 67%
/// of the maximum, 16 81-105%, 32 100-110% and 64 87%, the light client's calls waiting longer
/// the more there are (its median 2.0, 1.5-2.1, 3.1 and 4.9 ms). Fewer runnable calls make the
/// run queue's turns shorter, and connections paced in turns ([`crate::serve::paced`]) come
/// back sooner to be refused again.
pub const RUNNABLE_PER_CORE: usize = 32;

/// The cores this process may use (its affinity mask and cgroup quota, as tokio counts its
/// workers); 1 if unknown.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The limits of one service's gRPC server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `AULA_MAX_MESSAGE_SIZE`: the largest request decoded and response encoded. A bigger
    /// request is refused with RESOURCE_EXHAUSTED; a bigger response is an error, not sent.
    pub max_message_bytes: usize,
    /// `AULA_HTTP2_MAX_CONCURRENT_STREAMS`: advertised in SETTINGS; a client opening more
    /// streams on one connection has them refused (REFUSED_STREAM) by HTTP/2 itself.
    pub max_concurrent_streams: u32,
    /// `AULA_HTTP2_MAX_LOCAL_RESET_STREAMS`: streams the server may reset because of the
    /// client's errors before it closes the connection (GOAWAY): the "MadeYouReset" flood's
    /// mitigation, which tonic switches off unless it is set.
    pub max_local_reset_streams: usize,
    /// `AULA_HTTP2_MAX_PENDING_RESET_STREAMS`: streams reset by the client and not yet
    /// accepted before GOAWAY (the 2023 "rapid reset" flood's mitigation).
    pub max_pending_reset_streams: usize,
    /// `AULA_HTTP2_KEEPALIVE_INTERVAL`: how often an HTTP/2 PING checks a connection.
    pub keepalive_interval: Duration,
    /// `AULA_HTTP2_KEEPALIVE_TIMEOUT`: a connection whose PING is not answered within this is
    /// closed (a dead or stuck client stops holding its streams).
    pub keepalive_timeout: Duration,
    /// `AULA_MAX_CONNECTION_AGE`: connections are closed gracefully (GOAWAY) after this long,
    /// so clients rebalance onto new replicas.
    pub max_connection_age: Duration,
    /// `AULA_MAX_CONNECTION_AGE_GRACE`: how long calls still open on an aged connection may
    /// run before it is closed anyway (long streams reconnect).
    pub max_connection_age_grace: Duration,
    /// `AULA_MAX_CONNECTIONS`: connections open at once; beyond it new ones wait in the
    /// kernel's accept queue ([`crate::connections`]).
    pub max_connections: usize,
    /// `AULA_HTTP2_PREFACE_TIMEOUT`: a new connection that has not started HTTP/2 (after TLS,
    /// if on) within this is closed.
    pub preface_timeout: Duration,
    /// `AULA_MAX_IN_FLIGHT`: calls a service handles at once; beyond it, calls are shed
    /// with RESOURCE_EXHAUSTED at once instead of queueing (health checks never are).
    pub max_in_flight: usize,
    /// `AULA_MAX_QUEUED`: admitted calls waiting for the CPU (their task not yet run); beyond
    /// it, calls are shed like at `max_in_flight`. Bounds the time an admitted call waits
    /// before its handler starts, which the in-flight limit cannot: that one also counts calls
    /// waiting on a peer or a database, so it must be large.
    pub max_queued: usize,
    /// `AULA_MAX_RUNNABLE`: of the queued calls, how many are in the runtime's run queue at
    /// once; the others wait their turn, a connection's only open call first
    /// ([`crate::serve::starts`]).
    pub max_runnable: usize,
    /// `AULA_REFLECTION`: serve gRPC reflection (`on`/`off`).
    pub reflection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: 256,
            max_local_reset_streams: 1024,
            max_pending_reset_streams: 20,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
            max_connection_age_grace: Duration::from_secs(60),
            max_connections: 2048,
            preface_timeout: Duration::from_secs(10),
            max_in_flight: 256,
            max_queued: QUEUED_PER_CORE * cores(),
            max_runnable: RUNNABLE_PER_CORE * cores(),
            reflection: true,
        }
    }
}

impl Limits {
    /// Reads every limit; a bad value names its variable.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let limits = Self {
            max_message_bytes: match env.get("AULA_MAX_MESSAGE_SIZE") {
                None => d.max_message_bytes,
                Some(v) => parse_bytes(v).ok_or_else(|| {
                    bad(
                        "AULA_MAX_MESSAGE_SIZE",
                        v,
                        "expected a size such as 4MiB, 512KiB or 1048576",
                    )
                })?,
            },
            max_concurrent_streams: env.parse(
                "AULA_HTTP2_MAX_CONCURRENT_STREAMS",
                d.max_concurrent_streams,
            )?,
            max_local_reset_streams: env.parse(
                "AULA_HTTP2_MAX_LOCAL_RESET_STREAMS",
                d.max_local_reset_streams,
            )?,
            max_pending_reset_streams: env.parse(
                "AULA_HTTP2_MAX_PENDING_RESET_STREAMS",
                d.max_pending_reset_streams,
            )?,
            keepalive_interval: env
                .duration("AULA_HTTP2_KEEPALIVE_INTERVAL", d.keepalive_interval)?,
            keepalive_timeout: env.duration("AULA_HTTP2_KEEPALIVE_TIMEOUT", d.keepalive_timeout)?,
            max_connection_age: env.duration("AULA_MAX_CONNECTION_AGE", d.max_connection_age)?,
            max_connection_age_grace: env
                .duration("AULA_MAX_CONNECTION_AGE_GRACE", d.max_connection_age_grace)?,
            max_connections: env.parse("AULA_MAX_CONNECTIONS", d.max_connections)?,
            preface_timeout: env.duration("AULA_HTTP2_PREFACE_TIMEOUT", d.preface_timeout)?,
            max_in_flight: env.parse("AULA_MAX_IN_FLIGHT", d.max_in_flight)?,
            max_queued: env.parse("AULA_MAX_QUEUED", d.max_queued)?,
            max_runnable: env.parse("AULA_MAX_RUNNABLE", d.max_runnable)?,
            reflection: match env.get("AULA_REFLECTION") {
                None => d.reflection,
                Some(v) => parse_switch(v)
                    .ok_or_else(|| bad("AULA_REFLECTION", v, "expected on or off"))?,
            },
        };
        // A zero would refuse everything: surely a mistake, so it is named at start-up.
        for (var, value) in [
            ("AULA_MAX_MESSAGE_SIZE", limits.max_message_bytes),
            (
                "AULA_HTTP2_MAX_CONCURRENT_STREAMS",
                limits.max_concurrent_streams as usize,
            ),
            ("AULA_MAX_IN_FLIGHT", limits.max_in_flight),
            ("AULA_MAX_QUEUED", limits.max_queued),
            ("AULA_MAX_RUNNABLE", limits.max_runnable),
            ("AULA_MAX_CONNECTIONS", limits.max_connections),
        ] {
            if value == 0 {
                return Err(bad(var, "0", "must be at least 1"));
            }
        }
        for (var, value) in [
            ("AULA_HTTP2_KEEPALIVE_INTERVAL", limits.keepalive_interval),
            ("AULA_HTTP2_KEEPALIVE_TIMEOUT", limits.keepalive_timeout),
            ("AULA_MAX_CONNECTION_AGE", limits.max_connection_age),
            ("AULA_HTTP2_PREFACE_TIMEOUT", limits.preface_timeout),
        ] {
            if value.is_zero() {
                return Err(bad(var, "0s", "must be more than 0s"));
            }
        }
        Ok(limits)
    }

    /// hyper's HTTP/2 server with these limits applied (the transport's part; the in-flight
    /// limit is [`crate::shed::ShedLayer`], message sizes are set on each service's generated
    /// server, connection counts, age and grace are [`crate::serve`]'s and
    /// [`crate::connections`]'s). Everything else is hyper's default, as under tonic's `Server`.
    pub fn http2(&self) -> hyper::server::conn::http2::Builder<crate::arrival::StreamExec> {
        let mut builder = hyper::server::conn::http2::Builder::new(
            crate::arrival::StreamExec::new(crate::serve::starts::Starts::new(self.max_runnable)),
        );
        builder
            // Keepalive PINGs need a timer.
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_local_error_reset_streams(self.max_local_reset_streams)
            .max_pending_accept_reset_streams(self.max_pending_reset_streams)
            .keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout);
        builder
    }
}

fn bad(var: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse_switch(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// `4MiB`, `512KiB`, `1048576` (bytes); `KB`/`MB` are read as their binary sizes too.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let l = crate::testing::assert_defaults(Limits::load);
        assert_eq!(l.max_message_bytes, 4 << 20);
        assert_eq!(l.max_concurrent_streams, 256);
        assert!(l.reflection);
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let l = crate::testing::loaded(
            Limits::load,
            &[
                ("AULA_MAX_MESSAGE_SIZE", "512KiB"),
                ("AULA_MAX_IN_FLIGHT", "3"),
                ("AULA_MAX_QUEUED", "5"),
                ("AULA_MAX_RUNNABLE", "3"),
                ("AULA_REFLECTION", "off"),
                ("AULA_HTTP2_KEEPALIVE_TIMEOUT", "2s"),
            ],
        );
        assert_eq!(l.max_message_bytes, 512 * 1024);
        assert_eq!(l.max_in_flight, 3);
        assert_eq!(l.max_queued, 5);
        assert_eq!(l.max_runnable, 3);
        assert!(!l.reflection);
        assert_eq!(l.keepalive_timeout, Duration::from_secs(2));
        crate::testing::assert_each_refused(
            Limits::load,
            &[
                ("AULA_MAX_MESSAGE_SIZE", "lots"),
                ("AULA_MAX_MESSAGE_SIZE", "0"),
                ("AULA_MAX_IN_FLIGHT", "0"),
                ("AULA_MAX_IN_FLIGHT", "-1"),
                ("AULA_MAX_QUEUED", "0"),
                ("AULA_MAX_RUNNABLE", "0"),
                ("AULA_HTTP2_MAX_CONCURRENT_STREAMS", "0"),
                ("AULA_REFLECTION", "maybe"),
                ("AULA_MAX_CONNECTION_AGE", "0s"),
            ],
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4MiB"), Some(4 << 20));
        assert_eq!(parse_bytes("4 MB"), Some(4 << 20));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("2k"), Some(2048));
        assert_eq!(parse_bytes("1.5MiB"), None);
        assert_eq!(parse_bytes("99999999999999999999G"), None);
    }
}
