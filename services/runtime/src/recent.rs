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
    ///
    /// While one caller reloads, the others answer with the value held, if there is one,
    /// instead of queueing behind the load: a count over millions of rows takes a second, and
    /// every call in that second would wait for it (BENCHMARKS.md, "Cost with data"). The
    /// value is then at most the ttl plus one load old.
    pub async fn get<E, Fut>(&self, load: impl FnOnce() -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _refreshing = match self.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let held = self.value.read().unwrap().as_ref().map(|(_, v)| v.clone());
                match held {
                    Some(v) => return Ok(v),
                    None => self.refresh.lock().await,
                }
            }
        };
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
    async fn the_value_held_answers_while_one_caller_reloads() {
        let recent = std::sync::Arc::new(Recent::new(Duration::ZERO)); // always stale
        let first: Result<u32, ()> = recent.get(|| async { Ok(1) }).await;
        assert_eq!(first, Ok(1));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let slow = tokio::spawn({
            let recent = recent.clone();
            async move {
                recent
                    .get(|| async {
                        wait.await.unwrap();
                        Ok::<u32, ()>(2)
                    })
                    .await
            }
        });
        // The spawned caller takes the reload and waits in it (one thread: it runs now).
        while recent.refresh.try_lock().is_ok() {
            tokio::task::yield_now().await;
        }
        let meanwhile: Result<u32, ()> = recent
            .get(|| async { panic!("one reload at a time") })
            .await;
        assert_eq!(meanwhile, Ok(1), "the value held, without waiting");
        go.send(()).unwrap();
        assert_eq!(slow.await.unwrap(), Ok(2));
        // With nothing held yet, a caller waits for the reload in progress.
        let empty = std::sync::Arc::new(Recent::<u32>::new(Duration::from_secs(60)));
        let guard = empty.refresh.lock().await;
        let waiter = tokio::spawn({
            let empty = empty.clone();
            async move { empty.get(|| async { Ok::<u32, ()>(3) }).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        assert_eq!(waiter.await.unwrap(), Ok(3));
    }

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
