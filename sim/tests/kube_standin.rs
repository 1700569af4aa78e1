//! The Kubernetes stand-in on its own: driven by the real kubectl and by
//! kube-rs, as the zerofn controller and its e2e tests use it.
#![forbid(unsafe_code)]

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use zerofn_sim::kube::{KubeApi, KubeApiOptions};

/// A small CRD with everything the controller's own CRDs use.
const WIDGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.size <= 10", message: "size is at most 10", fieldPath: .size}
            - {rule: "self.color == oldSelf.color", message: "color is immutable"}
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue, enum: [blue, red]}
          status:
            type: object
            properties:
              conditions:
                type: array
                items: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

struct Env {
    api: KubeApi,
    kubeconfig: PathBuf,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Env {
    async fn start(history: usize) -> Env {
        let api = KubeApi::start(KubeApiOptions {
            history,
            ..KubeApiOptions::default()
        })
        .await
        .expect("stand-in starts");
        let dir = std::env::temp_dir().join(format!("zerofn-kube-{}-{}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, "default").unwrap();
        Env {
            api,
            kubeconfig,
            _dir: tempdir::Dir(dir),
        }
    }

    /// Run kubectl; (success, stdout + stderr).
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let (kc, args, stdin) = (
            self.kubeconfig.clone(),
            args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            stdin.map(str::to_string),
        );
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = Command::new("/usr/bin/kubectl")
                .arg("--kubeconfig")
                .arg(&kc)
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("kubectl runs");
            if let Some(input) = stdin {
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            }
            drop(child.stdin.take());
            let out = child.wait_with_output().unwrap();
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
        .await
        .unwrap()
    }

    async fn client(&self) -> kube::Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    }

    async fn widgets(&self) {
        let (ok, out) = self.kubectl(&["apply", "-f", "-"], Some(WIDGETS)).await;
        assert!(ok, "{out}");
    }
}

fn widget_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    Api::namespaced_with(client, ns, &ar)
}

#[tokio::test]
async fn kubectl_applies_crds_and_serves_their_kinds() {
    let env = Env::start(1000).await;
    env.widgets().await;
    let (ok, out) = env.kubectl(&["api-resources", "--api-group=example.com"], None).await;
    assert!(ok && out.contains("widgets") && out.contains("wd"), "{out}");
    let (ok, out) = env
        .kubectl(
            &["apply", "-f", "-"],
            Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"),
        )
        .await;
    assert!(ok, "{out}");
    let (ok, out) = env
        .kubectl(&["get", "wd", "w1", "-o", "jsonpath={.spec.color}"], None)
        .await;
    assert!(ok && out == "blue", "defaults are applied: {out}");
    let (ok, out) = env.kubectl(&["get", "widgets", "-A"], None).await;
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "SIZE", "READY", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().contains("w1"));
    let (ok, out) = env.kubectl(&["explain", "widget.spec.size"], None).await;
    assert!(ok && out.contains("integer"), "{out}");
}

#[tokio::test]
async fn invalid_objects_are_refused_naming_the_field() {
    let env = Env::start(1000).await;
    env.widgets().await;
    for (body, field, message) in [
        ("spec: {size: 20}", "spec.size", "size is at most 10"),
        ("spec: {size: 0}", "spec.size", "greater than or equal to 1"),
        ("spec: {}", "spec.size", "Required value"),
        ("spec: {size: 1, color: green}", "spec.color", "Unsupported value"),
        ("spec: {size: 1, shade: dark}", "spec.shade", "unknown field"),
    ] {
        let (ok, out) = env
            .kubectl(
                &["apply", "-f", "-"],
                Some(&format!(
                    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: bad}}\n{body}\n"
                )),
            )
            .await;
        assert!(!ok, "{body} was accepted: {out}");
        assert!(out.contains(field) && out.contains(message), "{body}: {out}");
    }
    let (ok, _) = env
        .kubectl(
            &["apply", "-f", "-"],
            Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n"),
        )
        .await;
    assert!(ok);
    let (ok, out) = env
        .kubectl(
            &["patch", "wd", "w", "--type=merge", "-p", r#"{"spec":{"color":"red"}}"#],
            None,
        )
        .await;
    assert!(
        !ok && out.contains("color is immutable"),
        "transition rules see oldSelf: {out}"
    );
}

