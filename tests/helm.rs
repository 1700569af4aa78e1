//! The Helm chart: it lints, renders for every supported set of values, and
//! what it renders is what a security reviewer expects.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/zerofn")
        .to_string_lossy()
        .into_owned()
}

fn helm(args: &[&str]) -> (bool, String) {
    let bin = zerofn_sim::kubetools::install().expect("helm installs").join("helm");
    let out = Command::new(bin).args(args).output().expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn render(set: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "zerofn",
        chart().leak() as &str,
        "--namespace",
        "zerofn-system",
    ];
    for s in set {
        args.push("--set");
        args.push(s);
    }
    let (ok, out) = helm(&args);
    assert!(ok, "helm template {set:?} failed:\n{out}");
    serde_saphyr::from_multiple::<Value>(&out)
        .expect("rendered YAML parses")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}

#[test]
fn the_chart_lints() {
    let (ok, out) = helm(&["lint", &chart(), "--strict"]);
    assert!(ok, "{out}");
}

#[test]
fn the_deployment_runs_locked_down() {
    let docs = render(&[]);
    let d = find(&docs, "Deployment").expect("a Deployment");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--leader-elect=true"), "{args:?}");
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(
        find(&docs, "NetworkPolicy").is_none() && find(&docs, "ServiceMonitor").is_none(),
        "opt-in objects"
    );
}

#[test]
fn rbac_grants_only_what_the_controller_calls() {
    let docs = render(&[]);
    let role = find(&docs, "ClusterRole").expect("a ClusterRole");
    for rule in role["rules"].as_array().unwrap() {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                rule[field].as_array().unwrap().iter().all(|v| v != "*"),
                "wildcard {field} in {rule}"
            );
        }
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // The only deletion: a PosturePolicy's children, one by one.
        assert!(!verbs.contains(&"deletecollection"), "{rule}");
        if verbs.contains(&"delete") {
            assert_eq!(rule["resources"], serde_json::json!(["functionpostures"]), "{rule}");
        }
        assert!(
            rule["resources"].as_array().unwrap().iter().all(|r| r != "secrets"),
            "no cluster-wide access to Secrets: {rule}"
        );
    }
    let leases = named(&docs, "Role", "zerofn-leader-election").expect("the leader-election Role");
    assert_eq!(leases["rules"][0]["resources"], serde_json::json!(["leases"]));
    assert_eq!(leases["metadata"]["namespace"], "zerofn-system");
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// Secret readers: (namespace, rules) of every Role that mentions Secrets.
fn secret_roles(docs: &[Value]) -> Vec<(String, Value)> {
    docs.iter()
        .filter(|d| d["kind"] == "Role" && d["rules"].to_string().contains("secrets"))
        .map(|d| {
            (
                d["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                d["rules"].clone(),
            )
        })
        .collect()
}

#[test]
fn secrets_are_only_got_in_the_release_and_tenant_namespaces() {
    // By default: the release namespace (ClusterCloudAccounts' Secrets) only.
    let docs = render(&[]);
    let roles = secret_roles(&docs);
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert_eq!(roles[0].0, "zerofn-system");
    assert_eq!(
        roles[0].1,
        serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    );
    // Tenant namespaces, one of them limited to named Secrets; each Role is
    // bound to the chart's ServiceAccount in its own namespace.
    let docs = render(&[
        "tenantNamespaces[0]=shop",
        "tenantNamespaces[1].namespace=payments",
        "tenantNamespaces[1].secretNames={aws-credentials}",
        "controllerSecretNames={org-aws}",
    ]);
    let roles = secret_roles(&docs);
    let namespaces: Vec<&str> = roles.iter().map(|(ns, _)| ns.as_str()).collect();
    assert_eq!(namespaces, ["zerofn-system", "shop", "payments"]);
    for (ns, rules) in &roles {
        assert_eq!(rules[0]["verbs"], serde_json::json!(["get"]), "{ns}");
        let names = &rules[0]["resourceNames"];
        match ns.as_str() {
            "zerofn-system" => assert_eq!(*names, serde_json::json!(["org-aws"])),
            "payments" => assert_eq!(*names, serde_json::json!(["aws-credentials"])),
            _ => assert!(names.is_null(), "{ns}: {names}"),
        }
        let binding = docs
            .iter()
            .find(|d| {
                d["kind"] == "RoleBinding"
                    && d["metadata"]["namespace"] == ns.as_str()
                    && d["metadata"]["name"] == "zerofn-secret-reader"
            })
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["name"], "zerofn");
        assert_eq!(binding["subjects"][0]["namespace"], "zerofn-system");
    }
    // A tenant namespace that is not a namespace name is refused.
    let (ok, out) = helm(&[
        "template",
        "zerofn",
        &chart(),
        "--set",
        "tenantNamespaces[0]=Not_A_Namespace",
    ]);
    assert!(!ok, "{out}");
}

