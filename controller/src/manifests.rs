//! Reading CloudAccounts, ClusterCloudAccounts, FunctionPostures (and the
//! Secrets they name) from YAML files, for the CLI.
//!
//! Every document is checked as the API server would: against the CRD's own
//! schema (types, required and unknown fields, enums, patterns, bounds), then
//! against the rules the CRD states in CEL. An error names the file, the
//! document, the object and the field, and nothing reaches a cloud until every
//! document is valid.

use crate::api::{
    self, CloudAccountSpec, ClusterCloudAccountSpec, FunctionPostureSpec, schema_check, validate::FieldError,
};
use crate::providers::cloud::SecretData;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    /// 1-based index of the document in its file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file.display(), self.document)
    }
}

#[derive(Clone, Debug)]
pub struct Object<T> {
    pub source: Source,
    pub namespace: String,
    pub name: String,
    pub spec: T,
}

#[derive(Default)]
pub struct Manifests {
    pub accounts: Vec<Object<CloudAccountSpec>>,
    pub cluster_accounts: Vec<Object<ClusterCloudAccountSpec>>,
    pub postures: Vec<Object<FunctionPostureSpec>>,
    pub policies: Vec<Object<api::PosturePolicySpec>>,
    pub secrets: Vec<Object<SecretData>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub source: Option<Source>,
    /// `Kind namespace/name`, when known.
    pub object: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.source {
            write!(f, "{s}")?;
        }
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        if self.source.is_some() || self.object.is_some() {
            f.write_str(": ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

pub const DEFAULT_NAMESPACE: &str = "default";

/// Secrets are shown by name only.
impl fmt::Debug for Manifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets: Vec<String> = self
            .secrets
            .iter()
            .map(|s| format!("{}/{} ({} keys, redacted)", s.namespace, s.name, s.spec.len()))
            .collect();
        f.debug_struct("Manifests")
            .field("accounts", &self.accounts)
            .field("cluster_accounts", &self.cluster_accounts)
            .field("postures", &self.postures)
            .field("secrets", &secrets)
            .finish()
    }
}

fn path_error(path: &Path, message: String) -> ManifestError {
    ManifestError {
        source: None,
        object: None,
        field: None,
        message: format!("{}: {message}", path.display()),
    }
}

fn is_manifest(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// Files under one `-f` root: the file itself, or every .yaml/.yml/.json
/// regular file below a directory, in name order (so output and errors are
/// stable). A link is followed only while it stays inside the root; one
/// that leaves it is refused (never read: a link to `/` would walk the
/// whole machine, one to a secret file would echo it in an error), and each
/// directory is read once, so a link back up the tree ends.
fn files(root: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<ManifestError>) {
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => return errors.push(path_error(root, e.to_string())),
    };
    if meta.is_file() {
        out.push(root.to_path_buf());
        return;
    }
    if !meta.is_dir() {
        return errors.push(path_error(root, "neither a file nor a directory".into()));
    }
    let inside = match std::fs::canonicalize(root) {
        Ok(p) => p,
        Err(e) => return errors.push(path_error(root, e.to_string())),
    };
    let mut seen = BTreeSet::new();
    walk(root, &inside, &mut seen, out, errors);
}

fn walk(
    dir: &Path,
    root: &Path,
    seen: &mut BTreeSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<ManifestError>,
) {
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !seen.insert(real) {
                return;
            }
        }
        Err(e) => return errors.push(path_error(dir, e.to_string())),
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => return errors.push(path_error(dir, e.to_string())),
    };
    entries.sort();
    for p in entries {
        let Ok(own) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if own.file_type().is_symlink() {
            match std::fs::canonicalize(&p) {
                Ok(target) if target.starts_with(root) => {}
                Ok(_) => {
                    errors.push(path_error(
                        &p,
                        format!("a link out of {}: refused, not read", root.display()),
                    ));
                    continue;
                }
                // A dangling link to a manifest is an error; to anything
                // else, nothing to read.
                Err(e) if is_manifest(&p) => {
                    errors.push(path_error(&p, e.to_string()));
                    continue;
                }
                Err(_) => continue,
            }
        }
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, root, seen, out, errors);
        } else if meta.is_file() && is_manifest(&p) {
            // Regular files only: a FIFO or a device named *.yaml would hang
            // or never end.
            out.push(p);
        }
    }
}

