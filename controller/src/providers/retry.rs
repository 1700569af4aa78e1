//! One retry policy for every cloud, and one way to wait for a long-running
//! change.
//!
//! [`Policy::run`] retries a failed call: the caller classifies each error
//! by its variant into a [`Verdict`]; delays grow exponentially with jitter
//! up to a cap, a `Retry-After` the cloud sent is obeyed up to
//! [`Tuning::max_retry_after`] (a longer one fails the call, to be requeued,
//! rather than park a worker), attempts are bounded and so is the whole call
//! (a deadline), and every retry is counted by cloud and cause
//! (`zerofn_cloud_retries_total`). [`Policy::call`] also bounds each attempt.
//! [`Policy::poll`] asks whether something is done until it is, or until the
//! deadline.
//!
//! Why not `backon` (in the lock file through kube-runtime): its jitter adds
//! up to the whole delay again, past the cap; its total delay counts only
//! the sleeps, not the attempts; and when it stops it hands back the last
//! error alone, so "out of time" and "not retryable" could only be told
//! apart through state shared with its closures. The loop below is shorter
//! than that glue.

use crate::metrics::Metrics;
use crate::providers::ProviderError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Retry and wait tuning, one type for every cloud. Each cloud has its own
/// defaults (`Cloud::default_tuning`, which starts from `Default` and sets
/// what differs); tests shorten them.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Attempts of one call, the first included.
    pub max_attempts: u32,
    /// First backoff delay; each retry doubles it, up to a cap.
    pub initial_backoff: Duration,
    /// Longest `Retry-After` obeyed; a longer one fails the call as
    /// throttled (the reconcile is requeued) instead of parking a worker.
    pub max_retry_after: Duration,
    /// Deadline of one attempt (the token request included): a silent
    /// endpoint costs this, not forever.
    pub attempt_timeout: Duration,
    /// Deadline of one call, retries included.
    pub call_deadline: Duration,
    /// Longest wait for a change the cloud applies asynchronously (AWS
    /// `LastUpdateStatus`, GCP and ARM long-running operations).
    pub operation_wait: Duration,
    /// First delay between polls when the cloud does not say.
    pub poll_interval: Duration,
    /// How long a freshly created identity may be unknown to the service
    /// asked to use it (IAM, Entra ID replication) before that is an error.
    pub propagation: Duration,
    /// Read-modify-write rounds of an IAM policy (stale etag) before giving up.
    pub etag_rounds: u32,
    /// PEM root certificates trusted in addition to the system's (a private
    /// endpoint, a TLS-inspecting proxy, a test stand-in).
    pub extra_roots: Vec<String>,
}

/// What the clouds' defaults share.
impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
            call_deadline: Duration::from_secs(120),
            operation_wait: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            propagation: Duration::from_secs(120),
            etag_rounds: 8,
            extra_roots: Vec::new(),
        }
    }
}

/// Longest backoff between attempts of one call.
const CALL_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Longest delay between polls the cloud did not ask for.
const POLL_CAP: Duration = Duration::from_secs(10);

impl Tuning {
    /// The policy of one call: `max_attempts` within `call_deadline`, each
    /// attempt bounded by `attempt_timeout`.
    pub fn call<'a>(&self, cloud: &'static str, metrics: &'a Metrics) -> Policy<'a> {
        Policy {
            cloud,
            metrics,
            attempts: self.max_attempts,
            backoff: Backoff::new(self.initial_backoff, CALL_BACKOFF_CAP),
            max_retry_after: self.max_retry_after,
            attempt_timeout: self.attempt_timeout,
            deadline: after(self.call_deadline),
        }
    }

    /// The policy of waiting for a change: polls from `poll_interval`
    /// growing to a cap, for at most `operation_wait`.
    pub fn operation<'a>(&self, cloud: &'static str, metrics: &'a Metrics) -> Policy<'a> {
        Policy {
            attempts: u32::MAX,
            backoff: Backoff::new(self.poll_interval, POLL_CAP.max(self.poll_interval)),
            deadline: after(self.operation_wait),
            ..self.call(cloud, metrics)
        }
    }

    /// The policy of retrying while a new identity propagates: from one
    /// second growing to ten, for at most `propagation`.
    pub fn propagation<'a>(&self, cloud: &'static str, metrics: &'a Metrics) -> Policy<'a> {
        Policy {
            attempts: u32::MAX,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(10)),
            deadline: after(self.propagation),
            ..self.call(cloud, metrics)
        }
    }
}