#[test]
fn one_replica_only_without_leader_election() {
    // Without a Lease every replica writes: more than one is refused.
    let (ok, out) = helm(&["template", "zerofn", &chart(), "--set", "leaderElection.enabled=false"]);
    assert!(!ok, "two replicas without leader election must be refused:\n{out}");
    assert!(out.contains("replicaCount"), "{out}");
    let (ok, out) = helm(&[
        "template",
        "zerofn",
        &chart(),
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicaCount=3",
    ]);
    assert!(!ok, "{out}");
    let docs = render(&["leaderElection.enabled=false", "replicaCount=1"]);
    let args = find(&docs, "Deployment").expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .to_string();
    assert!(args.contains("--leader-elect=false"), "{args}");
    assert!(named(&docs, "Role", "zerofn-leader-election").is_none());
}

#[test]
fn the_network_policy_lets_workload_identity_reach_its_token_endpoints() {
    let docs = render(&["networkPolicy.enabled=true"]);
    let egress = &find(&docs, "NetworkPolicy").expect("a NetworkPolicy")["spec"]["egress"];
    let rules = egress.as_array().expect("egress rules");
    let reaches = |cidr: &str, port: u64| {
        rules.iter().any(|r| {
            r["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t["ipBlock"]["cidr"] == cidr))
                && r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == port && p["protocol"] == "TCP"))
        })
    };
    // GKE metadata server and Azure IMDS; EKS Pod Identity (v4 and v6).
    assert!(reaches("169.254.169.254/32", 80), "{egress}");
    assert!(reaches("169.254.170.23/32", 80), "{egress}");
    assert!(reaches("fd00:ec2::23/128", 80), "{egress}");
    // HTTPS anywhere: STS (IRSA), login.microsoftonline.com, the cloud APIs.
    assert!(
        rules.iter().any(|r| r["to"].is_null()
            && r["ports"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["port"] == 443))),
        "{egress}"
    );
    // Plain HTTP goes nowhere else.
    for r in rules {
        let port80 = r["ports"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["port"] == 80));
        assert!(!port80 || r["to"].is_array(), "port 80 open to any address: {r}");
    }
}