/// Load and validate every document under `paths`. All errors are collected,
/// so one run shows everything to fix.
pub fn load(paths: &[PathBuf]) -> Result<Manifests, Vec<ManifestError>> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        files(p, &mut all, &mut errors);
    }
    let mut m = Manifests::default();
    for file in &all {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ManifestError {
                    source: None,
                    object: None,
                    field: None,
                    message: format!("{}: {e}", file.display()),
                });
                continue;
            }
        };
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(ManifestError {
                    source: Some(Source {
                        file: file.clone(),
                        document: 1,
                    }),
                    object: None,
                    field: None,
                    message: format!("not valid YAML: {e}"),
                });
                continue;
            }
        };
        for (i, doc) in docs.into_iter().enumerate() {
            let source = Source {
                file: file.clone(),
                document: i + 1,
            };
            if let Err(mut e) = m.add(source, doc) {
                errors.append(&mut e);
            }
        }
    }
    m.check_duplicates(&mut errors);
    if errors.is_empty() { Ok(m) } else { Err(errors) }
}

fn field_errors(source: &Source, object: &str, errs: Vec<FieldError>) -> Vec<ManifestError> {
    errs.into_iter()
        .map(|e| ManifestError {
            source: Some(source.clone()),
            object: Some(object.to_string()),
            field: Some(e.path),
            message: e.message,
        })
        .collect()
}

/// One error of a document.
fn error(source: &Source, object: Option<&str>, field: &str, message: String) -> Vec<ManifestError> {
    vec![ManifestError {
        source: Some(source.clone()),
        object: object.map(Into::into),
        field: Some(field.into()),
        message,
    }]
}

/// What a document says it is. Names come first: every later error prints
/// them.
struct Header {
    api_version: String,
    kind: String,
    name: String,
    namespace: String,
    /// `Kind namespace/name` (`Kind name` when cluster scoped), as errors
    /// name it.
    object: String,
}

impl Header {
    fn into_object<T>(self, source: Source, spec: T) -> Object<T> {
        Object {
            source,
            namespace: self.namespace,
            name: self.name,
            spec,
        }
    }
}

fn header(source: &Source, doc: &Value) -> Result<Header, Vec<ManifestError>> {
    let Some(obj) = doc.as_object() else {
        return Err(vec![ManifestError {
            source: Some(source.clone()),
            object: None,
            field: None,
            message: "a document must be a mapping with apiVersion and kind".into(),
        }]);
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = text(obj.get("apiVersion"));
    let kind = text(obj.get("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(error(
            source,
            None,
            "apiVersion",
            "apiVersion and kind are required".into(),
        ));
    }
    let meta = obj.get("metadata");
    let name = text(meta.and_then(|m| m.get("name")));
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string();
    let cluster_scoped = kind == "ClusterCloudAccount";
    let ours = api_version.starts_with(&format!("{}/", api::GROUP)) || (api_version == "v1" && kind == "Secret");
    if ours {
        let bad = name_errors(&name, if cluster_scoped { None } else { Some(&namespace) });
        if !bad.is_empty() {
            return Err(bad
                .into_iter()
                .flat_map(|(field, message)| error(source, None, field, message))
                .collect());
        }
    }
    let object = if cluster_scoped {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    };
    Ok(Header {
        api_version,
        kind,
        name,
        namespace,
        object,
    })
}

/// The typed spec, if it also passes the CEL rules' mirror.
fn checked<T: DeserializeOwned>(
    source: &Source,
    object: &str,
    spec: Value,
    rules: fn(&T) -> Vec<FieldError>,
) -> Result<T, Vec<ManifestError>> {
    let spec: T = typed(source, object, spec)?;
    let errs = rules(&spec);
    if !errs.is_empty() {
        return Err(field_errors(source, object, errs));
    }
    Ok(spec)
}

impl Manifests {
    fn add(&mut self, source: Source, doc: Value) -> Result<(), Vec<ManifestError>> {
        if doc.is_null() {
            return Ok(());
        }
        let h = header(&source, &doc)?;
        if let Some(group) = h.api_version.strip_suffix(&format!("/{}", api::VERSION))
            && group == api::GROUP
        {
            return self.add_ours(source, h, &doc);
        }
        if h.api_version.starts_with(&format!("{}/", api::GROUP)) {
            let message = format!(
                "unsupported version {}: this zerofn serves {}",
                h.api_version,
                api::API_VERSION
            );
            return Err(error(&source, None, "apiVersion", message));
        }
        if h.api_version == "v1" && h.kind == "Secret" {
            let data =
                secret_data(&doc).map_err(|(field, message)| error(&source, Some(&h.object), &field, message))?;
            self.secrets.push(h.into_object(source, data));
            return Ok(());
        }
        // Other objects (Deployments, ConfigMaps...) may share the files.
        tracing::debug!(%source, kind = %h.kind, "ignoring document of another kind");
        Ok(())
    }

