//! Authentication by bearer token and authorization by RBAC, as the
//! Kubernetes API server's RBAC authorizer decides: a request's attributes
//! (verb, API group, resource, subresource, namespace, name, or a
//! non-resource path) are allowed when a rule of a Role or ClusterRole bound
//! to the user, one of its groups or its ServiceAccount covers them. Roles
//! and bindings are ordinary objects of `rbac.authorization.k8s.io/v1`,
//! read from the store on every request, so `kubectl apply` of a chart's
//! RBAC takes effect at once.
//!
//! Built in, as the real server bootstraps them: members of
//! `system:masters` (the admin token) are allowed everything, and every
//! authenticated user may read discovery, OpenAPI, `/version` and the
//! health endpoints (`system:discovery`, `system:public-info-viewer`).

use super::status::ApiError;
use serde_json::{Value, json};

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn admin() -> User {
        User {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// The user a ServiceAccount's token authenticates as.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// What a request asks to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        resource: String,
        subresource: Option<String>,
        namespace: Option<String>,
        name: Option<String>,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

/// The API verb of an HTTP request on a resource path.
pub fn resource_verb(method: &str, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// The verb of a non-resource request (lower-cased HTTP method).
pub fn non_resource_verb(method: &str) -> String {
    method.to_ascii_lowercase()
}

/// Non-resource paths every authenticated user may GET.
const PUBLIC_PATHS: [&str; 11] = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/openapi",
    "/openapi/*",
    "/version",
    "/version/",
    "/healthz",
    "/livez",
    "/readyz",
];

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn contains_or_star(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// `nonResourceURLs` entries match exactly, or by prefix when they end in
/// `*`.
fn path_matches(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => p == path,
    })
}

/// One PolicyRule against the request, as the RBAC authorizer matches it.
fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    match attrs {
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            if !contains_or_star(&strings(rule, "verbs"), verb) || !contains_or_star(&strings(rule, "apiGroups"), group)
            {
                return false;
            }
            let combined = match subresource {
                Some(s) => format!("{resource}/{s}"),
                None => resource.clone(),
            };
            let resources = strings(rule, "resources");
            let resource_ok = resources
                .iter()
                .any(|r| r == "*" || *r == combined || subresource.as_ref().is_some_and(|s| *r == format!("*/{s}")));
            if !resource_ok {
                return false;
            }
            let names = strings(rule, "resourceNames");
            names.is_empty() || name.as_ref().is_some_and(|n| names.contains(n))
        }
        Attributes::NonResource { verb, path } => {
            contains_or_star(&strings(rule, "verbs"), verb) && path_matches(&strings(rule, "nonResourceURLs"), path)
        }
    }
}

fn subject_matches(subject: &Value, user: &User) -> bool {
    let s = |f: &str| subject.get(f).and_then(Value::as_str).unwrap_or_default();
    match s("kind") {
        "User" => s("name") == user.name,
        "Group" => user.groups.iter().any(|g| g == s("name")),
        "ServiceAccount" => user.name == format!("system:serviceaccount:{}:{}", s("namespace"), s("name")),
        _ => false,
    }
}

fn binds(binding: &Value, user: &User) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subjects| subjects.iter().any(|s| subject_matches(s, user)))
}

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The RBAC objects in force, as read from the store.
pub struct Policy<'a> {
    pub roles: &'a [Value],
    pub role_bindings: &'a [Value],
    pub cluster_roles: &'a [Value],
    pub cluster_role_bindings: &'a [Value],
}

impl Policy<'_> {
    fn cluster_role(&self, name: &str) -> Option<&Value> {
        self.cluster_roles.iter().find(|r| meta(r, "name") == name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.roles
            .iter()
            .find(|r| meta(r, "namespace") == namespace && meta(r, "name") == name)
    }

    fn rules_allow(role: Option<&Value>, attrs: &Attributes) -> bool {
        role.and_then(|r| r.get("rules"))
            .and_then(Value::as_array)
            .is_some_and(|rules| rules.iter().any(|rule| rule_allows(rule, attrs)))
    }

    /// Whether `user` may do what `attrs` describe.
    pub fn allows(&self, user: &User, attrs: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == "system:masters") {
            return true;
        }
        if let Attributes::NonResource { verb, path } = attrs
            && (verb == "get" || verb == "head")
            && user.groups.iter().any(|g| g == "system:authenticated")
            && path_matches(&PUBLIC_PATHS.map(String::from), path)
        {
            return true;
        }
        // ClusterRoleBindings grant everywhere.
        let cluster_wide = self
            .cluster_role_bindings
            .iter()
            .filter(|b| binds(b, user))
            .filter(|b| b.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole"))
            .any(|b| {
                let name = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
                Self::rules_allow(self.cluster_role(name), attrs)
            });
        if cluster_wide {
            return true;
        }
        // RoleBindings grant only inside their namespace, and only for
        // namespaced requests.
        let Attributes::Resource {
            namespace: Some(ns), ..
        } = attrs
        else {
            return false;
        };
        self.role_bindings
            .iter()
            .filter(|b| meta(b, "namespace") == ns && binds(b, user))
            .any(|b| {
                let name = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
                let role = match b.pointer("/roleRef/kind").and_then(Value::as_str) {
                    Some("Role") => self.role(ns, name),
                    Some("ClusterRole") => self.cluster_role(name),
                    _ => None,
                };
                Self::rules_allow(role, attrs)
            })
    }
}

