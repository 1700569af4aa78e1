//! Objects, the global resourceVersion, and the bounded watch history.
//!
//! Every write bumps one resourceVersion counter and records a change; a
//! watch replays retained changes after its resourceVersion (or answers 410
//! Gone when they have been dropped) and then follows live ones.

use super::events;
use super::patch;
use super::registry::{self, Registry, ResourceType};
use super::schema;
use super::status::{ApiError, ApiResult};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// (store group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
}

/// The `fieldValidation` directive of a write: what happens to fields the
/// schema does not declare. The API server's default is Warn.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum FieldValidation {
    /// Dropped silently.
    Ignore,
    /// Dropped, with a `Warning` header per field.
    #[default]
    Warn,
    /// The request is refused.
    Strict,
}

impl FieldValidation {
    pub fn parse(directive: Option<&str>) -> ApiResult<Self> {
        match directive.unwrap_or_default() {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// What a write request carries besides its body, and the warnings its
/// answer carries back.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub field_manager: Option<String>,
    pub force: bool,
    pub field_validation: FieldValidation,
    pub dry_run: bool,
    /// Texts of the `Warning` headers of the answer.
    pub warnings: std::cell::RefCell<Vec<String>>,
}

pub struct State {
    pub registry: Registry,
    pub objects: BTreeMap<Key, Value>,
    pub rv: u64,
    pub history: VecDeque<Arc<Change>>,
    pub history_limit: usize,
    pub tx: broadcast::Sender<Arc<Change>>,
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn uid() -> String {
    let r = || fastrand::u32(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:08x}{:04x}",
        r(),
        r() & 0xffff,
        r() & 0xfff,
        r() & 0xfff,
        r(),
        r() & 0xffff
    )
}

fn meta_str<'a>(o: &'a Value, field: &str) -> Option<&'a str> {
    o.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn set_meta(o: &mut Value, field: &str, v: Value) {
    if !o.get("metadata").is_some_and(Value::is_object) {
        o["metadata"] = json!({});
    }
    o["metadata"][field] = v;
}

fn has_finalizers(o: &Value) -> bool {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Secrets store `stringData` as base64 `data`, and default their type to
/// Opaque, as the API server does.
fn fold_string_data(t: &ResourceType, obj: &mut Value) {
    if !(t.group.is_empty() && t.plural == "secrets") {
        return;
    }
    if obj.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        use base64::Engine;
        if !obj.get("data").is_some_and(Value::is_object) {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
}

fn is_events_v1(t: &ResourceType) -> bool {
    t.group == "events.k8s.io" && t.plural == "events"
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = State {
            registry: Registry::default(),
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit,
            tx,
        };
        for ns in ["default", "kube-system", "kube-public", "zerofn-system"] {
            let t = s
                .registry
                .find("", "v1", "namespaces")
                .cloned()
                .expect("namespaces are built in");
            let _ = s.create(
                &t,
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &WriteOptions::default(),
            );
        }
        s
    }

    fn key(t: &ResourceType, ns: &str, name: &str) -> Key {
        (
            t.store_group().to_string(),
            t.plural.clone(),
            if t.namespaced { ns.to_string() } else { String::new() },
            name.to_string(),
        )
    }

    /// The stored object as this kind presents it.
    pub fn present(&self, t: &ResourceType, o: &Value) -> Value {
        let mut o = if is_events_v1(t) {
            events::to_events_v1(o)
        } else {
            o.clone()
        };
        o["apiVersion"] = json!(t.api_version());
        o["kind"] = json!(t.kind);
        o
    }

    fn record(&mut self, t: &ResourceType, ns: &str, kind: &'static str, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            group: t.store_group().to_string(),
            plural: t.plural.clone(),
            namespace: if t.namespaced { ns.to_string() } else { String::new() },
            kind,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        let _ = self.tx.send(change);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// The oldest resourceVersion a watch may resume from.
    pub fn oldest_resumable(&self) -> u64 {
        self.history.front().map(|c| c.rv - 1).unwrap_or(self.rv)
    }

    fn admit(&self, t: &ResourceType, obj: Value, old: Option<&Value>, opts: &WriteOptions) -> ApiResult<Value> {
        let Some(schema) = &t.schema else { return Ok(obj) };
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let strict = opts.field_validation == FieldValidation::Strict;
        match schema::admit(schema, obj, old, strict) {
            Ok((o, unknown)) => {
                if opts.field_validation == FieldValidation::Warn {
                    let mut w = opts.warnings.borrow_mut();
                    w.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
                }
                Ok(o)
            }
            // The API server's strict decoder refuses before validating.
            Err(schema::Refusal::UnknownFields(unknown)) => {
                let fields: Vec<String> = unknown.iter().map(|u| format!("unknown field \"{u}\"")).collect();
                Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", "),
                    kind = t.kind,
                    v = t.version,
                )))
            }
            Err(schema::Refusal::Invalid(causes)) => Err(ApiError::invalid(&t.kind, &name, causes)),
        }
    }

    fn check_namespace(&self, t: &ResourceType, ns: &str) -> ApiResult<()> {
        if !t.namespaced {
            return Ok(());
        }
        let key = (String::new(), "namespaces".to_string(), String::new(), ns.to_string());
        if self.objects.contains_key(&key) {
            Ok(())
        } else {
            Err(ApiError::not_found("namespaces", ns))
        }
    }

    pub fn get(&self, t: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.objects
            .get(&Self::key(t, ns, name))
            .map(|o| self.present(t, o))
            .ok_or_else(|| ApiError::not_found(&t.resource_name(), name))
    }

    /// Objects of a kind, in one namespace or all, in name order.
    pub fn list(&self, t: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.stored(t, ns).map(|o| self.present(t, o)).collect()
    }

    /// The stored objects of a kind, in one namespace or all, in name order,
    /// as stored (not yet presented): only the kind's range of keys is read.
    pub fn stored<'a>(&'a self, t: &ResourceType, ns: Option<&'a str>) -> impl Iterator<Item = &'a Value> + 'a {
        let (g, plural) = (t.store_group().to_string(), t.plural.clone());
        let from = (
            g.clone(),
            plural.clone(),
            ns.unwrap_or_default().to_string(),
            String::new(),
        );
        self.objects
            .range(from..)
            .take_while(move |((og, op, ons, _), _)| *og == g && *op == plural && ns.is_none_or(|n| ons == n))
            .map(|(_, o)| o)
    }

    pub fn create(&mut self, t: &ResourceType, ns: &str, mut obj: Value, opts: &WriteOptions) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of a create must be an object"));
        }
        if is_events_v1(t) {
            obj = events::to_core(&obj);
        }
        fold_string_data(t, &mut obj);
        let name = match (meta_str(&obj, "name"), meta_str(&obj, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) => format!("{prefix}{:05x}", fastrand::u32(..0xfffff)),
            _ => {
                return Err(ApiError::invalid(
                    &t.kind,
                    "",
                    vec![(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        };
        if t.namespaced {
            let body_ns = meta_str(&obj, "namespace").unwrap_or(ns);
            if body_ns != ns {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            self.check_namespace(t, ns)?;
        }
        let key = Self::key(t, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&t.resource_name(), &name));
        }
        set_meta(&mut obj, "name", json!(name));
        if t.namespaced {
            set_meta(&mut obj, "namespace", json!(ns));
        }
        if t.status_subresource && t.crd.is_some() {
            // A create through the main endpoint cannot set status.
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        let mut obj = self.admit(t, obj, None, opts)?;
        set_meta(&mut obj, "uid", json!(uid()));
        set_meta(&mut obj, "creationTimestamp", json!(now()));
        if t.crd.is_some() || t.kind == "CustomResourceDefinition" {
            set_meta(&mut obj, "generation", json!(1));
        }
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
        }
        if t.kind == "CustomResourceDefinition" {
            let types = registry::from_crd(&obj)
                .map_err(|e| ApiError::invalid("CustomResourceDefinition", &name, vec![("spec".into(), e)]))?;
            check_rules(&name, &obj)?;
            obj["status"] = crd_status(&obj);
            if !opts.dry_run {
                self.registry.register(&name, types);
            }
        }
        if opts.dry_run {
            return Ok(self.present(t, &obj));
        }
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        obj["apiVersion"] = json!(if is_events_v1(t) {
            "v1".to_string()
        } else {
            t.api_version()
        });
        obj["kind"] = json!(t.kind);
        self.objects.insert(key, obj.clone());
        let shown = self.present(t, &obj);
        self.record(t, ns, "ADDED", obj);
        Ok(shown)
    }

    /// Store a new version of an existing object (after update or patch).
    // The object's address, its two versions, the subresource and the
    // request's options are all needed here; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        old: &Value,
        mut new: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        if is_events_v1(t) {
            new = events::to_core(&new);
        }
        fold_string_data(t, &mut new);
        // The identity and server-owned metadata cannot change.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
        ] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => set_meta(&mut new, field, v.clone()),
                None => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove(field);
                    }
                }
            }
        }
        // A subresource writes only its part; the main resource never the
        // status subresource's.
        if t.status_subresource {
            match sub {
                Some("status") => {
                    let status = new.get("status").cloned();
                    let managed = new.pointer("/metadata/managedFields").cloned();
                    new = old.clone();
                    match status {
                        Some(s) => new["status"] = s,
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                    if let Some(mf) = managed {
                        set_meta(&mut new, "managedFields", mf);
                    }
                }
                _ => match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                },
            }
        }
        let mut new = self.admit(t, new, Some(old), opts)?;
        if schema::spec_part(&new) != schema::spec_part(old)
            && let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64)
        {
            set_meta(&mut new, "generation", json!(g + 1));
        }
        if t.kind == "CustomResourceDefinition" && sub.is_none() {
            let types = registry::from_crd(&new)
                .map_err(|e| ApiError::invalid("CustomResourceDefinition", name, vec![("spec".into(), e)]))?;
            check_rules(name, &new)?;
            new["status"] = crd_status(&new);
            if !opts.dry_run {
                self.registry.register(name, types);
            }
        }
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        if opts.dry_run {
            return Ok(self.present(t, &new));
        }
        if new == *old {
            // Nothing changed: no new resourceVersion, no watch event.
            return Ok(self.present(t, old));
        }
        let key = Self::key(t, ns, name);
        let rv = self.next_rv();
        set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
        if old.pointer("/metadata/deletionTimestamp").is_some() && !has_finalizers(&new) {
            self.objects.remove(&key);
            let shown = self.present(t, &new);
            self.record(t, ns, "DELETED", new);
            return Ok(shown);
        }
        self.objects.insert(key, new.clone());
        let shown = self.present(t, &new);
        self.record(t, ns, "MODIFIED", new);
        Ok(shown)
    }

    fn current(&self, t: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.objects
            .get(&Self::key(t, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.resource_name(), name))
    }

    pub fn update(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let old = self.current(t, ns, name)?;
        if let Some(rv) = meta_str(&body, "resourceVersion")
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.resource_name(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut body = body;
        if let Some(mf) = old.pointer("/metadata/managedFields") {
            set_meta(&mut body, "managedFields", mf.clone());
        }
        self.commit(t, ns, name, &old, body, sub, opts)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        content_type: &str,
        body: &Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let existing = self.current(t, ns, name);
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        if ct == "application/apply-patch+yaml" {
            let manager = opts.field_manager.clone().ok_or_else(|| {
                ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            })?;
            let base = match &existing {
                Ok(o) => self.present(t, o),
                Err(_) if sub.is_none() => json!({"metadata": {}}),
                Err(e) => return Err(e.clone()),
            };
            let applied = patch::apply(&base, body, &manager, opts.force, sub, &t.api_version(), &now()).map_err(|conflicts| {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                    .collect();
                let n = conflicts.len();
                ApiError::status(409, format!("Apply failed with {n} conflict{}", if n == 1 { "" } else { "s" }))
                    .with_details(json!({"name": name, "kind": t.resource_name(), "causes": causes}))
            })?;
            return match existing {
                Ok(old) => self.commit(t, ns, name, &old, applied, sub, opts),
                Err(_) => {
                    let mut o = applied;
                    set_meta(&mut o, "name", json!(name));
                    self.create(t, ns, o, opts)
                }
            };
        }
        let old = existing?;
        let mut new = self.present(t, &old);
        match ct {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                json_patch::merge(&mut new, body)
            }
            "application/json-patch+json" => patch::json_patch(&mut new, body).map_err(|e| {
                ApiError::invalid(
                    &t.kind,
                    name,
                    vec![("<patch>".into(), format!("the JSON patch failed: {e}"))],
                )
            })?,
            other => {
                return Err(ApiError::unsupported_media(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                )));
            }
        }
        if let Some(rv) = body.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.resource_name(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        self.commit(t, ns, name, &old, new, sub, opts)
    }

    pub fn delete(&mut self, t: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let key = Self::key(t, ns, name);
        let old = self.current(t, ns, name)?;
        if has_finalizers(&old) {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(self.present(t, &old));
            }
            let mut new = old.clone();
            set_meta(&mut new, "deletionTimestamp", json!(now()));
            set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            // As the API server does when it starts a graceful deletion.
            if let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64) {
                set_meta(&mut new, "generation", json!(g + 1));
            }
            let rv = self.next_rv();
            set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
            self.objects.insert(key, new.clone());
            let shown = self.present(t, &new);
            self.record(t, ns, "MODIFIED", new);
            return Ok(shown);
        }
        self.objects.remove(&key);
        let rv = self.next_rv();
        let mut gone = old;
        set_meta(&mut gone, "resourceVersion", json!(rv.to_string()));
        let shown = self.present(t, &gone);
        self.record(t, ns, "DELETED", gone);
        if t.kind == "CustomResourceDefinition" {
            for removed in self.registry.unregister(name) {
                let keys: Vec<Key> = self
                    .objects
                    .keys()
                    .filter(|(g, p, _, _)| *g == removed.store_group() && *p == removed.plural)
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(mut o) = self.objects.remove(&k) {
                        let rv = self.next_rv();
                        set_meta(&mut o, "resourceVersion", json!(rv.to_string()));
                        self.record(&removed, &k.2, "DELETED", o);
                    }
                }
            }
        }
        Ok(shown)
    }
}

fn crd_status(crd: &Value) -> Value {
    let t = now();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": t},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": t},
        ],
        "acceptedNames": names,
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|v| v.iter().filter(|x| x["storage"] == true).map(|x| x["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

/// The API server compiles and prices every validation rule of a CRD before
/// accepting it; so does the stand-in.
fn check_rules(name: &str, crd: &Value) -> ApiResult<()> {
    let refusals = super::celcost::crd_refusals(crd);
    if refusals.is_empty() {
        return Ok(());
    }
    let causes = refusals.into_iter().map(|r| (r.field, r.reason, r.message)).collect();
    Err(ApiError::invalid_causes("CustomResourceDefinition", name, causes))
}
