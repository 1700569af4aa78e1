//! The identity rule against LocalStack: zerofn changes a role's permissions
//! only when it minted the role (RoleId on record) or the posture opted in
//! and the role's own evidence proves it exclusive. Each test builds a role
//! something else can use, checks that the plan writes nothing to it, enforces,
//! and reads the role back unchanged.

use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use zerofn::api::{AwsAccount, FunctionPostureSpec};
use zerofn::engine::{self, MintLog};
use zerofn::metrics::Metrics;
use zerofn::providers::adapter::Adapter;
use zerofn::providers::aws::policy::PolicyDocument;
use zerofn::providers::aws::{AwsProvider, StaticCredentials, names};
use zerofn::providers::{Cloud, MintIntent, MintedIdentity, Posture, ProviderError};
use zerofn_sim::aws::Aws;
use zerofn_sim::localstack::{ACCOUNT_ID, LocalStack, REGION};
use zerofn_tests::{Run, TempDir, prefix, zerofn};

const LAMBDA: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const GUARDRAIL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}]}"#;
const ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn trust_with(service: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":["lambda.amazonaws.com","{service}"]}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

/// Everything about a role that decides what its holders may do.
#[derive(Debug, PartialEq)]
struct RoleState {
    role_id: String,
    trust: PolicyDocument,
    inline: BTreeMap<String, PolicyDocument>,
    attached: BTreeSet<String>,
    boundary: Option<String>,
}

async fn role_state(aws: &Aws, name: &str) -> RoleState {
    let role = aws.iam.get_role().role_name(name).send().await.unwrap();
    let role = role.role().unwrap();
    let mut inline = BTreeMap::new();
    let names = aws.iam.list_role_policies().role_name(name).send().await.unwrap();
    for p in names.policy_names() {
        let d = aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .unwrap();
        inline.insert(p.clone(), PolicyDocument::parse(d.policy_document()).unwrap());
    }
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    RoleState {
        role_id: role.role_id().to_string(),
        trust: PolicyDocument::parse(role.assume_role_policy_document().unwrap_or("{}")).unwrap(),
        inline,
        attached,
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
    }
}

async fn make_role(aws: &Aws, name: &str, path: &str, trust: &str, tagged: bool) -> String {
    let mut req = aws
        .iam
        .create_role()
        .role_name(name)
        .path(path)
        .assume_role_policy_document(trust);
    if tagged {
        req = req.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(names::MANAGED_TAG)
                .value(names::MANAGED_VALUE)
                .build()
                .unwrap(),
        );
    }
    let out = req.send().await.unwrap();
    out.role().unwrap().arn().to_string()
}

async fn put_inline(aws: &Aws, role: &str, name: &str, doc: &str) {
    aws.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(doc)
        .send()
        .await
        .unwrap();
}

async fn function_role(aws: &Aws, function: &str) -> String {
    aws.lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap_or_default()
        .to_string()
}

fn account(endpoint: &str, regions: &[&str]) -> String {
    format!(
        r#"apiVersion: zerofn.dev/v1alpha1
kind: CloudAccount
metadata: {{name: stand-in, namespace: shop}}
spec:
  aws:
    accountId: "{ACCOUNT_ID}"
    region: {REGION}
    regions: [{}]
    endpoint: {endpoint}
    credentialsSecretRef: {{name: stand-in-credentials}}
    maxRequestsPerSecond: 200
---
apiVersion: v1
kind: Secret
metadata: {{name: stand-in-credentials, namespace: shop}}
stringData: {{aws_access_key_id: test, aws_secret_access_key: test}}
"#,
        regions.join(", ")
    )
}

/// A posture declaring least privilege for `function`.
fn posture(name: &str, function: &str, create_if_shared: bool, opt_in: bool) -> String {
    format!(
        r#"apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: {name}, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  function: {{aws: {{name: {function}}}}}
  mode: Enforce
  identity:
    createIfShared: {create_if_shared}
    editInPlaceIfExclusive: {opt_in}
    aws:
      permissions:
        - actions: [dynamodb:GetItem]
          resources: ["arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{function}"]
"#
    )
}

struct World {
    aws: Aws,
    dir: TempDir,
    prefix: String,
}

async fn world(test: &str) -> World {
    let ls = LocalStack::shared();
    World {
        aws: Aws::new(&ls.endpoint(), REGION).await,
        dir: TempDir::new(test),
        prefix: prefix(test),
    }
}

