//! Table tests of the AWS planner: one case per control and edge, and a
//! generated sweep proving no action ever grants beyond the spec.

use super::*;
use crate::api::*;
use crate::providers::aws::model::*;
use crate::providers::aws::policy::parse_resource_policy;

const ACCT: &str = "123456789012";
const FN_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/orders-role";

fn ctx() -> AccountContext {
    AccountContext {
        account_id: ACCT.into(),
        partition: "aws".into(),
    }
}

fn spec() -> FunctionPostureSpec {
    FunctionPostureSpec {
        account_ref: AccountRef {
            kind: AccountKind::CloudAccount,
            name: "prod".into(),
        },
        function: FunctionTarget {
            aws: Some(AwsFunctionRef {
                name: "orders".into(),
                region: Some("eu-west-1".into()),
            }),
            azure: None,
            gcp: None,
        },
        mode: Mode::Enforce,
        identity: None,
        triggers: None,
        network: None,
        supply_chain: None,
        observability: None,
        resync_interval: None,
    }
}

fn posture(s: FunctionPostureSpec) -> Posture {
    Posture::new("test", "team", "orders", s)
}

fn declared_statements() -> Vec<PolicyStatement> {
    vec![PolicyStatement {
        sid: Some("ReadOrders".into()),
        effect: Effect::Allow,
        actions: vec!["dynamodb:GetItem".into(), "dynamodb:Query".into()],
        resources: vec!["arn:aws:dynamodb:eu-west-1:123456789012:table/orders".into()],
        conditions: Default::default(),
    }]
}

fn identity(create: bool) -> IdentityControl {
    IdentityControl {
        dedicated: true,
        create_if_shared: create,
        edit_in_place_if_exclusive: false,
        aws: Some(AwsIdentity {
            permissions: Some(declared_statements()),
            baseline: true,
            managed_policies: vec![],
            permissions_boundary: None,
        }),
        azure: None,
        gcp: None,
    }
}

fn triggers(public: PublicAccess) -> TriggerControl {
    TriggerControl {
        public_access: public,
        remove_unlisted: true,
        aws: Some(AwsTriggers {
            invokers: vec![AwsInvoker {
                principal: "s3.amazonaws.com".into(),
                source_arn: Some("arn:aws:s3:::orders-in".into()),
                source_account: Some(ACCT.into()),
                action: InvokeAction::InvokeFunction,
            }],
            event_sources: vec!["arn:aws:sqs:eu-west-1:123456789012:orders".into()],
            function_url: None,
        }),
        azure: None,
        gcp: None,
    }
}

fn trust() -> PolicyDocument {
    super::super::policy::lambda_trust_policy()
}

fn role(name: &str) -> ObservedRole {
    ObservedRole {
        arn: format!("arn:aws:iam::123456789012:role/{name}"),
        name: name.into(),
        trust: trust(),
        ..ObservedRole::default()
    }
}

/// A function that complies with everything `full_spec` declares.
fn compliant() -> ObservedFunction {
    let p = posture(full_spec());
    let mut o = ObservedFunction {
        arn: FN_ARN.into(),
        name: "orders".into(),
        region: "eu-west-1".into(),
        role_arn: ROLE_ARN.into(),
        vpc: Some(Vpc {
            subnet_ids: ["subnet-0a1b2c3d".to_string()].into(),
            security_group_ids: ["sg-0a1b2c3d".to_string()].into(),
            ipv6_allowed_for_dual_stack: None,
        }),
        tracing_mode: Some("Active".into()),
        logging: Logging { log_format: Some("JSON".into()), ..Logging::default() },
        layers: vec!["arn:aws:lambda:eu-west-1:123456789012:layer:otel:3".into()],
        role: Some(role("orders-role")),
        resource_policy: Some(
            parse_resource_policy(&format!(
                r#"{{"Statement":[{{"Sid":"s3","Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}","Condition":{{"StringEquals":{{"AWS:SourceAccount":"{ACCT}"}},"ArnLike":{{"AWS:SourceArn":"arn:aws:s3:::orders-in"}}}}}}]}}"#
            ))
            .unwrap(),
        ),
        code_signing: Some(CodeSigning {
            attached_arn: Some(CSC.into()),
            declared_policy: Some("Enforce".into()),
            declared_exists: true,
        }),
        tags: Some([(names::OWNER_TAG.to_string(), "test/team/orders".to_string())].into()),
        ..ObservedFunction::default()
    };
    let aws = full_spec().identity.unwrap().aws.unwrap();
    let doc = desired_policy(&p, &ctx(), &o, &aws);
    o.role
        .as_mut()
        .unwrap()
        .inline_policies
        .insert(names::INLINE_POLICY_NAME.into(), doc);
    o
}

