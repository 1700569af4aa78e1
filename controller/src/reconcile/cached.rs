//! FunctionPostures as the controller's cache holds them: metadata and spec.
//!
//! At 10,000 postures the cache is most of what the controller holds, and
//! status — conditions, findings, records, all written by the controller
//! itself — was its largest part. The cache never parses it: a reconcile
//! reads the status it builds on from the API server (`posture::with_status`),
//! which a cached copy could lag behind anyway (the durable records of
//! minted identities live there). managedFields and kubectl's last-applied
//! copy of the object are dropped as well.

use crate::api::{FunctionPosture, FunctionPostureSpec};
use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::core::error_boundary::InvalidObject;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// kubectl's copy of the whole object, kept in an annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Clone, Debug)]
pub struct CachedPosture {
    pub metadata: ObjectMeta,
    /// The spec, or why the object does not deserialize (it then gets a
    /// status saying so instead of a reconcile).
    pub spec: Result<FunctionPostureSpec, String>,
}

impl CachedPosture {
    /// The posture to reconcile, without status (read when needed); the
    /// error when the object does not deserialize.
    pub fn posture(&self) -> Result<FunctionPosture, Box<InvalidObject>> {
        match &self.spec {
            Ok(spec) => Ok(FunctionPosture {
                metadata: self.metadata.clone(),
                spec: spec.clone(),
                status: None,
            }),
            Err(error) => Err(Box::new(InvalidObject {
                error: error.clone(),
                metadata: self.metadata.clone(),
            })),
        }
    }
}

/// The metadata the controller never reads: managedFields (every
/// server-side apply adds an entry) and kubectl's last-applied copy.
pub fn slim(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

impl From<FunctionPosture> for CachedPosture {
    fn from(fp: FunctionPosture) -> Self {
        CachedPosture {
            metadata: fp.metadata,
            spec: Ok(fp.spec),
        }
    }
}

impl From<InvalidObject> for CachedPosture {
    fn from(invalid: InvalidObject) -> Self {
        CachedPosture {
            metadata: invalid.metadata,
            spec: Err(invalid.error),
        }
    }
}

impl Resource for CachedPosture {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        FunctionPosture::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        FunctionPosture::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        FunctionPosture::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        FunctionPosture::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Reads `metadata` and `spec` and skips everything else unparsed. A spec
/// that does not deserialize is kept as its error; only metadata must
/// parse (as for any object the API server sends).
impl<'de> Deserialize<'de> for CachedPosture {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Fields)
    }
}

struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = CachedPosture;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FunctionPosture")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CachedPosture, A::Error> {
        let (mut metadata, mut spec) = (None::<ObjectMeta>, None::<serde_json::Value>);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" => metadata = Some(map.next_value()?),
                "spec" => spec = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut metadata = metadata.ok_or_else(|| de::Error::missing_field("metadata"))?;
        slim(&mut metadata);
        let spec = match spec {
            Some(v) => FunctionPostureSpec::deserialize(v).map_err(|e| e.to_string()),
            None => Err("missing field `spec`".to_string()),
        };
        Ok(CachedPosture { metadata, spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn object(spec: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "zerofn.dev/v1alpha1",
            "kind": "FunctionPosture",
            "metadata": {
                "name": "orders", "namespace": "shop", "generation": 3,
                "finalizers": ["zerofn.dev/release-ownership"],
                "annotations": {LAST_APPLIED: "{\"the\": \"whole object\"}", "team": "payments"},
                "managedFields": [{"manager": "zerofn", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
            },
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "findings": "not even a list"}
        })
    }

    #[test]
    fn the_cache_keeps_metadata_and_spec_and_never_parses_status() {
        let spec =
            json!({"accountRef": {"name": "gcp"}, "function": {"gcp": {"location": "europe-west1", "name": "orders"}}});
        let p: CachedPosture = serde_json::from_value(object(spec)).expect("a posture");
        let fp = p.posture().expect("valid");
        assert_eq!(fp.spec.account_ref.name, "gcp");
        assert_eq!(fp.metadata.generation, Some(3));
        assert_eq!(fp.finalizers(), ["zerofn.dev/release-ownership"]);
        assert!(fp.status.is_none());
        assert!(fp.metadata.managed_fields.is_none());
        let annotations = fp.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["team"]);
    }

    #[test]
    fn a_spec_that_does_not_deserialize_is_kept_as_its_error() {
        let spec = json!({"accountRef": {"name": "gcp"}, "function": {"gcp": {"location": "europe-west1", "name": "orders"}}, "mode": "Fix"});
        let p: CachedPosture = serde_json::from_value(object(spec)).expect("still listed");
        let invalid = p.posture().expect_err("invalid");
        assert!(invalid.error.contains("unknown variant `Fix`"), "{}", invalid.error);
        assert_eq!(invalid.metadata.name.as_deref(), Some("orders"));

        let mut no_spec = object(json!(null));
        no_spec.as_object_mut().map(|o| o.remove("spec"));
        let p: CachedPosture = serde_json::from_value(no_spec).expect("still listed");
        assert_eq!(p.spec.expect_err("no spec"), "missing field `spec`");
    }
}
