//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which
//! kubectl's typed clients send for built-in kinds (`kubectl create
//! namespace|secret|configmap|serviceaccount|role|rolebinding|clusterrole|
//! clusterrolebinding`) with no JSON fallback. The body is the API
//! machinery's envelope — the magic `k8s\0`, then a runtime.Unknown holding
//! the TypeMeta and the object's bytes — decoded with the published
//! message definitions (k8s-pb) and turned into the object's JSON form.

use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body cannot be read.
#[derive(Debug, PartialEq)]
pub enum Unreadable {
    /// Not the envelope, or bytes that do not decode.
    Malformed(String),
    /// A kind this stand-in has no message definition wired for.
    Unsupported { api_version: String, kind: String },
}

/// The object a protobuf body carries, as JSON.
pub fn decode(body: &[u8]) -> Result<Value, Unreadable> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| Unreadable::Malformed("the body does not start with the protobuf magic \"k8s\\x00\"".into()))?;
    let unknown = Unknown::decode(envelope).map_err(|e| Unreadable::Malformed(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let malformed = |e: prost::DecodeError| Unreadable::Malformed(format!("{kind}: {e}"));
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(core::Namespace::decode(&raw[..]).map_err(malformed)?),
        ("v1", "ConfigMap") => config_map(core::ConfigMap::decode(&raw[..]).map_err(malformed)?),
        ("v1", "Secret") => secret(core::Secret::decode(&raw[..]).map_err(malformed)?),
        ("v1", "ServiceAccount") => service_account(core::ServiceAccount::decode(&raw[..]).map_err(malformed)?),
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let r = rbac::Role::decode(&raw[..]).map_err(malformed)?;
            object(r.metadata, [("rules", rules(r.rules))])
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let r = rbac::ClusterRole::decode(&raw[..]).map_err(malformed)?;
            if r.aggregation_rule.is_some() {
                // Not modelled by the authorizer: refuse rather than drop it.
                return Err(Unreadable::Unsupported { api_version, kind });
            }
            object(r.metadata, [("rules", rules(r.rules))])
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let b = rbac::RoleBinding::decode(&raw[..]).map_err(malformed)?;
            binding(b.metadata, b.subjects, b.role_ref)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let b = rbac::ClusterRoleBinding::decode(&raw[..]).map_err(malformed)?;
            binding(b.metadata, b.subjects, b.role_ref)
        }
        _ => return Err(Unreadable::Unsupported { api_version, kind }),
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// Insert `v` under `k` unless it is null, empty text, an empty list or an
/// empty map: the protobuf form writes empty fields, the JSON form omits them.
fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        m.insert(k.to_string(), v);
    }
}

/// The fields a client sets on create; the server-owned ones (uid,
/// resourceVersion, timestamps, managedFields) are the server's to fill.
fn metadata(m: Option<ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    put(&mut out, "name", json!(m.name));
    put(&mut out, "generateName", json!(m.generate_name));
    put(&mut out, "namespace", json!(m.namespace));
    put(&mut out, "labels", json!(m.labels));
    put(&mut out, "annotations", json!(m.annotations));
    put(&mut out, "finalizers", json!(m.finalizers));
    let owners: Vec<Value> = m
        .owner_references
        .into_iter()
        .map(|o| {
            let mut r = Map::new();
            put(&mut r, "apiVersion", json!(o.api_version));
            put(&mut r, "kind", json!(o.kind));
            put(&mut r, "name", json!(o.name));
            put(&mut r, "uid", json!(o.uid));
            put(&mut r, "controller", json!(o.controller));
            put(&mut r, "blockOwnerDeletion", json!(o.block_owner_deletion));
            Value::Object(r)
        })
        .collect();
    put(&mut out, "ownerReferences", json!(owners));
    Value::Object(out)
}

fn object<const N: usize>(meta: Option<ObjectMeta>, fields: [(&str, Value); N]) -> Value {
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(meta));
    for (k, v) in fields {
        put(&mut out, k, v);
    }
    Value::Object(out)
}

/// Bytes fields are base64 in JSON.
fn base64_map(m: BTreeMap<String, Vec<u8>>) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    json!(
        m.into_iter()
            .map(|(k, v)| (k, b64.encode(v)))
            .collect::<BTreeMap<_, _>>()
    )
}

fn namespace(n: core::Namespace) -> Value {
    let finalizers = n.spec.map(|s| s.finalizers).unwrap_or_default();
    let spec = if finalizers.is_empty() {
        Value::Null
    } else {
        json!({ "finalizers": finalizers })
    };
    object(n.metadata, [("spec", spec)])
}

fn config_map(c: core::ConfigMap) -> Value {
    object(
        c.metadata,
        [
            ("data", json!(c.data)),
            ("binaryData", base64_map(c.binary_data)),
            ("immutable", json!(c.immutable)),
        ],
    )
}

