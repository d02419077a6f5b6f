//! Bounds on open `SubscribeNotifications` streams, per user and in total, so that neither one
//! user's many tabs nor any number of callers can grow notificacoes' memory without end. Each
//! open stream holds a [`StreamPermit`]; dropping the stream (the client went away, the
//! service drains) gives the place back.

use aula_runtime::{
    config::{ConfigError, Env},
    metrics::{Counter, Gauge, Label, Metrics},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// `NOTIFICACOES_STREAMS_PER_USER`'s default: a user with a few devices and tabs.
pub const DEFAULT_PER_USER: usize = 8;
/// `NOTIFICACOES_STREAMS_MAX`'s default: ~10 KB each, ~100 MB in all at the limit.
pub const DEFAULT_TOTAL: usize = 10_000;

/// A stream that may not be opened (RESOURCE_EXHAUSTED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("id_usuario: user {user} already has {limit} open SubscribeNotifications streams (NOTIFICACOES_STREAMS_PER_USER); close one first")]
    PerUser { user: i64, limit: usize },
    #[error("notificacoes already serves its limit of {limit} SubscribeNotifications streams (NOTIFICACOES_STREAMS_MAX); retry later")]
    Total { limit: usize },
}

/// The open streams of one notificacoes.
#[derive(Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

struct Inner {
    per_user: usize,
    total: usize,
    open: Mutex<Open>,
    open_gauge: Gauge,
    refused_per_user: Counter,
    refused_total: Counter,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_user: HashMap<i64, usize>,
}

/// One open stream's place; released on drop.
pub struct StreamPermit {
    inner: Arc<Inner>,
    user: i64,
}

impl Streams {
    /// The limits from `NOTIFICACOES_STREAMS_PER_USER` and `NOTIFICACOES_STREAMS_MAX`.
    pub fn from_env(env: &Env, metrics: &Metrics) -> Result<Self, ConfigError> {
        let per_user = env.count("NOTIFICACOES_STREAMS_PER_USER", DEFAULT_PER_USER)?;
        let total = env.count("NOTIFICACOES_STREAMS_MAX", DEFAULT_TOTAL)?;
        Ok(Self::new(per_user, total, metrics))
    }

    pub fn new(per_user: usize, total: usize, metrics: &Metrics) -> Self {
        let refused = |reason: &'static str| {
            metrics.counter("aula_shed_total", vec![Label::new("reason", reason)])
        };
        Self {
            inner: Arc::new(Inner {
                per_user,
                total,
                open: Mutex::new(Open::default()),
                open_gauge: metrics.gauge("aula_notification_streams_open", vec![]),
                refused_per_user: refused("streams_per_user"),
                refused_total: refused("streams_total"),
            }),
        }
    }

    /// A place for one more stream of `user`, if the limits allow it.
    pub fn open(&self, user: i64) -> Result<StreamPermit, Refused> {
        let inner = &self.inner;
        let mut open = inner.open.lock().expect("never poisoned: no panics inside");
        if open.total >= inner.total {
            inner.refused_total.increment(1);
            return Err(Refused::Total { limit: inner.total });
        }
        let mine = open.by_user.entry(user).or_default();
        if *mine >= inner.per_user {
            inner.refused_per_user.increment(1);
            return Err(Refused::PerUser {
                user,
                limit: inner.per_user,
            });
        }
        *mine += 1;
        open.total += 1;
        inner.open_gauge.set(open.total as f64);
        Ok(StreamPermit {
            inner: inner.clone(),
            user,
        })
    }

    /// Streams open now.
    pub fn open_count(&self) -> usize {
        self.inner.open.lock().expect("never poisoned").total
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.inner.open.lock().expect("never poisoned");
        open.total -= 1;
        if let Some(n) = open.by_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                // The map holds only users with open streams: its size is bounded too.
                open.by_user.remove(&self.user);
            }
        }
        self.inner.open_gauge.set(open.total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_user_and_in_total_and_places_come_back() {
        let s = Streams::new(2, 3, &Metrics::new());
        let a1 = s.open(1).unwrap();
        let _a2 = s.open(1).unwrap();
        assert_eq!(
            s.open(1).err(),
            Some(Refused::PerUser { user: 1, limit: 2 })
        );
        let _b1 = s.open(2).unwrap();
        assert_eq!(s.open(3).err(), Some(Refused::Total { limit: 3 }));
        drop(a1);
        assert_eq!(s.open_count(), 2);
        let _a3 = s.open(1).unwrap();
        assert_eq!(s.open_count(), 3);
    }

    #[test]
    fn zero_is_refused_naming_the_variable() {
        let env = Env::from_pairs([("NOTIFICACOES_STREAMS_PER_USER", "0")]);
        let err = Streams::from_env(&env, &Metrics::new()).err().unwrap();
        assert_eq!(err.var, "NOTIFICACOES_STREAMS_PER_USER");
    }
}
