//! OpenAPI v3 documents: what `kubectl explain` reads, and how kubectl
//! learns the server validates fields itself (the `fieldValidation`
//! parameter on each write operation).

use super::registry::{Registry, ResourceType};
use serde_json::{Map, Value, json};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

pub fn schema_name(t: &ResourceType) -> String {
    if t.group.is_empty() {
        return format!("io.k8s.api.core.{}.{}", t.version, t.kind);
    }
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
}

pub fn root(r: &Registry) -> Value {
    let mut paths = Map::new();
    for t in r.types() {
        let p = gv_path(t);
        paths.insert(p.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{p}") }));
    }
    json!({ "paths": paths })
}

fn gvk(t: &ResourceType) -> Value {
    json!({"group": t.group, "version": t.version, "kind": t.kind})
}

fn schema_of(t: &ResourceType) -> Value {
    let mut s = t
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !s.get("properties").is_some_and(Value::is_object) {
        s["properties"] = json!({});
    }
    s["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
    s["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
    s["properties"]["metadata"] =
        json!({"$ref": format!("#/components/schemas/{OBJECT_META}"), "description": "Standard object's metadata."});
    s["x-kubernetes-group-version-kind"] = json!([gvk(t)]);
    s
}

fn op(t: &ResourceType, action: &str, writes: bool) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(t))});
    let mut params = vec![];
    if writes {
        for (name, d) in [
            (
                "fieldValidation",
                "instructs the server on how to handle objects in the request containing unknown or duplicate fields",
            ),
            (
                "fieldManager",
                "a name associated with the actor or entity that is making these changes",
            ),
            (
                "dryRun",
                "when present, indicates that modifications should not be persisted",
            ),
        ] {
            params.push(json!({"name": name, "in": "query", "description": d, "schema": {"type": "string", "uniqueItems": true}}));
        }
    }
    let mut o = json!({
        "operationId": format!("{action}{}", t.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(t),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
        "parameters": params,
    });
    if writes && action != "delete" {
        o["requestBody"] = json!({"content": {"*/*": {"schema": reference}}, "required": true});
    }
    o
}

pub fn group_version(r: &Registry, gv: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = r.types().iter().filter(|t| gv_path(t) == gv).collect();
    if types.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    schemas.insert(
        OBJECT_META.into(),
        json!({"type": "object", "description": "ObjectMeta is metadata that all persisted resources must have.",
               "properties": {
                   "name": {"type": "string"}, "namespace": {"type": "string"}, "generateName": {"type": "string"},
                   "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                   "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                   "finalizers": {"type": "array", "items": {"type": "string"}},
                   "uid": {"type": "string"}, "resourceVersion": {"type": "string"}, "generation": {"type": "integer"},
                   "creationTimestamp": {"type": "string", "format": "date-time"},
                   "deletionTimestamp": {"type": "string", "format": "date-time"},
                   "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                   "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}),
    );
    let mut paths = Map::new();
    for t in types {
        schemas.insert(schema_name(t), schema_of(t));
        let base = format!("/{}", gv_path(t));
        let coll = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        paths.insert(
            coll.clone(),
            json!({"get": op(t, "list", false), "post": op(t, "post", true)}),
        );
        paths.insert(
            format!("{coll}/{{name}}"),
            json!({"get": op(t, "get", false), "put": op(t, "put", true), "patch": op(t, "patch", true), "delete": op(t, "delete", true)}),
        );
        if t.status_subresource {
            paths.insert(
                format!("{coll}/{{name}}/status"),
                json!({"get": op(t, "get", false), "put": op(t, "put", true), "patch": op(t, "patch", true)}),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (zerofn stand-in)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_documents() {
        let r = Registry::default();
        let lease = r.find("coordination.k8s.io", "v1", "leases").unwrap();
        assert_eq!(schema_name(lease), "io.k8s.coordination.v1.Lease");
        assert!(root(&r)["paths"].get("apis/coordination.k8s.io/v1").is_some());
        let doc = group_version(&r, "apis/coordination.k8s.io/v1").unwrap();
        let patch = &doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Lease");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
    }
}