const CSC: &str = "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0";

fn full_spec() -> FunctionPostureSpec {
    FunctionPostureSpec {
        identity: Some(identity(true)),
        triggers: Some(triggers(PublicAccess::Deny)),
        network: Some(NetworkControl {
            aws: Some(AwsNetwork {
                subnet_ids: vec!["subnet-0a1b2c3d".into()],
                security_group_ids: vec!["sg-0a1b2c3d".into()],
            }),
            azure: None,
            gcp: None,
        }),
        supply_chain: Some(SupplyChainControl {
            aws: Some(AwsSupplyChain {
                code_signing_config_arn: Some(CSC.into()),
                allowed_layers: Some(vec!["arn:aws:lambda:eu-west-1:123456789012:layer:otel".into()]),
            }),
            azure: None,
            gcp: None,
        }),
        observability: Some(ObservabilityControl {
            tracing: Some(TracingMode::Active),
            structured_logs: Some(true),
        }),
        ..spec()
    }
}

fn run(s: FunctionPostureSpec, o: &ObservedFunction) -> Plan {
    plan(&posture(s), &ctx(), o)
}

fn checks(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn ops(p: &Plan) -> Vec<&'static str> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Aws(a) => a.op(),
            other => panic!("not an AWS action: {other:?}"),
        })
        .collect()
}

fn aws_actions(p: &Plan) -> Vec<&AwsAction> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Aws(a) => a,
            other => panic!("not an AWS action: {other:?}"),
        })
        .collect()
}

#[test]
fn compliant_function_plans_nothing() {
    let p = run(full_spec(), &compliant());
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(p.principal.as_deref(), Some(ROLE_ARN));
}

