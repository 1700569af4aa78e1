//! The CRDs: committed YAML matches the Rust types, and the CEL rules the API
//! server evaluates agree with the validation the CLI runs.
#![forbid(unsafe_code)]

use kube::core::cel::{validate_cel, validate_cel_update};
use zerofn::api::{CloudAccount, FunctionPosture, FunctionPostureSpec, PosturePolicy, PosturePolicySpec, validate};

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let files = zerofn::cli::crd_files();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "crds/ holds other files than `zerofn crds` generates");
    for (name, yaml) in files {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            committed == yaml,
            "crds/{name} differs from the Rust types: run `cargo run -- crds --out-dir crds` and commit the result"
        );
    }
}

fn posture(spec_yaml: &str) -> FunctionPosture {
    let spec: FunctionPostureSpec = serde_saphyr::from_str(spec_yaml).expect("case parses");
    FunctionPosture::new("p", spec)
}

const BASE: &str = "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\n";

/// Cases the CRD's CEL rules must refuse, with the field each names.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "two clouds in one target",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}, gcp: {location: europe-west1, name: orders}}\n",
        "spec.function",
    ),
    (
        "no cloud in the target",
        "accountRef: {name: prod}\nfunction: {}\n",
        "spec.function",
    ),
    (
        "azure block on an aws function",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nidentity: {azure: {}}\n",
        "spec.identity.azure",
    ),
    (
        "gcp network on an aws function",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nnetwork: {gcp: {vpcConnector: projects/p/locations/l/connectors/c}}\n",
        "spec.network.gcp",
    ),
    (
        "createIfShared without permissions",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nidentity: {createIfShared: true}\n",
        "spec.identity.aws",
    ),
    (
        "unused permissions on Azure, where nothing records use",
        "accountRef: {name: prod}\nfunction: {azure: {resourceGroup: rg, name: app}}\nidentity: {unusedPermissions: {window: 90d}}\n",
        "spec.identity.unusedPermissions",
    ),
    (
        "unused permissions without declared permissions",
        "accountRef: {name: prod}\nfunction: {gcp: {location: europe-west1, name: orders}}\nidentity: {unusedPermissions: {window: 90d}}\n",
        "spec.identity.unusedPermissions",
    ),
    (
        "aws observability on a gcp function",
        "accountRef: {name: prod}\nfunction: {gcp: {location: europe-west1, name: orders}}\nobservability: {aws: {requiredExtensions: ['arn:aws:lambda:*:123456789012:layer:agent']}}\n",
        "spec.observability.aws",
    ),
    (
        "azure observability on an aws function",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nobservability: {azure: {logAnalyticsWorkspace: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/central}}\n",
        "spec.observability.azure",
    ),
    (
        "gcp observability on an aws function",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nobservability: {gcp: {requireLogsKept: true}}\n",
        "spec.observability.gcp",
    ),
    (
        "wildcard action",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nidentity: {aws: {permissions: [{actions: ['*'], resources: ['*']}]}}\n",
        "spec.identity.aws.permissions[0].actions",
    ),
    (
        "service principal without source",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\ntriggers: {aws: {invokers: [{principal: s3.amazonaws.com}]}}\n",
        "spec.triggers.aws.invokers[0].sourceArn",
    ),
    (
        "China-partition service principal without source",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\ntriggers: {aws: {invokers: [{principal: s3.amazonaws.com.cn}]}}\n",
        "spec.triggers.aws.invokers[0].sourceArn",
    ),
    (
        "wildcard bucket as the source",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\ntriggers: {aws: {invokers: [{principal: s3.amazonaws.com, sourceArn: 'arn:aws:s3:::*', sourceAccount: '123456789012'}]}}\n",
        "spec.triggers.aws.invokers[0].sourceArn",
    ),
    (
        "wildcard in the resource part of the source",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\ntriggers: {aws: {invokers: [{principal: events.amazonaws.com, sourceArn: 'arn:aws:events:eu-west-1:123456789012:rule/nightly-?', sourceAccount: '123456789012'}]}}\n",
        "spec.triggers.aws.invokers[0].sourceArn",
    ),
    (
        "API authorizer without its type",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\ntriggers: {aws: {apiGateway: {requireAuthorizer: true, apis: [{apiId: a1b2c3d4e5, authorizerId: x1y2z3}]}}}\n",
        "spec.triggers.aws.apiGateway.apis[0].authorizerId",
    ),
    (
        "private ingress required while ingress is declared open",
        "accountRef: {name: prod}\nfunction: {gcp: {location: europe-west1, name: orders}}\ntriggers: {gcp: {ingress: ALLOW_ALL, requirePrivateIngress: true}}\n",
        "spec.triggers.gcp.ingress",
    ),
    (
        "access restriction with two sources",
        "accountRef: {name: prod}\nfunction: {azure: {resourceGroup: rg, name: app}}\ntriggers: {azure: {accessRestrictions: [{name: a, priority: 1, ipAddress: 10.0.0.0/8, serviceTag: AzureFrontDoor.Backend}]}}\n",
        "spec.triggers.azure.accessRestrictions[0]",
    ),
    (
        "access restriction pinned to a header App Service does not check",
        "accountRef: {name: prod}\nfunction: {azure: {resourceGroup: rg, name: app}}\ntriggers: {azure: {accessRestrictions: [{name: fd, priority: 1, serviceTag: AzureFrontDoor.Backend, headers: {x-custom: [a]}}]}}\n",
        "spec.triggers.azure.accessRestrictions[0].headers",
    ),
    (
        "a flow log destination naming both a log group and a bucket",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nnetwork: {aws: {subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d], requireFlowLogs: true, flowLogDestination: {logGroup: /vpc/flow, deliveryRoleArn: 'arn:aws:iam::123456789012:role/flow', s3Arn: 'arn:aws:s3:::logs'}}}\n",
        "spec.network.aws.flowLogDestination",
    ),
    (
        "a log group without its delivery role",
        "accountRef: {name: prod}\nfunction: {aws: {name: orders}}\nnetwork: {aws: {subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d], requireFlowLogs: true, flowLogDestination: {logGroup: /vpc/flow}}}\n",
        "spec.network.aws.flowLogDestination.deliveryRoleArn",
    ),
];

