//! The zerofn API: group `zerofn.dev`, version `v1alpha1`.

pub mod account;
pub mod arn;
pub mod duration;
pub mod patterns;
pub mod policy;
pub mod posture;
pub mod schema_check;
pub mod status;
pub mod validate;

pub use account::*;
pub use policy::*;
pub use posture::*;
pub use status::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub const GROUP: &str = "zerofn.dev";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "zerofn.dev/v1alpha1";

/// Every CRD zerofn serves, in the order `kubectl apply` should see them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        CloudAccount::crd(),
        ClusterCloudAccount::crd(),
        FunctionPosture::crd(),
        PosturePolicy::crd(),
    ]
}

/// The openAPIV3Schema of the CRD for `kind`, for schema checks of manifests.
/// Generated once per process and lent out, never copied: building the CRDs
/// costs far more than checking a document, and a copy of the posture
/// schema costs more than checking a small posture against it.
pub fn schema_for(kind: &str) -> Option<&'static serde_json::Value> {
    static SCHEMAS: std::sync::LazyLock<Vec<(String, serde_json::Value)>> = std::sync::LazyLock::new(|| {
        crds()
            .into_iter()
            .filter_map(|c| {
                let kind = c.spec.names.kind.clone();
                let schema = c
                    .spec
                    .versions
                    .into_iter()
                    .next()
                    .and_then(|v| v.schema)
                    .and_then(|s| s.open_api_v3_schema)
                    .and_then(|s| serde_json::to_value(s).ok())?;
                Some((kind, schema))
            })
            .collect()
    });
    SCHEMAS.iter().find(|(k, _)| k == kind).map(|(_, s)| s)
}