#[tokio::test]
async fn crds_with_a_rule_that_does_not_compile_or_is_over_budget_are_refused() {
    let env = Env::start(1000).await;
    let rule_field = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule";
    for (rule, list_bound, field, message) in [
        (
            "self.size <= ",
            "maxItems: 10,",
            rule_field,
            "compilation failed: ERROR: <input>:1:",
        ),
        (
            "self.tags.all(t, t.matches('^[a-z]+$'))",
            "",
            rule_field,
            "estimated rule cost exceeds budget by factor of",
        ),
        ("self.tags.all(t, t.matches('^[a-z]+$'))", "maxItems: 10,", "", ""),
    ] {
        let crd = WIDGETS
            .replace("\"self.size <= 10\"", &format!("{rule:?}"))
            .replace("size: {type: integer, minimum: 1}", &format!("size: {{type: integer, minimum: 1}}\n              tags: {{type: array, {list_bound} items: {{type: string}}}}"))
;
        let (ok, out) = env.kubectl(&["create", "-f", "-"], Some(&crd)).await;
        if field.is_empty() {
            assert!(ok, "a bounded rule is accepted: {out}");
            let (ok, out) = env.kubectl(&["delete", "crd", "widgets.example.com"], None).await;
            assert!(ok, "{out}");
            continue;
        }
        assert!(!ok, "{rule} was accepted: {out}");
        assert!(
            out.contains("is invalid") && out.contains(field) && out.contains(message),
            "{rule}: {out}"
        );
        let (ok, _) = env.kubectl(&["get", "crd", "widgets.example.com"], None).await;
        assert!(!ok, "a refused CRD is not stored");
    }
    // An accepted CRD cannot be updated to a rule that does not compile either.
    env.widgets().await;
    let (ok, out) = env
        .kubectl(
            &["apply", "-f", "-"],
            Some(&WIDGETS.replace("self.size <= 10", "self.size <=")),
        )
        .await;
    assert!(!ok && out.contains("compilation failed"), "{out}");
}

#[tokio::test]
async fn status_is_a_subresource_and_generation_follows_the_spec() {
    let env = Env::start(1000).await;
    env.widgets().await;
    let client = env.client().await;
    let api = widget_api(client, "default");
    let mut w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "g"}, "spec": {"size": 2}, "status": {"ignored": true}})).unwrap();
    w = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert!(w.data.get("status").is_none(), "create cannot set status");
    let applied = api
        .patch_status(
            "g",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["size"], 2, "a status write never changes spec");
    assert_eq!(
        applied.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );
    let patched = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}, "status": {"conditions": []}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(
        patched.data["status"]["conditions"][0]["type"], "Ready",
        "a main-resource write never changes status"
    );
    let (ok, out) = env
        .kubectl(&["wait", "--for=condition=Ready", "widget/g", "--timeout=5s"], None)
        .await;
    assert!(ok, "{out}");
    // A stale resourceVersion is a conflict.
    let mut stale = w.clone();
    stale.data["spec"]["size"] = json!(4);
    let e = api.replace("g", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 409), "{e}");
}

#[tokio::test]
async fn server_side_apply_tracks_field_owners() {
    let env = Env::start(1000).await;
    let client = env.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    cms.patch(
        "c",
        &PatchParams::apply("one"),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    let e = cms
        .patch("c", &PatchParams::apply("two"), &Patch::Apply(cm(json!({"a": "9"}))))
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("conflict")),
        "{e}"
    );
    cms.patch(
        "c",
        &PatchParams::apply("two").force(),
        &Patch::Apply(cm(json!({"a": "9"}))),
    )
    .await
    .unwrap();
    let after = cms
        .patch("c", &PatchParams::apply("one"), &Patch::Apply(cm(json!({"b": "2"}))))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("9"), "a moved to two and stays");
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    let managers: Vec<String> = after
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"one".to_string()) && managers.contains(&"two".to_string()),
        "{managers:?}"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let env = Env::start(1000).await;
    env.widgets().await;
    let client = env.client().await;
    let api = widget_api(client, "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "f"}, "spec": {"size": 1}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    // The JSON patch kube's finalizer helper sends.
    let add = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                     {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]}]);
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::<Value>::Json(serde_json::from_value(add).unwrap()),
    )
    .await
    .unwrap();
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let held = api.get("f").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let remove = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/cleanup"},
                        {"op": "remove", "path": "/metadata/finalizers/0"}]);
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::<Value>::Json(serde_json::from_value(remove).unwrap()),
    )
    .await
    .unwrap();
    assert!(
        api.get_opt("f").await.unwrap().is_none(),
        "gone once the last finalizer is removed"
    );
}

