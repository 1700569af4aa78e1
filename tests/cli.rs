//! The CLI's contract on bad input: exit 2, name the file, document and
//! field, and send nothing to any cloud.
#![forbid(unsafe_code)]

use zerofn_sim::scripted::{Reply, Scripted};
use zerofn_tests::{TempDir, zerofn};

fn account(endpoint: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  aws: {{region: eu-west-1, endpoint: \"{endpoint}\", credentialsSecretRef: {{name: creds}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: shop}}\nstringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n"
    )
}

const POSTURE_HEAD: &str = "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: orders, namespace: shop}\nspec:\n  accountRef: {name: prod}\n";

/// Each malformed posture, and what the error must say.
const MALFORMED: &[(&str, &str, &str)] = &[
    (
        "unknown field",
        "  function: {aws: {name: orders}}\n  identity: {dedicated: true, sharedOk: true}\n",
        "postures.yaml: document 1 (FunctionPosture shop/orders): spec.identity.sharedOk: unknown field",
    ),
    (
        "two clouds in one target",
        "  function:\n    aws: {name: orders}\n    azure: {resourceGroup: rg, name: orders}\n",
        "postures.yaml: document 1 (FunctionPosture shop/orders): spec.function: exactly one of function.aws, function.azure or function.gcp must be set",
    ),
    (
        "bad ARN",
        "  function: {aws: {name: orders}}\n  triggers:\n    aws:\n      invokers: [{principal: s3.amazonaws.com, sourceArn: \"s3:::bucket\", sourceAccount: \"123456789012\"}]\n",
        "postures.yaml: document 1 (FunctionPosture shop/orders): spec.triggers.aws.invokers[0].sourceArn: Invalid value: \"s3:::bucket\"",
    ),
];

#[tokio::test]
async fn malformed_manifests_exit_2_name_the_field_and_call_no_cloud() {
    let cloud = Scripted::start(vec![], Reply::new(500, "no call was expected"))
        .await
        .unwrap();
    for (case, body, expected) in MALFORMED {
        let dir = TempDir::new("malformed");
        dir.write("account.yaml", &account(&cloud.url()));
        dir.write("postures.yaml", &format!("{POSTURE_HEAD}{body}"));
        for cmd in [&["plan"][..], &["enforce", "--once"][..]] {
            let run = zerofn(&[cmd, &["-f", dir.path().to_str().unwrap()][..]].concat()).await;
            assert_eq!(run.code, 2, "{case}: {cmd:?} must exit 2:\n{}", run.stderr);
            assert!(
                run.stderr.contains(expected),
                "{case}: stderr must name the field:\n{}",
                run.stderr
            );
            assert!(run.stderr.contains("nothing was sent to any cloud"), "{}", run.stderr);
        }
    }
    assert!(
        cloud.requests().is_empty(),
        "a cloud was called: {:?}",
        cloud.requests()
    );
}

#[tokio::test]
async fn a_reference_to_a_missing_account_is_invalid_input() {
    let dir = TempDir::new("noaccount");
    dir.write(
        "postures.yaml",
        &format!("{POSTURE_HEAD}  function: {{aws: {{name: orders}}}}\n"),
    );
    let run = zerofn(&["plan", "-f", dir.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("spec.accountRef: CloudAccount shop/prod does not exist"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_unreachable_cloud_exits_2_with_the_reason() {
    let port = zerofn_sim::process::free_port().unwrap();
    let dir = TempDir::new("unreachable");
    // Static credentials: the SDK's default chain would probe the instance
    // metadata service, which is not on loopback.
    dir.write(
        "all.yaml",
        &format!(
            "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  aws: {{region: eu-west-1, endpoint: \"http://127.0.0.1:{port}\", credentialsSecretRef: {{name: creds}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: shop}}\nstringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n---\n{POSTURE_HEAD}  function: {{aws: {{name: orders}}}}\n"
        ),
    );
    let run = zerofn(&["plan", "-o", "json", "-f", dir.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["postures"][0]["error"]["category"], "unreachable", "{report:#}");
}

#[tokio::test]
async fn enforce_requires_once() {
    let run = zerofn(&["enforce", "-f", "/nonexistent"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--once is required"));
}

#[tokio::test]
async fn crds_prints_every_crd() {
    let run = zerofn(&["crds"]).await;
    assert_eq!(run.code, 0);
    for name in [
        "functionpostures.zerofn.dev",
        "cloudaccounts.zerofn.dev",
        "clustercloudaccounts.zerofn.dev",
    ] {
        assert!(run.stdout.contains(&format!("name: {name}")), "{name}");
    }
}

#[tokio::test]
async fn a_posture_above_the_ceiling_is_refused_before_any_call() {
    let cloud = Scripted::start(vec![], Reply::new(500, "no call was expected"))
        .await
        .unwrap();
    let dir = TempDir::new("ceiling");
    dir.write("account.yaml", &account(&cloud.url()));
    dir.write(
        "postures.yaml",
        &format!(
            "{POSTURE_HEAD}  function: {{aws: {{name: orders}}}}\n  mode: Enforce\n  identity:\n    createIfShared: true\n    aws:\n      permissions: [{{actions: ['dynamodb:GetItem', 'iam:*'], resources: ['*']}}]\n      permissionsBoundary: arn:aws:iam::aws:policy/AdministratorAccess\n"
        ),
    );
    for cmd in [&["plan"][..], &["enforce", "--once"][..]] {
        let run = zerofn(&[cmd, &["-f", dir.path().to_str().unwrap()][..]].concat()).await;
        assert_eq!(run.code, 2, "{cmd:?}:\n{}{}", run.stdout, run.stderr);
        for field in [
            "postures.yaml: document 1 (FunctionPosture shop/orders): spec.identity.aws.permissions[0].actions[1]: exceeds the permission ceiling of CloudAccount/shop/prod",
            "spec.identity.aws.permissionsBoundary: exceeds the permission ceiling",
        ] {
            assert!(run.stderr.contains(field), "{cmd:?} must name {field}:\n{}", run.stderr);
        }
        assert!(run.stderr.contains("nothing was sent to any cloud"), "{}", run.stderr);
    }
    assert!(
        cloud.requests().is_empty(),
        "a cloud was called: {:?}",
        cloud.requests()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn links_out_of_the_given_directory_are_refused_without_hanging() {
    let dir = TempDir::new("links");
    let outside = TempDir::new("links-outside");
    let secret = outside.write("notes.yaml", "token: [ outside-file-content\n");
    std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.path().join("notes.yaml")).unwrap();
    let started = std::time::Instant::now();
    let run = zerofn(&["plan", "-f", dir.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("root: a link out of"), "{}", run.stderr);
    assert!(run.stderr.contains("notes.yaml: a link out of"), "{}", run.stderr);
    assert!(!run.stderr.contains("outside-file-content"), "{}", run.stderr);
}

#[tokio::test]
async fn names_and_cloud_text_cannot_steer_the_terminal() {
    let dir = TempDir::new("escape");
    dir.write(
        "p.yaml",
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: \"x\\e]0;owned\\a\\nerror: forged\"}\nspec:\n  accountRef: {name: p}\n  function: {aws: {name: f}}\n",
    );
    let run = zerofn(&["plan", "-f", dir.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    assert!(!run.stderr.contains("\nerror: forged"), "{:?}", run.stderr);
    assert!(run.stderr.contains("metadata.name: Invalid value"), "{}", run.stderr);
}

#[tokio::test]
async fn a_malformed_state_file_exits_2_naming_it_and_calls_no_cloud() {
    let cloud = Scripted::start(vec![], Reply::new(500, "no call was expected"))
        .await
        .unwrap();
    let dir = TempDir::new("state");
    dir.write("account.yaml", &account(&cloud.url()));
    dir.write(
        "postures.yaml",
        &format!("{POSTURE_HEAD}  function: {{aws: {{name: orders}}}}\n"),
    );
    let state = dir.write(
        "state.json",
        r#"{"postures": {"default/shop/orders": [{"principal": "r"}]}}"#,
    );
    for cmd in [&["plan"][..], &["enforce", "--once"][..]] {
        let args = [
            cmd,
            &["-f", dir.path().to_str().unwrap(), "--state", state.to_str().unwrap()][..],
        ]
        .concat();
        let run = zerofn(&args).await;
        assert_eq!(run.code, 2, "{cmd:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("state.json") && run.stderr.contains("uniqueId"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was sent to any cloud"), "{}", run.stderr);
    }
    assert!(cloud.requests().is_empty(), "{:?}", cloud.requests());
}

const POLICY_HEAD: &str = "apiVersion: zerofn.dev/v1alpha1\nkind: PosturePolicy\nmetadata: {name: fleet, namespace: shop}\nspec:\n  accountRef: {name: prod}\n";

/// A malformed PosturePolicy is refused like a malformed posture: exit 2,
/// the file, document and field named, no cloud called (the inventory a
/// policy is expanded against is never listed).
#[tokio::test]
async fn a_malformed_policy_names_the_field_and_calls_no_cloud() {
    let cloud = Scripted::start(vec![], Reply::new(500, "no call was expected"))
        .await
        .unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "  selector: {aws: {}, gcp: {}}\n  template: {}\n",
            "policy.yaml: document 1 (PosturePolicy shop/fleet): spec.selector: exactly one of selector.aws, selector.azure or selector.gcp must be set",
        ),
        (
            "  selector: {aws: {}}\n  template:\n    identity: {createIfShared: true}\n",
            "policy.yaml: document 1 (PosturePolicy shop/fleet): spec.template.identity.aws: identity.createIfShared on AWS needs identity.aws.permissions",
        ),
        (
            "  selector: {aws: {names: [\"orders/*\"]}}\n  template: {}\n",
            "policy.yaml: document 1 (PosturePolicy shop/fleet): spec.selector.aws.names[0]",
        ),
        (
            "  selector: {aws: {}}\n  template:\n    mode: Enforce\n    identity:\n      aws:\n        permissions: [{actions: ['iam:*'], resources: ['*']}]\n",
            "policy.yaml: document 1 (PosturePolicy shop/fleet): spec.template.identity.aws.permissions[0].actions[0]: exceeds the permission ceiling of CloudAccount/shop/prod",
        ),
    ];
    for (body, expected) in cases {
        let dir = TempDir::new("policy");
        dir.write("account.yaml", &account(&cloud.url()));
        dir.write("policy.yaml", &format!("{POLICY_HEAD}{body}"));
        let run = zerofn(&["plan", "-f", dir.path().to_str().unwrap()]).await;
        assert_eq!(run.code, 2, "{body}: must exit 2:\n{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{body}: must say {expected}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was sent to any cloud"), "{}", run.stderr);
    }
    assert!(
        cloud.requests().is_empty(),
        "a cloud was called: {:?}",
        cloud.requests()
    );
}

/// A baseline must be exactly one FunctionPosture: anything else is invalid
/// input, named, before any cloud call.
#[tokio::test]
async fn a_scan_baseline_that_is_not_one_posture_is_refused_before_any_call() {
    let cloud = Scripted::start(vec![], Reply::new(500, "no call was expected"))
        .await
        .unwrap();
    let dir = TempDir::new("scan-baseline");
    let accounts = dir.write("account.yaml", &account(&cloud.url()));
    let baseline = dir.write(
        "baseline.yaml",
        &format!(
            "{POSTURE_HEAD}  function: {{aws: {{name: a}}}}\n---\n{}",
            POSTURE_HEAD.replace("orders", "other") + "  function: {aws: {name: b}}\n"
        ),
    );
    let run = zerofn(&[
        "scan",
        "-f",
        accounts.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("--baseline")
            && run
                .stderr
                .contains("holds 2 FunctionPostures; a baseline is exactly one"),
        "{}",
        run.stderr
    );
    assert!(
        cloud.requests().is_empty(),
        "a cloud was called: {:?}",
        cloud.requests()
    );
}