#[test]
fn workload_identity_values_annotate_the_service_account() {
    let docs = render(&[
        "workloadIdentity.aws.roleArn=arn:aws:iam::123456789012:role/zerofn",
        "workloadIdentity.azure.clientId=00000000-0000-0000-0000-000000000001",
        "workloadIdentity.gcp.serviceAccount=zerofn@proj-123.iam.gserviceaccount.com",
    ]);
    let sa = &find(&docs, "ServiceAccount").expect("a ServiceAccount")["metadata"]["annotations"];
    assert_eq!(
        sa["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/zerofn"
    );
    assert_eq!(
        sa["azure.workload.identity/client-id"],
        "00000000-0000-0000-0000-000000000001"
    );
    assert_eq!(
        sa["iam.gke.io/gcp-service-account"],
        "zerofn@proj-123.iam.gserviceaccount.com"
    );
    let labels = &find(&docs, "Deployment").unwrap()["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["azure.workload.identity/use"], "true");
}

#[test]
fn optional_objects_render_when_enabled() {
    let docs = render(&[
        "networkPolicy.enabled=true",
        "serviceMonitor.enabled=true",
        "replicaCount=1",
    ]);
    let np = find(&docs, "NetworkPolicy").expect("a NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert_eq!(
        find(&docs, "ServiceMonitor").unwrap()["spec"]["endpoints"][0]["path"],
        "/metrics"
    );
    assert!(
        find(&docs, "PodDisruptionBudget").is_none(),
        "no PDB for a single replica"
    );
}

#[test]
fn bad_values_are_refused_by_the_schema() {
    for bad in [
        "replicaCount=0",
        "controller.resyncInterval=5min",
        "image.pullPolicy=Sometimes",
        "unknownKey=1",
        "image.digest=sha256:abc",
        "image.digest=latest",
        "resources.requests.memory=lots",
        "resources.requests.gpu=1",
        "affinity.nodeAfinity.x=1",
        "tolerations[0].operator=Maybe",
        "tolerations[0].effect=NoRun",
        "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].whenUnsatisfiable=Sometimes",
        "nodeSelector.disk=1",
        "podDisruptionBudget.maxUnavailable=0",
    ] {
        let (ok, out) = helm(&["template", "zerofn", &chart(), "--set", bad]);
        assert!(!ok, "{bad} must be refused:\n{out}");
    }
}

#[test]
fn an_azure_ca_bundle_is_mounted_and_trusted() {
    let docs = render(&["controller.azureCaBundle.configMap=corp-ca"]);
    let pod = &find(&docs, "Deployment").expect("a Deployment")["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].to_string();
    assert!(args.contains("--azure-ca-file=/etc/zerofn/azure-ca/ca.crt"), "{args}");
    assert_eq!(pod["volumes"][1]["configMap"]["name"], "corp-ca");
    assert_eq!(pod["containers"][0]["volumeMounts"][1]["readOnly"], true);
    // Off by default.
    let docs = render(&[]);
    let args = find(&docs, "Deployment").expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .to_string();
    assert!(!args.contains("azure-ca"), "{args}");
}

#[test]
fn the_chart_ships_the_generated_crds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (name, yaml) in zerofn::cli::crd_files() {
        let in_chart = std::fs::read_to_string(root.join("charts/zerofn/crds").join(&name)).unwrap_or_default();
        assert!(
            in_chart == yaml,
            "charts/zerofn/crds/{name} differs from the Rust types: run `cargo run -- crds --out-dir charts/zerofn/crds`"
        );
    }
}

#[test]
fn the_disruption_budget_never_blocks_a_drain() {
    // By default: one replica at a time.
    let docs = render(&[]);
    let pdb = &find(&docs, "PodDisruptionBudget").expect("a PodDisruptionBudget")["spec"];
    assert_eq!(pdb["maxUnavailable"], 1, "{pdb}");
    assert!(pdb["minAvailable"].is_null(), "{pdb}");
    // A minAvailable below the replicas replaces maxUnavailable.
    let docs = render(&["podDisruptionBudget.minAvailable=2", "replicaCount=3"]);
    let pdb = &find(&docs, "PodDisruptionBudget").unwrap()["spec"];
    assert_eq!(
        (pdb["minAvailable"].clone(), pdb["maxUnavailable"].clone()),
        (2.into(), Value::Null)
    );
    let docs = render(&["podDisruptionBudget.minAvailable=50%"]);
    assert_eq!(
        find(&docs, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"],
        "50%"
    );
    // One that keeps every replica is refused, naming the field.
    for bad in [
        &["podDisruptionBudget.minAvailable=2"][..],
        &["podDisruptionBudget.minAvailable=5", "replicaCount=3"],
        &["podDisruptionBudget.minAvailable=100%"],
    ] {
        let mut args = vec!["template", "zerofn", chart().leak() as &str];
        for s in bad {
            args.extend(["--set", s]);
        }
        let (ok, out) = helm(&args);
        assert!(!ok, "{bad:?} must be refused:\n{out}");
        assert!(
            out.contains("podDisruptionBudget.minAvailable") && out.contains("drain"),
            "{out}"
        );
    }
}

#[test]
fn replicas_spread_across_nodes_by_default() {
    let docs = render(&[]);
    let pod = &find(&docs, "Deployment").expect("a Deployment")["spec"]["template"]["spec"];
    let selector = serde_json::json!({"app.kubernetes.io/name": "zerofn", "app.kubernetes.io/instance": "zerofn"});
    let term = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname",
        "{pod}"
    );
    assert_eq!(term["podAffinityTerm"]["labelSelector"]["matchLabels"], selector);
    assert!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"].is_null(),
        "preferred, so a one-node cluster still runs both"
    );
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(spread["whenUnsatisfiable"], "ScheduleAnyway");
    assert_eq!(spread["labelSelector"]["matchLabels"], selector);
    // The operator's own replace the defaults.
    let docs = render(&[
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
        "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    ]);
    let pod = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert!(pod["affinity"]["podAntiAffinity"].is_null(), "{pod}");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert_eq!(pod["topologySpreadConstraints"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
}

#[test]
fn resources_follow_the_measured_footprint() {
    // 155 MiB peak at 10,000 postures (e2e/benches/scale.rs): the request
    // covers it, the limit leaves room for a relist.
    let docs = render(&[]);
    let r = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(r["requests"]["memory"], "160Mi", "{r}");
    assert_eq!(r["limits"]["memory"], "320Mi", "{r}");
    assert_eq!(r["requests"]["cpu"], "100m", "{r}");
    assert!(r["limits"]["cpu"].is_null(), "no CPU throttling of Lease renewals: {r}");
}

#[test]
fn metrics_stay_inside_the_cluster_unless_opted_out() {
    // /metrics has no authentication.
    for exposed in ["NodePort", "LoadBalancer"] {
        let (ok, out) = helm(&[
            "template",
            "zerofn",
            &chart(),
            "--set",
            &format!("metrics.service.type={exposed}"),
        ]);
        assert!(!ok, "{exposed} without the opt-in must be refused:\n{out}");
        assert!(out.contains("allowExternal"), "{out}");
    }
    let docs = render(&[
        "metrics.service.type=LoadBalancer",
        "metrics.service.allowExternal=true",
    ]);
    assert_eq!(
        find(&docs, "Service").expect("a Service")["spec"]["type"],
        "LoadBalancer"
    );
    let docs = render(&[]);
    assert_eq!(find(&docs, "Service").unwrap()["spec"]["type"], "ClusterIP");
}

#[test]
fn an_image_digest_pins_the_image() {
    let image = |set: &[&str]| {
        render(set)
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
            .unwrap_or_default()
    };
    let meta: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(format!("{}/Chart.yaml", chart())).unwrap()).unwrap();
    let app_version = meta["appVersion"].as_str().expect("appVersion");
    assert_eq!(image(&[]), format!("ghcr.io/zerofn/zerofn:{app_version}").as_str());
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    assert_eq!(
        image(&[&format!("image.digest={digest}"), "image.tag=ignored"]),
        format!("ghcr.io/zerofn/zerofn@{digest}").as_str()
    );
}