    /// A zerofn object: its CRD's schema first, then the CEL rules' mirror.
    fn add_ours(&mut self, source: Source, h: Header, doc: &Value) -> Result<(), Vec<ManifestError>> {
        let unknown = || format!("unknown kind {} in {}", h.kind, h.api_version);
        let Some(schema) = api::schema_for(&h.kind) else {
            return Err(error(&source, None, "kind", unknown()));
        };
        let schema_errors = schema_check::check(schema, doc, "");
        if !schema_errors.is_empty() {
            return Err(schema_errors
                .into_iter()
                .map(|e| ManifestError {
                    source: Some(source.clone()),
                    object: Some(h.object.clone()),
                    field: Some(e.path),
                    message: e.message,
                })
                .collect());
        }
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        match h.kind.as_str() {
            "FunctionPosture" => {
                let spec = checked(&source, &h.object, spec, api::validate::posture)?;
                self.postures.push(h.into_object(source, spec));
            }
            "PosturePolicy" => {
                let spec = checked(&source, &h.object, spec, api::validate::policy)?;
                self.policies.push(h.into_object(source, spec));
            }
            "CloudAccount" => {
                let spec = checked(&source, &h.object, spec, api::validate::cloud_account)?;
                self.accounts.push(h.into_object(source, spec));
            }
            "ClusterCloudAccount" => {
                let spec = checked(&source, &h.object, spec, api::validate::cluster_cloud_account)?;
                let mut o = h.into_object(source, spec);
                // Cluster scoped: a namespace in the document means nothing.
                o.namespace.clear();
                self.cluster_accounts.push(o);
            }
            _ => return Err(error(&source, None, "kind", unknown())),
        }
        Ok(())
    }

    fn check_duplicates(&self, errors: &mut Vec<ManifestError>) {
        let mut seen = BTreeSet::new();
        let mut dup = |kind: &str, ns: &str, name: &str, source: &Source| {
            if !seen.insert((kind.to_string(), ns.to_string(), name.to_string())) {
                errors.push(ManifestError {
                    source: Some(source.clone()),
                    object: Some(format!("{kind} {ns}/{name}")),
                    field: Some("metadata.name".into()),
                    message: "defined more than once".into(),
                });
            }
        };
        for o in &self.postures {
            dup("FunctionPosture", &o.namespace, &o.name, &o.source);
        }
        for o in &self.policies {
            dup("PosturePolicy", &o.namespace, &o.name, &o.source);
        }
        for o in &self.accounts {
            dup("CloudAccount", &o.namespace, &o.name, &o.source);
        }
        for o in &self.cluster_accounts {
            dup("ClusterCloudAccount", "", &o.name, &o.source);
        }
        for o in &self.secrets {
            dup("Secret", &o.namespace, &o.name, &o.source);
        }
    }

    pub fn account(&self, namespace: &str, name: &str) -> Option<&CloudAccountSpec> {
        self.accounts
            .iter()
            .find(|a| a.namespace == namespace && a.name == name)
            .map(|a| &a.spec)
    }

    pub fn cluster_account(&self, name: &str) -> Option<&ClusterCloudAccountSpec> {
        self.cluster_accounts.iter().find(|a| a.name == name).map(|a| &a.spec)
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&SecretData> {
        self.secrets
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
            .map(|s| &s.spec)
    }
}

/// Kubernetes names: an object name is a DNS-1123 subdomain (at most 253
/// characters), a namespace a DNS-1123 label (at most 63). The offending
/// value is shown escaped and cut short.
fn name_errors(name: &str, namespace: Option<&str>) -> Vec<(&'static str, String)> {
    let shown = |v: &str| format!("{:?}", v.chars().take(80).collect::<String>());
    let mut out = Vec::new();
    if name.is_empty() {
        out.push(("metadata.name", "Required value".to_string()));
    } else if name.len() > 253 || !api::patterns::matches(api::patterns::K8S_NAME, name) {
        out.push((
            "metadata.name",
            format!(
                "Invalid value: {}: a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters)",
                shown(name)
            ),
        ));
    }
    if let Some(ns) = namespace
        && (ns.len() > 63 || !api::patterns::matches(api::patterns::K8S_LABEL, ns))
    {
        out.push((
            "metadata.namespace",
            format!(
                "Invalid value: {}: a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters)",
                shown(ns)
            ),
        ));
    }
    out
}

fn typed<T: DeserializeOwned>(source: &Source, object: &str, v: Value) -> Result<T, Vec<ManifestError>> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        vec![ManifestError {
            source: Some(source.clone()),
            object: Some(object.to_string()),
            field: Some(if path == "." {
                "spec".into()
            } else {
                format!("spec.{path}")
            }),
            message: e.into_inner().to_string(),
        }]
    })
}

