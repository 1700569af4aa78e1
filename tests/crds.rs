//! The CRDs: committed YAML matches the Rust types, and the CEL rules the API
//! server evaluates agree with the validation the CLI runs.
#![forbid(unsafe_code)]

use kube::core::cel::{validate_cel, validate_cel_update};
use zerofn::api::{CloudAccount, FunctionPosture, FunctionPostureSpec, validate};

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
        "access restriction with two sources",
        "accountRef: {name: prod}\nfunction: {azure: {resourceGroup: rg, name: app}}\ntriggers: {azure: {accessRestrictions: [{name: a, priority: 1, ipAddress: 10.0.0.0/8, serviceTag: AzureFrontDoor.Backend}]}}\n",
        "spec.triggers.azure.accessRestrictions[0]",
    ),
    (
        "access restriction pinned to a header App Service does not check",
        "accountRef: {name: prod}\nfunction: {azure: {resourceGroup: rg, name: app}}\ntriggers: {azure: {accessRestrictions: [{name: fd, priority: 1, serviceTag: AzureFrontDoor.Backend, headers: {x-custom: [a]}}]}}\n",
        "spec.triggers.azure.accessRestrictions[0].headers",
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
        "{BASE}mode: Enforce\nidentity:\n  createIfShared: true\n  aws:\n    permissions: [{{actions: ['dynamodb:GetItem'], resources: ['arn:aws:dynamodb:eu-west-1:123456789012:table/t']}}]\ntriggers:\n  aws:\n    invokers: [{{principal: s3.amazonaws.com, sourceArn: 'arn:aws:s3:::b', sourceAccount: '123456789012'}}, {{principal: '123456789012'}}]\nnetwork: {{aws: {{subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d]}}}}\nobservability: {{tracing: Active, structuredLogs: true}}\n"
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
];

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