fn cel_paths(p: &FunctionPosture) -> Vec<String> {
    match validate_cel(p) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(|e| e.field_path.clone()).collect(),
    }
}

#[test]
fn cel_and_the_cli_refuse_the_same_input_at_the_same_field() {
    for (case, yaml, field) in REFUSED {
        let p = posture(yaml);
        let cel = cel_paths(&p);
        assert!(
            cel.iter().any(|f| f == field),
            "{case}: CEL should refuse at {field}, refused at {cel:?}"
        );
        let rust: Vec<String> = validate::posture(&p.spec).into_iter().map(|e| e.path).collect();
        assert!(
            rust.iter().any(|f| f == field),
            "{case}: the CLI should refuse at {field}, refused at {rust:?}"
        );
        assert_eq!(
            cel.len(),
            rust.len(),
            "{case}: CEL refused {cel:?}, the CLI {rust:?}: each rule must exist on both sides"
        );
    }
}

#[test]
fn valid_postures_pass_both() {
    let full = format!(
        "{BASE}mode: Enforce\nidentity:\n  createIfShared: true\n  unusedPermissions: {{window: 90d}}\n  aws:\n    permissions: [{{actions: ['dynamodb:GetItem'], resources: ['arn:aws:dynamodb:eu-west-1:123456789012:table/t']}}]\ntriggers:\n  aws:\n    invokers: [{{principal: s3.amazonaws.com, sourceArn: 'arn:aws:s3:::b', sourceAccount: '123456789012'}}, {{principal: '123456789012'}}]\nnetwork: {{aws: {{subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d]}}}}\nobservability: {{tracing: Active, structuredLogs: true}}\n"
    );
    for yaml in [BASE, full.as_str()] {
        let p = posture(yaml);
        assert_eq!(cel_paths(&p), Vec::<String>::new());
        assert!(validate::posture(&p.spec).is_empty());
    }
}

#[test]
fn the_function_target_is_immutable() {
    let old = posture(BASE);
    let moved = posture("accountRef: {name: prod}\nfunction: {aws: {name: billing}}\n");
    let errs = validate_cel_update(&moved, &old).expect_err("a new target must be refused");
    assert!(errs.iter().any(|e| e.field_path == "spec.function"), "{errs:?}");
    assert!(validate_cel_update(&old.clone(), &old).is_ok());
    assert_eq!(validate::posture_update(&moved.spec, &old.spec).len(), 1);
}

#[test]
fn an_account_reaches_exactly_one_cloud() {
    let two: zerofn::api::CloudAccountSpec =
        serde_saphyr::from_str("aws: {region: eu-west-1}\ngcp: {projectId: my-project}\n").unwrap();
    let a = CloudAccount::new("a", two.clone());
    assert!(validate_cel(&a).is_err());
    assert_eq!(validate::cloud_account(&two).len(), 1);
}