impl World {
    async fn run(&self, cmd: &[&str], regions: &[&str], postures: &[String]) -> Run {
        let account = self.dir.write("account.yaml", &account(&self.aws.endpoint, regions));
        let postures = self.dir.write("postures.yaml", &postures.join("---\n"));
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend([
            "-f",
            account.to_str().unwrap(),
            "-f",
            postures.to_str().unwrap(),
            "-o",
            "json",
        ]);
        zerofn(&args).await
    }
}

/// The role writes a report plans or made (`actions` or `applied`) to `role`.
fn role_writes(report: &Value, field: &str, role: &str) -> Vec<String> {
    report["postures"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r[field].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["target"] == role
                && matches!(
                    a["op"].as_str(),
                    Some("PutRolePolicy" | "DeleteRolePolicy" | "DetachRolePolicy" | "PutRolePermissionsBoundary")
                )
        })
        .map(|a| a.to_string())
        .collect()
}

fn messages(report: &Value) -> String {
    report["postures"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Plan, enforce, and prove the bystander role was never written.
async fn bystander_is_untouched(w: &World, role: &str, regions: &[&str], postures: &[String], reason: &str) {
    let before = role_state(&w.aws, role).await;
    let plan = w.run(&["plan"], regions, postures).await;
    let report = plan.json();
    assert!(
        role_writes(&report, "actions", role).is_empty(),
        "the plan writes to {role}: {report:#}"
    );
    assert!(
        messages(&report).contains(reason),
        "no finding says \"{reason}\":\n{}",
        messages(&report)
    );
    let enforce = w.run(&["enforce", "--once"], regions, postures).await;
    let report = enforce.json();
    assert!(role_writes(&report, "applied", role).is_empty(), "{report:#}");
    assert_eq!(role_state(&w.aws, role).await, before, "{role} changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_only_inline_policy_is_kept_and_carried_to_the_minted_role() {
    let w = world("deny").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "guardrail", GUARDRAIL).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let postures = [posture("deny", &f, true, false)];

    bystander_is_untouched(&w, &role, &[], &postures, "not minted by zerofn").await;
    let minted = function_role(&w.aws, &f).await;
    assert!(minted.contains(":role/zerofn/zerofn-"), "{minted}");
    let state = role_state(&w.aws, minted.rsplit('/').next().unwrap()).await;
    let own = &state.inline["zerofn-least-privilege"];
    assert!(
        own.statements
            .iter()
            .any(|s| s.effect == zerofn::api::Effect::Deny && s.actions.contains("dynamodb:DeleteTable")),
        "the guardrail's Deny moved with the function: {own:?}"
    );
    assert!(!own.grants_everything());
    let again = w.run(&["enforce", "--once"], &[], &postures).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.json()["writeCalls"], 0, "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_ec2_or_ecs_tasks_can_assume_is_not_edited() {
    let w = world("trust").await;
    for (i, service) in ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"].iter().enumerate() {
        let role = format!("{}role{i}", w.prefix);
        let arn = make_role(&w.aws, &role, "/", &trust_with(service), false).await;
        put_inline(&w.aws, &role, "legacy", ADMIN).await;
        let f = format!("{}fn{i}", w.prefix);
        w.aws.create_function(&f, &arn).await.unwrap();
        let postures = [posture(&format!("trust{i}"), &f, false, true)];
        bystander_is_untouched(
            &w,
            &role,
            &[],
            &postures,
            "trust policy admits more than lambda.amazonaws.com",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_in_an_instance_profile_is_not_edited() {
    let w = world("profile").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let profile = format!("{}web", w.prefix);
    w.aws
        .iam
        .create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .unwrap();
    w.aws
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let postures = [posture("profile", &f, false, true)];
    bystander_is_untouched(&w, &role, &[], &postures, "instance profile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_used_in_another_region_or_by_a_version_is_not_edited() {
    let w = world("regions").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let version = w.aws.lambda.publish_version().function_name(&f).send().await.unwrap();
    let version = version.version().unwrap().to_string();
    let us = Aws::new(&w.aws.endpoint, "us-east-1").await;
    let g = format!("{}elsewhere", w.prefix);
    let g_arn = us.create_function(&g, &arn).await.unwrap();
    let postures = [posture("regions", &f, false, true)];

    bystander_is_untouched(&w, &role, &["us-east-1"], &postures, &g_arn).await;
    bystander_is_untouched(&w, &role, &["us-east-1"], &postures, &format!("function:{f}:{version}")).await;
    // Without us-east-1 in scope the other region is unseen: still not edited.
    bystander_is_untouched(&w, &role, &[], &postures, "are not scanned").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_tagged_as_zerofns_is_not_adopted() {
    let w = world("tagged").await;
    // The function's own role carries zerofn's tag: it proves nothing.
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, true).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let f = format!("{}fn", w.prefix);
    let f_arn = w.aws.create_function(&f, &arn).await.unwrap();

    // Someone made a role with the very name zerofn would mint for `f`.
    let squatter = names::dedicated_role_name(&f, &f_arn);
    make_role(&w.aws, &squatter, names::ROLE_PATH, LAMBDA, true).await;
    put_inline(&w.aws, &squatter, "theirs", ADMIN).await;
    let postures = [posture("tagged", &f, true, false)];
    bystander_is_untouched(&w, &role, &[], &postures, "tag proves nothing").await;
    bystander_is_untouched(&w, &squatter, &[], &postures, "cannot prove it created").await;
    assert_eq!(
        function_role(&w.aws, &f).await,
        arn,
        "not switched to the squatter's role"
    );
}

async fn managed_policy(aws: &Aws, name: &str, doc: &str) -> String {
    let out = aws
        .iam
        .create_policy()
        .policy_name(name)
        .policy_document(doc)
        .send()
        .await
        .unwrap();
    out.policy().unwrap().arn().unwrap().to_string()
}

async fn attach(aws: &Aws, role: &str, policy_arn: &str) {
    aws.iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(policy_arn)
        .send()
        .await
        .unwrap();
}

fn holds_deny_of(state: &RoleState, action: &str) -> bool {
    state.inline.values().any(|d| {
        d.statements
            .iter()
            .any(|s| s.effect == zerofn::api::Effect::Deny && s.actions.contains(action))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_policy_holding_a_deny_stays_attached_and_its_deny_moves_with_the_function() {
    let w = world("mdeny").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    let guardrail = managed_policy(&w.aws, &format!("{}guardrail", w.prefix), GUARDRAIL).await;
    attach(&w.aws, &role, &guardrail).await;
    attach(&w.aws, &role, "arn:aws:iam::aws:policy/AdministratorAccess").await;
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let postures = [posture("mdeny", &f, true, false)];

    bystander_is_untouched(&w, &role, &[], &postures, "not minted by zerofn").await;
    assert!(role_state(&w.aws, &role).await.attached.contains(&guardrail));
    let minted = function_role(&w.aws, &f).await;
    assert!(minted.contains(":role/zerofn/zerofn-"), "{minted}");
    let state = role_state(&w.aws, minted.rsplit('/').next().unwrap()).await;
    assert!(
        holds_deny_of(&state, "dynamodb:DeleteTable"),
        "the managed guardrail's Deny moved with the function: {state:?}"
    );
    assert!(state.attached.is_empty(), "{state:?}");
    let again = w.run(&["enforce", "--once"], &[], &postures).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.json()["writeCalls"], 0, "{}", again.stdout);
}

const MIXED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Sid":"NoDeletes","Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}]}"#;
const S3_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

/// The regions the stand-in reports enabled, read by the test itself
/// (DescribeRegions; `not-opted-in` ones are not enabled).
fn enabled_regions(aws: &Aws) -> Vec<String> {
    let xml = aws
        .query("ec2", &[("Action", "DescribeRegions"), ("Version", "2016-11-15")])
        .unwrap();
    xml.split("<item>")
        .skip(1)
        .filter(|item| !item.contains("<optInStatus>not-opted-in</optInStatus>"))
        .filter_map(|item| {
            let name = item.split("<regionName>").nth(1)?.split("</regionName>").next()?;
            Some(name.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_role_is_edited_in_place_only_when_every_enabled_region_is_scanned() {
    let w = world("exclusive").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let mixed = managed_policy(&w.aws, &format!("{}mixed", w.prefix), MIXED).await;
    let broad = managed_policy(&w.aws, &format!("{}broad", w.prefix), S3_ALL).await;
    attach(&w.aws, &role, &mixed).await;
    attach(&w.aws, &role, &broad).await;
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let postures = [posture("exclusive", &f, false, true)];
    let enabled = enabled_regions(&w.aws);
    let others: Vec<&str> = enabled.iter().map(String::as_str).filter(|r| *r != REGION).collect();
    assert!(others.len() > 1, "{enabled:?}");

    // One enabled region left out: exclusivity is not proved, nothing written.
    let reason = format!("enabled region(s) {} are not scanned", others[0]);
    bystander_is_untouched(&w, &role, &others[1..], &postures, &reason).await;

    // Every enabled region scanned: case (c), fixed in place.
    let plan = w.run(&["plan"], &others, &postures).await.json();
    assert!(!role_writes(&plan, "actions", &role).is_empty(), "{plan:#}");
    assert!(messages(&plan).contains("opted in, exclusive"), "{}", messages(&plan));
    let enforce = w.run(&["enforce", "--once"], &others, &postures).await;
    assert!(enforce.code != 2, "{}{}", enforce.stdout, enforce.stderr);
    let state = role_state(&w.aws, &role).await;
    assert!(!state.inline.contains_key("legacy"), "{state:?}");
    assert!(state.inline.contains_key(names::INLINE_POLICY_NAME), "{state:?}");
    assert!(!state.attached.contains(&broad), "{state:?}");
    assert!(
        state.attached.contains(&mixed),
        "the managed policy holding a Deny stays attached: {state:?}"
    );
    assert_eq!(function_role(&w.aws, &f).await, arn);
    let again = w.run(&["enforce", "--once"], &others, &postures).await;
    assert_eq!(again.json()["writeCalls"], 0, "{}", again.stdout);
    assert!(
        messages(&again.json()).contains("holds Deny statements"),
        "{}",
        messages(&again.json())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_proves_a_role_it_minted_in_an_earlier_run_only_with_its_state_file() {
    let w = world("state").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let f = format!("{}fn", w.prefix);
    w.aws.create_function(&f, &arn).await.unwrap();
    let postures = [posture("state", &f, true, false)];
    let state = w.dir.path().join("state.json");
    let with_state = |cmd: &[&'static str]| {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--state".to_string(), state.to_str().unwrap().to_string()]);
        v
    };
    let args = with_state(&["enforce", "--once"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = w.run(&args, &[], &postures).await;
    assert!(first.code != 2, "{}{}", first.stdout, first.stderr);
    let minted = function_role(&w.aws, &f).await;
    let minted_name = minted.rsplit('/').next().unwrap().to_string();
    assert!(minted.contains(":role/zerofn/zerofn-"), "{minted}");
    let recorded: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let role_id = role_state(&w.aws, &minted_name).await.role_id;
    assert_eq!(
        recorded["postures"]["default/shop/state"][0]["uniqueId"], role_id,
        "{recorded:#}"
    );

    // Someone widens the minted role behind zerofn's back.
    put_inline(&w.aws, &minted_name, "extra", ADMIN).await;
    // Without the state file the run cannot prove zerofn minted it: it
    // writes nothing to it and says how to give the proof.
    let plan = w.run(&["plan"], &[], &postures).await.json();
    assert!(role_writes(&plan, "actions", &minted_name).is_empty(), "{plan:#}");
    assert!(messages(&plan).contains("--state FILE"), "{}", messages(&plan));
    // With it the role is zerofn's own (case a) and is fixed in place.
    let args = with_state(&["enforce", "--once"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let fixed = w.run(&args, &[], &postures).await;
    assert!(
        !role_writes(&fixed.json(), "applied", &minted_name).is_empty(),
        "{}",
        fixed.stdout
    );
    assert!(!role_state(&w.aws, &minted_name).await.inline.contains_key("extra"));
    assert_eq!(function_role(&w.aws, &f).await, minted, "no second mint");
    let again = w.run(&args, &[], &postures).await;
    assert_eq!(again.json()["writeCalls"], 0, "{}", again.stdout);
}

/// A controller that dies right after CreateRole: it keeps the write-ahead
/// record of the role, then never records the RoleId.
#[derive(Default)]
struct DiesAfterCreate {
    intents: std::sync::Mutex<Vec<MintIntent>>,
}

impl MintLog for DiesAfterCreate {
    fn record<'a>(&'a self, _: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("killed".to_string()) })
    }
    fn intend<'a>(&'a self, intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>> {
        self.intents.lock().unwrap().push(intent.clone());
        Box::pin(async { Ok(()) })
    }
    fn writing(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A fresh provider (a fresh process) for the stand-in.
async fn provider(aws: &Aws) -> Adapter<AwsProvider> {
    let account = AwsAccount {
        account_id: Some(ACCOUNT_ID.into()),
        region: REGION.into(),
        endpoint: Some(aws.endpoint.clone()),
        ..AwsAccount::default()
    };
    let creds = StaticCredentials {
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: None,
    };
    Adapter::new(
        AwsProvider::new(
            account,
            Some(creds),
            Arc::new(Metrics::default()),
            AwsProvider::default_tuning(),
            Duration::from_secs(60),
        )
        .await,
    )
}

/// The posture `posture()` writes, as the controller hands it to a provider.
fn library_posture(name: &str, function: &str) -> Posture {
    let doc: Value = serde_saphyr::from_str(&posture(name, function, true, false)).unwrap();
    let spec: FunctionPostureSpec = serde_json::from_value(doc["spec"].clone()).unwrap();
    Posture::new("test", "shop", name, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_created_before_a_crash_is_proved_by_its_write_ahead_record() {
    let w = world("crash").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    put_inline(&w.aws, &role, "legacy", ADMIN).await;
    let f = format!("{}fn", w.prefix);
    let f_arn = w.aws.create_function(&f, &arn).await.unwrap();
    let minted = names::dedicated_role_name(&f, &f_arn);

    // The first process keeps its intent, creates the role and dies before
    // the RoleId is recorded: the function is not switched.
    let p = library_posture("crash", &f);
    let log = DiesAfterCreate::default();
    let first = engine::reconcile(&provider(&w.aws).await, &p, &log).await.unwrap();
    assert!(
        matches!(first.applied.failed, Some((_, ProviderError::Unrecorded(_)))),
        "{:?}",
        first.applied
    );
    let intents = log.intents.lock().unwrap().clone();
    assert_eq!(intents.len(), 1, "{intents:?}");
    let created = role_state(&w.aws, &minted).await;
    assert_eq!(function_role(&w.aws, &f).await, arn);

    // Without the record, the next process cannot prove the role is zerofn's
    // and leaves it, and the function, alone.
    let blind = engine::reconcile(&provider(&w.aws).await, &p, &engine::InMemory)
        .await
        .unwrap();
    assert!(blind.applied.done.is_empty(), "{:?}", blind.applied.done);
    assert_eq!(function_role(&w.aws, &f).await, arn);

    // With it, the next process proves the role by the record's nonce and
    // finishes the job: the RoleId is recorded and the function switched.
    let mut restarted = p.clone();
    restarted.intents = intents;
    let second = engine::reconcile(&provider(&w.aws).await, &restarted, &engine::InMemory)
        .await
        .unwrap();
    assert!(second.applied.failed.is_none(), "{:?}", second.applied);
    assert_eq!(second.applied.minted.len(), 1, "{:?}", second.applied);
    assert_eq!(second.applied.minted[0].unique_id, created.role_id);
    assert!(function_role(&w.aws, &f).await.ends_with(&format!("/{minted}")));
    assert_eq!(
        role_state(&w.aws, &role).await.inline.len(),
        1,
        "the old role is never changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_ahead_record_never_adopts_a_role_someone_else_made() {
    let w = world("squat-intent").await;
    let role = format!("{}role", w.prefix);
    let arn = make_role(&w.aws, &role, "/", LAMBDA, false).await;
    let f = format!("{}fn", w.prefix);
    let f_arn = w.aws.create_function(&f, &arn).await.unwrap();
    // Someone made the role zerofn would mint, tagged like zerofn's, and the
    // posture holds a record of zerofn's intent to create it: the role lacks
    // the record's nonce, so it is not the one zerofn created.
    let squatter = names::dedicated_role_name(&f, &f_arn);
    make_role(&w.aws, &squatter, names::ROLE_PATH, LAMBDA, true).await;
    let before = role_state(&w.aws, &squatter).await;
    let mut p = library_posture("squat-intent", &f);
    p.intents = vec![MintIntent {
        principal: format!("arn:aws:iam::{ACCOUNT_ID}:role{}{squatter}", names::ROLE_PATH),
        nonce: "0123456789abcdef0123456789abcdef".into(),
        at: "2026-01-01T00:00:00Z".into(),
    }];
    let out = engine::reconcile(&provider(&w.aws).await, &p, &engine::InMemory)
        .await
        .unwrap();
    assert!(
        matches!(out.applied.failed, Some((_, ProviderError::Refused(_)))),
        "{:?}",
        out.applied
    );
    assert!(out.applied.minted.is_empty());
    assert_eq!(
        function_role(&w.aws, &f).await,
        arn,
        "not switched to the squatter's role"
    );
    assert_eq!(role_state(&w.aws, &squatter).await, before, "{squatter} changed");
}
