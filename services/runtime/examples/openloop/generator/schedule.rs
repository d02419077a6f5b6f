//! When each call is due, and the clock and timerfd alarm that send it then.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};
use tokio::io::{unix::AsyncFd, Interest};
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
