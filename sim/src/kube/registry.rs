//! The kinds the stand-in serves: a few built-ins, and whatever the
//! registered CustomResourceDefinitions declare. Discovery documents are
//! derived from here.

use serde_json::{Value, json};

const VERBS: [&str; 7] = ["create", "delete", "get", "list", "patch", "update", "watch"];

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// openAPIV3Schema of a custom resource.
    pub schema: Option<Value>,
    pub printer_columns: Vec<Value>,
    /// Name of the CRD that declares it.
    pub crd: Option<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key of the kind: every served version shares one store. Core
    /// events and events.k8s.io events are one resource.
    pub fn store_group(&self) -> &str {
        if self.plural == "events" && self.group == "events.k8s.io" {
            ""
        } else {
            &self.group
        }
    }

    /// `plural.group` as error messages name it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn discovery(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
            "kind": self.kind, "verbs": VERBS,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural), "singularName": "", "namespaced": self.namespaced,
                "kind": self.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool, short: &[&str]) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        status_subresource: false,
        schema: None,
        printer_columns: Vec::new(),
        crd: None,
    }
}

pub fn builtins() -> Vec<ResourceType> {
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
    );
    crd.status_subresource = true;
    // What `helm install` of the chart creates, stored as given (no
    // controllers run: a Deployment never gets pods or status).
    let with_status = |mut t: ResourceType, categories: &[&str]| {
        t.status_subresource = true;
        t.categories = categories.iter().map(|c| c.to_string()).collect();
        t
    };
    vec![
        with_status(
            builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
            &["all"],
        ),
        with_status(builtin("", "v1", "services", "Service", true, &["svc"]), &["all"]),
        with_status(
            builtin(
                "policy",
                "v1",
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
                &["pdb"],
            ),
            &[],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
        ),
        builtin("", "v1", "namespaces", "Namespace", false, &["ns"]),
        builtin("", "v1", "secrets", "Secret", true, &[]),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
        builtin("", "v1", "events", "Event", true, &["ev"]),
        builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
        builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"]),
        builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
        builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[]),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
        ),
        crd,
    ]
}

/// The kinds a CRD object declares (one per served version).
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let group = s(spec.get("group")).ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = s(names.get("plural")).ok_or("spec.names.plural is required")?;
    let kind = s(names.get("kind")).ok_or("spec.names.kind is required")?;
    let singular = s(names.get("singular")).unwrap_or_else(|| kind.to_ascii_lowercase());
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let namespaced = match s(spec.get("scope")).as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => return Err(format!("spec.scope: Unsupported value: {other:?}")),
    };
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let schema = v.pointer("/schema/openAPIV3Schema").cloned();
        if schema.is_none() {
            return Err("spec.versions[].schema.openAPIV3Schema is required (structural schema)".into());
        }
        out.push(ResourceType {
            group: group.clone(),
            version: s(v.get("name")).ok_or("spec.versions[].name is required")?,
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: list(names.get("shortNames")),
            categories: list(names.get("categories")),
            status_subresource: v.pointer("/subresources/status").is_some(),
            schema,
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            crd: Some(name.to_string()),
        });
    }
    Ok(out)
}

pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { types: builtins() }
    }
}

impl Registry {
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn register(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
        self.types.extend(types);
    }

    pub fn unregister(&mut self, crd_name: &str) -> Vec<ResourceType> {
        let (gone, keep) = self.types.drain(..).partition(|t| t.crd.as_deref() == Some(crd_name));
        self.types = keep;
        gone
    }

    pub fn api_versions(&self) -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
    }

    pub fn groups(&self) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
                Some(_) => {}
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    pub fn group(&self, group: &str) -> Option<Value> {
        let versions: Vec<Value> = self
            .types
            .iter()
            .filter(|t| t.group == group)
            .map(|t| t.version.clone())
            .fold(Vec::new(), |mut v, x| {
                if !v.contains(&x) {
                    v.push(x)
                }
                v
            })
            .into_iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        (!versions.is_empty()).then(|| {
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]})
        })
    }

    pub fn resources(&self, group: &str, version: &str) -> Option<Value> {
        let resources: Vec<Value> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .flat_map(ResourceType::discovery)
            .collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        (!resources.is_empty())
            .then(|| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object"}},
                                   "subresources": {"status": {}}}]}
        })
    }

    #[test]
    fn a_crd_makes_its_kind_discoverable() {
        let mut r = Registry::default();
        r.register("widgets.example.com", from_crd(&crd()).unwrap());
        let list = r.resources("example.com", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        assert_eq!(names, ["widgets", "widgets/status"]);
        assert!(
            r.groups()["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "example.com")
        );
        r.unregister("widgets.example.com");
        assert!(r.resources("example.com", "v1").is_none());
    }

    #[test]
    fn malformed_crds_are_refused() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("wrong");
        assert!(from_crd(&bad).unwrap_err().contains("metadata.name"));
        let mut bad = crd();
        bad["spec"]["scope"] = json!("Global");
        assert!(from_crd(&bad).is_err());
    }
}