fn secret_data(obj: &Value) -> Result<SecretData, (String, String)> {
    use base64::Engine;
    let mut out = SecretData::new();
    if let Some(data) = obj.get("data") {
        let map = data
            .as_object()
            .ok_or(("data".to_string(), "must be a mapping".to_string()))?;
        for (k, v) in map {
            let s = v
                .as_str()
                .ok_or((format!("data.{k}"), "must be a base64 string".to_string()))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| (format!("data.{k}"), format!("not base64: {e}")))?;
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(data) = obj.get("stringData") {
        let map = data
            .as_object()
            .ok_or(("stringData".to_string(), "must be a mapping".to_string()))?;
        for (k, v) in map {
            let s = v
                .as_str()
                .ok_or((format!("stringData.{k}"), "must be a string".to_string()))?;
            out.insert(k.clone(), s.as_bytes().to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(yaml: &str) -> Result<Manifests, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.yaml"), yaml).unwrap();
        load(&[dir.path().to_path_buf()]).map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    const ACCOUNT: &str = r#"
apiVersion: zerofn.dev/v1alpha1
kind: CloudAccount
metadata: {name: prod, namespace: team}
spec:
  aws: {region: eu-west-1, credentialsSecretRef: {name: creds}}
"#;

    #[test]
    fn valid_documents_load_with_defaults() {
        let m = load_str(&format!(
            "{ACCOUNT}---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: orders, namespace: team}}\nspec:\n  accountRef: {{name: prod}}\n  function: {{aws: {{name: orders}}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: other}}\n"
        ))
        .unwrap();
        assert_eq!(m.accounts.len(), 1);
        assert_eq!(m.postures.len(), 1);
        assert_eq!(
            m.postures[0].spec.mode,
            crate::api::Mode::Audit,
            "Audit is the safe default"
        );
        assert_eq!(m.postures[0].source.document, 2);
    }

    #[test]
    fn unknown_field_names_file_document_and_field() {
        let e = load_str(&format!(
            "{ACCOUNT}---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: orders, namespace: team}}\nspec:\n  accountRef: {{name: prod}}\n  function: {{aws: {{name: orders}}}}\n  identity: {{dedicatd: true}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(
                "m.yaml: document 2 (FunctionPosture team/orders): spec.identity.dedicatd: unknown field; did you mean `dedicated`?"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_misspelt_field_gets_the_nearest_known_one_and_a_bad_value_an_example() {
        let e = load_str(&format!(
            "{ACCOUNT}---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: orders, namespace: team}}\nspec:\n  accountRef: {{name: prod}}\n  function: {{aws: {{name: orders}}}}\n  triggers: {{public_acess: Deny, zzzzzzzz: 1}}\n---\napiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: other, namespace: team}}\nspec:\n  aws: {{region: eu-west-1, credentialsSecretRef: {{name: creds}}, assumeRole: {{roleArn: my-role}}}}\n"
        ))
        .unwrap_err()
        .join("\n");
        assert!(
            e.contains("spec.triggers.public_acess: unknown field; did you mean `publicAccess`?"),
            "{e}"
        );
        assert!(
            e.contains("spec.triggers.zzzzzzzz: unknown field\n")
                || e.ends_with("spec.triggers.zzzzzzzz: unknown field"),
            "nothing near enough, no guess: {e}"
        );
        assert!(
            e.contains("spec.aws.assumeRole.roleArn: Invalid value: \"my-role\"")
                && e.contains("expected an IAM role ARN such as arn:aws:iam::123456789012:role/name"),
            "{e}"
        );
    }

    #[test]
    fn two_clouds_in_one_target_is_refused() {
        let e = load_str(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: x}\nspec:\n  accountRef: {name: prod}\n  function:\n    aws: {name: orders}\n    gcp: {location: europe-west1, name: orders}\n",
        )
        .unwrap_err();
        assert!(
            e[0].contains("document 1 (FunctionPosture default/x): spec.function: exactly one of"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_arn_is_refused_with_the_field() {
        let e = load_str(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: x}\nspec:\n  accountRef: {name: prod}\n  function: {aws: {name: orders}}\n  identity:\n    aws:\n      managedPolicies: [\"arn:aws:iam::policy/ReadOnly\"]\n",
        )
        .unwrap_err();
        assert!(
            e[0].contains("spec.identity.aws.managedPolicies[0]: Invalid value: \"arn:aws:iam::policy/ReadOnly\""),
            "{e:?}"
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let e = load_str(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: a}\nspec:\n  accountRef: {name: p}\n  function: {aws: {name: \"bad name\"}}\n  mode: Fix\n---\nkind: Thing\n---\napiVersion: zerofn.dev/v1beta9\nkind: CloudAccount\nmetadata: {name: c}\n",
        )
        .unwrap_err();
        let all = e.join("\n");
        assert!(all.contains("spec.function.aws.name"), "{all}");
        assert!(all.contains("spec.mode: Unsupported value: \"Fix\""), "{all}");
        assert!(
            all.contains("document 2: apiVersion: apiVersion and kind are required"),
            "{all}"
        );
        assert!(
            all.contains("document 3: apiVersion: unsupported version zerofn.dev/v1beta9"),
            "{all}"
        );
    }

    #[test]
    fn wildcard_action_and_unscoped_service_invoker_are_refused() {
        let e = load_str(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: a}\nspec:\n  accountRef: {name: p}\n  function: {aws: {name: f}}\n  identity:\n    aws:\n      permissions: [{actions: [\"*\"], resources: [\"*\"]}]\n  triggers:\n    aws:\n      invokers: [{principal: s3.amazonaws.com}]\n",
        )
        .unwrap_err();
        let all = e.join("\n");
        assert!(
            all.contains("spec.identity.aws.permissions[0].actions: action '*'"),
            "{all}"
        );
        assert!(
            all.contains("spec.triggers.aws.invokers[0].sourceArn: a service principal"),
            "{all}"
        );
    }

    #[test]
    fn secrets_decode_data_and_string_data() {
        let m = load_str("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: team}\ndata: {aws_access_key_id: QUtJQQ==}\nstringData: {aws_secret_access_key: sk}\n").unwrap();
        let s = m.secret("team", "creds").unwrap();
        assert_eq!(s["aws_access_key_id"], b"AKIA");
        assert_eq!(s["aws_secret_access_key"], b"sk");
    }

    #[test]
    fn names_are_kubernetes_names_and_shown_escaped() {
        let e = load_str(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: \"evil\\e[2J\\nfake: ok\", namespace: \"Team A\"}\nspec:\n  accountRef: {name: p}\n  function: {aws: {name: f}}\n",
        )
        .unwrap_err();
        let all = e.join("\n");
        assert!(
            all.contains("metadata.name: Invalid value: \"evil\\u{1b}[2J\\nfake: ok\""),
            "{all}"
        );
        assert!(all.contains("metadata.namespace: Invalid value: \"Team A\""), "{all}");
        assert!(!all.contains('\u{1b}'), "{all}");
        assert_eq!(e.len(), 2, "nothing else is checked before the names: {all}");
    }

    #[cfg(unix)]
    #[test]
    fn links_leaving_the_root_are_refused_and_never_read() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let outside = base.path().join("outside.yaml");
        std::fs::write(&outside, "kind: [ this-is-outside-content\n").unwrap();
        std::fs::write(root.join("sub/ok.yaml"), ACCOUNT).unwrap();
        std::os::unix::fs::symlink("/", root.join("slash")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("secret.yaml")).unwrap();
        // Inside the root, and a cycle back up: followed, read once.
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok.yaml"), root.join("alias.yml")).unwrap();
        let e = load(std::slice::from_ref(&root)).unwrap_err();
        let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        let text = all.join("\n");
        assert!(!text.contains("this-is-outside-content"), "{text}");
        assert!(text.contains("slash: a link out of"), "{text}");
        assert!(text.contains("secret.yaml: a link out of"), "{text}");
        // alias.yml and sub/ok.yaml are one account, twice.
        assert!(text.contains("defined more than once"), "{text}");
        assert_eq!(all.len(), 3, "{text}");
    }

    #[test]
    fn duplicates_are_refused() {
        let e = load_str(&format!("{ACCOUNT}---{ACCOUNT}")).unwrap_err();
        assert!(e[0].contains("defined more than once"), "{e:?}");
    }
}