#[tokio::test]
async fn watches_resume_from_a_resource_version_or_answer_410() {
    let env = Env::start(5).await;
    let client = env.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mk = |n: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(n.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let events = watcher(cms.clone(), watcher::Config::default());
    let mut seen = Box::pin(events.applied_objects());
    cms.create(&PostParams::default(), &mk("one")).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), seen.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("one"));
    // A watch from an old resourceVersion after the history has moved on.
    let old = env.api.resource_version().to_string();
    for i in 0..10 {
        cms.create(&PostParams::default(), &mk(&format!("n{i}"))).await.unwrap();
    }
    let mut stream = cms
        .watch(&kube::api::WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Some(Err(kube::Error::Api(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    // The watcher relists and carries on.
    cms.create(&PostParams::default(), &mk("after")).await.unwrap();
    let names: Vec<String> = tokio::time::timeout(Duration::from_secs(5), async {
        let mut names = Vec::new();
        // The watcher's own watch fell behind too: it sees 410 once, then relists.
        while let Some(item) = seen.next().await {
            let Ok(o) = item else { continue };
            names.push(o.metadata.name.unwrap_or_default());
            if names.contains(&"after".to_string()) {
                break;
            }
        }
        names
    })
    .await
    .unwrap();
    assert!(names.contains(&"after".to_string()));
}

/// A streaming list (`sendInitialEvents=true`, what client-go's WatchList
/// and helm's readiness checks send): the current objects, then the bookmark
/// that ends the initial events, then live changes.
#[tokio::test]
async fn streaming_lists_end_their_initial_events_with_a_bookmark() {
    let env = Env::start(1000).await;
    let client = env.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for n in ["a", "b"] {
        cms.create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some(n.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let mut events = Box::pin(watcher(cms, watcher::Config::default().streaming_lists()));
    let mut initial = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.try_next().await.unwrap() {
            match e {
                watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap_or_default()),
                watcher::Event::InitDone => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(done, Ok(true), "no initial-events-end bookmark");
    assert_eq!(initial, ["a", "b"]);
    let asked = env.api.requests();
    let streaming = asked
        .iter()
        .find(|r| r.query.contains("sendInitialEvents=true"))
        .expect("a streaming list");
    assert!(
        streaming.query.contains("allowWatchBookmarks=true"),
        "{}",
        streaming.query
    );
    assert!(
        !asked
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/configmaps") && !r.query.contains("watch")),
        "no fallback to a plain list"
    );
}

#[tokio::test]
async fn recorder_events_show_in_kubectl_describe() {
    let env = Env::start(1000).await;
    env.widgets().await;
    let client = env.client().await;
    let api = widget_api(client.clone(), "default");
    let w = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "e"}, "spec": {"size": 1}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "zerofn".into(),
            instance: None,
        },
    );
    let reference = kube::Resource::object_ref(
        &w,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets"),
    );
    for _ in 0..2 {
        recorder
            .publish(
                &Event {
                    type_: EventType::Warning,
                    reason: "DriftDetected".into(),
                    note: Some("the widget drifted".into()),
                    action: "Observe".into(),
                    secondary: None,
                },
                &reference,
            )
            .await
            .unwrap();
    }
    let (ok, out) = env.kubectl(&["describe", "widget", "e"], None).await;
    assert!(ok, "{out}");
    let asked: Vec<String> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("events"))
        .map(|r| format!("{} {}?{} {}", r.method, r.path, r.query, r.status))
        .collect();
    let stored = env.api.list("", "v1", "events", None);
    assert!(
        out.contains("DriftDetected") && out.contains("the widget drifted"),
        "{out}\n{asked:#?}\n{stored:#?}"
    );
    // `kubectl get events`: the API server's columns, not NAME and AGE.
    let (ok, out) = env.kubectl(&["get", "events"], None).await;
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "{out}");
    let row = out.lines().nth(1).unwrap_or_default();
    for cell in ["Warning", "DriftDetected", "widget/e", "the widget drifted"] {
        assert!(row.contains(cell), "{cell} missing: {out}");
    }
    let (ok, out) = env.kubectl(&["get", "events", "-o", "wide"], None).await;
    assert!(
        ok && out
            .lines()
            .next()
            .is_some_and(|h| h.contains("SOURCE") && h.contains("COUNT")),
        "{out}"
    );
    assert!(out.contains("zerofn"), "the reporting controller is the source: {out}");
}

/// kubectl's typed `create` commands send protobuf bodies (no JSON
/// fallback); the stand-in reads them for the built-ins it stores.
#[tokio::test]
async fn kubectl_create_sends_protobuf_and_is_understood() {
    let env = Env::start(1000).await;
    for args in [
        &["create", "namespace", "shop"][..],
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--from-literal=mode=audit",
        ],
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "shop",
            "--from-literal=key=s3cr3t",
        ],
        &["create", "serviceaccount", "runner", "-n", "shop"],
        &[
            "create",
            "role",
            "reader",
            "-n",
            "shop",
            "--verb=get",
            "--resource=configmaps",
        ],
        &[
            "create",
            "rolebinding",
            "reader",
            "-n",
            "shop",
            "--role=reader",
            "--serviceaccount=shop:runner",
        ],
    ] {
        let (ok, out) = env.kubectl(args, None).await;
        assert!(ok, "kubectl {args:?}: {out}");
    }
    let sent: Vec<String> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.content_type)
        .collect();
    assert!(sent.iter().all(|ct| ct.contains("protobuf")), "{sent:?}");
    assert!(env.api.get("", "v1", "namespaces", "", "shop").is_some());
    let cm = env
        .api
        .get("", "v1", "configmaps", "shop", "settings")
        .expect("configmap");
    assert_eq!(cm["data"]["mode"], "audit");
    let secret = env.api.get("", "v1", "secrets", "shop", "creds").expect("secret");
    assert_eq!(secret["data"]["key"], "czNjcjN0", "base64 of the bytes");
    assert_eq!(secret["type"], "Opaque");
    let rb = env
        .api
        .get("rbac.authorization.k8s.io", "v1", "rolebindings", "shop", "reader")
        .expect("rolebinding");
    assert_eq!(
        rb["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "runner", "namespace": "shop"})
    );
    // The binding authorizes what the Role grants, and only that.
    let token = env.api.service_account_token("shop", "runner");
    let (ok, out) = env
        .kubectl(&["--token", &token, "get", "configmap", "settings", "-n", "shop"], None)
        .await;
    assert!(ok, "{out}");
    let (ok, out) = env
        .kubectl(&["--token", &token, "get", "secret", "creds", "-n", "shop"], None)
        .await;
    assert!(!ok && out.contains("Forbidden"), "{out}");
    let (ok, out) = env.kubectl(&["create", "namespace", "shop"], None).await;
    assert!(!ok && out.contains("AlreadyExists"), "{out}");
}

