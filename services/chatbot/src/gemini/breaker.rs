//! A circuit breaker: after `failure_threshold` consecutive failed attempts it opens for `open_for`
//! and refuses calls (the chatbot answers UNAVAILABLE at once instead of making every student wait
//! for timeouts); then it lets one probe through (half-open): success closes it, failure re-opens it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is allowed; `probing` is true while it is in flight.
    HalfOpen {
        probing: bool,
    },
}

/// Shared by all clones of a client (one breaker per upstream).
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: Arc<Mutex<State>>,
}

/// The breaker's state, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: Arc::new(Mutex::new(State::Closed {
                consecutive_failures: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (plain copies).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make one attempt. `None`: the circuit is open, fail fast.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Some(Permit {
                breaker: self.clone(),
                probe: false,
                settled: false,
            }),
            State::Open { until } if Instant::now() < until => None,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Some(Permit {
                    breaker: self.clone(),
                    probe: true,
                    settled: false,
                })
            }
            State::HalfOpen { probing: true } => None,
        }
    }
}

/// One attempt allowed by the breaker; report how it went with [`Permit::success`] or
/// [`Permit::failure`]. Dropped unreported (the caller gave up), a probe frees its slot.
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    probe: bool,
    settled: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.settled = true;
        *self.breaker.lock() = State::Closed {
            consecutive_failures: 0,
        };
    }

    pub fn failure(mut self) {
        self.settled = true;
        let config = self.breaker.config;
        let mut state = self.breaker.lock();
        let failures = match *state {
            State::Closed {
                consecutive_failures,
            } if !self.probe => consecutive_failures + 1,
            // A failed probe, or a late failure while open: (re-)open.
            _ => config.failure_threshold,
        };
        *state = if failures >= config.failure_threshold {
            tracing::warn!(
                open_for_secs = config.open_for.as_secs_f64(),
                "gemini circuit breaker opened"
            );
            State::Open {
                until: Instant::now() + config.open_for,
            }
        } else {
            State::Closed {
                consecutive_failures: failures,
            }
        };
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut state = self.breaker.lock();
            if *state == (State::HalfOpen { probing: true }) {
                *state = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for: Duration) -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_success_resets() {
        let b = breaker(Duration::from_secs(60));
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none());
    }

    #[test]
    fn half_open_allows_one_probe() {
        let b = breaker(Duration::ZERO);
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_none(), "only one probe at a time");
        drop(probe);
        let probe = b.try_acquire().expect("an abandoned probe frees its slot");
        probe.failure();
        // open_for is zero: immediately half-open again.
        let probe = b.try_acquire().unwrap();
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_some());
    }
}