/// Tenancy: (case, namespaced, spec, the fields both sides refuse).
const ACCOUNT_CASES: &[(&str, bool, &str, &[&str])] = &[
    (
        "tenant with its own Secret",
        true,
        "aws: {region: eu-west-1, credentialsSecretRef: {name: c}}\n",
        &[],
    ),
    (
        "tenant on a loopback stand-in",
        true,
        "aws: {region: eu-west-1, endpoint: 'http://127.0.0.1:4566', credentialsSecretRef: {name: c}}\n",
        &[],
    ),
    (
        "tenant without a Secret",
        true,
        "aws: {region: eu-west-1}\n",
        &["spec.aws.credentialsSecretRef"],
    ),
    (
        "tenant redirecting AWS",
        true,
        "aws: {region: eu-west-1, endpoint: 'https://collector.example', credentialsSecretRef: {name: c}}\n",
        &["spec.aws.endpoint"],
    ),
    (
        "tenant redirecting IAM only",
        true,
        "aws: {region: eu-west-1, endpoints: {iam: 'https://collector.example'}, credentialsSecretRef: {name: c}}\n",
        &["spec.aws.endpoints"],
    ),
    (
        "tenant redirecting the tagging API only",
        true,
        "aws: {region: eu-west-1, endpoints: {tagging: 'https://collector.example'}, credentialsSecretRef: {name: c}}\n",
        &["spec.aws.endpoints"],
    ),
    (
        "tenant sending the controller's identity to a loopback tagging API",
        true,
        "aws: {region: eu-west-1, endpoints: {tagging: 'http://127.0.0.1:9'}}\n",
        &["spec.aws.credentialsSecretRef", "spec.aws.endpoints"],
    ),
    (
        "tenant sending the controller's identity to loopback",
        true,
        "aws: {region: eu-west-1, endpoint: 'http://127.0.0.1:9'}\n",
        &["spec.aws.credentialsSecretRef", "spec.aws.endpoint"],
    ),
    (
        "tenant with Azure workload identity",
        true,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590}\n",
        &["spec.azure.credential"],
    ),
    (
        "tenant moving the authority host",
        true,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590, credential: ClientSecret, clientSecretRef: {name: c}, authorityHost: 'https://login.collector.example'}\n",
        &["spec.azure.authorityHost"],
    ),
    (
        "tenant Azure stand-in",
        true,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590, credential: ClientSecret, clientSecretRef: {name: c}, authorityHost: 'https://127.0.0.1:8443', resourceManagerEndpoint: 'https://127.0.0.1:8443'}\n",
        &[],
    ),
    (
        "tenant with ADC",
        true,
        "gcp: {projectId: my-project}\n",
        &["spec.gcp.credentialsSecretRef"],
    ),
    (
        "tenant redirecting GCP",
        true,
        "gcp: {projectId: my-project, anonymous: true, endpoints: {run: 'https://collector.example'}}\n",
        &["spec.gcp.endpoints"],
    ),
    (
        "tenant GCP stand-in",
        true,
        "gcp: {projectId: my-project, anonymous: true, endpoints: {run: 'http://127.0.0.1:9'}}\n",
        &[],
    ),
    (
        "admin's ambient identity and VPC endpoint",
        false,
        "aws: {region: eu-west-1, endpoint: 'https://vpce-0123.lambda.eu-west-1.vpce.amazonaws.com'}\n",
        &[],
    ),
    (
        "admin's ambient identity on loopback",
        false,
        "aws: {region: eu-west-1, endpoint: 'http://127.0.0.1:9'}\n",
        &["spec.aws.endpoint"],
    ),
    (
        "admin's ADC on loopback",
        false,
        "gcp: {projectId: my-project, endpoints: {functions: 'http://localhost:9'}}\n",
        &["spec.gcp.endpoints"],
    ),
    (
        "admin's managed identity on loopback",
        false,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590, credential: ManagedIdentity, authorityHost: 'https://[::1]:8443'}\n",
        &["spec.azure.credential"],
    ),
    (
        "a tenant's events from another queue host",
        true,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590, credential: ClientSecret, clientId: 72f988bf-86f1-41af-91ab-2d7cd011db47, clientSecretRef: {name: s}, events: {queue: 'https://queues.example.com/zerofn-events'}}\n",
        &["spec.azure.events.queue"],
    ),
    (
        "a tenant's events from a public queue",
        true,
        "azure: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590, credential: ClientSecret, clientId: 72f988bf-86f1-41af-91ab-2d7cd011db47, clientSecretRef: {name: s}, events: {queue: 'https://shopevents.queue.core.windows.net/zerofn-events'}}\n",
        &[],
    ),
    (
        "a tenant's Recommender endpoint override",
        true,
        "gcp: {projectId: my-project, credentialsSecretRef: {name: k}, endpoints: {recommender: 'https://recommender.example.com'}}\n",
        &["spec.gcp.endpoints"],
    ),
    (
        "a tenant's Pub/Sub endpoint override",
        true,
        "gcp: {projectId: my-project, credentialsSecretRef: {name: k}, endpoints: {pubsub: 'https://pubsub.example.com'}, events: {subscription: projects/my-project/subscriptions/zerofn-events}}\n",
        &["spec.gcp.endpoints"],
    ),
];