/// fieldValidation: Strict (kubectl's default) refuses unknown fields as
/// the API server's strict decoder does; Warn keeps the object and sends a
/// Warning header per dropped field; Ignore drops them silently.
#[tokio::test]
async fn unknown_fields_are_refused_warned_or_ignored() {
    let env = Env::start(1000).await;
    env.widgets().await;
    let widget = |name: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{size: 1, shade: dark, tint: red}}\n"
        )
    };
    let (ok, out) = env.kubectl(&["apply", "-f", "-"], Some(&widget("strict"))).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"strict decoding error: unknown field "spec.shade", unknown field "spec.tint""#),
        "{out}"
    );
    assert!(
        env.api
            .get("example.com", "v1", "widgets", "default", "strict")
            .is_none()
    );
    let (ok, out) = env
        .kubectl(&["apply", "--validate=warn", "-f", "-"], Some(&widget("warned")))
        .await;
    assert!(ok, "{out}");
    assert!(out.contains(r#"Warning: unknown field "spec.shade""#), "{out}");
    assert!(out.contains(r#"Warning: unknown field "spec.tint""#), "{out}");
    let stored = env
        .api
        .get("example.com", "v1", "widgets", "default", "warned")
        .expect("created");
    assert!(stored["spec"].get("shade").is_none(), "pruned: {stored}");
    let (ok, out) = env
        .kubectl(&["apply", "--validate=false", "-f", "-"], Some(&widget("ignored")))
        .await;
    assert!(ok && !out.contains("Warning"), "{out}");
    let asked: Vec<String> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("widgets") && r.method != "GET")
        .map(|r| r.query)
        .collect();
    for directive in [
        "fieldValidation=Strict",
        "fieldValidation=Warn",
        "fieldValidation=Ignore",
    ] {
        assert!(asked.iter().any(|q| q.contains(directive)), "{directive}: {asked:?}");
    }
    // The header itself, as kube-rs receives it.
    let client = env.client().await;
    let req = axum::http::Request::post("/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Warn")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "raw"}, "spec": {"size": 1, "shade": "dark"}}))
            .unwrap(),
        )
        .unwrap();
    let resp = client.send(req.map(kube::client::Body::from)).await.unwrap();
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(warnings, [r#"299 - "unknown field \"spec.shade\"""#]);
}

#[tokio::test]
async fn bearer_token_is_required_and_namespaces_must_exist() {
    let env = Env::start(1000).await;
    let client = env.client().await;
    let (ok, out) = env.kubectl(&["--token", "wrong", "get", "ns"], None).await;
    assert!(
        !ok && out.contains("Unauthorized") || out.contains("provide credentials"),
        "{out}"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"zerofn-system".to_string()));
    let cms: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let e = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("x".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 404), "{e}");
}

