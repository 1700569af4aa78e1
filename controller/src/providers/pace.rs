//! Pacing of per-function reads against one account, so observing many
//! functions never exceeds the cloud's small control-plane quotas (Lambda
//! GetPolicy: about 15 requests per second per account, shared with every
//! other tool of the account).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct Pacer {
    /// Nanoseconds between two slots; only ever grows (see [`shared`]).
    interval: AtomicU64,
    next: Mutex<Instant>,
}

fn interval_of(rate: u32) -> u64 {
    u64::try_from((Duration::from_secs(1) / rate.max(1)).as_nanos()).unwrap_or(u64::MAX)
}

impl Pacer {
    pub fn per_second(rate: u32) -> Self {
        Pacer {
            interval: AtomicU64::new(interval_of(rate)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Wait for the next slot.
    pub async fn ready(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + Duration::from_nanos(self.interval.load(Ordering::Relaxed));
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The pacer of the account `key`, shared by every provider of this process
/// that reads that account: the quota is the account's, so two CloudAccounts
/// naming the same account must not each spend it in full. Of two declared
/// rates the slower holds. A pacer lives as long as a provider holds it.
pub fn shared(key: &str, rate: u32) -> Arc<Pacer> {
    static PACERS: LazyLock<std::sync::Mutex<HashMap<String, Weak<Pacer>>>> = LazyLock::new(Default::default);
    let mut pacers = PACERS.lock().unwrap_or_else(|e| e.into_inner());
    pacers.retain(|_, p| p.strong_count() > 0);
    if let Some(pacer) = pacers.get(key).and_then(Weak::upgrade) {
        pacer.interval.fetch_max(interval_of(rate), Ordering::Relaxed);
        return pacer;
    }
    let pacer = Arc::new(Pacer::per_second(rate));
    pacers.insert(key.to_string(), Arc::downgrade(&pacer));
    pacer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_evenly() {
        let p = Pacer::per_second(10);
        let start = Instant::now();
        for _ in 0..11 {
            p.ready().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn one_account_has_one_pacer_at_the_slower_rate() {
        let a = shared("111111111111", 10);
        let b = shared("111111111111", 5);
        assert!(Arc::ptr_eq(&a, &b), "two providers of one account share its pacer");
        assert!(
            !Arc::ptr_eq(&a, &shared("222222222222", 10)),
            "another account has its own"
        );
        let start = Instant::now();
        for p in [&a, &b, &a, &b, &a, &b] {
            p.ready().await;
        }
        // Six slots at 5 per second: the first at once, the last after 1 s.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