/// PosturePolicy cases the CRD's CEL rules must refuse, with the field each
/// names; the CLI refuses each at the same field.
const POLICY_REFUSED: &[(&str, &str, &str)] = &[
    (
        "two clouds in one selector",
        "accountRef: {name: prod}\nselector: {aws: {}, gcp: {}}\ntemplate: {}\n",
        "spec.selector",
    ),
    (
        "no cloud in the selector",
        "accountRef: {name: prod}\nselector: {}\ntemplate: {}\n",
        "spec.selector",
    ),
    (
        "an azure block in the template of an aws selector",
        "accountRef: {name: prod}\nselector: {aws: {}}\ntemplate: {triggers: {azure: {requireAuthentication: true}}}\n",
        "spec.template.triggers.azure",
    ),
    (
        "createIfShared without permissions",
        "accountRef: {name: prod}\nselector: {aws: {}}\ntemplate: {identity: {createIfShared: true}}\n",
        "spec.template.identity.aws",
    ),
    (
        "unused permissions in the template of an azure selector",
        "accountRef: {name: prod}\nselector: {azure: {}}\ntemplate: {identity: {unusedPermissions: {window: 90d}, azure: {}}}\n",
        "spec.template.identity.unusedPermissions",
    ),
    (
        "In without values",
        "accountRef: {name: prod}\nselector: {aws: {tags: {matchExpressions: [{key: team, operator: In}]}}}\ntemplate: {}\n",
        "spec.selector.aws.tags.matchExpressions[0].values",
    ),
    (
        "Exists with values",
        "accountRef: {name: prod}\nselector: {gcp: {labels: {matchExpressions: [{key: team, operator: Exists, values: [a]}]}}}\ntemplate: {}\n",
        "spec.selector.gcp.labels.matchExpressions[0].values",
    ),
    (
        "a template requiring private ingress while declaring it open",
        "accountRef: {name: prod}\nselector: {gcp: {}}\ntemplate: {triggers: {gcp: {ingress: ALLOW_ALL, requirePrivateIngress: true}}}\n",
        "spec.template.triggers.gcp.ingress",
    ),
];

#[test]
fn cel_and_the_cli_refuse_the_same_policies_at_the_same_field() {
    for (case, yaml, field) in POLICY_REFUSED {
        let spec: PosturePolicySpec = serde_saphyr::from_str(yaml).expect("case parses");
        let policy = PosturePolicy::new("fleet", spec);
        let cel = cel_fields(validate_cel(&policy));
        assert!(
            cel.iter().any(|f| f == field),
            "{case}: CEL should refuse at {field}, refused at {cel:?}"
        );
        let rust: Vec<String> = validate::policy(&policy.spec).into_iter().map(|e| e.path).collect();
        assert!(
            rust.iter().any(|f| f == field),
            "{case}: the CLI should refuse at {field}, refused at {rust:?}"
        );
    }
    let fine: PosturePolicySpec = serde_saphyr::from_str(
        "accountRef: {name: prod}\nselector: {aws: {tags: {matchExpressions: [{key: team, operator: In, values: [web]}]}}}\ntemplate: {mode: Enforce, triggers: {publicAccess: Deny}}\n",
    )
    .expect("parses");
    assert_eq!(
        cel_fields(validate_cel(&PosturePolicy::new("fleet", fine))),
        Vec::<String>::new()
    );
}

