//! Patches: JSON merge patch (RFC 7386), JSON Patch (RFC 6902), and
//! server-side apply.
//!
//! Server-side apply tracks, per field manager, the leaf fields it applied
//! (`metadata.managedFields`, FieldsV1). An apply sets the manager's fields,
//! removes fields it applied before but no longer does (unless another
//! manager owns them), and conflicts when another applier owns a field it
//! would change, unless forced — then ownership moves. Simplifications:
//! lists are atomic (one field), and updates (PUT, merge and JSON patches)
//! do not take ownership.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub type Path = Vec<String>;

/// Fields a manager never owns: identity and server-set metadata.
fn ignored(path: &[String]) -> bool {
    match path {
        [first] if first == "apiVersion" || first == "kind" => true,
        [m, field, ..] if m == "metadata" => matches!(
            field.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "deletionTimestamp"
                | "selfLink"
        ),
        _ => false,
    }
}

/// Leaf paths of a value: scalars, lists (atomic) and empty maps.
pub fn leaves(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                prefix.push(k.clone());
                leaves(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() && !ignored(prefix) {
                out.insert(prefix.clone());
            }
        }
    }
}

pub fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut m = &mut root;
        for k in p {
            m = m
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are maps");
        }
    }
    Value::Object(root)
}

pub fn paths_of(fields: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(m) = v.as_object() else { return };
        let children: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if children.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (k, x) in children {
            prefix.push(k[2..].to_string());
            walk(x, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k) {
            Some(x) => cur = x,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Drop maps left empty by removals (but not the top-level sections).
fn prune_empty(v: &mut Value, depth: usize) {
    if let Value::Object(m) = v {
        for x in m.values_mut() {
            prune_empty(x, depth + 1);
        }
        if depth >= 1 {
            m.retain(|_, x| !matches!(x, Value::Object(o) if o.is_empty()));
        }
    }
}

pub fn deep_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(x) if x.is_object() && v.is_object() => deep_merge(x, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug)]
pub struct Managed {
    pub manager: String,
    pub operation: String,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: String,
    pub paths: BTreeSet<Path>,
}

pub fn read_managed(obj: &Value) -> Vec<Managed> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Managed {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or("Apply").to_string(),
            subresource: e["subresource"].as_str().map(str::to_string),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: e["time"].as_str().unwrap_or_default().to_string(),
            paths: paths_of(&e["fieldsV1"]),
        })
        .collect()
}