/// The instant `d` from now (a far one for a duration too long to add).
pub fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Exponential backoff with jitter: the `n`th retry waits between half and
/// all of `base * 2^n`, capped at `cap`. The jitter keeps writers racing on
/// one resource from retrying in lockstep.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    pub fn delay(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(1 << retry.min(10))
            .min(self.cap)
            .mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Why an attempt is worth repeating (the label of
/// `zerofn_cloud_retries_total`).
pub use crate::metrics::RetryCause as Cause;

/// Whether an error, or one it wraps, is a connection the other side
/// refused: nothing listens at that address. An account probe does not
/// retry it (the account is reported unreachable at once, with that
/// reason); ordinary calls still do, as a service may be restarting.
pub fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// What a failed attempt calls for, decided from the error's variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not worth another attempt.
    Fail,
    /// Back off and try again.
    Retry(Cause),
    /// Try again after what the cloud asked for (`Retry-After`).
    RetryAfter(Cause, Duration),
}

/// Why a retried call gave up; each carries the last attempt's error.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// Not retryable, out of attempts, or asked to wait longer than
    /// `max_retry_after`.
    Failed(E),
    /// Waiting for another attempt would pass the deadline.
    Deadline(E),
}

impl<E> GaveUp<E> {
    pub fn into_error(self) -> E {
        match self {
            GaveUp::Failed(e) | GaveUp::Deadline(e) => e,
        }
    }
}

/// An attempt that got no answer within the attempt timeout.
#[derive(Clone, Copy, Debug)]
pub struct TimedOut(pub Duration);

impl From<TimedOut> for ProviderError {
    fn from(t: TimedOut) -> Self {
        ProviderError::Timeout(format!("no answer within {:?}", t.0))
    }
}

/// One check of something the cloud is doing.
pub enum Progress<T> {
    Done(T),
    /// Not yet; the cloud may say when to look again.
    Pending(Option<Duration>),
}

/// Why waiting ended without the change done.
#[derive(Debug)]
pub enum Unfinished<E> {
    /// A check failed.
    Failed(E),
    /// Not done within the deadline.
    Deadline,
}

/// Attempts, backoff, `Retry-After` limit, attempt timeout and deadline of
/// one retried call or one wait: made right before it starts (the
/// deadline is an instant).
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    pub cloud: &'static str,
    pub metrics: &'a Metrics,
    pub attempts: u32,
    pub backoff: Backoff,
    pub max_retry_after: Duration,
    pub attempt_timeout: Duration,
    pub deadline: Instant,
}

