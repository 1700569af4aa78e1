//! Account-wide observations shared by every posture of the account.
//!
//! One load serves every posture reconciled within `ttl`; concurrent callers
//! wait for the load in flight instead of starting their own (no GET storm).
//! `invalidate` makes the next caller load again, and a load that was already
//! in flight when the cache was invalidated is not kept.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub struct Cached<T> {
    slot: Mutex<Option<Entry<T>>>,
    generation: AtomicU64,
}

struct Entry<T> {
    at: Instant,
    generation: u64,
    value: Arc<T>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            slot: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }
}

impl<T> Cached<T> {
    pub async fn get_or_load<E, F, Fut>(&self, ttl: Duration, load: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut slot = self.slot.lock().await;
        let current = self.generation.load(Ordering::Acquire);
        if let Some(e) = slot.as_ref()
            && e.generation == current
            && e.at.elapsed() < ttl
        {
            return Ok(e.value.clone());
        }
        let value = Arc::new(load().await?);
        if self.generation.load(Ordering::Acquire) == current {
            *slot = Some(Entry {
                at: Instant::now(),
                generation: current,
                value: value.clone(),
            });
        }
        Ok(value)
    }

    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn loads_once_until_invalidated_or_stale() {
        let c: Cached<u32> = Cached::default();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(7)
        };
        assert_eq!(*c.get_or_load(Duration::from_secs(60), load).await.unwrap(), 7);
        assert_eq!(*c.get_or_load(Duration::from_secs(60), load).await.unwrap(), 7);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        c.invalidate();
        c.get_or_load(Duration::from_secs(60), load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        c.get_or_load(Duration::ZERO, load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        let c: Arc<Cached<u32>> = Arc::new(Cached::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_load(Duration::from_secs(60), || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ()>(1)
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let c: Cached<u32> = Cached::default();
        assert!(
            c.get_or_load(Duration::from_secs(60), || async { Err::<u32, _>("down") })
                .await
                .is_err()
        );
        assert_eq!(
            *c.get_or_load(Duration::from_secs(60), || async { Ok::<_, ()>(3) })
                .await
                .unwrap(),
            3
        );
    }
}