fn cel_fields(r: Result<(), kube::core::cel::ValidationErrors>) -> Vec<String> {
    r.err()
        .map(|errs| errs.as_slice().iter().map(|e| e.field_path.clone()).collect())
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn cel_and_the_cli_agree_on_who_may_use_which_credentials() {
    use zerofn::api::{CloudAccountSpec, ClusterCloudAccount, ClusterCloudAccountSpec};
    for (case, namespaced, yaml, expected) in ACCOUNT_CASES {
        let expected: Vec<String> = sorted(expected.iter().map(|s| s.to_string()).collect());
        let (cel, rust) = if *namespaced {
            let spec: CloudAccountSpec = serde_saphyr::from_str(yaml).expect("case parses");
            let a = CloudAccount::new("a", spec.clone());
            (cel_fields(validate_cel(&a)), validate::cloud_account(&spec))
        } else {
            let spec: ClusterCloudAccountSpec =
                serde_saphyr::from_str(&format!("allowedNamespaces: ['*']\n{yaml}")).expect("case parses");
            let a = ClusterCloudAccount::new("a", spec.clone());
            (cel_fields(validate_cel(&a)), validate::cluster_cloud_account(&spec))
        };
        let cel = sorted(cel);
        let rust = sorted(rust.into_iter().map(|e| e.path).collect());
        assert_eq!(cel, expected, "{case}: CEL");
        assert_eq!(rust, expected, "{case}: the CLI");
    }
}

/// Every committed CRD, as the API server receives it.
fn committed_crds() -> Vec<(String, serde_json::Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    zerofn::cli::crd_files()
        .into_iter()
        .map(|(name, _)| {
            let text = std::fs::read_to_string(dir.join(&name)).expect("committed CRD");
            let crd = serde_saphyr::from_str(&text).expect("CRD parses");
            (name, crd)
        })
        .collect()
}

fn schema_of(crd: &serde_json::Value) -> &serde_json::Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Properties (and the root) without a description of their own, or with
/// kube's placeholder. List items and map values are described by their
/// property.
fn undocumented(node: &serde_json::Value, path: &str, is_property: bool, out: &mut Vec<String>) {
    let text = node.get("description").and_then(|d| d.as_str()).unwrap_or_default();
    if is_property && (text.trim().is_empty() || text.contains("Auto-generated")) {
        out.push(if path.is_empty() {
            "<root>".into()
        } else {
            path.to_string()
        });
    }
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (k, v) in props {
            undocumented(v, &format!("{path}.{k}"), true, out);
        }
    }
    for (key, suffix) in [("items", "[]"), ("additionalProperties", "{}")] {
        if let Some(child) = node.get(key).filter(|c| c.is_object()) {
            undocumented(child, &format!("{path}{suffix}"), false, out);
        }
    }
}

#[test]
fn kubectl_explain_reads_like_documentation() {
    for (name, crd) in committed_crds() {
        let mut missing = Vec::new();
        undocumented(schema_of(&crd), "", true, &mut missing);
        assert!(
            missing.is_empty(),
            "{name}: no description, or kube's placeholder, at {missing:?}: add a /// doc comment"
        );
    }
}

#[test]
fn every_cel_rule_fits_the_api_servers_cost_budget() {
    use zerofn_sim::kube::celcost::{self, PER_CRD_LIMIT, PER_EXPRESSION_LIMIT};
    for (name, crd) in committed_crds() {
        let rules = celcost::schema_rules(schema_of(&crd), "openAPIV3Schema");
        assert!(!rules.is_empty(), "{name} has CEL rules");
        let mut total: u64 = 0;
        for r in &rules {
            let Some(cost) = r.total() else {
                panic!("{name}: {} cannot be priced: {:?}", r.path, r.per_call);
            };
            eprintln!(
                "{name}: {cost:>9} = {:>6} x {:>5}  {}",
                r.per_call.as_ref().copied().unwrap_or_default(),
                r.cardinality,
                r.path
            );
            assert!(
                cost <= PER_EXPRESSION_LIMIT,
                "{name}: {} costs {cost}, over the API server's per-rule limit {PER_EXPRESSION_LIMIT}",
                r.path
            );
            total = total.saturating_add(cost);
        }
        eprintln!("{name}: total {total}");
        assert!(
            total <= PER_CRD_LIMIT,
            "{name}: the rules cost {total} together, over {PER_CRD_LIMIT}"
        );
        assert_eq!(celcost::crd_refusals(&crd), Vec::new(), "{name}");
    }
}

