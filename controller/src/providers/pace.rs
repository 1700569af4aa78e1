//! Pacing of per-function reads against one account, so observing many
//! functions never exceeds the cloud's small control-plane quotas (Lambda
//! GetPolicy: about 15 requests per second per account, shared with every
//! other tool of the account).

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn per_second(rate: u32) -> Self {
        Pacer {
            interval: Duration::from_secs(1) / rate.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Wait for the next slot.
    pub async fn ready(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
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
}