fn secret(s: core::Secret) -> Value {
    object(
        s.metadata,
        [
            ("data", base64_map(s.data)),
            ("stringData", json!(s.string_data)),
            ("type", json!(s.r#type)),
            ("immutable", json!(s.immutable)),
        ],
    )
}

fn service_account(s: core::ServiceAccount) -> Value {
    let secrets: Vec<Value> = s
        .secrets
        .into_iter()
        .map(|r| {
            let mut o = Map::new();
            put(&mut o, "kind", json!(r.kind));
            put(&mut o, "namespace", json!(r.namespace));
            put(&mut o, "name", json!(r.name));
            put(&mut o, "apiVersion", json!(r.api_version));
            Value::Object(o)
        })
        .collect();
    let pulls: Vec<Value> = s
        .image_pull_secrets
        .into_iter()
        .map(|r| json!({"name": r.name}))
        .collect();
    object(
        s.metadata,
        [
            ("secrets", json!(secrets)),
            ("imagePullSecrets", json!(pulls)),
            ("automountServiceAccountToken", json!(s.automount_service_account_token)),
        ],
    )
}

fn rules(rules: Vec<rbac::PolicyRule>) -> Value {
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|r| {
            let mut o = Map::new();
            put(&mut o, "verbs", json!(r.verbs));
            // An empty apiGroups is meaningful only as [""]: kept as sent.
            put(&mut o, "apiGroups", json!(r.api_groups));
            put(&mut o, "resources", json!(r.resources));
            put(&mut o, "resourceNames", json!(r.resource_names));
            put(&mut o, "nonResourceURLs", json!(r.non_resource_ur_ls));
            Value::Object(o)
        })
        .collect();
    json!(rules)
}

fn binding(meta: Option<ObjectMeta>, subjects: Vec<rbac::Subject>, role_ref: Option<rbac::RoleRef>) -> Value {
    let subjects: Vec<Value> = subjects
        .into_iter()
        .map(|s| {
            let mut o = Map::new();
            put(&mut o, "kind", json!(s.kind));
            put(&mut o, "apiGroup", json!(s.api_group));
            put(&mut o, "name", json!(s.name));
            put(&mut o, "namespace", json!(s.namespace));
            Value::Object(o)
        })
        .collect();
    let role_ref = role_ref.map(|r| json!({"apiGroup": r.api_group, "kind": r.kind, "name": r.name}));
    object(meta, [("subjects", json!(subjects)), ("roleRef", json!(role_ref))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let u = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &u.encode_to_vec()].concat()
    }

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            name: Some(name.into()),
            labels: BTreeMap::from([("team".to_string(), "shop".to_string())]),
            ..Default::default()
        })
    }

    #[test]
    fn what_kubectl_create_namespace_sends_decodes() {
        // The exact bytes kubectl 1.32 and 1.37 send for `create namespace x`.
        let body = b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x19\n\x11\n\x01x\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00\"\x00";
        assert_eq!(
            decode(body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        );
    }

    #[test]
    fn secrets_keep_bytes_as_base64_and_bindings_their_subjects() {
        let s = core::Secret {
            metadata: meta("creds"),
            data: BTreeMap::from([("key".to_string(), b"\x00\xffsecret".to_vec())]),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let o = decode(&envelope("v1", "Secret", s.encode_to_vec())).unwrap();
        assert_eq!(o["data"]["key"], "AP9zZWNyZXQ=");
        assert_eq!(
            (&o["type"], &o["metadata"]["labels"]["team"]),
            (&json!("Opaque"), &json!("shop"))
        );
        let b = rbac::RoleBinding {
            metadata: meta("read"),
            subjects: vec![rbac::Subject {
                kind: Some("ServiceAccount".into()),
                name: Some("zerofn".into()),
                namespace: Some("zerofn-system".into()),
                api_group: Some(String::new()),
            }],
            role_ref: Some(rbac::RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("Role".into()),
                name: Some("reader".into()),
            }),
        };
        let o = decode(&envelope(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            b.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(o["subjects"][0]["namespace"], "zerofn-system");
        assert_eq!(o["roleRef"]["name"], "reader");
        assert_eq!(o["kind"], "RoleBinding");
    }

    #[test]
    fn other_bodies_are_named_in_the_refusal() {
        assert!(matches!(decode(b"{}"), Err(Unreadable::Malformed(_))));
        assert!(matches!(decode(b"k8s\x00\xff\xff"), Err(Unreadable::Malformed(_))));
        assert_eq!(
            decode(&envelope("apps/v1", "Deployment", Vec::new())),
            Err(Unreadable::Unsupported {
                api_version: "apps/v1".into(),
                kind: "Deployment".into()
            })
        );
    }
}