#[test]
fn undeclared_controls_are_not_checked() {
    let mut o = compliant();
    o.tracing_mode = Some("PassThrough".into());
    o.vpc = None;
    o.resource_policy = Some(parse_resource_policy(r#"{"Statement":[{"Sid":"p","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}]}"#).unwrap());
    let p = run(spec(), &o);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
}

#[test]
fn shared_role_moves_to_a_new_dedicated_role() {
    let mut o = compliant();
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.identity.sharedRole"]);
    assert!(p.findings[0].remediable);
    assert_eq!(
        ops(&p),
        vec!["CreateRole", "PutRolePolicy", "UpdateFunctionConfiguration"]
    );
    let acts = aws_actions(&p);
    let AwsAction::CreateRole {
        role_name,
        path,
        trust_policy,
        tags,
        ..
    } = acts[0]
    else {
        unreachable!()
    };
    assert!(role_name.starts_with("zerofn-orders-") && role_name.len() <= 64);
    assert_eq!(path, "/zerofn/");
    assert!(PolicyDocument::parse(trust_policy).unwrap().trusts_only_lambda());
    assert_eq!(tags.get(names::MANAGED_TAG).map(String::as_str), Some("zerofn"));
    let AwsAction::PutRolePolicy {
        role_name: policy_role, ..
    } = acts[1]
    else {
        unreachable!()
    };
    assert_eq!(
        policy_role, role_name,
        "policy goes on the new role, never on the shared one"
    );
    let AwsAction::UpdateFunctionConfiguration {
        role: Some(r),
        vpc: None,
        ..
    } = acts[2]
    else {
        unreachable!()
    };
    assert_eq!(r, &format!("arn:aws:iam::123456789012:role/zerofn/{role_name}"));
}

#[test]
fn shared_role_without_create_is_reported_and_left_alone() {
    let mut o = compliant();
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    o.role.as_mut().unwrap().inline_policies.insert(
        "admin".into(),
        PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap(),
    );
    let p = run(
        FunctionPostureSpec {
            identity: Some(identity(false)),
            ..full_spec()
        },
        &o,
    );
    assert_eq!(
        checks(&p),
        vec!["aws.identity.extraInlinePolicy", "aws.identity.sharedRole"]
    );
    assert!(p.findings.iter().all(|f| !f.remediable), "{:#?}", p.findings);
    assert!(p.actions.is_empty(), "a shared role is never changed: {:#?}", p.actions);
}

#[test]
fn existing_dedicated_role_is_reused_not_recreated() {
    let mut o = compliant();
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    let name = names::dedicated_role_name("orders", FN_ARN);
    let mut mine = role(&name);
    mine.arn = format!("arn:aws:iam::123456789012:role/zerofn/{name}");
    mine.tags.insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
    o.dedicated_role = Some(mine);
    let p = run(full_spec(), &o);
    assert_eq!(ops(&p), vec!["PutRolePolicy", "UpdateFunctionConfiguration"]);
}

#[test]
fn a_foreign_role_with_the_dedicated_name_is_never_adopted() {
    let mut o = compliant();
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    o.dedicated_role = Some(role(&names::dedicated_role_name("orders", FN_ARN)));
    let p = run(full_spec(), &o);
    assert!(!p.findings[0].remediable);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn admin_inline_policy_and_managed_policies_are_removed() {
    let mut o = compliant();
    let r = o.role.as_mut().unwrap();
    r.inline_policies.insert(
        "everything".into(),
        PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*:*","Resource":"*"}}"#).unwrap(),
    );
    r.attached_policies
        .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    r.attached_policies
        .insert("arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy".into());
    let mut s = full_spec();
    s.identity.as_mut().unwrap().aws.as_mut().unwrap().managed_policies =
        vec!["arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy".into()];
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec!["aws.identity.extraInlinePolicy", "aws.identity.unlistedManagedPolicy"]
    );
    assert!(p.findings.iter().all(|f| f.severity == Severity::Critical));
    assert_eq!(ops(&p), vec!["DeleteRolePolicy", "DetachRolePolicy"]);
}

#[test]
fn drifted_inline_policy_is_rewritten_and_boundary_added_never_removed() {
    let mut o = compliant();
    o.role.as_mut().unwrap().inline_policies.insert(
        names::INLINE_POLICY_NAME.into(),
        PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#).unwrap(),
    );
    let mut s = full_spec();
    s.identity.as_mut().unwrap().aws.as_mut().unwrap().permissions_boundary =
        Some("arn:aws:iam::123456789012:policy/boundary".into());
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec!["aws.identity.inlinePolicy", "aws.identity.permissionsBoundary"]
    );
    assert_eq!(ops(&p), vec!["PutRolePolicy", "PutRolePermissionsBoundary"]);

    // A boundary that exists but is not declared stays.
    let mut o = compliant();
    o.role.as_mut().unwrap().permissions_boundary = Some("arn:aws:iam::123456789012:policy/other".into());
    let p = run(full_spec(), &o);
    assert!(p.actions.is_empty());
}

#[test]
fn baseline_follows_tracing_vpc_and_custom_log_group() {
    let mut o = compliant();
    o.logging.log_group = Some("/custom/orders".into());
    let p = posture(full_spec());
    let doc = desired_policy(&p, &ctx(), &o, &full_spec().identity.unwrap().aws.unwrap());
    let actions = doc.allowed_actions();
    for a in [
        "logs:putlogevents",
        "xray:puttracesegments",
        "ec2:createnetworkinterface",
        "dynamodb:getitem",
    ] {
        assert!(actions.contains(a), "{a} missing from {actions:?}");
    }
    assert!(doc.to_json().contains("log-group:/custom/orders:*"));
    let bare = posture(FunctionPostureSpec {
        identity: Some(identity(false)),
        ..spec()
    });
    let doc = desired_policy(&bare, &ctx(), &o, &identity(false).aws.unwrap());
    assert!(!doc.allowed_actions().contains("xray:puttracesegments"));
    assert!(!doc.allowed_actions().contains("ec2:createnetworkinterface"));
}

#[test]
fn wildcard_principal_is_removed_and_declared_invoker_added() {
    let mut o = compliant();
    o.resource_policy = Some(
        parse_resource_policy(
            r#"{"Statement":[{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}]}"#,
        )
        .unwrap(),
    );
    let p = run(full_spec(), &o);
    assert_eq!(
        checks(&p),
        vec!["aws.triggers.missingInvoker", "aws.triggers.publicPrincipal"]
    );
    assert_eq!(
        ops(&p),
        vec!["AddPermission", "RemovePermission"],
        "add the compliant grant before removing"
    );
    let AwsAction::AddPermission {
        principal,
        source_arn,
        source_account,
        ..
    } = aws_actions(&p)[0]
    else {
        unreachable!()
    };
    assert_eq!(principal, "s3.amazonaws.com");
    assert_eq!(source_arn.as_deref(), Some("arn:aws:s3:::orders-in"));
    assert_eq!(source_account.as_deref(), Some(ACCT));
}

#[test]
fn statement_missing_source_account_is_replaced() {
    let mut o = compliant();
    o.resource_policy = Some(
        parse_resource_policy(
            r#"{"Statement":[{"Sid":"loose","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"x","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::orders-in"}}}]}"#,
        )
        .unwrap(),
    );
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.unscopedInvoker"]);
    assert!(p.findings[0].observed.contains("AWS:SourceAccount"));
    assert_eq!(ops(&p), vec!["AddPermission", "RemovePermission"]);
}

#[test]
fn unlisted_invokers_follow_remove_unlisted_but_public_ones_always_go() {
    let mut o = compliant();
    let mut statements = o.resource_policy.clone().unwrap();
    statements.extend(
        parse_resource_policy(
            r#"{"Statement":[
            {"Sid":"partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"lambda:InvokeFunction","Resource":"x"},
            {"Sid":"sns","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"x"},
            {"Sid":"open","Effect":"Allow","Principal":{"AWS":"*"},"Action":"lambda:InvokeFunction","Resource":"x"}]}"#,
        )
        .unwrap(),
    );
    o.resource_policy = Some(statements);
    let mut s = full_spec();
    s.triggers.as_mut().unwrap().remove_unlisted = false;
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec![
            "aws.triggers.publicPrincipal",
            "aws.triggers.unlistedInvoker",
            "aws.triggers.unscopedInvoker"
        ]
    );
    let removed: Vec<_> = aws_actions(&p)
        .into_iter()
        .filter_map(|a| match a {
            AwsAction::RemovePermission { statement_id, .. } => Some(statement_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        vec!["sns", "open"],
        "the partner grant stays when removeUnlisted is false"
    );
}

#[test]
fn public_url_gets_iam_auth_or_is_deleted() {
    let mut o = compliant();
    o.url = Some(FunctionUrl {
        auth_type: "NONE".into(),
        url: "https://x.lambda-url".into(),
    });
    let p = run(
        FunctionPostureSpec {
            triggers: Some(triggers(PublicAccess::RequireAuth)),
            ..full_spec()
        },
        &o,
    );
    assert_eq!(checks(&p), vec!["aws.triggers.publicUrl"]);
    assert_eq!(ops(&p), vec!["UpdateFunctionUrlConfig"]);
    // Deny forbids any URL, even an authenticated one.
    o.url = Some(FunctionUrl {
        auth_type: "AWS_IAM".into(),
        url: "https://x.lambda-url".into(),
    });
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.functionUrl"]);
    assert_eq!(ops(&p), vec!["DeleteFunctionUrlConfig"]);
    // Explicitly allowed with IAM auth: compliant.
    let mut s = full_spec();
    s.triggers.as_mut().unwrap().aws.as_mut().unwrap().function_url = Some(FunctionUrlPolicy::Allowed);
    assert!(run(s, &o).findings.is_empty());
}

#[test]
fn unlisted_event_sources_are_disabled_not_deleted() {
    let mut o = compliant();
    o.event_source_mappings = vec![
        EventSourceMapping {
            uuid: "a".into(),
            event_source_arn: Some("arn:aws:sqs:eu-west-1:123456789012:orders".into()),
            state: "Enabled".into(),
        },
        EventSourceMapping {
            uuid: "b".into(),
            event_source_arn: Some("arn:aws:sqs:eu-west-1:123456789012:other".into()),
            state: "Enabled".into(),
        },
        EventSourceMapping {
            uuid: "c".into(),
            event_source_arn: Some("arn:aws:sqs:eu-west-1:123456789012:old".into()),
            state: "Disabled".into(),
        },
    ];
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.unlistedEventSource"]);
    assert_eq!(
        aws_actions(&p),
        vec![&AwsAction::DisableEventSourceMapping {
            uuid: "b".into(),
            event_source_arn: "arn:aws:sqs:eu-west-1:123456789012:other".into()
        }]
    );
}

#[test]
fn no_vpc_and_partial_vpc() {
    let mut o = compliant();
    o.vpc = None;
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.network.noVpc"]);
    o.vpc = Some(Vpc {
        subnet_ids: ["subnet-0a1b2c3d".to_string()].into(),
        security_group_ids: ["sg-00000000".to_string(), "sg-0a1b2c3d".to_string()].into(),
        ipv6_allowed_for_dual_stack: Some(true),
    });
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.network.securityGroups"]);
    let AwsAction::UpdateFunctionConfiguration { vpc: Some(v), .. } = aws_actions(&p)[0] else {
        unreachable!()
    };
    assert_eq!(v.security_group_ids, ["sg-0a1b2c3d".to_string()].into());
    assert_eq!(
        v.ipv6_allowed_for_dual_stack,
        Some(true),
        "unrelated VPC settings are kept"
    );
}

#[test]
fn layers_are_reported_never_stripped() {
    let mut o = compliant();
    o.layers = vec![
        "arn:aws:lambda:eu-west-1:123456789012:layer:otel:9".into(),
        "arn:aws:lambda:eu-west-1:999999999999:layer:miner:1".into(),
        "arn:aws:lambda:eu-west-1:123456789012:layer:otel".into(),
    ];
    let p = run(full_spec(), &o);
    assert_eq!(
        checks(&p),
        vec!["aws.supplyChain.layerNotAllowed", "aws.supplyChain.unpinnedLayer"]
    );
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(p.actions.is_empty());
}

#[test]
fn code_signing_attached_but_warn_policy_only_reported() {
    let mut o = compliant();
    o.code_signing = Some(CodeSigning {
        attached_arn: None,
        declared_policy: Some("Warn".into()),
        declared_exists: true,
    });
    let p = run(full_spec(), &o);
    assert_eq!(
        checks(&p),
        vec!["aws.supplyChain.codeSigningConfig", "aws.supplyChain.codeSigningPolicy"]
    );
    assert_eq!(ops(&p), vec!["PutFunctionCodeSigningConfig"]);
    o.code_signing = Some(CodeSigning {
        attached_arn: None,
        declared_policy: None,
        declared_exists: false,
    });
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.supplyChain.codeSigningConfig"]);
    assert!(p.actions.is_empty());
}

#[test]
fn tracing_and_logging_merge_into_one_update() {
    let mut o = compliant();
    o.tracing_mode = Some("PassThrough".into());
    o.logging = Logging {
        log_format: Some("Text".into()),
        log_group: Some("/aws/lambda/orders".into()),
        ..Logging::default()
    };
    let mut s = full_spec();
    s.identity = None;
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec!["aws.observability.logFormat", "aws.observability.tracing"]
    );
    assert_eq!(ops(&p), vec!["UpdateFunctionConfiguration"]);
    let AwsAction::UpdateFunctionConfiguration {
        tracing_mode,
        logging: Some(l),
        ..
    } = aws_actions(&p)[0]
    else {
        unreachable!()
    };
    assert_eq!(tracing_mode.as_deref(), Some("Active"));
    assert_eq!(
        l.log_group.as_deref(),
        Some("/aws/lambda/orders"),
        "the log group is kept"
    );
}

#[test]
fn ownership_is_claimed_once_and_respected() {
    let mut o = compliant();
    o.tags = Some(Default::default());
    let p = run(full_spec(), &o);
    assert_eq!(ops(&p), vec!["TagResource"]);
    assert!(p.findings.is_empty());
    o.tags = Some([(names::OWNER_TAG.to_string(), "other-cluster/ns/x".to_string())].into());
    o.tracing_mode = None;
    let p = run(full_spec(), &o);
    assert_eq!(
        p.blocked,
        Some(Blocked::Conflict {
            owner: "other-cluster/ns/x".into()
        })
    );
    assert!(p.actions.is_empty());
    assert_eq!(
        checks(&p),
        vec!["aws.observability.tracing"],
        "findings are still reported"
    );
}

#[test]
fn audit_mode_neither_claims_nor_is_blocked() {
    let mut o = compliant();
    o.tags = Some([(names::OWNER_TAG.to_string(), "someone/else/x".to_string())].into());
    let p = run(
        FunctionPostureSpec {
            mode: Mode::Audit,
            ..full_spec()
        },
        &o,
    );
    assert!(p.blocked.is_none());
    assert!(p.actions.is_empty());
}

#[test]
fn role_trusted_by_more_than_lambda_is_reported() {
    let mut o = compliant();
    o.role.as_mut().unwrap().trust = PolicyDocument::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap();
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.identity.roleTrust"]);
    assert!(!p.findings[0].remediable);
}

// ------------------------------------------------------------ no widening

/// A small deterministic generator: the sweep is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize].clone()
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
}

