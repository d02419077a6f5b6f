//! The one backoff every retry in the platform uses (peers' reconnects, the outbox, the chatbot's
//! recorder, cpar's reminders, migrations): exponential from `base`, capped at `max`, with
//! "equal jitter" (half the delay fixed, half random) so that callers that failed together do
//! not retry together, and a delay never drops below half of what the attempt calls for.

use std::time::Duration;

/// An exponential backoff policy. `Copy`: a loop keeps its attempt count, not the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The delay before retry `attempt` (0 for the first retry): `base * 2^attempt`, at most
    /// `max`, between half of that and all of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self.ceiling(attempt);
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// The longest [`Self::delay`] can be for `attempt`, without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_jittered() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        for attempt in [0, 3, 10, 1000] {
            let d = b.delay(attempt);
            assert!(
                d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                "{d:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.delay(4)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