impl Policy<'_> {
    /// Run `attempt` until it succeeds or `classify` says an error is not
    /// worth another one, the attempts are used up, or the deadline would
    /// pass.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F, classify: impl Fn(&E) -> Verdict) -> Result<T, GaveUp<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let (cause, wait) = match classify(&error) {
                Verdict::Fail => return Err(GaveUp::Failed(error)),
                Verdict::RetryAfter(_, d) if d > self.max_retry_after => return Err(GaveUp::Failed(error)),
                Verdict::RetryAfter(cause, d) => (cause, d),
                Verdict::Retry(cause) => (cause, self.backoff.delay(tries)),
            };
            if tries >= self.attempts {
                return Err(GaveUp::Failed(error));
            }
            if Instant::now() + wait >= self.deadline {
                return Err(GaveUp::Deadline(error));
            }
            self.metrics.retried(self.cloud, cause);
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt bounded by `attempt_timeout`, and by the deadline: an
    /// attempt that gets no answer in time fails with `E::from(TimedOut)`.
    pub async fn bounded<T, E>(&self, attempt: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<TimedOut>,
    {
        let limit = self
            .deadline
            .saturating_duration_since(Instant::now())
            .min(self.attempt_timeout);
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| Err(E::from(TimedOut(limit))))
    }

    /// Check until `check` reports the change done: between checks, wait
    /// what the cloud asked for (at most `max_retry_after`) or the next
    /// backoff delay; give up once the deadline has passed. `first`, when
    /// given, is waited before the first check.
    pub async fn poll<T, E, F, Fut>(&self, first: Option<Duration>, check: F) -> Result<T, Unfinished<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Progress<T>, E>>,
    {
        if let Some(wait) = first {
            tokio::time::sleep(wait.min(self.max_retry_after)).await;
        }
        let mut checks = 0;
        loop {
            checks += 1;
            let asked = match check().await.map_err(Unfinished::Failed)? {
                Progress::Done(v) => return Ok(v),
                Progress::Pending(asked) => asked,
            };
            if Instant::now() >= self.deadline {
                return Err(Unfinished::Deadline);
            }
            let wait = asked.map_or_else(|| self.backoff.delay(checks), |d| d.min(self.max_retry_after));
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    enum Fault {
        Busy,
        Throttled(Option<Duration>),
        Broken,
        Silent,
    }

    impl From<TimedOut> for Fault {
        fn from(_: TimedOut) -> Self {
            Fault::Silent
        }
    }

    fn classify(e: &Fault) -> Verdict {
        match e {
            Fault::Busy | Fault::Silent => Verdict::Retry(Cause::conflict),
            Fault::Throttled(Some(d)) => Verdict::RetryAfter(Cause::throttled, *d),
            Fault::Throttled(None) => Verdict::Retry(Cause::throttled),
            Fault::Broken => Verdict::Fail,
        }
    }

    fn policy(metrics: &Metrics) -> Policy<'_> {
        Tuning {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            call_deadline: Duration::from_secs(60),
            ..Tuning::default()
        }
        .call("aws", metrics)
    }

    /// Answers each attempt with the next of `faults`, then succeeds.
    fn script(faults: Vec<Fault>) -> (AtomicU32, impl Fn(u32) -> Result<u32, Fault>) {
        let faults = std::sync::Mutex::new(faults.into_iter());
        (AtomicU32::new(0), move |n| {
            faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next()
                .map_or(Ok(n), Err)
        })
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for retry in 0..20 {
            let d = b.delay(retry);
            let full = Duration::from_millis(100)
                .saturating_mul(1 << retry.min(10))
                .min(Duration::from_secs(2));
            assert!(
                d <= full && d >= full / 2,
                "retry {retry}: {d:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_what_is_transient_counts_it_and_obeys_retry_after() {
        let metrics = Metrics::default();
        let (calls, answer) = script(vec![Fault::Busy, Fault::Throttled(Some(Duration::from_secs(7)))]);
        let started = Instant::now();
        let got = policy(&metrics)
            .run(
                || {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    std::future::ready(answer(n))
                },
                classify,
            )
            .await;
        assert!(matches!(got, Ok(3)), "{got:?}");
        assert!(started.elapsed() >= Duration::from_secs(7), "Retry-After obeyed");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "and nothing more than a backoff"
        );
        assert_eq!(metrics.retries("aws", Cause::conflict), 1);
        assert_eq!(metrics.retries("aws", Cause::throttled), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_a_permanent_error_at_the_attempt_limit_and_at_a_long_retry_after() {
        let metrics = Metrics::default();
        let p = policy(&metrics);
        let (calls, answer) = script(vec![Fault::Broken]);
        let got = p
            .run(
                || std::future::ready(answer(calls.fetch_add(1, Ordering::SeqCst))),
                classify,
            )
            .await;
        assert!(matches!(got, Err(GaveUp::Failed(Fault::Broken))), "{got:?}");

        let (calls, answer) = script((0..10).map(|_| Fault::Busy).collect());
        let got = p
            .run(
                || std::future::ready(answer(calls.fetch_add(1, Ordering::SeqCst))),
                classify,
            )
            .await;
        assert!(matches!(got, Err(GaveUp::Failed(Fault::Busy))), "{got:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 4, "max_attempts bounds the attempts");

        let started = Instant::now();
        let too_long = Fault::Throttled(Some(Duration::from_secs(61)));
        let (calls, answer) = script(vec![too_long]);
        let got = p
            .run(
                || std::future::ready(answer(calls.fetch_add(1, Ordering::SeqCst))),
                classify,
            )
            .await;
        assert!(matches!(got, Err(GaveUp::Failed(Fault::Throttled(_)))), "{got:?}");
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a Retry-After past the maximum is not waited"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_silent_attempts_and_their_retries() {
        // Attempts of 5 s within 12 s: the third gets the 2 s left.
        let metrics = Metrics::default();
        let started = Instant::now();
        let p = Policy {
            attempts: u32::MAX,
            attempt_timeout: Duration::from_secs(5),
            deadline: after(Duration::from_secs(12)),
            ..policy(&metrics)
        };
        let silent = || p.bounded(std::future::pending::<Result<(), Fault>>());
        let got = p.run(silent, classify).await;
        assert!(matches!(got, Err(GaveUp::Deadline(Fault::Silent))), "{got:?}");
        // The timer wheel ticks in milliseconds.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(12) && took < Duration::from_millis(12_010),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_done_or_the_deadline() {
        let metrics = Metrics::default();
        let p = Tuning::default().operation("azure", &metrics);
        let checks = AtomicU32::new(0);
        let started = Instant::now();
        let got: Result<u32, Unfinished<Fault>> = p
            .poll(Some(Duration::from_secs(3)), || {
                let n = checks.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok(match n {
                    0 => Progress::Pending(Some(Duration::from_secs(4))),
                    1 => Progress::Pending(Some(Duration::from_secs(600))),
                    _ => Progress::Done(n),
                }))
            })
            .await;
        assert!(matches!(got, Ok(2)), "{got:?}");
        // The first wait, then what was asked, capped; the timer wheel
        // ticks in milliseconds.
        let took = started.elapsed();
        let expected = Duration::from_secs(3 + 4 + 60);
        assert!(
            took >= expected && took < expected + Duration::from_millis(10),
            "{took:?}"
        );

        let never: Result<(), Unfinished<Fault>> =
            p.poll(None, || std::future::ready(Ok(Progress::Pending(None)))).await;
        assert!(matches!(never, Err(Unfinished::Deadline)), "{never:?}");
    }
}
