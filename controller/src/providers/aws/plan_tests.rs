//! Table tests of the AWS planner: one case per control and edge, and a
//! generated sweep proving no action ever grants beyond the spec.

use super::*;
use crate::api::*;
use crate::fixtures::{aws_spec, sweep};
use crate::providers::aws::model::*;
use crate::providers::aws::policy::parse_resource_policy;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use std::cell::{Cell, RefCell};

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
    aws_spec("orders")
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
        unused_permissions: None,
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
            api_gateway: None,
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
        role_id: format!("AROA{}", name.to_ascii_uppercase().replace('-', "")),
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
            vpc_id: Some("vpc-0a1b2c3d".into()),
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
                require_private_subnets: false,
                require_flow_logs: false,
                flow_log_destination: None,
                egress: None,
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
            aws: None,
            azure: None,
            gcp: None,
        }),
        ..spec()
    }
}

fn run(s: FunctionPostureSpec, o: &ObservedFunction) -> Plan<AwsAction> {
    plan(&posture(s), &ctx(), o)
}

/// A posture whose status records that zerofn minted these roles.
fn minted_posture(s: FunctionPostureSpec, roles: &[&ObservedRole]) -> Posture {
    let mut p = posture(s);
    p.minted = roles
        .iter()
        .map(|r| crate::providers::MintedIdentity {
            principal: r.arn.clone(),
            unique_id: r.role_id.clone(),
        })
        .collect();
    p
}

/// Plan for a function whose current role zerofn minted (case (a)).
fn run_minted(s: FunctionPostureSpec, o: &ObservedFunction) -> Plan<AwsAction> {
    let r = o.role.clone().expect("a role");
    plan(&minted_posture(s, &[&r]), &ctx(), o)
}

fn checks(p: &Plan<AwsAction>) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn ops(p: &Plan<AwsAction>) -> Vec<&'static str> {
    p.actions.iter().map(|a| a.op()).collect()
}

fn aws_actions(p: &Plan<AwsAction>) -> Vec<&AwsAction> {
    p.actions.iter().collect()
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
    let AwsAction::UpdateFunctionConfiguration { fields, .. } = acts[2] else {
        unreachable!()
    };
    assert_eq!(
        fields.role(),
        Some(format!("arn:aws:iam::123456789012:role/zerofn/{role_name}").as_str())
    );
    assert_eq!(fields.vpc(), None);
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
    o.dedicated_role = Some(mine.clone());
    let p = plan(&minted_posture(full_spec(), &[&mine]), &ctx(), &o);
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
    attach(
        r,
        "arn:aws:iam::aws:policy/AdministratorAccess",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    );
    attach(
        r,
        "arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy",
        r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*"}}"#,
    );
    let mut s = full_spec();
    s.identity.as_mut().unwrap().aws.as_mut().unwrap().managed_policies =
        vec!["arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy".into()];
    let p = run_minted(s, &o);
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
    let p = run_minted(s, &o);
    assert_eq!(
        checks(&p),
        vec!["aws.identity.inlinePolicy", "aws.identity.permissionsBoundary"]
    );
    assert_eq!(ops(&p), vec!["PutRolePermissionsBoundary", "PutRolePolicy"]);

    // A boundary that exists but is not declared stays.
    let mut o = compliant();
    o.role.as_mut().unwrap().permissions_boundary = Some("arn:aws:iam::123456789012:policy/other".into());
    let p = run_minted(full_spec(), &o);
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
        vpc_id: Some("vpc-0a1b2c3d".into()),
        subnet_ids: ["subnet-0a1b2c3d".to_string()].into(),
        security_group_ids: ["sg-00000000".to_string(), "sg-0a1b2c3d".to_string()].into(),
        ipv6_allowed_for_dual_stack: Some(true),
    });
    let p = run(full_spec(), &o);
    assert_eq!(checks(&p), vec!["aws.network.securityGroups"]);
    let AwsAction::UpdateFunctionConfiguration { fields, .. } = aws_actions(&p)[0] else {
        unreachable!()
    };
    let v = fields.vpc().expect("a VPC update");
    assert_eq!(v.security_group_ids, ["sg-0a1b2c3d".to_string()].into());
    assert_eq!(
        v.ipv6_allowed_for_dual_stack,
        Some(true),
        "unrelated VPC settings are kept"
    );
}

/// A subnet whose route table sends everything to an internet gateway is a
/// High finding naming the route, never fixed (the table is shared); route
/// tables that could not be read are not judged private; private subnets
/// pass; without the requirement nothing is read or said.
#[test]
fn a_public_subnet_is_named_and_an_unread_route_table_is_not_passed() {
    let mut spec = full_spec();
    if let Some(n) = spec.network.as_mut().and_then(|n| n.aws.as_mut()) {
        n.require_private_subnets = true;
    }
    let route = InternetRoute {
        route_table: "rtb-0a1b".into(),
        destination: "0.0.0.0/0".into(),
        gateway: "igw-0a1b".into(),
    };
    let mut o = compliant();
    o.subnet_routes = Some(SubnetRoutes::Observed(
        [("subnet-0a1b2c3d".to_string(), vec![route])].into(),
    ));
    let p = run(spec.clone(), &o);
    assert_eq!(checks(&p), vec!["aws.network.publicSubnet"]);
    let f = &p.findings[0];
    assert_eq!(f.severity, Severity::High);
    assert!(!f.remediable);
    assert_eq!(f.field, "VpcConfig.SubnetIds[subnet-0a1b2c3d]");
    assert!(
        f.observed.contains("0.0.0.0/0 → igw-0a1b in rtb-0a1b"),
        "{}",
        f.observed
    );
    assert!(p.actions.is_empty(), "route tables are never changed");

    o.subnet_routes = Some(SubnetRoutes::NotObserved("AccessDenied".into()));
    let p = run(spec.clone(), &o);
    assert_eq!(checks(&p), vec!["aws.network.routesNotObserved"]);
    assert!(p.findings[0].message.contains("AccessDenied"));

    o.subnet_routes = Some(SubnetRoutes::Observed([("subnet-0a1b2c3d".to_string(), vec![])].into()));
    assert!(run(spec.clone(), &o).findings.is_empty(), "a private subnet passes");
    o.subnet_routes = None;
    assert_eq!(
        checks(&run(spec, &o)),
        vec!["aws.network.routesNotObserved"],
        "required but not observed is never a pass"
    );
    assert!(run(full_spec(), &o).findings.is_empty());
}

