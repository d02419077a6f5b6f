//! A value recomputed at most once per `ttl`: for answers that may be a moment old, such as the
//! counts in `GetStatus`, which monitoring and load balancers poll far more often than they
//! change. Many callers at once trigger one refresh; the others wait for it.

use std::{
    future::Future,
    sync::RwLock,
    time::{Duration, Instant},
};

pub struct Recent<T> {
    ttl: Duration,
    value: RwLock<Option<(Instant, T)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<T: Clone> Recent<T> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            value: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<T> {
        let value = self.value.read().unwrap();
        value
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The value, from `load` when the one held is older than the ttl (or there is none).
    pub async fn get<E, Fut>(&self, load: impl FnOnce() -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v); // another caller refreshed it while we waited
        }
        let v = load().await?;
        *self.value.write().unwrap() = Some((Instant::now(), v.clone()));
        Ok(v)
    }
}

impl<T> Recent<T> {
    /// Applies a change this process made itself to the value held, if any, so that between
    /// loads it stays exact for the process's own writes (a count it just added one to); what
    /// others changed shows at the next load.
    pub fn update(&self, change: impl FnOnce(&mut T)) {
        if let Some((_, v)) = self.value.write().unwrap().as_mut() {
            change(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn loads_once_per_ttl() {
        let loads = AtomicUsize::new(0);
        let recent = Recent::new(Duration::from_secs(60));
        for _ in 0..5 {
            let v: Result<usize, ()> = recent
                .get(|| async { Ok(loads.fetch_add(1, Ordering::SeqCst)) })
                .await;
            assert_eq!(v, Ok(0));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        recent.update(|v| *v += 10);
        let v: Result<usize, ()> = recent.get(|| async { Ok(99) }).await;
        assert_eq!(v, Ok(10), "updated in place, not reloaded");

        let stale = Recent::new(Duration::ZERO);
        let _: Result<(), ()> = stale.get(|| async { Ok(()) }).await;
        let err: Result<(), &str> = stale.get(|| async { Err("down") }).await;
        assert_eq!(err, Err("down"));
    }
}