fn random_case(r: &mut Rng) -> (FunctionPostureSpec, ObservedFunction) {
    let mut s = full_spec();
    s.mode = r.pick(&[Mode::Enforce, Mode::Audit]);
    s.identity.as_mut().unwrap().create_if_shared = r.coin();
    s.identity.as_mut().unwrap().dedicated = r.coin();
    if r.coin() {
        s.identity.as_mut().unwrap().aws.as_mut().unwrap().permissions_boundary =
            Some("arn:aws:iam::123456789012:policy/boundary".into());
    }
    let t = s.triggers.as_mut().unwrap();
    t.remove_unlisted = r.coin();
    t.public_access = r.pick(&[PublicAccess::Deny, PublicAccess::RequireAuth]);
    t.aws.as_mut().unwrap().function_url = r.pick(&[
        None,
        Some(FunctionUrlPolicy::Allowed),
        Some(FunctionUrlPolicy::Forbidden),
    ]);
    if r.coin() {
        t.aws.as_mut().unwrap().invokers.push(AwsInvoker {
            principal: "210987654321".into(),
            source_arn: None,
            source_account: None,
            action: InvokeAction::InvokeFunctionUrl,
        });
    }
    for (i, keep) in [r.coin(), r.coin(), r.coin(), r.coin()].into_iter().enumerate() {
        if !keep {
            match i {
                0 => s.network = None,
                1 => s.supply_chain = None,
                2 => s.observability = None,
                _ => s.identity = None,
            }
        }
    }

    let mut o = compliant();
    if r.coin() {
        o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:other".into()];
    }
    let admin = PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
    let role = o.role.as_mut().unwrap();
    match r.next() % 4 {
        0 => {
            role.inline_policies.clear();
        }
        1 => {
            role.inline_policies
                .insert(names::INLINE_POLICY_NAME.into(), admin.clone());
        }
        2 => {
            role.inline_policies.insert("legacy".into(), admin.clone());
        }
        _ => {}
    }
    if r.coin() {
        role.attached_policies
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    }
    if r.coin() {
        o.role = None;
    }
    if r.coin() {
        let mut d = role_of(&names::dedicated_role_name("orders", FN_ARN));
        if r.coin() {
            d.tags.insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
        }
        if r.coin() {
            d.inline_policies.insert("legacy".into(), admin.clone());
        }
        o.dedicated_role = Some(d);
    }
    let statements = [
        r#"{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}"#,
        r#"{"Sid":"loose","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"x"}"#,
        r#"{"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::555555555555:root"},"Action":"lambda:InvokeFunction","Resource":"x"}"#,
        r#"{"Sid":"url","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"x","Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}}"#,
    ];
    let chosen: Vec<&str> = statements.iter().copied().filter(|_| r.coin()).collect();
    o.resource_policy = match r.next() % 3 {
        0 => None,
        _ => Some(parse_resource_policy(&format!(r#"{{"Statement":[{}]}}"#, chosen.join(","))).unwrap()),
    };
    o.url = r.pick(&[
        None,
        Some(FunctionUrl {
            auth_type: "NONE".into(),
            url: "u".into(),
        }),
        Some(FunctionUrl {
            auth_type: "AWS_IAM".into(),
            url: "u".into(),
        }),
    ]);
    if r.coin() {
        o.event_source_mappings = vec![EventSourceMapping {
            uuid: "m".into(),
            event_source_arn: Some("arn:aws:kinesis:eu-west-1:123456789012:stream/x".into()),
            state: "Enabled".into(),
        }];
    }
    o.vpc = r.pick(&[
        None,
        Some(Vpc {
            subnet_ids: ["subnet-99999999".to_string()].into(),
            ..Vpc::default()
        }),
        o.vpc.clone(),
    ]);
    o.tracing_mode = r.pick(&[None, Some("PassThrough".into()), Some("Active".into())]);
    o.code_signing = Some(CodeSigning {
        attached_arn: r.pick(&[None, Some(CSC.to_string())]),
        declared_policy: r.pick(&[Some("Warn".to_string()), Some("Enforce".to_string())]),
        declared_exists: r.coin(),
    });
    o.tags = r.pick(&[
        None,
        Some(Default::default()),
        Some([(names::OWNER_TAG.to_string(), "test/team/orders".to_string())].into()),
        Some([(names::OWNER_TAG.to_string(), "x/y/z".to_string())].into()),
    ]);
    (s, o)
}

fn role_of(name: &str) -> ObservedRole {
    let mut r = role(name);
    r.arn = format!("arn:aws:iam::123456789012:role/zerofn/{name}");
    r
}

/// Whether an action only removes access or adds what the spec declares.
fn within_spec(a: &AwsAction, p: &Posture, o: &ObservedFunction) -> Result<(), String> {
    let s = &p.spec;
    let dedicated = names::dedicated_role_name(&o.name, &o.arn);
    match a {
        AwsAction::TagFunction { key, value, .. } => (key == names::OWNER_TAG && *value == p.owner)
            .then_some(())
            .ok_or("foreign tag".into()),
        AwsAction::CreateRole {
            role_name,
            trust_policy,
            ..
        } => (role_name == &dedicated && PolicyDocument::parse(trust_policy).is_ok_and(|d| d.trusts_only_lambda()))
            .then_some(())
            .ok_or("role trusted beyond Lambda".into()),
        AwsAction::PutRolePolicy {
            document, role_name, ..
        } => {
            let aws = s
                .identity
                .as_ref()
                .and_then(|i| i.aws.as_ref())
                .ok_or("no identity declared")?;
            let want = desired_policy(p, &ctx(), o, aws);
            let doc = PolicyDocument::parse(document).map_err(|e| e.to_string())?;
            if !doc.same_as(&want) {
                return Err(format!("policy {document} is not the declared one"));
            }
            if !o.role_shared_with.is_empty() && o.role.as_ref().is_some_and(|r| &r.name == role_name) {
                return Err("changed a shared role".into());
            }
            Ok(())
        }
        AwsAction::PutRolePermissionsBoundary { boundary_arn, .. } => {
            let declared = s
                .identity
                .as_ref()
                .and_then(|i| i.aws.as_ref())
                .and_then(|a| a.permissions_boundary.as_ref());
            (declared == Some(boundary_arn))
                .then_some(())
                .ok_or("undeclared boundary".into())
        }
        AwsAction::UpdateFunctionConfiguration {
            role,
            vpc,
            tracing_mode,
            logging,
            ..
        } => {
            if let Some(r) = role
                && !r.ends_with(&format!("role/zerofn/{dedicated}"))
            {
                return Err(format!("switched to a role zerofn did not make: {r}"));
            }
            if let Some(v) = vpc {
                let n = s
                    .network
                    .as_ref()
                    .and_then(|n| n.aws.as_ref())
                    .ok_or("vpc without declaration")?;
                if v.subnet_ids != n.subnet_ids.iter().cloned().collect()
                    || v.security_group_ids != n.security_group_ids.iter().cloned().collect()
                {
                    return Err("vpc not as declared".into());
                }
            }
            if tracing_mode.is_some() && s.observability.as_ref().and_then(|x| x.tracing).is_none() {
                return Err("tracing not declared".into());
            }
            if logging.as_ref().is_some_and(|l| l.log_format != "JSON") {
                return Err("log format not JSON".into());
            }
            Ok(())
        }
        AwsAction::AddPermission {
            principal,
            action,
            source_arn,
            source_account,
            ..
        } => {
            let inv = s
                .triggers
                .as_ref()
                .and_then(|t| t.aws.as_ref())
                .ok_or("no triggers declared")?;
            inv.invokers
                .iter()
                .any(|i| {
                    &i.principal == principal
                        && i.action.as_str() == action
                        && &i.source_arn == source_arn
                        && &i.source_account == source_account
                })
                .then_some(())
                .ok_or(format!("granted undeclared invoker {principal}"))
        }
        AwsAction::UpdateFunctionUrlAuthType { auth_type, .. } => {
            (auth_type == "AWS_IAM").then_some(()).ok_or("URL opened".into())
        }
        AwsAction::PutFunctionCodeSigningConfig {
            code_signing_config_arn,
            ..
        } => {
            let declared = s
                .supply_chain
                .as_ref()
                .and_then(|x| x.aws.as_ref())
                .and_then(|x| x.code_signing_config_arn.as_ref());
            (declared == Some(code_signing_config_arn))
                .then_some(())
                .ok_or("undeclared CSC".into())
        }
        AwsAction::RemovePermission { .. }
        | AwsAction::DeleteRolePolicy { .. }
        | AwsAction::DetachRolePolicy { .. }
        | AwsAction::DeleteFunctionUrl { .. }
        | AwsAction::DisableEventSourceMapping { .. } => Ok(()),
        AwsAction::UntagFunction { .. } => Err("plan never releases ownership".into()),
    }
}

#[test]
fn no_action_ever_grants_beyond_the_spec() {
    let mut r = Rng(0x9e3779b97f4a7c15);
    let mut actions_seen = std::collections::BTreeSet::new();
    for i in 0..4000 {
        let (s, o) = random_case(&mut r);
        let p = posture(s);
        let plan = plan(&p, &ctx(), &o);
        if p.mode() == Mode::Audit {
            assert!(
                plan.actions
                    .iter()
                    .all(|a| !matches!(a, Action::Aws(AwsAction::TagFunction { .. })))
            );
        }
        for a in aws_actions(&plan) {
            actions_seen.insert(a.op());
            if let Err(e) = within_spec(a, &p, &o) {
                panic!("case {i}: {e}\naction: {a:#?}\nspec: {:#?}\nobserved: {o:#?}", p.spec);
            }
        }
    }
    // The sweep is only meaningful if it produced every kind of write.
    for op in [
        "TagResource",
        "CreateRole",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "PutRolePermissionsBoundary",
        "UpdateFunctionConfiguration",
        "AddPermission",
        "RemovePermission",
        "UpdateFunctionUrlConfig",
        "DeleteFunctionUrlConfig",
        "UpdateEventSourceMapping",
        "PutFunctionCodeSigningConfig",
    ] {
        assert!(actions_seen.contains(op), "sweep never produced {op}");
    }
}