/// 403 Forbidden with the Status body and message the real server sends.
pub fn forbidden(user: &User, attrs: &Attributes) -> ApiError {
    match attrs {
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
        } => {
            let combined = match subresource {
                Some(s) => format!("{resource}/{s}"),
                None => resource.clone(),
            };
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let what = match name {
                Some(n) => format!("{qualified} \"{n}\" is forbidden"),
                None => format!("{qualified} is forbidden"),
            };
            let scope = match namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            ApiError::forbidden(
                format!(
                    "{what}: User \"{}\" cannot {verb} resource \"{combined}\" in API group \"{group}\" {scope}",
                    user.name
                ),
                json!({"name": name.clone().unwrap_or_default(), "group": group, "kind": resource}),
            )
        }
        Attributes::NonResource { verb, path } => ApiError::forbidden(
            format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name),
            json!({}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        verb: &str,
        group: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Attributes {
        Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.map(Into::into),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
        }
    }

    fn sa() -> User {
        User::service_account("zerofn-system", "zerofn")
    }

    fn cluster_role() -> Value {
        json!({"metadata": {"name": "zerofn"}, "rules": [
            {"apiGroups": ["zerofn.dev"], "resources": ["functionpostures"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["zerofn.dev"], "resources": ["functionpostures/status"], "verbs": ["patch"]},
            {"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}
        ]})
    }

    fn crb() -> Value {
        json!({"metadata": {"name": "zerofn"}, "roleRef": {"kind": "ClusterRole", "name": "zerofn"},
               "subjects": [{"kind": "ServiceAccount", "name": "zerofn", "namespace": "zerofn-system"}]})
    }

    fn secret_role(ns: &str, names: &[&str]) -> Value {
        let mut rule = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]});
        if !names.is_empty() {
            rule["resourceNames"] = json!(names);
        }
        json!({"metadata": {"name": "secret-reader", "namespace": ns}, "rules": [rule]})
    }

    fn rb(ns: &str, kind: &str, role: &str, subject: Value) -> Value {
        json!({"metadata": {"name": "b", "namespace": ns}, "roleRef": {"kind": kind, "name": role}, "subjects": [subject]})
    }

    fn sa_subject() -> Value {
        json!({"kind": "ServiceAccount", "name": "zerofn", "namespace": "zerofn-system"})
    }

    #[test]
    fn a_cluster_role_binding_grants_its_verbs_and_subresources_only() {
        let (cr, b) = ([cluster_role()], [crb()]);
        let p = Policy {
            roles: &[],
            role_bindings: &[],
            cluster_roles: &cr,
            cluster_role_bindings: &b,
        };
        let u = sa();
        assert!(p.allows(&u, &res("list", "zerofn.dev", "functionpostures", None, None, None)));
        assert!(p.allows(
            &u,
            &res("watch", "zerofn.dev", "functionpostures", None, Some("shop"), None)
        ));
        assert!(p.allows(
            &u,
            &res(
                "patch",
                "zerofn.dev",
                "functionpostures",
                Some("status"),
                Some("shop"),
                Some("a")
            )
        ));
        assert!(!p.allows(
            &u,
            &res(
                "update",
                "zerofn.dev",
                "functionpostures",
                Some("status"),
                Some("shop"),
                Some("a")
            )
        ));
        assert!(!p.allows(
            &u,
            &res(
                "delete",
                "zerofn.dev",
                "functionpostures",
                None,
                Some("shop"),
                Some("a")
            )
        ));
        assert!(!p.allows(&u, &res("get", "", "secrets", None, Some("shop"), Some("creds"))));
        // Another ServiceAccount of the same name elsewhere is someone else.
        assert!(!p.allows(
            &User::service_account("shop", "zerofn"),
            &res("list", "zerofn.dev", "functionpostures", None, None, None)
        ));
        // Non-resource URLs: exact or `*` prefix; discovery is public.
        assert!(p.allows(
            &u,
            &Attributes::NonResource {
                verb: "get".into(),
                path: "/debug/pprof".into()
            }
        ));
        assert!(!p.allows(
            &u,
            &Attributes::NonResource {
                verb: "get".into(),
                path: "/metrics/x".into()
            }
        ));
        assert!(p.allows(
            &u,
            &Attributes::NonResource {
                verb: "get".into(),
                path: "/apis/zerofn.dev/v1alpha1".into()
            }
        ));
        assert!(!p.allows(
            &u,
            &Attributes::NonResource {
                verb: "post".into(),
                path: "/version".into()
            }
        ));
    }

    #[test]
    fn a_role_binding_grants_only_in_its_namespace_and_only_the_named_objects() {
        let roles = [secret_role("shop", &[]), secret_role("team", &["aws"])];
        let bindings = [
            rb("shop", "Role", "secret-reader", sa_subject()),
            rb("team", "Role", "secret-reader", sa_subject()),
        ];
        let p = Policy {
            roles: &roles,
            role_bindings: &bindings,
            cluster_roles: &[],
            cluster_role_bindings: &[],
        };
        let u = sa();
        assert!(p.allows(&u, &res("get", "", "secrets", None, Some("shop"), Some("creds"))));
        assert!(!p.allows(&u, &res("list", "", "secrets", None, Some("shop"), None)));
        assert!(!p.allows(&u, &res("watch", "", "secrets", None, Some("shop"), None)));
        assert!(
            !p.allows(&u, &res("list", "", "secrets", None, None, None)),
            "cluster-wide"
        );
        assert!(!p.allows(&u, &res("get", "", "secrets", None, Some("other"), Some("creds"))));
        assert!(p.allows(&u, &res("get", "", "secrets", None, Some("team"), Some("aws"))));
        assert!(!p.allows(&u, &res("get", "", "secrets", None, Some("team"), Some("gcp"))));
    }

    #[test]
    fn a_role_binding_to_a_cluster_role_is_limited_to_its_namespace() {
        let cr = [
            json!({"metadata": {"name": "view"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}]}),
        ];
        let bindings = [rb(
            "shop",
            "ClusterRole",
            "view",
            json!({"kind": "Group", "name": "system:serviceaccounts:zerofn-system"}),
        )];
        let p = Policy {
            roles: &[],
            role_bindings: &bindings,
            cluster_roles: &cr,
            cluster_role_bindings: &[],
        };
        assert!(p.allows(&sa(), &res("get", "apps", "deployments", None, Some("shop"), Some("x"))));
        assert!(!p.allows(
            &sa(),
            &res("get", "apps", "deployments", None, Some("kube-system"), Some("x"))
        ));
        assert!(!p.allows(&sa(), &res("get", "", "namespaces", None, None, Some("shop"))));
    }

    #[test]
    fn the_admin_may_do_anything_and_forbidden_reads_like_the_real_server() {
        let p = Policy {
            roles: &[],
            role_bindings: &[],
            cluster_roles: &[],
            cluster_role_bindings: &[],
        };
        let list = res("list", "", "secrets", None, None, None);
        assert!(p.allows(&User::admin(), &list));
        assert!(!p.allows(&sa(), &list));
        let e = forbidden(&sa(), &list);
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "secrets is forbidden: User \"system:serviceaccount:zerofn-system:zerofn\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
        );
        let e = forbidden(
            &sa(),
            &res(
                "patch",
                "zerofn.dev",
                "cloudaccounts",
                Some("status"),
                Some("shop"),
                Some("prod"),
            ),
        );
        assert_eq!(
            e.message,
            "cloudaccounts.zerofn.dev \"prod\" is forbidden: User \"system:serviceaccount:zerofn-system:zerofn\" cannot patch resource \"cloudaccounts/status\" in API group \"zerofn.dev\" in the namespace \"shop\""
        );
        assert_eq!(e.to_status()["details"]["kind"], "cloudaccounts");
    }

    #[test]
    fn verbs_follow_the_http_method_and_the_path() {
        assert_eq!(resource_verb("GET", true, false), "get");
        assert_eq!(resource_verb("GET", false, false), "list");
        assert_eq!(resource_verb("GET", false, true), "watch");
        assert_eq!(resource_verb("POST", false, false), "create");
        assert_eq!(resource_verb("PUT", true, false), "update");
        assert_eq!(resource_verb("PATCH", true, false), "patch");
        assert_eq!(resource_verb("DELETE", true, false), "delete");
        assert_eq!(resource_verb("DELETE", false, false), "deletecollection");
    }
}
