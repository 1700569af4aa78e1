//! The one generic `Provider`: any `Cloud` behind the object-safe seam the
//! engine holds, and the only place a cloud's action type is erased and
//! recovered. An `Action` is made here from a cloud's plan and turned back
//! here when it is applied, so no cloud matches on another cloud's actions.

use super::cloud::{Cloud, CloudAction, Secret};
use super::registry::ConnectOptions;
use super::{ActionSummary, MintIntent, MintedIdentity, Plan, Posture, Provider, ProviderError};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Serialize, Serializer};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// One write a provider would make, whatever its cloud: opaque to the
/// engine, which shows its summary and hands it back to the provider that
/// planned it.
#[derive(Clone)]
pub struct Action(Arc<dyn Erased>);

/// What the engine and the CLI may ask of any cloud's action.
trait Erased: Any + Send + Sync + fmt::Debug {
    fn summary(&self) -> ActionSummary;
    fn same(&self, other: &dyn Erased) -> bool;
    fn json(&self) -> serde_json::Result<serde_json::Value>;
}

impl<A: CloudAction> Erased for A {
    fn summary(&self) -> ActionSummary {
        CloudAction::summary(self)
    }

    fn same(&self, other: &dyn Erased) -> bool {
        (other as &dyn Any).downcast_ref::<A>() == Some(self)
    }

    fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

impl Action {
    fn erase<A: CloudAction>(action: A) -> Self {
        Action(Arc::new(action))
    }

    /// The cloud action inside, when it is one of `A`'s.
    fn recover<A: CloudAction>(&self) -> Option<&A> {
        (self.0.as_ref() as &dyn Any).downcast_ref::<A>()
    }

    pub fn summary(&self) -> ActionSummary {
        self.0.summary()
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for Action {
    fn eq(&self, other: &Self) -> bool {
        self.0.same(other.0.as_ref())
    }
}

impl Eq for Action {}

/// The cloud action's own JSON.
impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.json().map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

/// A cloud as a `Provider`.
pub struct Adapter<C>(C);

impl<C: Cloud> Adapter<C> {
    pub fn new(cloud: C) -> Self {
        Adapter(cloud)
    }

    /// The cloud behind the seam.
    pub fn inner(&self) -> &C {
        &self.0
    }
}

/// Connect an account of cloud `C` and put it behind the seam.
pub async fn connect<C: Cloud>(
    account: &C::Account,
    secret: Option<Secret<'_>>,
    opts: &ConnectOptions,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(Adapter(
        C::connect(account, secret, opts.tuning::<C>(), opts).await?,
    )))
}

impl<C: Cloud> Adapter<C> {
    fn own<'a>(&self, action: &'a Action) -> Result<&'a C::Action, ProviderError> {
        action
            .recover::<C::Action>()
            .ok_or_else(|| ProviderError::Config(format!("not an action of {}: {}", C::KIND, action.summary())))
    }
}

impl<C: Cloud> Provider for Adapter<C> {
    fn cloud(&self) -> crate::api::Cloud {
        C::KIND
    }

    fn reached(&self) -> Option<String> {
        self.0.reached()
    }

    fn assess<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>> {
        async move {
            let observed = self.0.observe(posture).await?;
            Ok(self.0.plan(posture, &observed).map_actions(Action::erase))
        }
        .boxed()
    }

    fn apply<'a>(&'a self, posture: &'a Posture, action: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move { self.0.apply(posture, self.own(action)?).await }.boxed()
    }

    fn invalidate(&self) {
        self.0.invalidate();
    }

    fn release<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.0.release(posture).boxed()
    }

    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity> {
        self.0.minted(posture)
    }

    fn intent(&self, posture: &Posture, action: &Action) -> Option<MintIntent> {
        // Another cloud's action creates nothing here; `apply` refuses it.
        self.0.intent(posture, action.recover::<C::Action>()?)
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        self.0.probe().boxed()
    }

    fn functions(&self) -> BoxFuture<'_, Result<Vec<crate::fleet::Listed>, ProviderError>> {
        self.0.functions().boxed()
    }

    fn feed(&self) -> Option<std::sync::Arc<dyn super::feed::EventFeed>> {
        self.0.feed()
    }
}
