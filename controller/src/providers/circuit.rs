//! One account, one failure: once an account does not answer, every posture
//! of it fails at once for a while, instead of each waiting out its own
//! timeouts and retries (1,000 postures of a black-holed account would
//! otherwise take 1,000 timeouts).

use super::{Action, MintIntent, MintedIdentity, Plan, Posture, Provider, ProviderError};
use crate::api::Cloud;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the account is marked down, and since when.
#[derive(Clone, Debug)]
struct Down {
    since: Instant,
    timeout: bool,
    message: String,
}

/// A provider that remembers its account's unreachability for `cooldown`.
pub struct Circuit {
    inner: Arc<dyn Provider>,
    cooldown: Duration,
    down: Mutex<Option<Down>>,
}

impl Circuit {
    pub fn new(inner: Arc<dyn Provider>, cooldown: Duration) -> Self {
        Circuit {
            inner,
            cooldown,
            down: Mutex::new(None),
        }
    }

    /// Mark the account down (an unreachable or silent endpoint).
    pub fn trip(&self, e: &ProviderError) {
        let (timeout, message) = match e {
            ProviderError::Unreachable(m) => (false, m.clone()),
            ProviderError::Timeout(m) => (true, m.clone()),
            _ => return,
        };
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::warn!(error = %e, "account unreachable: its postures fail at once for {:?}", self.cooldown);
            *down = Some(Down {
                since: Instant::now(),
                timeout,
                message,
            });
        }
    }

    /// The failure every call gets while the account is marked down.
    pub fn open(&self) -> Option<ProviderError> {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        match down.as_ref() {
            Some(d) if d.since.elapsed() < self.cooldown => {
                let message = format!("{} (the account is marked unreachable; not tried again yet)", d.message);
                Some(if d.timeout {
                    ProviderError::Timeout(message)
                } else {
                    ProviderError::Unreachable(message)
                })
            }
            Some(_) => {
                *down = None;
                None
            }
            None => None,
        }
    }

    fn observe_result<T>(&self, r: Result<T, ProviderError>) -> Result<T, ProviderError> {
        match &r {
            Ok(_) => *self.down.lock().unwrap_or_else(|p| p.into_inner()) = None,
            Err(e) => self.trip(e),
        }
        r
    }
}

impl Provider for Circuit {
    fn cloud(&self) -> Cloud {
        self.inner.cloud()
    }

    fn reached(&self) -> Option<String> {
        self.inner.reached()
    }

    fn assess<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>> {
        async move {
            if let Some(e) = self.open() {
                return Err(e);
            }
            self.observe_result(self.inner.assess(posture).await)
        }
        .boxed()
    }

    // A write's own timeout (a slow update) says nothing about the account:
    // writes do not trip the circuit, but they do not start while it is open.
    fn apply<'a>(&'a self, posture: &'a Posture, action: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            if let Some(e) = self.open() {
                return Err(e);
            }
            self.inner.apply(posture, action).await
        }
        .boxed()
    }

    fn invalidate(&self) {
        self.inner.invalidate();
    }

    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity> {
        self.inner.minted(posture)
    }

    fn intent(&self, posture: &Posture, action: &Action) -> Option<MintIntent> {
        self.inner.intent(posture, action)
    }

    fn release<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            if let Some(e) = self.open() {
                return Err(e);
            }
            self.inner.release(posture).await
        }
        .boxed()
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        async move {
            if let Some(e) = self.open() {
                return Err(e);
            }
            self.observe_result(self.inner.probe().await)
        }
        .boxed()
    }

    fn functions(&self) -> BoxFuture<'_, Result<Vec<crate::fleet::Listed>, ProviderError>> {
        async move {
            if let Some(e) = self.open() {
                return Err(e);
            }
            self.observe_result(self.inner.functions().await)
        }
        .boxed()
    }

    /// The feed keeps its own pace and reports its own failures (the
    /// account's EventsReady): it neither opens nor waits on the circuit.
    fn feed(&self) -> Option<std::sync::Arc<dyn super::feed::EventFeed>> {
        self.inner.feed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FunctionPostureSpec;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Silent(AtomicU32);

    impl Provider for Silent {
        fn cloud(&self) -> Cloud {
            Cloud::Aws
        }
        fn reached(&self) -> Option<String> {
            None
        }
        fn assess<'a>(&'a self, _: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            async { Err(ProviderError::Timeout("no answer".into())) }.boxed()
        }
        fn apply<'a>(&'a self, _: &'a Posture, _: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>> {
            async { Ok(()) }.boxed()
        }
        fn invalidate(&self) {}
        fn release<'a>(&'a self, _: &'a Posture) -> BoxFuture<'a, Result<(), ProviderError>> {
            async { Ok(()) }.boxed()
        }
        fn minted(&self, _: &Posture) -> Vec<MintedIdentity> {
            vec![MintedIdentity {
                principal: "arn:aws:iam::1:role/zerofn/r".into(),
                unique_id: "AROA1".into(),
            }]
        }
        fn intent(&self, _: &Posture, _: &Action) -> Option<MintIntent> {
            None
        }
        fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            async { Err(ProviderError::Timeout("no answer".into())) }.boxed()
        }
        fn functions(&self) -> BoxFuture<'_, Result<Vec<crate::fleet::Listed>, ProviderError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            async { Err(ProviderError::Timeout("no answer".into())) }.boxed()
        }
        fn feed(&self) -> Option<std::sync::Arc<dyn crate::providers::feed::EventFeed>> {
            None
        }
    }

    fn posture() -> Posture {
        let spec: FunctionPostureSpec =
            serde_saphyr::from_str("accountRef: {name: a}\nfunction: {aws: {name: f}}\n").expect("parses");
        Posture::new("c", "ns", "p", spec)
    }

    #[tokio::test]
    async fn a_silent_account_is_asked_once_then_fails_at_once_until_the_cooldown_ends() {
        let inner = Arc::new(Silent(AtomicU32::new(0)));
        let circuit = Circuit::new(inner.clone(), Duration::from_millis(200));
        let p = posture();
        for _ in 0..100 {
            let e = circuit.assess(&p).await.expect_err("fails");
            assert!(matches!(e, ProviderError::Timeout(_)), "{e}");
        }
        assert_eq!(inner.0.load(Ordering::SeqCst), 1, "asked once");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let _ = circuit.assess(&p).await;
        assert_eq!(inner.0.load(Ordering::SeqCst), 2, "asked again after the cooldown");
    }

    /// The record of a minted identity is the only proof zerofn made it: the
    /// wrapper must hand it on, or the controller never writes it to status.
    #[test]
    fn what_the_inner_provider_minted_passes_through() {
        let circuit = Circuit::new(Arc::new(Silent(AtomicU32::new(0))), Duration::from_millis(200));
        let minted = circuit.minted(&posture());
        assert_eq!(minted.len(), 1);
        assert_eq!(minted[0].unique_id, "AROA1");
    }

    #[tokio::test]
    async fn other_errors_do_not_open_it() {
        let circuit = Circuit::new(Arc::new(Silent(AtomicU32::new(0))), Duration::from_secs(60));
        circuit.trip(&ProviderError::Auth("denied".into()));
        assert!(circuit.open().is_none());
        circuit.trip(&ProviderError::Unreachable("refused".into()));
        assert!(matches!(circuit.open(), Some(ProviderError::Unreachable(_))));
    }
}