/// Flow logs on the VPC, or on every attached subnet, pass; a subnet left
/// out is named; flow logs that could not be read are not judged, never
/// passed.
#[test]
fn traffic_that_nothing_records_is_a_finding() {
    let mut spec = full_spec();
    if let Some(n) = spec.network.as_mut().and_then(|n| n.aws.as_mut()) {
        n.require_flow_logs = true;
    }
    let mut o = compliant();
    let with = |ids: &[&str]| Some(FlowLogs::Observed(ids.iter().map(|s| s.to_string()).collect()));
    o.flow_logs = with(&["vpc-0a1b2c3d"]);
    assert!(
        run(spec.clone(), &o).findings.is_empty(),
        "a VPC flow log covers every subnet"
    );
    o.flow_logs = with(&["subnet-0a1b2c3d"]);
    assert!(
        run(spec.clone(), &o).findings.is_empty(),
        "so do flow logs on each subnet"
    );
    o.flow_logs = with(&["subnet-ffffffff"]);
    let p = run(spec.clone(), &o);
    assert_eq!(checks(&p), vec!["aws.network.noFlowLogs"]);
    assert!(
        p.findings[0].observed.contains("subnet-0a1b2c3d"),
        "{}",
        p.findings[0].observed
    );
    assert!(!p.findings[0].remediable && p.actions.is_empty());
    // With a declared destination, Enforce creates one on the VPC; one that
    // could not be read is never answered with a new one.
    let mut declared = spec.clone();
    let destination = crate::api::FlowLogDestination {
        log_group: Some("/vpc/flow".into()),
        delivery_role_arn: Some("arn:aws:iam::123456789012:role/flow".into()),
        s3_arn: None,
    };
    if let Some(n) = declared.network.as_mut().and_then(|n| n.aws.as_mut()) {
        n.flow_log_destination = Some(destination.clone());
    }
    let p = run(declared.clone(), &o);
    assert!(p.findings[0].remediable);
    assert_eq!(
        p.actions,
        vec![AwsAction::CreateFlowLog {
            vpc_id: "vpc-0a1b2c3d".into(),
            destination
        }]
    );
    o.flow_logs = Some(FlowLogs::NotObserved("UnauthorizedOperation".into()));
    assert!(run(declared, &o).actions.is_empty(), "nothing created on a guess");
    assert!(
        run(spec.clone(), &o).findings[0]
            .message
            .contains("UnauthorizedOperation")
    );
    o.flow_logs = None;
    assert_eq!(
        checks(&run(spec, &o)),
        vec!["aws.network.noFlowLogs"],
        "never a pass unobserved"
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
    let AwsAction::UpdateFunctionConfiguration { fields, .. } = aws_actions(&p)[0] else {
        unreachable!()
    };
    let l = fields.logging().expect("a logging update");
    assert_eq!(fields.tracing_mode(), Some("Active"));
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

/// The generated specs: every control on or off, every choice of each.
fn any_spec() -> impl Strategy<Value = FunctionPostureSpec> {
    (
        select(vec![Mode::Enforce, Mode::Audit]),
        any::<[bool; 3]>(),
        any::<bool>(),
        select(vec![PublicAccess::Deny, PublicAccess::RequireAuth]),
        select(vec![
            None,
            Some(FunctionUrlPolicy::Allowed),
            Some(FunctionUrlPolicy::Forbidden),
        ]),
        any::<bool>(),
        any::<[bool; 4]>(),
    )
        .prop_map(
            |(mode, [create, dedicated, boundary], remove_unlisted, public, url, url_invoker, keep)| {
                let mut s = full_spec();
                s.mode = mode;
                let id = s.identity.as_mut().unwrap();
                id.create_if_shared = create;
                id.dedicated = dedicated;
                if boundary {
                    id.aws.as_mut().unwrap().permissions_boundary =
                        Some("arn:aws:iam::123456789012:policy/boundary".into());
                }
                let t = s.triggers.as_mut().unwrap();
                t.remove_unlisted = remove_unlisted;
                t.public_access = public;
                t.aws.as_mut().unwrap().function_url = url;
                if url_invoker {
                    t.aws.as_mut().unwrap().invokers.push(AwsInvoker {
                        principal: "210987654321".into(),
                        source_arn: None,
                        source_account: None,
                        action: InvokeAction::InvokeFunctionUrl,
                    });
                }
                let [network, supply_chain, observability, identity] = keep;
                if !network {
                    s.network = None;
                }
                if !supply_chain {
                    s.supply_chain = None;
                }
                if !observability {
                    s.observability = None;
                }
                if !identity {
                    s.identity = None;
                }
                s
            },
        )
}

fn admin() -> PolicyDocument {
    PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap()
}

/// The generated roles of `any_case`: shared or not, an admin policy
/// inline (under zerofn's name or another) or attached, none at all, and a
/// role under the dedicated name, tagged or not, holding admin or not.
/// Shared, inline policy variant, admin attached, no role, dedicated role (tagged, admin).
type RoleChoices = (bool, u8, bool, bool, Option<(bool, bool)>);

fn any_roles() -> impl Strategy<Value = RoleChoices> {
    (
        any::<bool>(),
        0..4u8,
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<(bool, bool)>()),
    )
}

fn with_roles(o: &mut ObservedFunction, (shared, inline, attached, no_role, dedicated): RoleChoices) {
    if shared {
        o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:other".into()];
    }
    let role = o.role.as_mut().unwrap();
    match inline {
        0 => role.inline_policies.clear(),
        1 => {
            role.inline_policies.insert(names::INLINE_POLICY_NAME.into(), admin());
        }
        2 => {
            role.inline_policies.insert("legacy".into(), admin());
        }
        _ => {}
    }
    if attached {
        role.attached_policies
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        role.managed_documents.insert(
            "arn:aws:iam::aws:policy/AdministratorAccess".into(),
            ManagedDocument::Read(admin()),
        );
    }
    if no_role {
        o.role = None;
    }
    if let Some((tagged, legacy)) = dedicated {
        let mut d = role_of(&names::dedicated_role_name("orders", FN_ARN));
        if tagged {
            d.tags.insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
        }
        if legacy {
            d.inline_policies.insert("legacy".into(), admin());
        }
        o.dedicated_role = Some(d);
    }
}

/// Resource policies of the generated functions: any subset of an open
/// grant, a grant without source, another account, an open URL grant.
const OPEN_STATEMENTS: [&str; 4] = [
    r#"{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}"#,
    r#"{"Sid":"loose","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"x"}"#,
    r#"{"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::555555555555:root"},"Action":"lambda:InvokeFunction","Resource":"x"}"#,
    r#"{"Sid":"url","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"x","Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}}"#,
];

fn any_resource_policy() -> impl Strategy<Value = Option<Vec<ResourceStatement>>> {
    proptest::option::weighted(2.0 / 3.0, any::<[bool; 4]>()).prop_map(|chosen| {
        chosen.map(|chosen| {
            let statements: Vec<&str> = OPEN_STATEMENTS
                .iter()
                .zip(chosen)
                .filter_map(|(s, keep)| keep.then_some(*s))
                .collect();
            parse_resource_policy(&format!(r#"{{"Statement":[{}]}}"#, statements.join(","))).unwrap()
        })
    })
}

/// The function's configuration drifted every way the spec can judge.
fn any_configuration() -> impl Strategy<Value = ObservedFunction> {
    let url = |auth: &str| FunctionUrl {
        auth_type: auth.into(),
        url: "u".into(),
    };
    (
        select(vec![None, Some(url("NONE")), Some(url("AWS_IAM"))]),
        any::<bool>(),
        select(vec![
            None,
            Some(Vpc {
                subnet_ids: ["subnet-99999999".to_string()].into(),
                ..Vpc::default()
            }),
            compliant().vpc,
        ]),
        select(vec![None, Some("PassThrough".to_string()), Some("Active".to_string())]),
        (
            select(vec![None, Some(CSC.to_string())]),
            select(vec![Some("Warn".to_string()), Some("Enforce".to_string())]),
            any::<bool>(),
        ),
        select(vec![
            None,
            Some(Default::default()),
            Some([(names::OWNER_TAG.to_string(), "test/team/orders".to_string())].into()),
            Some([(names::OWNER_TAG.to_string(), "x/y/z".to_string())].into()),
        ]),
    )
        .prop_map(
            |(url, mapping, vpc, tracing_mode, (attached_arn, declared_policy, declared_exists), tags)| {
                let mut o = compliant();
                o.url = url;
                if mapping {
                    o.event_source_mappings = vec![EventSourceMapping {
                        uuid: "m".into(),
                        event_source_arn: Some("arn:aws:kinesis:eu-west-1:123456789012:stream/x".into()),
                        state: "Enabled".into(),
                    }];
                }
                o.vpc = vpc;
                o.tracing_mode = tracing_mode;
                o.code_signing = Some(CodeSigning {
                    attached_arn,
                    declared_policy,
                    declared_exists,
                });
                o.tags = tags;
                o
            },
        )
}

/// A generated case: a spec and a function that drifted from it.
fn any_case() -> impl Strategy<Value = (FunctionPostureSpec, ObservedFunction)> {
    (any_spec(), any_configuration(), any_roles(), any_resource_policy()).prop_map(|(s, mut o, roles, policy)| {
        with_roles(&mut o, roles);
        o.resource_policy = policy;
        (s, o)
    })
}

fn role_of(name: &str) -> ObservedRole {
    let mut r = role(name);
    r.arn = format!("arn:aws:iam::123456789012:role/zerofn/{name}");
    r
}

/// Whether an action only removes access or adds what the spec declares.
/// One arm per kind of action; long because the arms read best together.
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
        AwsAction::UpdateFunctionConfiguration { fields, .. } => {
            let (role, vpc) = (fields.role(), fields.vpc());
            let (tracing_mode, logging) = (fields.tracing_mode(), fields.logging());
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
            if logging.is_some_and(|l| l.log_format != "JSON") {
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
        AwsAction::SetLogRetention { days, .. } => {
            let declared = s
                .observability
                .as_ref()
                .and_then(|o| o.aws.as_ref())
                .and_then(|a| a.log_retention_days);
            (declared == Some(*days))
                .then_some(())
                .ok_or("undeclared retention".into())
        }
        AwsAction::AttachLayers { layers, .. } => {
            let declared: Vec<&String> = s
                .observability
                .iter()
                .flat_map(|o| o.aws.iter())
                .flat_map(|a| a.required_extensions.iter())
                .collect();
            layers
                .iter()
                .all(|l| declared.contains(&l))
                .then_some(())
                .ok_or("attached an undeclared layer".into())
        }
        AwsAction::RemovePermission { .. }
        | AwsAction::DeleteRolePolicy { .. }
        | AwsAction::DetachRolePolicy { .. }
        | AwsAction::DeleteFunctionUrl { .. }
        | AwsAction::DisableEventSourceMapping { .. } => Ok(()),
        AwsAction::UntagFunction { .. } => Err("plan never releases ownership".into()),
        AwsAction::AuthorizeEgress { group_id, rule } => {
            let e = declared_egress(p).ok_or("egress not declared")?;
            own_group(e, o, group_id)?;
            crate::providers::aws::egress::wanted(e)
                .contains(rule)
                .then_some(())
                .ok_or(format!("allowed undeclared egress {rule}"))
        }
        AwsAction::CreateFlowLog { destination, .. } => {
            let declared = s
                .network
                .as_ref()
                .and_then(|n| n.aws.as_ref())
                .and_then(|a| a.flow_log_destination.as_ref());
            (declared == Some(destination))
                .then_some(())
                .ok_or("flow log to an undeclared destination".into())
        }
        AwsAction::RevokeEgress { group_id, .. } => {
            own_group(declared_egress(p).ok_or("egress not declared")?, o, group_id)
        }
        AwsAction::AuthorizeApiMethod { .. }
        | AwsAction::AttachRequestValidator { .. }
        | AwsAction::DeployApiStage { .. } => super::front_doors_tests::narrows(a, o.front_doors.as_ref()),
    }
}

fn declared_egress(p: &Posture) -> Option<&crate::api::AwsEgress> {
    p.spec.network.as_ref()?.aws.as_ref()?.egress.as_ref()
}

/// A security group the posture names exclusive and nothing else uses.
fn own_group(e: &crate::api::AwsEgress, o: &ObservedFunction, group: &str) -> Result<(), String> {
    let unshared = matches!(&o.egress, Some(crate::providers::aws::model::Egress::Observed(gs))
        if gs.iter().any(|g| g.group_id == group && g.also_used_by.is_empty()));
    (e.exclusive_security_groups.iter().any(|g| g == group) && unshared)
        .then_some(())
        .ok_or(format!("changed {group}, which is not the function's own"))
}

#[test]
fn no_action_ever_grants_beyond_the_spec() {
    let actions_seen = RefCell::new(BTreeSet::new());
    sweep(4000, any_case(), |(s, o)| {
        let p = posture(s);
        let plan = plan(&p, &ctx(), &o);
        if p.mode() == Mode::Audit {
            prop_assert!(
                plan.actions.iter().all(|a| !matches!(a, AwsAction::TagFunction { .. })),
                "Audit claimed the function"
            );
        }
        for a in aws_actions(&plan) {
            actions_seen.borrow_mut().insert(a.op());
            if let Err(e) = within_spec(a, &p, &o) {
                return Err(TestCaseError::fail(format!("{e}\naction: {a:#?}")));
            }
        }
        Ok(())
    });
    // The sweep is only meaningful if it produced every kind of write (the
    // role writes are judged by the effective-access sweep below).
    let actions_seen = actions_seen.into_inner();
    for op in [
        "TagResource",
        "CreateRole",
        "PutRolePolicy",
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

// ------------------------------------------------------------ the identity rule

fn doc(json: &str) -> PolicyDocument {
    PolicyDocument::parse(json).unwrap()
}

const GUARDRAIL: &str =
    r#"{"Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}]}"#;

/// Attach managed policy `arn` whose default version reads `json`.
fn attach(r: &mut ObservedRole, arn: &str, json: &str) {
    r.attached_policies.insert(arn.into());
    r.managed_documents.insert(arn.into(), ManagedDocument::Read(doc(json)));
}

fn opted_in() -> FunctionPostureSpec {
    let mut s = full_spec();
    s.identity.as_mut().unwrap().edit_in_place_if_exclusive = true;
    s
}

/// Usage evidence that proves the role exclusive: every enabled region seen,
/// no other user.
fn exclusive_usage() -> RoleUsers {
    RoleUsers {
        others: vec![],
        regions_scanned: ["eu-west-1".to_string()].into(),
        regions_enabled: Ok(["eu-west-1".to_string()].into()),
    }
}

fn with_admin_policy(mut o: ObservedFunction) -> ObservedFunction {
    o.role.as_mut().unwrap().inline_policies.insert(
        "legacy".into(),
        doc(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
    );
    o
}

fn writes_to(p: &Plan<AwsAction>, role_name: &str) -> Vec<&'static str> {
    aws_actions(p)
        .into_iter()
        .filter(|a| match a {
            AwsAction::PutRolePolicy { role_name: r, .. }
            | AwsAction::DeleteRolePolicy { role_name: r, .. }
            | AwsAction::DetachRolePolicy { role_name: r, .. }
            | AwsAction::PutRolePermissionsBoundary { role_name: r, .. } => r == role_name,
            _ => false,
        })
        .map(|a| a.op())
        .collect()
}

#[test]
fn an_unrecorded_role_is_never_edited_in_place_the_function_moves() {
    let o = with_admin_policy(compliant());
    let p = run(full_spec(), &o);
    assert!(writes_to(&p, "orders-role").is_empty(), "{:#?}", p.actions);
    assert_eq!(
        ops(&p),
        vec!["CreateRole", "PutRolePolicy", "UpdateFunctionConfiguration"]
    );
    let f = p
        .findings
        .iter()
        .find(|f| f.check == "aws.identity.extraInlinePolicy")
        .unwrap();
    assert!(f.remediable);
    assert!(f.message.contains("not minted by zerofn"), "{}", f.message);
    assert!(f.message.contains("moves to"), "{}", f.message);
}

#[test]
fn a_tagged_but_unrecorded_role_is_not_adopted() {
    let mut o = with_admin_policy(compliant());
    o.role
        .as_mut()
        .unwrap()
        .tags
        .insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
    let p = run(full_spec(), &o);
    assert!(writes_to(&p, "orders-role").is_empty());
    assert!(
        p.findings
            .iter()
            .any(|f| f.message.contains("zerofn.dev/managed-by tag proves nothing")),
        "{:#?}",
        p.findings
    );
}

#[test]
fn a_role_minted_by_zerofn_is_fixed_in_place_and_says_so() {
    let o = with_admin_policy(compliant());
    let p = run_minted(full_spec(), &o);
    assert_eq!(ops(&p), vec!["DeleteRolePolicy"]);
    let f = &p.findings[0];
    assert!(
        f.message.contains("minted by zerofn (RoleId AROAORDERSROLE)"),
        "{}",
        f.message
    );
}

#[test]
fn a_minted_role_others_can_use_is_not_edited() {
    let mut o = with_admin_policy(compliant());
    o.role.as_mut().unwrap().instance_profiles = vec!["arn:aws:iam::123456789012:instance-profile/web".into()];
    let p = run_minted(full_spec(), &o);
    assert!(writes_to(&p, "orders-role").is_empty(), "{:#?}", p.actions);
}

#[test]
fn opt_in_edits_in_place_only_with_proof_of_exclusivity() {
    let mut o = with_admin_policy(compliant());
    o.role_users = Some(exclusive_usage());
    let p = run(opted_in(), &o);
    assert_eq!(ops(&p), vec!["DeleteRolePolicy"], "{:#?}", p.findings);
    assert!(p.findings[0].message.contains("opted in, exclusive"));

    type Spoil = fn(&mut ObservedFunction);
    let cases: [(&str, Spoil); 7] = [
        ("trust admits more than Lambda", |o| {
            o.role.as_mut().unwrap().trust = doc(
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ecs-tasks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#,
            )
        }),
        ("trust admits an account", |o| {
            o.role.as_mut().unwrap().trust = doc(
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":"sts:AssumeRole"}]}"#,
            )
        }),
        ("trust admits a federated principal", |o| {
            o.role.as_mut().unwrap().trust = doc(
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#,
            )
        }),
        ("in an instance profile", |o| {
            o.role.as_mut().unwrap().instance_profiles = vec!["arn:aws:iam::123456789012:instance-profile/web".into()]
        }),
        ("used by a published version", |o| {
            o.role_users.as_mut().unwrap().others = vec![format!("{FN_ARN}:3")]
        }),
        ("used in another region", |o| {
            o.role_users.as_mut().unwrap().others = vec!["arn:aws:lambda:us-east-1:123456789012:function:orders".into()]
        }),
        ("an enabled region is not scanned", |o| {
            o.role_users.as_mut().unwrap().regions_enabled =
                Ok(["eu-west-1".to_string(), "ap-south-1".to_string()].into())
        }),
    ];
    for (what, spoil) in cases {
        let mut o = with_admin_policy(compliant());
        o.role_users = Some(exclusive_usage());
        spoil(&mut o);
        let p = run(opted_in(), &o);
        assert!(
            writes_to(&p, "orders-role").is_empty(),
            "{what}: the role was edited: {:#?}",
            p.actions
        );
        let f = p
            .findings
            .iter()
            .find(|f| f.check == "aws.identity.extraInlinePolicy")
            .unwrap();
        assert!(f.message.contains("not provably exclusive"), "{what}: {}", f.message);
    }
    // Regions that cannot be listed are a reason, said in the finding.
    let mut o = with_admin_policy(compliant());
    o.role_users = Some(RoleUsers {
        regions_enabled: Err("DescribeRegions: AccessDenied".into()),
        ..exclusive_usage()
    });
    let p = run(opted_in(), &o);
    assert!(writes_to(&p, "orders-role").is_empty());
    assert!(p.findings.iter().any(|f| {
        f.message
            .contains("regions enabled for the account could not be listed")
    }));
}

#[test]
fn lambda_in_any_partition_counts_as_lambda() {
    let cn = doc(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com.cn"},"Action":"sts:AssumeRole"}]}"#,
    );
    assert!(trusts_lambda_only(&cn));
    for wider in [
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com.evil*"},"Action":"sts:AssumeRole"}]}"#,
        r#"{"Statement":[]}"#,
    ] {
        assert!(!trusts_lambda_only(&doc(wider)), "{wider}");
    }
}

#[test]
fn a_deny_only_inline_policy_is_a_guardrail_and_stays() {
    let mut o = compliant();
    o.role
        .as_mut()
        .unwrap()
        .inline_policies
        .insert("guardrail".into(), doc(GUARDRAIL));
    let p = run_minted(full_spec(), &o);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn an_undeclared_policy_with_a_deny_keeps_only_its_deny() {
    let mut o = compliant();
    o.role.as_mut().unwrap().inline_policies.insert(
        "mixed".into(),
        doc(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","NotAction":"dynamodb:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#,
        ),
    );
    let p = run_minted(full_spec(), &o);
    assert_eq!(ops(&p), vec!["PutRolePolicy"]);
    let AwsAction::PutRolePolicy {
        policy_name, document, ..
    } = aws_actions(&p)[0]
    else {
        unreachable!()
    };
    assert_eq!(policy_name, "mixed");
    let kept = doc(document);
    assert_eq!(kept.statements.len(), 1);
    assert_eq!(kept.statements[0].effect, Effect::Deny);
}

#[test]
fn a_deny_added_to_zerofns_own_policy_is_kept_and_is_not_drift() {
    let mut o = compliant();
    let zlp = o
        .role
        .as_mut()
        .unwrap()
        .inline_policies
        .get_mut(names::INLINE_POLICY_NAME)
        .unwrap();
    zlp.statements.extend(doc(GUARDRAIL).statements);
    let p = run_minted(full_spec(), &o);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    // When the policy drifts, the rewrite still holds the Deny.
    let zlp = o
        .role
        .as_mut()
        .unwrap()
        .inline_policies
        .get_mut(names::INLINE_POLICY_NAME)
        .unwrap();
    zlp.statements
        .extend(doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#).statements);
    let p = run_minted(full_spec(), &o);
    let AwsAction::PutRolePolicy { document, .. } = aws_actions(&p)[0] else {
        unreachable!()
    };
    assert!(document.contains("dynamodb:DeleteTable"), "{document}");
    assert!(!document.contains("s3:*"), "{document}");
}

#[test]
fn a_minted_role_carries_the_old_roles_denies_and_boundary() {
    let mut o = with_admin_policy(compliant());
    let r = o.role.as_mut().unwrap();
    r.inline_policies.insert("guardrail".into(), doc(GUARDRAIL));
    r.permissions_boundary = Some("arn:aws:iam::123456789012:policy/org-boundary".into());
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    let p = run(full_spec(), &o);
    assert_eq!(
        ops(&p),
        vec![
            "CreateRole",
            "PutRolePermissionsBoundary",
            "PutRolePolicy",
            "UpdateFunctionConfiguration"
        ]
    );
    let acts = aws_actions(&p);
    let AwsAction::PutRolePermissionsBoundary { boundary_arn, .. } = acts[1] else {
        unreachable!()
    };
    assert_eq!(boundary_arn, "arn:aws:iam::123456789012:policy/org-boundary");
    let AwsAction::PutRolePolicy {
        document, role_name, ..
    } = acts[2]
    else {
        unreachable!()
    };
    assert!(role_name.starts_with("zerofn-orders-"));
    assert!(document.contains("dynamodb:DeleteTable"), "{document}");
    assert!(writes_to(&p, "orders-role").is_empty());
}

const GUARDRAIL_ARN: &str = "arn:aws:iam::123456789012:policy/guardrail";

#[test]
fn a_managed_policy_holding_a_deny_is_never_detached() {
    let mut o = compliant();
    let r = o.role.as_mut().unwrap();
    attach(
        r,
        GUARDRAIL_ARN,
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}]}"#,
    );
    let mut s = full_spec();
    s.identity.as_mut().unwrap().create_if_shared = false;
    let p = run_minted(s, &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(checks(&p), vec!["aws.identity.unlistedManagedPolicy"]);
    assert!(!p.findings[0].remediable);
    assert!(
        p.findings[0].message.contains("never detached") && p.findings[0].message.contains("holds Deny"),
        "{}",
        p.findings[0].message
    );
}

#[test]
fn an_unreadable_managed_policy_is_never_detached_and_blocks_a_mint() {
    let mut o = compliant();
    let r = o.role.as_mut().unwrap();
    r.attached_policies.insert(GUARDRAIL_ARN.into());
    r.managed_documents.insert(
        GUARDRAIL_ARN.into(),
        ManagedDocument::Unreadable("GetPolicy: AccessDenied".into()),
    );
    // In place (minted): reported with the reason, not detached.
    let p = run_minted(full_spec(), &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(!p.findings[0].remediable);
    assert!(
        p.findings[0].message.contains("AccessDenied"),
        "{}",
        p.findings[0].message
    );
    // Not minted: the move would drop what the policy may deny, so no move.
    let p = run(full_spec(), &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(
        p.findings
            .iter()
            .all(|f| !f.remediable && f.message.contains("could not be carried to a new role")),
        "{:#?}",
        p.findings
    );
    // A document never read counts as unreadable.
    o.role.as_mut().unwrap().managed_documents.clear();
    let p = run_minted(full_spec(), &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn a_minted_role_carries_the_denies_of_the_old_roles_managed_policies() {
    let mut o = with_admin_policy(compliant());
    attach(o.role.as_mut().unwrap(), GUARDRAIL_ARN, GUARDRAIL);
    let allowlisted = "arn:aws:iam::123456789012:policy/allowed";
    attach(
        o.role.as_mut().unwrap(),
        allowlisted,
        r#"{"Statement":{"Effect":"Deny","Action":"dynamodb:Query","Resource":"*"}}"#,
    );
    let mut s = full_spec();
    s.identity.as_mut().unwrap().aws.as_mut().unwrap().managed_policies = vec![allowlisted.into()];
    let p = run(s, &o);
    assert_eq!(
        ops(&p),
        vec!["CreateRole", "PutRolePolicy", "UpdateFunctionConfiguration"]
    );
    let AwsAction::PutRolePolicy { document, .. } = aws_actions(&p)[1] else {
        unreachable!()
    };
    let carried = doc(document);
    for d in [
        doc(GUARDRAIL),
        doc(r#"{"Statement":{"Effect":"Deny","Action":"dynamodb:Query","Resource":"*"}}"#),
    ] {
        assert!(
            carried.statements.iter().any(|s| same_statement(s, &d.statements[0])),
            "{document}"
        );
    }
    assert!(writes_to(&p, "orders-role").is_empty());
}

#[test]
fn a_boundary_zerofn_did_not_set_is_never_replaced_in_place() {
    let mut o = compliant();
    o.role.as_mut().unwrap().permissions_boundary = Some("arn:aws:iam::123456789012:policy/other".into());
    let mut s = full_spec();
    s.identity.as_mut().unwrap().create_if_shared = false;
    s.identity.as_mut().unwrap().aws.as_mut().unwrap().permissions_boundary =
        Some("arn:aws:iam::123456789012:policy/boundary".into());
    let p = run_minted(s, &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(checks(&p), vec!["aws.identity.permissionsBoundary"]);
    assert!(!p.findings[0].remediable);
}

#[test]
fn the_minted_name_taken_by_an_unrecorded_role_is_reported_not_written() {
    let mut o = with_admin_policy(compliant());
    let mut squatter = role_of(&names::dedicated_role_name("orders", FN_ARN));
    squatter
        .tags
        .insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
    o.dedicated_role = Some(squatter.clone());
    let p = run(full_spec(), &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(
        p.findings.iter().any(|f| f.message.contains("cannot prove it created")),
        "{:#?}",
        p.findings
    );
}

// ------------------------------------------------------------ effective access
//
// An IAM evaluator written for this test, independent of the planner: it
// reads policy documents itself and applies the plan's writes to a model of
// the account. Conditions are unknowns: every distinct condition block is a
// variable, and access is compared before and after under the same
// assignment, for several assignments (all true, all false, mixed).

pub(super) mod iam {
    use super::super::super::policy::{PolicyDocument, Statement};
    use crate::api::Effect;
    use std::collections::{BTreeMap, BTreeSet};

    /// IAM wildcard match: `*` any run, `?` one character.
    pub fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
        let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
            (
                pattern.to_lowercase().chars().collect(),
                value.to_lowercase().chars().collect(),
            )
        } else {
            (pattern.chars().collect(), value.chars().collect())
        };
        let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
        while vi < v.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
                pi += 1;
                vi += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some(pi);
                mark = vi;
                pi += 1;
            } else if let Some(s) = star {
                pi = s + 1;
                mark += 1;
                vi = mark;
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == '*' {
            pi += 1;
        }
        pi == p.len()
    }

    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Request {
        pub action: String,
        pub resource: String,
    }

    /// Truth of each condition block, by its rendering; unknown blocks take `default`.
    pub struct World {
        pub truths: BTreeMap<String, bool>,
        pub default: bool,
    }

    impl World {
        fn holds(&self, s: &Statement) -> bool {
            if s.conditions.is_empty() {
                return true;
            }
            let key = format!("{:?}", s.conditions);
            *self.truths.get(&key).unwrap_or(&self.default)
        }
    }

    pub fn applies(s: &Statement, r: &Request, w: &World) -> bool {
        let action = if !s.actions.is_empty() {
            s.actions.iter().any(|a| glob(a, &r.action, true))
        } else if !s.not_actions.is_empty() {
            !s.not_actions.iter().any(|a| glob(a, &r.action, true))
        } else {
            false
        };
        let resource = if !s.resources.is_empty() {
            s.resources.iter().any(|x| glob(x, &r.resource, false))
        } else if !s.not_resources.is_empty() {
            !s.not_resources.iter().any(|x| glob(x, &r.resource, false))
        } else {
            false
        };
        action && resource && w.holds(s)
    }

    /// A role as the evaluator sees it.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Role {
        pub inline: BTreeMap<String, PolicyDocument>,
        pub attached: BTreeSet<String>,
        pub boundary: Option<String>,
        pub trust: Option<PolicyDocument>,
    }

    /// Managed policy and boundary documents of the test account.
    pub fn managed(arn: &str) -> &'static PolicyDocument {
        static DOCS: std::sync::OnceLock<BTreeMap<&'static str, PolicyDocument>> = std::sync::OnceLock::new();
        let docs = DOCS.get_or_init(|| {
            [
                "AdministratorAccess",
                "CloudWatchLambdaInsightsExecutionRolePolicy",
                "boundary",
                "org-boundary",
                "guardrail",
                "mixed",
            ]
            .into_iter()
            .map(|n| (n, managed_document(n)))
            .collect()
        });
        let name = arn.rsplit('/').next().unwrap_or("");
        docs.get(name)
            .unwrap_or_else(|| panic!("unknown managed policy {name}"))
    }

    fn managed_document(name: &str) -> PolicyDocument {
        let json = match name {
            "AdministratorAccess" => r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            "CloudWatchLambdaInsightsExecutionRolePolicy" => {
                r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*"}}"#
            }
            "boundary" => {
                r#"{"Statement":{"Effect":"Allow","Action":["dynamodb:*","logs:*","xray:*","ec2:*"],"Resource":"*"}}"#
            }
            "org-boundary" => {
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#
            }
            "guardrail" => {
                r#"{"Statement":{"Effect":"Deny","Action":["dynamodb:DeleteTable","iam:*"],"Resource":"*"}}"#
            }
            "mixed" => {
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"dynamodb:Query","Resource":"*"}]}"#
            }
            other => panic!("unknown managed policy {other}"),
        };
        PolicyDocument::parse(json).unwrap()
    }

    /// Whether the role lets its holder make the request.
    pub fn allowed(role: &Role, r: &Request, w: &World) -> bool {
        let identity: Vec<&PolicyDocument> = role
            .inline
            .values()
            .chain(role.attached.iter().map(|a| managed(a)))
            .collect();
        let boundary = role.boundary.as_deref().map(managed);
        let statements = identity
            .iter()
            .copied()
            .chain(boundary)
            .flat_map(|d| d.statements.iter());
        let mut denied = false;
        for s in statements {
            if s.effect == Effect::Deny && applies(s, r, w) {
                denied = true;
            }
        }
        let allow_identity = identity
            .iter()
            .flat_map(|d| d.statements.iter())
            .any(|s| s.effect == Effect::Allow && applies(s, r, w));
        let allow_boundary = boundary.is_none_or(|b| {
            b.statements
                .iter()
                .any(|s| s.effect == Effect::Allow && applies(s, r, w))
        });
        !denied && allow_identity && allow_boundary
    }

    /// Every Deny statement of a role's identity policies (inline and
    /// attached managed ones), by meaning.
    pub fn deny_statements(role: &Role) -> Vec<Statement> {
        role.inline
            .values()
            .chain(role.attached.iter().map(|a| managed(a)))
            .flat_map(|d| d.statements.iter())
            .filter(|s| s.effect == Effect::Deny)
            .cloned()
            .collect()
    }
}

/// The account as the evaluator models it: roles by name, and the role the
/// function runs as.
#[derive(Clone, Debug)]
struct Account {
    roles: BTreeMap<String, iam::Role>,
    function_role: String,
}

fn model_role(r: &ObservedRole) -> iam::Role {
    iam::Role {
        inline: r.inline_policies.clone(),
        attached: r.attached_policies.clone(),
        boundary: r.permissions_boundary.clone(),
        trust: Some(r.trust.clone()),
    }
}

fn account_of(o: &ObservedFunction) -> Account {
    let mut roles = BTreeMap::new();
    for r in o.role.iter().chain(o.dedicated_role.iter()) {
        roles.insert(r.name.clone(), model_role(r));
    }
    Account {
        roles,
        function_role: o.role_arn.rsplit('/').next().unwrap_or_default().to_string(),
    }
}

fn apply_to(acct: &mut Account, a: &AwsAction) {
    let role = |acct: &mut Account, name: &str| acct.roles.entry(name.to_string()).or_default().clone();
    match a {
        AwsAction::CreateRole {
            role_name,
            trust_policy,
            ..
        } => {
            assert!(!acct.roles.contains_key(role_name), "CreateRole over an existing role");
            acct.roles.insert(
                role_name.clone(),
                iam::Role {
                    trust: Some(PolicyDocument::parse(trust_policy).unwrap()),
                    ..iam::Role::default()
                },
            );
        }
        AwsAction::PutRolePolicy {
            role_name,
            policy_name,
            document,
        } => {
            let mut r = role(acct, role_name);
            r.inline
                .insert(policy_name.clone(), PolicyDocument::parse(document).unwrap());
            acct.roles.insert(role_name.clone(), r);
        }
        AwsAction::DeleteRolePolicy { role_name, policy_name } => {
            let mut r = role(acct, role_name);
            r.inline.remove(policy_name);
            acct.roles.insert(role_name.clone(), r);
        }
        AwsAction::DetachRolePolicy { role_name, policy_arn } => {
            let mut r = role(acct, role_name);
            r.attached.remove(policy_arn);
            acct.roles.insert(role_name.clone(), r);
        }
        AwsAction::PutRolePermissionsBoundary {
            role_name,
            boundary_arn,
        } => {
            let mut r = role(acct, role_name);
            r.boundary = Some(boundary_arn.clone());
            acct.roles.insert(role_name.clone(), r);
        }
        AwsAction::UpdateFunctionConfiguration { fields, .. } => {
            if let Some(arn) = fields.role() {
                acct.function_role = arn.rsplit('/').next().unwrap_or_default().to_string();
            }
        }
        _ => {}
    }
}

fn requests() -> Vec<iam::Request> {
    let actions = [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:DeleteTable",
        "s3:GetObject",
        "s3:PutObject",
        "iam:CreateUser",
        "logs:PutLogEvents",
        "logs:CreateLogGroup",
        "xray:PutTraceSegments",
        "ec2:CreateNetworkInterface",
        "kms:Decrypt",
    ];
    let resources = [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/billing",
        "arn:aws:s3:::orders-in/key",
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/orders:*",
        "arn:aws:kms:eu-west-1:123456789012:key/k",
    ];
    let mut v = Vec::new();
    for a in actions {
        for r in resources {
            v.push(iam::Request {
                action: a.into(),
                resource: r.into(),
            });
        }
    }
    v
}

/// What the posture declares, read from the spec by the test itself: the
/// declared statements and the Allows of the declared managed policies (in
/// any condition world), and the baseline's actions.
fn declared_allows(s: &FunctionPostureSpec, r: &iam::Request) -> bool {
    let Some(aws) = s.identity.as_ref().and_then(|i| i.aws.as_ref()) else {
        return false;
    };
    let declared = aws.permissions.iter().flatten().any(|st| {
        st.effect == Effect::Allow
            && st.actions.iter().any(|a| iam::glob(a, &r.action, true))
            && st.resources.iter().any(|x| iam::glob(x, &r.resource, false))
    });
    let every_condition_holds = iam::World {
        truths: BTreeMap::new(),
        default: true,
    };
    let managed = aws.managed_policies.iter().any(|arn| {
        iam::managed(arn)
            .statements
            .iter()
            .any(|st| st.effect == Effect::Allow && iam::applies(st, r, &every_condition_holds))
    });
    let baseline = aws.baseline
        && [
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&r.action));
    declared || managed || baseline
}

/// The test's own reading of the identity rule: may zerofn change this role?
fn may_change(p: &Posture, r: &ObservedRole, o: &ObservedFunction) -> bool {
    let lambda_only = r.trust.statements.iter().filter(|s| s.effect == Effect::Allow).count() > 0
        && r.trust
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .all(|s| {
                s.principal == Some(Principal::Service(BTreeSet::from(["lambda.amazonaws.com".to_string()])))
                    && s.actions.iter().all(|a| a.eq_ignore_ascii_case("sts:AssumeRole"))
                    && s.not_actions.is_empty()
            });
    let used_elsewhere = !r.instance_profiles.is_empty()
        || (o.role.as_ref().is_some_and(|c| c.arn == r.arn) && !o.role_shared_with.is_empty());
    if !lambda_only || used_elsewhere {
        return false;
    }
    let minted = p.minted.iter().any(|m| m.unique_id == r.role_id);
    let exclusive = p.spec.identity.as_ref().is_some_and(|i| i.edit_in_place_if_exclusive)
        && o.role.as_ref().is_some_and(|c| c.arn == r.arn)
        && o.role_users.as_ref().is_some_and(|u| {
            u.others.is_empty()
                && u.regions_enabled
                    .as_ref()
                    .is_ok_and(|e| e.is_subset(&u.regions_scanned))
        });
    minted || exclusive
}

/// All conditions true, all false, and one mixed assignment per seed (bit i
/// of the seed is the truth of the i-th condition block).
fn worlds(acct_before: &Account, acct_after: &Account, mixed: [u64; 2]) -> Vec<iam::World> {
    let mut keys = BTreeSet::new();
    for a in [acct_before, acct_after] {
        for role in a.roles.values() {
            for d in role.inline.values() {
                for s in &d.statements {
                    if !s.conditions.is_empty() {
                        keys.insert(format!("{:?}", s.conditions));
                    }
                }
            }
        }
    }
    let mut out = vec![
        iam::World {
            truths: BTreeMap::new(),
            default: true,
        },
        iam::World {
            truths: BTreeMap::new(),
            default: false,
        },
    ];
    for seed in mixed {
        out.push(iam::World {
            truths: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), (seed >> (i % 64)) & 1 == 1))
                .collect(),
            default: false,
        });
    }
    out
}

const INLINE_POOL: [&str; 7] = [
    r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    r#"{"Statement":{"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}}"#,
    r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}}]}"#,
    r#"{"Statement":{"Effect":"Deny","NotAction":["dynamodb:*","logs:*"],"Resource":"*"}}"#,
    r#"{"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}}"#,
    r#"{"Statement":{"Effect":"Deny","Action":"kms:*","NotResource":"arn:aws:kms:eu-west-1:123456789012:key/ok"}}"#,
    r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:eu-west-1:123456789012:table/*"}}"#,
];

const TRUST_POOL: [&str; 6] = [
    r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#,
    r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"sts:AssumeRole"}]}"#,
    r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
    r#"{"Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#,
];

const MIXED_ARN: &str = "arn:aws:iam::123456789012:policy/mixed";

/// What observation read of an attached managed policy.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// The evaluator's own document.
    Document,
    /// Reading it was refused.
    Denied,
    /// Not read at all.
    Nothing,
}

/// Generated roles: mostly trusted by Lambda alone (so the interesting edits
/// happen often), else any trust of the pool; any inline policies of the
/// pool (Allow, Deny, NotAction, NotResource, conditions, negated ones);
/// zerofn's own policy with or without a Deny; admin, insights, guardrail
/// and mixed Allow/Deny managed policies, read or not; boundaries; instance
/// profiles (used elsewhere) and zerofn's tag.
fn any_role(name: String, zerofn_path: bool) -> impl Strategy<Value = ObservedRole> {
    (
        prop_oneof![2 => Just(0usize), 1 => 0..TRUST_POOL.len()],
        proptest::array::uniform7(proptest::bool::weighted(0.25)),
        proptest::option::of(any::<bool>()),
        (
            any::<bool>(),
            proptest::bool::weighted(0.25),
            proptest::array::uniform2(proptest::bool::weighted(1.0 / 3.0)),
        ),
        proptest::array::uniform4(
            prop_oneof![8 => Just(Read::Document), 1 => Just(Read::Denied), 1 => Just(Read::Nothing)],
        ),
        prop_oneof![
            2 => Just(None),
            1 => Just(Some("arn:aws:iam::123456789012:policy/boundary".to_string())),
            1 => Just(Some("arn:aws:iam::123456789012:policy/org-boundary".to_string())),
        ],
        proptest::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(
            move |(trust, inline, own, (admin, insights, [guardrail, mixed]), reads, boundary, profile, tagged)| {
                let mut role = if zerofn_path { role_of(&name) } else { role(&name) };
                role.trust = doc(TRUST_POOL[trust]);
                for (i, d) in INLINE_POOL.iter().enumerate().filter(|(i, _)| inline[*i]) {
                    role.inline_policies.insert(format!("p{i}"), doc(d));
                }
                if let Some(with_deny) = own {
                    let mut zlp = doc(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#);
                    if with_deny {
                        zlp.statements.extend(doc(INLINE_POOL[1]).statements);
                    }
                    role.inline_policies.insert(names::INLINE_POLICY_NAME.into(), zlp);
                }
                let attached = [
                    (admin, "arn:aws:iam::aws:policy/AdministratorAccess"),
                    (
                        insights,
                        "arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy",
                    ),
                    (guardrail, GUARDRAIL_ARN),
                    (mixed, MIXED_ARN),
                ];
                for ((_, arn), read) in attached.into_iter().zip(reads).filter(|((on, _), _)| *on) {
                    role.attached_policies.insert(arn.into());
                    match read {
                        Read::Document => {
                            role.managed_documents
                                .insert(arn.into(), ManagedDocument::Read(iam::managed(arn).clone()));
                        }
                        Read::Denied => {
                            role.managed_documents
                                .insert(arn.into(), ManagedDocument::Unreadable("AccessDenied".into()));
                        }
                        Read::Nothing => {}
                    }
                }
                role.permissions_boundary = boundary;
                if profile {
                    role.instance_profiles = vec!["arn:aws:iam::123456789012:instance-profile/web".into()];
                }
                if tagged {
                    role.tags.insert(names::MANAGED_TAG.into(), names::MANAGED_VALUE.into());
                }
                role
            },
        )
}

/// A generated identity case: the posture (with its record of minted roles),
/// the function, and the seeds of the mixed condition worlds.
fn any_identity_case() -> impl Strategy<Value = (Posture, ObservedFunction, [u64; 2])> {
    // An exclusive record twice as often as each other.
    let usage = vec![
        None,
        Some(exclusive_usage()),
        Some(exclusive_usage()),
        Some(RoleUsers {
            others: vec![format!("{FN_ARN}:7")],
            ..exclusive_usage()
        }),
        Some(RoleUsers {
            others: vec!["arn:aws:lambda:us-east-1:123456789012:function:orders".into()],
            ..exclusive_usage()
        }),
        Some(RoleUsers {
            regions_enabled: Err("DescribeRegions: AccessDenied".into()),
            ..exclusive_usage()
        }),
    ];
    (
        any::<[bool; 3]>(),
        select(vec![
            None,
            Some("arn:aws:iam::123456789012:policy/boundary".to_string()),
            Some("arn:aws:iam::123456789012:policy/org-boundary".to_string()),
        ]),
        select(vec![
            vec![],
            vec!["arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy".to_string()],
            vec![MIXED_ARN.to_string()],
        ]),
        any_role("orders-role".into(), false),
        any::<bool>(),
        select(usage),
        proptest::option::weighted(1.0 / 3.0, any_role(names::dedicated_role_name("orders", FN_ARN), true)),
        any::<[bool; 2]>(),
        any::<[u64; 2]>(),
    )
        .prop_map(
            |(
                [create, dedicated_flag, in_place],
                boundary,
                managed,
                current,
                shared,
                role_users,
                dedicated,
                [minted_current, minted_dedicated],
                mixed,
            )| {
                let mut s = full_spec();
                let id = s.identity.as_mut().unwrap();
                id.create_if_shared = create;
                id.dedicated = dedicated_flag;
                id.edit_in_place_if_exclusive = in_place;
                let aws = id.aws.as_mut().unwrap();
                aws.permissions_boundary = boundary;
                aws.managed_policies = managed;
                let mut o = compliant();
                o.role = Some(current.clone());
                if shared {
                    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
                }
                o.role_users = role_users;
                o.dedicated_role = dedicated.clone();
                let mut minted = Vec::new();
                if minted_current {
                    minted.push(&current);
                }
                if let Some(d) = &dedicated
                    && minted_dedicated
                {
                    minted.push(d);
                }
                (minted_posture(s, &minted), o, mixed)
            },
        )
}

/// How a plan changed the function's identity.
enum Change {
    None,
    InPlace,
    Moved,
}

/// No write to a role zerofn may not change (bystanders see nothing), and a
/// move only to a new role or a dedicated one zerofn minted.
fn judge_writes(
    p: &Posture,
    o: &ObservedFunction,
    plan: &Plan<AwsAction>,
    (before, after): (&Account, &Account),
) -> Change {
    for role in o.role.iter().chain(o.dedicated_role.iter()) {
        let changed = before.roles.get(&role.name) != after.roles.get(&role.name);
        assert!(
            !changed || may_change(p, role, o),
            "wrote to {} it may not change\n{plan:#?}",
            role.name
        );
    }
    if after.function_role != before.function_role {
        assert!(
            !before.roles.contains_key(&after.function_role)
                || o.dedicated_role.as_ref().is_some_and(
                    |d| d.name == after.function_role && p.minted.iter().any(|m| m.unique_id == d.role_id)
                ),
            "switched to a role zerofn did not mint\n{plan:#?}"
        );
        Change::Moved
    } else if before.roles.get(&before.function_role) != after.roles.get(&after.function_role) {
        Change::InPlace
    } else {
        Change::None
    }
}

/// The function gains nothing beyond what is declared, in any world; no
/// Deny statement disappears from it, and the boundary that limited it
/// still does (or the declared one replaces it).
fn judge_access(p: &Posture, plan: &Plan<AwsAction>, (before, after): (&Account, &Account), mixed: [u64; 2]) {
    let (Some(fb), Some(fa)) = (
        before.roles.get(&before.function_role),
        after.roles.get(&after.function_role),
    ) else {
        return;
    };
    let reqs = requests();
    for w in worlds(before, after, mixed) {
        for q in &reqs {
            if iam::allowed(fa, q, &w) && !iam::allowed(fb, q, &w) {
                assert!(
                    declared_allows(&p.spec, q),
                    "{q:?} is newly allowed and not declared\n{plan:#?}"
                );
            }
        }
    }
    for d in iam::deny_statements(fb) {
        assert!(
            iam::deny_statements(fa)
                .iter()
                .any(|x| PolicyDocument::from_statements(vec![x.clone()])
                    .same_as(&PolicyDocument::from_statements(vec![d.clone()]))),
            "Deny {d:?} disappeared\n{plan:#?}"
        );
    }
    if let Some(b) = &fb.boundary {
        let declared = p
            .spec
            .identity
            .as_ref()
            .and_then(|i| i.aws.as_ref())
            .and_then(|a| a.permissions_boundary.as_ref());
        assert!(
            fa.boundary.as_ref() == Some(b) || (fa.boundary.is_some() && fa.boundary.as_ref() == declared),
            "boundary {b} was dropped\n{plan:#?}"
        );
    }
}

#[test]
fn identity_writes_never_widen_and_never_touch_a_bystander() {
    let seen = RefCell::new(BTreeSet::new());
    let (in_place, moved) = (Cell::new(0), Cell::new(0));
    sweep(2000, any_identity_case(), |(p, o, mixed)| {
        let plan = plan(&p, &ctx(), &o);
        let before = account_of(&o);
        let mut after = before.clone();
        for a in aws_actions(&plan) {
            seen.borrow_mut().insert(a.op());
            apply_to(&mut after, a);
        }
        match judge_writes(&p, &o, &plan, (&before, &after)) {
            Change::Moved => moved.set(moved.get() + 1),
            Change::InPlace => in_place.set(in_place.get() + 1),
            Change::None => {}
        }
        judge_access(&p, &plan, (&before, &after), mixed);
        Ok(())
    });
    let seen = seen.into_inner();
    for op in [
        "CreateRole",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "PutRolePermissionsBoundary",
        "UpdateFunctionConfiguration",
    ] {
        assert!(seen.contains(op), "the sweep never produced {op}");
    }
    let (in_place, moved) = (in_place.get(), moved.get());
    assert!(in_place > 100 && moved > 100, "in place {in_place}, moved {moved}");
}

// ------------------------------------------------------------------ write order

/// Where the first action `is` holds stands in the plan.
fn position(p: &Plan<AwsAction>, what: &str, is: impl Fn(&AwsAction) -> bool) -> usize {
    aws_actions(p)
        .into_iter()
        .position(is)
        .unwrap_or_else(|| panic!("no {what} in {:#?}", p.actions))
}

fn is_role_switch(a: &AwsAction) -> bool {
    matches!(a, AwsAction::UpdateFunctionConfiguration { fields, .. } if fields.role().is_some())
}

#[test]
fn a_statement_whose_sid_a_grant_reuses_goes_right_before_that_grant() {
    let declared = grants(&triggers(PublicAccess::Deny).aws.unwrap(), &ctx());
    let taken = grant_sid(&declared[0]);
    let mut o = compliant();
    o.resource_policy = Some(
        parse_resource_policy(&format!(
            r#"{{"Statement":[
            {{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}},
            {{"Sid":"{taken}","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}}]}}"#
        ))
        .unwrap(),
    );
    let p = run(full_spec(), &o);
    let writes: Vec<(&str, &str)> = aws_actions(&p)
        .into_iter()
        .map(|a| match a {
            AwsAction::AddPermission { statement_id, .. } | AwsAction::RemovePermission { statement_id, .. } => {
                (a.op(), statement_id.as_str())
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        writes,
        vec![
            ("RemovePermission", taken.as_str()),
            ("AddPermission", taken.as_str()),
            ("RemovePermission", "open"),
        ],
        "the taken Sid is freed just before the grant; every other removal waits for the grant"
    );
}

#[test]
fn a_function_moves_to_a_role_only_once_it_holds_its_policy_and_nothing_undeclared() {
    let mut o = compliant();
    o.role_shared_with = vec!["arn:aws:lambda:eu-west-1:123456789012:function:billing".into()];
    let name = names::dedicated_role_name("orders", FN_ARN);
    let mut mine = role(&name);
    mine.arn = format!("arn:aws:iam::123456789012:role/zerofn/{name}");
    mine.inline_policies.insert(
        "added-later".into(),
        doc(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
    );
    o.dedicated_role = Some(mine.clone());
    o.vpc = None;
    let p = plan(&minted_posture(full_spec(), &[&mine]), &ctx(), &o);
    let policy = position(&p, "zerofn's policy", |a| {
        matches!(a, AwsAction::PutRolePolicy { role_name, policy_name, .. }
            if *role_name == name && policy_name == names::INLINE_POLICY_NAME)
    });
    let strip = position(&p, "the undeclared policy's removal", |a| {
        matches!(a, AwsAction::DeleteRolePolicy { role_name, policy_name }
            if *role_name == name && policy_name == "added-later")
    });
    let switch = position(&p, "the switch", is_role_switch);
    let AwsAction::UpdateFunctionConfiguration { fields, .. } = aws_actions(&p)[switch] else {
        unreachable!()
    };
    assert!(fields.vpc().is_some(), "the VPC is set with the switch: {fields:?}");
    assert!(
        policy < switch,
        "the role holds its policy (ENI rights included) before the function runs as it"
    );
    assert!(
        strip < switch,
        "the function never runs as a role holding more than declared"
    );
}

#[test]
fn in_place_what_replaces_comes_before_what_goes() {
    let mut o = compliant();
    let r = o.role.as_mut().unwrap();
    r.inline_policies.insert(
        names::INLINE_POLICY_NAME.into(),
        doc(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}}"#),
    );
    r.inline_policies.insert(
        "everything".into(),
        doc(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
    );
    o.vpc = None;
    o.resource_policy = Some(
        parse_resource_policy(
            r#"{"Statement":[{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"x"}]}"#,
        )
        .unwrap(),
    );
    let p = run_minted(full_spec(), &o);
    let policy = position(&p, "zerofn's policy", |a| matches!(a, AwsAction::PutRolePolicy { .. }));
    let vpc = position(
        &p,
        "the VPC update",
        |a| matches!(a, AwsAction::UpdateFunctionConfiguration { fields, .. } if fields.vpc().is_some()),
    );
    let strip = position(&p, "the undeclared policy's removal", |a| {
        matches!(a, AwsAction::DeleteRolePolicy { .. })
    });
    let grant = position(&p, "the declared grant", |a| {
        matches!(a, AwsAction::AddPermission { .. })
    });
    let open = position(&p, "the public statement's removal", |a| {
        matches!(a, AwsAction::RemovePermission { .. })
    });
    assert!(
        policy < vpc,
        "the role may manage ENIs before the function is put in a VPC"
    );
    assert!(
        policy < strip,
        "the declared policy is in place before the undeclared one goes"
    );
    assert!(
        grant < open,
        "the declared invoker is granted before the public statement goes"
    );
}

// ------------------------------------------------------------------ unused permissions

fn with_unused_permissions() -> FunctionPostureSpec {
    let mut s = full_spec();
    if let Some(id) = s.identity.as_mut() {
        id.unused_permissions = Some(UnusedPermissions {
            window: "90d".into(),
            refresh_interval: None,
        });
    }
    s
}

/// DynamoDB used, GetItem used, Query tracked but never used.
fn last_accessed() -> LastAccessed {
    let at = |s: &str| s.parse::<jiff::Timestamp>().ok();
    LastAccessed::Observed(AccessReport {
        as_of: at("2026-12-01T00:00:00Z").unwrap_or_default(),
        services: [(
            "dynamodb".to_string(),
            ServiceAccess {
                last_authenticated: at("2026-11-30T00:00:00Z"),
                actions: vec![
                    TrackedAction {
                        name: "GetItem".into(),
                        last_accessed: at("2026-11-30T00:00:00Z"),
                    },
                    TrackedAction {
                        name: "Query".into(),
                        last_accessed: None,
                    },
                ],
            },
        )]
        .into(),
    })
}

#[test]
fn unused_permissions_are_reported_with_a_proposal_and_nothing_is_written() {
    let mut o = compliant();
    o.last_accessed = Some(last_accessed());
    let p = run_minted(with_unused_permissions(), &o);
    assert_eq!(checks(&p), vec!["aws.identity.unusedPermission"], "{:#?}", p.findings);
    assert_eq!(p.findings[0].field, "identity.aws.permissions[0].actions[1]");
    assert!(
        p.actions.is_empty(),
        "a declared permission is never removed: {:?}",
        ops(&p)
    );
    assert_eq!(p.proposals.len(), 1);
    let proposed: Vec<PolicyStatement> = serde_saphyr::from_str(&p.proposals[0].declaration).expect("YAML");
    assert_eq!(proposed[0].actions, vec!["dynamodb:GetItem".to_string()]);
    assert_eq!(
        proposed[0].sid.as_deref(),
        Some("ReadOrders"),
        "the rest of the statement is kept"
    );
}

#[test]
fn a_failed_last_accessed_job_is_reported_and_blocks_no_other_control() {
    let mut o = compliant();
    o.tracing_mode = Some("PassThrough".into());
    o.last_accessed = Some(LastAccessed::NotObserved(crate::providers::ProviderError::Cloud(
        "last-accessed job j-1 FAILED: ServiceFailure: try again".into(),
    )));
    let p = run_minted(with_unused_permissions(), &o);
    assert_eq!(
        checks(&p),
        vec!["aws.identity.unusedPermissionsNotJudged", "aws.observability.tracing"],
        "{:#?}",
        p.findings
    );
    assert!(p.findings[0].observed.starts_with("CloudError: "));
    assert_eq!(
        ops(&p),
        vec!["UpdateFunctionConfiguration"],
        "the other controls are still enforced"
    );
    assert!(p.proposals.is_empty());
}

// ------------------------------------------------------------------ runtime protection

const AGENT: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:security-agent:7";

fn with_extensions(patterns: &[&str]) -> FunctionPostureSpec {
    let mut s = full_spec();
    if let Some(obs) = s.observability.as_mut() {
        obs.aws = Some(AwsObservability {
            required_extensions: patterns.iter().map(|p| p.to_string()).collect(),
            ..AwsObservability::default()
        });
    }
    s
}

#[test]
fn a_missing_exact_extension_is_attached_keeping_the_functions_layers() {
    let mut s = with_extensions(&[AGENT]);
    if let Some(sc) = s.supply_chain.as_mut().and_then(|s| s.aws.as_mut()) {
        sc.allowed_layers = Some(vec![
            "arn:aws:lambda:eu-west-1:123456789012:layer:otel".into(),
            "arn:aws:lambda:eu-west-1:123456789012:layer:security-agent".into(),
        ]);
    }
    let p = run_minted(s.clone(), &compliant());
    assert_eq!(checks(&p), vec!["aws.observability.missingExtension"]);
    assert_eq!(p.findings[0].severity, Severity::High);
    assert!(p.findings[0].remediable);
    assert_eq!(
        aws_actions(&p),
        vec![&AwsAction::AttachLayers {
            function_arn: FN_ARN.into(),
            layers: vec![AGENT.into()],
        }]
    );
    // Once attached, nothing more.
    let mut after = compliant();
    after.layers.push(AGENT.into());
    let p = run_minted(s, &after);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert!(p.actions.is_empty());
}

#[test]
fn a_pattern_is_satisfied_by_any_matching_layer_and_only_reported_when_missing() {
    let mut o = compliant();
    o.layers
        .push("arn:aws:lambda:eu-west-1:123456789012:layer:security-agent:9".into());
    let mut s = with_extensions(&["arn:aws:lambda:*:123456789012:layer:security-agent"]);
    if let Some(sc) = s.supply_chain.as_mut().and_then(|s| s.aws.as_mut()) {
        sc.allowed_layers = None;
    }
    assert!(run_minted(s.clone(), &o).findings.is_empty());
    let p = run_minted(s, &compliant());
    assert_eq!(checks(&p), vec!["aws.observability.missingExtension"]);
    assert!(!p.findings[0].remediable, "a pattern names no version to attach");
    assert!(p.actions.is_empty());
}

#[test]
fn an_extension_is_not_attached_where_it_would_break_a_rule() {
    let other_region = "arn:aws:lambda:us-east-1:123456789012:layer:security-agent:7";
    let mut s = with_extensions(&[AGENT, other_region]);
    // AGENT is not in the declared allowlist (otel only): not attached.
    let p = run_minted(s.clone(), &compliant());
    assert_eq!(p.findings.len(), 2, "{:#?}", p.findings);
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(p.actions.is_empty());
    // Five layers already: Lambda's limit.
    if let Some(sc) = s.supply_chain.as_mut() {
        sc.aws = None;
    }
    if let Some(a) = s.observability.as_mut().and_then(|o| o.aws.as_mut()) {
        a.required_extensions = vec![AGENT.into()];
    }
    let mut full = compliant();
    full.layers = (1..=5)
        .map(|i| format!("arn:aws:lambda:eu-west-1:123456789012:layer:l{i}:1"))
        .collect();
    let p = run_minted(s, &full);
    assert!(p.findings[0].message.contains("limit"), "{}", p.findings[0].message);
    assert!(p.actions.is_empty());
}

// ------------------------------------------------------------------ logs

fn with_logs(days: Option<i32>, destination: Option<&str>) -> FunctionPostureSpec {
    let mut s = full_spec();
    if let Some(obs) = s.observability.as_mut() {
        obs.aws = Some(AwsObservability {
            log_retention_days: days,
            central_destination: destination.map(str::to_string),
            ..AwsObservability::default()
        });
    }
    s
}

fn group(exists: bool, retention: Option<i32>, destinations: &[&str]) -> Option<LogGroupState> {
    Some(LogGroupState::Observed(LogGroup {
        name: "/aws/lambda/orders".into(),
        exists,
        retention_days: retention,
        destinations: destinations.iter().map(|d| d.to_string()).collect(),
    }))
}

#[test]
fn a_shorter_retention_is_raised_and_a_longer_or_none_is_left_alone() {
    let s = with_logs(Some(30), None);
    let mut o = compliant();
    let raise = AwsAction::SetLogRetention {
        region: "eu-west-1".into(),
        log_group: "/aws/lambda/orders".into(),
        days: 30,
    };
    for (exists, retention, wanted) in [
        (true, Some(7), true),
        (false, None, true),
        (true, Some(30), false),
        (true, Some(365), false),
        (true, None, false),
    ] {
        o.log_group = group(exists, retention, &[]);
        let p = run_minted(s.clone(), &o);
        if wanted {
            assert_eq!(checks(&p), vec!["aws.observability.logRetention"], "{retention:?}");
            assert_eq!(aws_actions(&p), vec![&raise]);
        } else {
            assert!(
                p.findings.is_empty() && p.actions.is_empty(),
                "{retention:?}: never shortened"
            );
        }
    }
}

#[test]
fn an_unread_log_group_is_reported_never_passed_and_blocks_nothing_else() {
    let s = with_logs(
        Some(30),
        Some("arn:aws:logs:eu-west-1:123456789012:destination:central"),
    );
    let mut o = compliant();
    o.tracing_mode = None;
    o.log_group = Some(LogGroupState::NotObserved(crate::providers::ProviderError::Auth(
        "DescribeLogGroups: AccessDeniedException".into(),
    )));
    let p = run_minted(s, &o);
    assert!(
        checks(&p).contains(&"aws.observability.logGroupNotObserved"),
        "{:?}",
        checks(&p)
    );
    assert!(!checks(&p).contains(&"aws.observability.logRetention"));
    assert_eq!(
        ops(&p),
        vec!["UpdateFunctionConfiguration"],
        "tracing is still enforced"
    );
}

#[test]
fn a_missing_central_destination_is_reported_only() {
    const DEST: &str = "arn:aws:logs:eu-west-1:123456789012:destination:central";
    let s = with_logs(None, Some(DEST));
    let mut o = compliant();
    o.log_group = group(true, None, &["arn:aws:lambda:eu-west-1:123456789012:function:other"]);
    let p = run_minted(s.clone(), &o);
    assert_eq!(checks(&p), vec!["aws.observability.centralDestination"]);
    assert!(!p.findings[0].remediable && p.actions.is_empty());
    o.log_group = group(true, None, &[DEST]);
    assert!(run_minted(s, &o).findings.is_empty());
}