pub fn write_managed(obj: &mut Value, managed: &[Managed]) {
    let entries: Vec<Value> = managed
        .iter()
        .filter(|m| !m.paths.is_empty())
        .map(|m| {
            let mut e = json!({"manager": m.manager, "operation": m.operation, "apiVersion": m.api_version,
                               "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&m.paths)});
            if let Some(s) = &m.subresource {
                e["subresource"] = json!(s);
            }
            e
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// A field another applier owns and this apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

/// Server-side apply of `applied` by `manager` onto `current` (an empty
/// object when creating). `scope` limits the apply to a subresource
/// (`status`): only that part of the applied object counts.
pub fn apply(
    current: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    scope: Option<&str>,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let mut managed = read_managed(current);
    let applied_scoped = match scope {
        Some(s) => json!({ s: applied.get(s).cloned().unwrap_or(Value::Null) }),
        None => {
            let mut a = applied.clone();
            if let Some(m) = a.as_object_mut() {
                m.remove("status");
            }
            a
        }
    };
    let mut new_paths = BTreeSet::new();
    leaves(&applied_scoped, &mut Vec::new(), &mut new_paths);
    let overlaps = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);

    let mut conflicts = Vec::new();
    for other in managed
        .iter_mut()
        .filter(|m| m.manager != manager && m.operation == "Apply")
    {
        let clashing: Vec<Path> = other
            .paths
            .iter()
            .filter(|p| {
                new_paths
                    .iter()
                    .any(|n| overlaps(n, p) && get(current, n) != get(&applied_scoped, n))
            })
            .cloned()
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if force {
            for p in &clashing {
                other.paths.remove(p);
            }
        } else {
            conflicts.extend(clashing.iter().map(|p| Conflict {
                manager: other.manager.clone(),
                field: format!(".{}", p.join(".")),
            }));
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    let mut obj = current.clone();
    let mine = managed
        .iter()
        .position(|m| m.manager == manager && m.operation == "Apply" && m.subresource.as_deref() == scope);
    let previous: BTreeSet<Path> = mine.map(|i| managed[i].paths.clone()).unwrap_or_default();
    for p in previous.difference(&new_paths) {
        let owned_elsewhere = managed
            .iter()
            .any(|m| m.manager != manager && m.paths.iter().any(|q| overlaps(p, q)));
        if !owned_elsewhere {
            remove(&mut obj, p);
        }
    }
    prune_empty(&mut obj, 0);
    deep_merge(&mut obj, &applied_scoped);
    let entry = Managed {
        manager: manager.to_string(),
        operation: "Apply".into(),
        subresource: scope.map(str::to_string),
        api_version: api_version.to_string(),
        time: now.to_string(),
        paths: new_paths,
    };
    match mine {
        Some(i) => managed[i] = entry,
        None => managed.push(entry),
    }
    write_managed(&mut obj, &managed);
    Ok(obj)
}

/// RFC 6902 patch. A `test` of an absent path against `null` succeeds, as
/// it does on the API server (kube's finalizer helper relies on it).
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops: Vec<Value> = ops
        .as_array()
        .ok_or("a JSON patch is a list of operations")?
        .iter()
        .filter(|op| {
            !(op["op"] == "test"
                && op["value"].is_null()
                && op["path"].as_str().is_some_and(|p| doc.pointer(p).is_none()))
        })
        .cloned()
        .collect();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())?;
    json_patch::patch(doc, &patch).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(obj: &Value, manager: &str) -> Vec<String> {
        read_managed(obj)
            .into_iter()
            .filter(|m| m.manager == manager)
            .flat_map(|m| m.paths.into_iter().map(|p| p.join(".")))
            .collect()
    }

    #[test]
    fn apply_sets_and_removes_its_own_fields() {
        let base = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}});
        let v1 = apply(&base, &json!({"spec": {"a": 10, "c": 3}}), "m", false, None, "v1", "t").unwrap();
        assert_eq!(v1["spec"], json!({"a": 10, "b": 2, "c": 3}));
        assert_eq!(owned(&v1, "m"), ["spec.a", "spec.c"]);
        let v2 = apply(&v1, &json!({"spec": {"a": 10}}), "m", false, None, "v1", "t").unwrap();
        assert_eq!(
            v2["spec"],
            json!({"a": 10, "b": 2}),
            "c was applied before and not now: removed"
        );
    }

    #[test]
    fn another_appliers_field_conflicts_unless_forced() {
        let base = apply(
            &json!({"metadata": {}}),
            &json!({"spec": {"a": 1}}),
            "one",
            false,
            None,
            "v1",
            "t",
        )
        .unwrap();
        let e = apply(&base, &json!({"spec": {"a": 2}}), "two", false, None, "v1", "t").unwrap_err();
        assert_eq!(
            e,
            vec![Conflict {
                manager: "one".into(),
                field: ".spec.a".into()
            }]
        );
        assert!(
            apply(&base, &json!({"spec": {"a": 1}}), "two", false, None, "v1", "t").is_ok(),
            "same value: shared"
        );
        let forced = apply(&base, &json!({"spec": {"a": 2}}), "two", true, None, "v1", "t").unwrap();
        assert_eq!(forced["spec"]["a"], 2);
        assert!(owned(&forced, "one").is_empty());
    }

    #[test]
    fn status_apply_touches_only_status() {
        let base = json!({"metadata": {}, "spec": {"a": 1}});
        let s = apply(
            &base,
            &json!({"spec": {"a": 9}, "status": {"ok": true, "conditions": [{"type": "Ready"}]}}),
            "ctl",
            true,
            Some("status"),
            "v1",
            "t",
        )
        .unwrap();
        assert_eq!(s["spec"]["a"], 1);
        assert_eq!(s["status"]["ok"], true);
        assert_eq!(owned(&s, "ctl"), ["status.conditions", "status.ok"], "lists are atomic");
        let s2 = apply(
            &s,
            &json!({"status": {"conditions": []}}),
            "ctl",
            true,
            Some("status"),
            "v1",
            "t",
        )
        .unwrap();
        assert!(s2["status"].get("ok").is_none());
    }

    #[test]
    fn fields_v1_round_trips() {
        let mut paths = BTreeSet::new();
        leaves(
            &json!({"spec": {"a": 1, "b": {"c": [1]}}, "metadata": {"labels": {"x": "y"}, "name": "n"}}),
            &mut Vec::new(),
            &mut paths,
        );
        assert_eq!(paths_of(&fields_v1(&paths)), paths);
        assert!(!paths.iter().any(|p| p.join(".") == "metadata.name"));
    }

    #[test]
    fn json_patch_test_of_absent_path_is_null() {
        let mut d = json!({"metadata": {}});
        json_patch(
            &mut d,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                                   {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]),
        )
        .unwrap();
        assert_eq!(d["metadata"]["finalizers"], json!(["f"]));
        let e = json_patch(
            &mut d,
            &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "other"}]),
        );
        assert!(e.is_err());
    }
}