fn strip_bounds(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(m) => {
            for k in ["maxItems", "maxLength", "maxProperties"] {
                m.remove(k);
            }
            m.values_mut().for_each(strip_bounds);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_bounds),
        _ => {}
    }
}

/// The bounds are what keeps the rules in budget: without them the API
/// server refuses the FunctionPosture CRD, naming the rules over lists.
#[test]
fn without_the_bounds_the_posture_crd_is_over_budget() {
    use zerofn_sim::kube::celcost;
    let (_, mut crd) = committed_crds()
        .into_iter()
        .find(|(n, _)| n.starts_with("functionpostures"))
        .expect("the FunctionPosture CRD");
    strip_bounds(&mut crd);
    let refused: Vec<String> = celcost::crd_refusals(&crd).into_iter().map(|r| r.field).collect();
    for rule in [
        "properties[identity].properties[aws].properties[permissions].items.x-kubernetes-validations[0].rule",
        "properties[triggers].properties[aws].properties[invokers].items.x-kubernetes-validations[1].rule",
        "properties[triggers].properties[azure].properties[accessRestrictions].items.x-kubernetes-validations[1].rule",
    ] {
        let field = format!("spec.validation.openAPIV3Schema.properties[spec].{rule}");
        assert!(refused.contains(&field), "{field} not refused: {refused:?}");
    }
    assert!(
        refused.contains(&"spec.validation.openAPIV3Schema".to_string()),
        "{refused:?}"
    );
}

/// Over-bound input: the CLI refuses it before any cloud call, naming the
/// file and the field the API server names.
#[test]
fn the_cli_refuses_what_the_bounds_refuse_naming_file_and_field() {
    let invoker = "{principal: '123456789012'}";
    let many_invokers = vec![invoker; 101].join(", ");
    let long_arn = format!("arn:aws:s3:::{}", "b".repeat(2040));
    let long_action = format!("s3:{}", "A".repeat(126));
    let cases = [
        (
            format!("triggers: {{aws: {{invokers: [{many_invokers}]}}}}"),
            "spec.triggers.aws.invokers",
            "must have at most 100 items",
        ),
        (
            format!(
                "triggers: {{aws: {{invokers: [{{principal: s3.amazonaws.com, sourceArn: '{long_arn}', sourceAccount: '123456789012'}}]}}}}"
            ),
            "spec.triggers.aws.invokers[0].sourceArn",
            "must be at most 2048 characters",
        ),
        (
            format!("identity: {{aws: {{permissions: [{{actions: ['{long_action}'], resources: ['*']}}]}}}}"),
            "spec.identity.aws.permissions[0].actions[0]",
            "must be at most 128 characters",
        ),
    ];
    let azure_headers = "triggers: {azure: {accessRestrictions: [{name: fd, priority: 1, serviceTag: AzureFrontDoor.Backend, headers: {x-azure-fdid: [a], x-fd-healthprobe: ['1'], x-forwarded-for: [b], x-forwarded-host: [c], x-other: [d]}}]}}";
    let nine_pins = "triggers: {azure: {accessRestrictions: [{name: fd, priority: 1, serviceTag: AzureFrontDoor.Backend, headers: {x-azure-fdid: [a, b, c, d, e, f, g, h, i]}}]}}";
    let dir = zerofn_tests::TempDir::new("bounds");
    for (i, (block, field, message)) in cases
        .iter()
        .map(|(b, f, m)| (b.as_str(), *f, *m))
        .chain([
            (
                azure_headers,
                "spec.triggers.azure.accessRestrictions[0].headers",
                "must have at most 4 properties",
            ),
            (
                nine_pins,
                "spec.triggers.azure.accessRestrictions[0].headers.x-azure-fdid",
                "must have at most 8 items",
            ),
        ])
        .enumerate()
    {
        let function = if block.contains("azure") {
            "{azure: {resourceGroup: rg, name: app}}"
        } else {
            "{aws: {name: orders}}"
        };
        let yaml = format!(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: p, namespace: team}}\nspec:\n  accountRef: {{name: prod}}\n  function: {function}\n  {block}\n"
        );
        let file = dir.write(&format!("case{i}.yaml"), &yaml);
        let errs = match zerofn::manifests::load(std::slice::from_ref(&file)) {
            Ok(_) => panic!("{field}: over-bound input was accepted"),
            Err(errs) => errs,
        };
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            errs.iter().any(|e| e.field.as_deref() == Some(field)
                && e.message.contains(message)
                && e.to_string().contains(&file.display().to_string())),
            "{field}: {shown:?}"
        );
    }
}