/// A ServiceAccount token is authorized by the Roles bound to it, as the
/// real API server's RBAC authorizer does; kubectl (as the admin) sets the
/// RBAC up and sees the refusals as the real server words them.
#[tokio::test]
async fn service_account_tokens_are_authorized_by_rbac() {
    let env = Env::start(1000).await;
    let token = env.api.service_account_token("zerofn-system", "zerofn");
    let env = &env;
    let run = |args: &[&str]| {
        let mut v = vec!["--token".to_string(), token.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        async move {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            env.kubectl(&refs, None).await
        }
    };
    let (ok, out) = env
        .kubectl(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: default}\nstringData: {k: v}\n"),
        )
        .await;
    assert!(ok, "{out}");

    // Nothing is granted yet: discovery works, reading does not.
    let (ok, out) = run(&["get", "secret", "creds", "-n", "default"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"secrets "creds" is forbidden: User "system:serviceaccount:zerofn-system:zerofn" cannot get resource "secrets" in API group "" in the namespace "default""#),
        "{out}"
    );
    let (ok, out) = run(&["api-resources", "--api-group=rbac.authorization.k8s.io"]).await;
    assert!(ok && out.contains("clusterrolebindings"), "{out}");

    // A Role and RoleBinding: get in that namespace only; no list.
    let (ok, out) = env
        .kubectl(
            &["apply", "-f", "-"],
            Some(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader, namespace: default}\n\
                 rules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get]}]\n---\n\
                 apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: reader, namespace: default}\n\
                 roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n\
                 subjects: [{kind: ServiceAccount, name: zerofn, namespace: zerofn-system}]\n",
            ),
        )
        .await;
    assert!(ok, "{out}");
    let (ok, out) = run(&["get", "secret", "creds", "-n", "default", "-o", "name"]).await;
    assert!(ok && out.contains("secret/creds"), "{out}");
    let (ok, out) = run(&["get", "secrets", "-n", "default"]).await;
    assert!(!ok && out.contains("cannot list resource"), "{out}");
    let (ok, out) = run(&["get", "secrets", "-A"]).await;
    assert!(!ok && out.contains("at the cluster scope"), "{out}");

    // kube-rs sees a 403 Status with reason Forbidden.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = kube::config::Kubeconfig::from_yaml(&env.api.kubeconfig_with_token("default", &token)).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(client.clone());
    let e = secrets.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 403 && s.reason == "Forbidden"),
        "{e}"
    );
    let named: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
    assert!(named.get("creds").await.is_ok());
    // The request log names who asked.
    assert!(
        env.api
            .requests()
            .iter()
            .any(|r| r.user == "system:serviceaccount:zerofn-system:zerofn" && r.status == 403)
    );
}
