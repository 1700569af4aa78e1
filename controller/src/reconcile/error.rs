//! Reconciler errors, each with a stable category for metrics.

use crate::providers::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error(transparent)]
    Cloud(#[from] ProviderError),
    #[error("serializing status: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A deleted policy waits for its children to go.
    #[error("{0} child FunctionPostures are still being deleted")]
    ChildrenRemain(usize),
}

impl Error {
    /// The cloud's error behind this one, if any.
    pub fn provider(&self) -> Option<&ProviderError> {
        match self {
            Error::Cloud(e) => Some(e),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.provider()
                }
                _ => None,
            },
            Error::Kube(_) | Error::Serialize(_) | Error::ChildrenRemain(_) => None,
        }
    }

    /// Stable label for `zerofn_reconcile_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.category()
                }
                _ => "kubernetes",
            },
            Error::Cloud(e) => e.category(),
            Error::Serialize(_) => "internal",
            Error::ChildrenRemain(_) => "waiting",
        }
    }
}
