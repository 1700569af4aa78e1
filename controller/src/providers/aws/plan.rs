//! Pure planning for AWS Lambda: declared posture + observed function →
//! findings and the ordered writes that would fix them. No I/O.
//!
//! Safety rules every branch follows:
//! - an action only removes access, or adds what the posture declares (the
//!   declared statements plus the generated baseline, the declared invokers,
//!   subnets and security groups, the declared code signing config);
//! - a role's permissions change only when zerofn minted it (its RoleId is on
//!   record), or the posture opted in and the role's own evidence proves it
//!   exclusive; otherwise the function moves to a role zerofn mints, or the
//!   finding is reported with the reason (`standing`);
//! - a Deny statement is never removed, and a permissions boundary zerofn did
//!   not set is never removed or replaced; a minted role carries both;
//! - a layer is never stripped.

use super::action::{AwsAction, ConfigField, LoggingUpdate};
use super::model::{FunctionUrl, ManagedDocument, ObservedFunction, ObservedRole};
use super::names;
use super::observability::split_layer;
use super::policy::{GrantMatch, InvokeGrant, PolicyDocument, Principal, ResourceStatement, Statement, Verdict, judge};
use crate::api::{
    AwsIdentity, AwsTriggers, Effect, FunctionUrlPolicy, IdentityControl, InvokeAction, Mode, PublicAccess,
    TracingMode, TriggerControl,
};
use crate::findings::{Control, Finding, FindingBuilder, Severity};
use crate::providers::assemble::{Ownership, Phase, PlanBuilder, ownership};
use crate::providers::patch::Patch;
use crate::providers::{Blocked, Note, Plan, Posture};
use std::collections::{BTreeMap, BTreeSet};

/// Facts about the account the plan needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountContext {
    pub account_id: String,
    pub partition: String,
}

/// Managed policies so broad that attaching them is an account takeover risk.
const ADMIN_POLICIES: [&str; 3] = ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess"];

/// A plan as its steps find it: the findings and phased writes, and the
/// fields the one UpdateFunctionConfiguration will set.
#[derive(Default)]
struct Draft {
    plan: PlanBuilder<AwsAction>,
    config: Patch<ConfigField>,
    notes: Vec<Note>,
}

/// The order of the writes follows the phases (`assemble`), and each step
/// below says which phase a write belongs to. On AWS that means: the claim;
/// a minted role; its boundary and policy, and each declared invoke grant
/// (a statement whose Sid the grant reuses is removed right before it); the
/// function's configuration, switching the role only once it holds its
/// policy and setting a VPC only once the role may manage ENIs; then every
/// removal, statements before the function URL is made to require IAM.
pub fn plan(p: &Posture, acct: &AccountContext, o: &ObservedFunction) -> Plan<AwsAction> {
    let mut b = Draft::default();
    let blocked = claim(p, o, &mut b);
    let mut proposals = Vec::new();
    if let Some(id) = &p.spec.identity {
        identity(p, id, acct, o, &mut b);
        proposals.extend(unused_permissions(id, o, &mut b));
    }
    if let Some(t) = &p.spec.triggers {
        triggers(t, acct, o, &mut b);
    }
    network(p, o, &mut b);
    supply_chain(p, o, &mut b);
    observability(p, o, &mut b);

    let Draft {
        mut plan,
        config,
        notes,
    } = b;
    if !config.is_empty() {
        plan.push(
            Phase::Configure,
            AwsAction::UpdateFunctionConfiguration {
                function_arn: o.arn.clone(),
                fields: config,
            },
        );
    }
    let out = plan.assemble(blocked.as_ref());
    Plan {
        function: format!("{}/{}", o.region, o.name),
        principal: Some(o.role_arn.clone()),
        findings: out.findings,
        actions: out.actions,
        blocked,
        notes,
        proposals,
    }
}

/// Declared actions the role has not used within the window: Low findings
/// and the narrower declaration, never a write.
fn unused_permissions(id: &IdentityControl, o: &ObservedFunction, b: &mut Draft) -> Option<crate::findings::Proposal> {
    let wanted = id.unused_permissions.as_ref()?;
    let declared = id
        .aws
        .as_ref()
        .and_then(|a| a.permissions.as_deref())
        .unwrap_or_default();
    let (findings, proposal) = super::unused::judge(declared, wanted, o.last_accessed.as_ref());
    for f in findings {
        b.plan.finding(f);
    }
    proposal
}

// ------------------------------------------------------------------ ownership

/// Claim the function with the owner tag, or find it held by another
/// posture. Tags that could not be read neither claim nor block.
fn claim(p: &Posture, o: &ObservedFunction, b: &mut Draft) -> Option<Blocked> {
    let tags = o.tags.as_ref()?;
    let marker = tags.get(names::OWNER_TAG).map(String::as_str);
    match ownership(p.mode() == Mode::Enforce, marker, &p.owner, str::to_string) {
        Ownership::Held => None,
        Ownership::Blocked(blocked) => Some(blocked),
        Ownership::Unclaimed => {
            b.plan.push(
                Phase::Claim,
                AwsAction::TagFunction {
                    function_arn: o.arn.clone(),
                    key: names::OWNER_TAG.to_string(),
                    value: p.owner.clone(),
                },
            );
            None
        }
    }
}

// ------------------------------------------------------------------ identity

/// The inline policy a governed role must hold: the declared statements plus
/// what the function itself needs.
pub fn desired_policy(p: &Posture, acct: &AccountContext, o: &ObservedFunction, aws: &AwsIdentity) -> PolicyDocument {
    let mut statements: Vec<Statement> = aws.permissions.iter().flatten().map(Statement::from_declared).collect();
    if aws.baseline {
        statements.extend(baseline(p, acct, o));
    }
    PolicyDocument::from_statements(statements)
}

fn baseline(p: &Posture, acct: &AccountContext, o: &ObservedFunction) -> Vec<Statement> {
    let part = &acct.partition;
    let log_group = o
        .logging
        .log_group
        .clone()
        .unwrap_or_else(|| format!("/aws/lambda/{}", o.name));
    let group_arn = format!("arn:{part}:logs:{}:{}:log-group:{log_group}", o.region, acct.account_id);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let mut out = vec![
        Statement {
            sid: Some("ZerofnLogGroup".into()),
            effect: Effect::Allow,
            actions: set(&["logs:CreateLogGroup"]),
            resources: BTreeSet::from([group_arn.clone()]),
            ..Statement::default()
        },
        Statement {
            sid: Some("ZerofnLogStreams".into()),
            effect: Effect::Allow,
            actions: set(&["logs:CreateLogStream", "logs:PutLogEvents"]),
            resources: BTreeSet::from([format!("{group_arn}:*")]),
            ..Statement::default()
        },
    ];
    let tracing = p.spec.observability.as_ref().and_then(|ob| ob.tracing) == Some(TracingMode::Active);
    if tracing {
        // X-Ray has no resource-level permissions for these actions.
        out.push(Statement {
            sid: Some("ZerofnXRay".into()),
            effect: Effect::Allow,
            actions: set(&["xray:PutTraceSegments", "xray:PutTelemetryRecords"]),
            resources: BTreeSet::from(["*".to_string()]),
            ..Statement::default()
        });
    }
    if p.spec.network.as_ref().and_then(|n| n.aws.as_ref()).is_some() {
        // What Lambda needs to attach the function to the declared subnets.
        out.push(Statement {
            sid: Some("ZerofnVpcAccess".into()),
            effect: Effect::Allow,
            actions: set(&[
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ]),
            resources: BTreeSet::from(["*".to_string()]),
            ..Statement::default()
        });
    }
    out
}

// ------------------------------------------------------------------ identity rule

/// Why zerofn may, or may not, change the permissions of the role the
/// function runs as now (the identity rule in docs/design.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// (a) zerofn created the role: its RoleId is on record.
    Minted { role_id: String },
    /// (c) the posture opted in and the role's own evidence proves it exclusive.
    Exclusive { regions: usize },
    /// Neither; the reason is said in the findings.
    NotOwn { why: String },
}

impl Standing {
    pub fn editable(&self) -> bool {
        !matches!(self, Standing::NotOwn { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Standing::Minted { role_id } => format!("minted by zerofn (RoleId {role_id})"),
            Standing::Exclusive { regions } => format!(
                "opted in, exclusive: trusted by Lambda only, in no instance profile, used by no other function or version in the {regions} enabled region(s)"
            ),
            Standing::NotOwn { why } => why.clone(),
        }
    }
}

/// Said of a role that carries the name zerofn mints but no record.
const NO_RECORD_HINT: &str = "if zerofn minted it in an earlier run, that run's record is missing: the controller keeps records in the posture's status, the CLI only with --state FILE";

/// The role's RoleId is one zerofn recorded when it created a role for this
/// posture. A name or a tag proves nothing: anyone can set them.
fn is_minted(p: &Posture, r: &ObservedRole) -> bool {
    !r.role_id.is_empty() && p.minted.iter().any(|m| m.unique_id == r.role_id)
}

/// Lambda's service principal, in any partition (`lambda.amazonaws.com.cn`).
fn is_lambda_service(s: &str) -> bool {
    s == "lambda.amazonaws.com"
        || s.strip_prefix("lambda.amazonaws.com.")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.'))
}

/// Every Allow of the trust policy names the Lambda service alone and only
/// lets it call sts:AssumeRole. Any other service, `*`, an account, a
/// federated principal or a NotPrincipal makes the role usable by others.
pub fn trusts_lambda_only(trust: &PolicyDocument) -> bool {
    let allows: Vec<&Statement> = trust.statements.iter().filter(|s| s.effect == Effect::Allow).collect();
    !allows.is_empty()
        && allows.iter().all(|s| {
            let lambda = matches!(&s.principal, Some(Principal::Service(set))
                if !set.is_empty() && set.iter().all(|x| is_lambda_service(x)));
            lambda
                && s.not_actions.is_empty()
                && !s.actions.is_empty()
                && s.actions_lower().iter().all(|a| a == "sts:assumerole")
        })
}

/// What else can act as the role, from what every observation carries.
fn role_bystanders(role: &ObservedRole) -> Vec<String> {
    let mut v = Vec::new();
    if !trusts_lambda_only(&role.trust) {
        v.push("its trust policy admits more than lambda.amazonaws.com".to_string());
    }
    if !role.instance_profiles.is_empty() {
        v.push(format!(
            "it is in instance profile {} (EC2 can use it)",
            role.instance_profiles.join(", ")
        ));
    }
    v
}

fn bystanders(role: &ObservedRole, o: &ObservedFunction) -> Vec<String> {
    let mut v = role_bystanders(role);
    if !o.role_shared_with.is_empty() {
        v.push(format!("{} run(s) as it", o.role_shared_with.join(", ")));
    }
    v
}

/// Why the role's use by versions and other regions is not proved to be
/// this function's alone.
fn usage_gaps(o: &ObservedFunction) -> Vec<String> {
    let Some(u) = &o.role_users else {
        return vec!["its use by published versions and other regions was not observed".into()];
    };
    let mut v = Vec::new();
    let others: Vec<&str> = u
        .others
        .iter()
        .filter(|a| !o.role_shared_with.contains(a))
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        v.push(format!("{} run(s) as it", others.join(", ")));
    }
    match &u.regions_enabled {
        Err(why) => v.push(format!(
            "the regions enabled for the account could not be listed ({why}), so functions there are unseen"
        )),
        Ok(enabled) => {
            let unseen: Vec<&str> = enabled.difference(&u.regions_scanned).map(String::as_str).collect();
            if !unseen.is_empty() {
                v.push(format!(
                    "enabled region(s) {} are not scanned (add them to the account's spec.aws.regions)",
                    unseen.join(", ")
                ));
            }
        }
    }
    v
}

/// Which case of the identity rule applies to the role the function runs as.
pub fn standing(p: &Posture, id: &IdentityControl, o: &ObservedFunction) -> Standing {
    let Some(role) = &o.role else {
        return Standing::NotOwn {
            why: format!("role {} is not a role of this account zerofn can read", o.role_arn),
        };
    };
    let others = bystanders(role, o);
    if is_minted(p, role) {
        return if others.is_empty() {
            Standing::Minted {
                role_id: role.role_id.clone(),
            }
        } else {
            Standing::NotOwn {
                why: format!(
                    "role {} was minted by zerofn (RoleId {}), but {}",
                    role.name,
                    role.role_id,
                    others.join("; ")
                ),
            }
        };
    }
    if !id.edit_in_place_if_exclusive {
        let tagged = role.tags.get(names::MANAGED_TAG).map(String::as_str) == Some(names::MANAGED_VALUE);
        let named = role.name == names::dedicated_role_name(&o.name, &o.arn);
        return Standing::NotOwn {
            why: format!(
                "role {} was not minted by zerofn (no RoleId on record{}) and identity.editInPlaceIfExclusive is off{}",
                role.name,
                if tagged {
                    "; its zerofn.dev/managed-by tag proves nothing"
                } else {
                    ""
                },
                if named {
                    format!("; {NO_RECORD_HINT}")
                } else {
                    String::new()
                }
            ),
        };
    }
    let mut gaps = others;
    gaps.extend(usage_gaps(o));
    if gaps.is_empty() {
        Standing::Exclusive {
            regions: o
                .role_users
                .as_ref()
                .and_then(|u| u.regions_enabled.as_ref().ok())
                .map_or(0, |r| r.len()),
        }
    } else {
        Standing::NotOwn {
            why: format!(
                "identity.editInPlaceIfExclusive is set, but role {} is not provably exclusive: {}",
                role.name,
                gaps.join("; ")
            ),
        }
    }
}

// ------------------------------------------------------------------ Deny statements

fn same_statement(a: &Statement, b: &Statement) -> bool {
    PolicyDocument::from_statements(vec![a.clone()]).same_as(&PolicyDocument::from_statements(vec![b.clone()]))
}

fn denies(doc: &PolicyDocument) -> impl Iterator<Item = &Statement> {
    doc.statements.iter().filter(|s| s.effect == Effect::Deny)
}

fn holds_deny(doc: &PolicyDocument) -> bool {
    denies(doc).next().is_some()
}

/// `base` plus every Deny statement of `from` it does not hold already. A
/// Deny can only narrow, so carrying one never widens.
fn with_denies<'a>(base: &PolicyDocument, from: impl IntoIterator<Item = &'a Statement>) -> PolicyDocument {
    let mut statements = base.statements.clone();
    for d in from {
        if d.effect == Effect::Deny && !statements.iter().any(|s| same_statement(s, d)) {
            statements.push(d.clone());
        }
    }
    PolicyDocument::from_statements(statements)
}

/// What zerofn's own inline policy must hold on `role`: the declared
/// statements and baseline, and every Deny someone added to it since.
fn desired_on(desired: &PolicyDocument, role: &ObservedRole) -> PolicyDocument {
    match role.inline_policies.get(names::INLINE_POLICY_NAME) {
        Some(doc) => with_denies(desired, denies(doc)),
        None => desired.clone(),
    }
}

/// The Deny statements of every inline policy of a role.
fn inline_denies(role: &ObservedRole) -> impl Iterator<Item = &Statement> {
    role.inline_policies.values().flat_map(denies)
}

/// The Deny statements of every managed policy attached to a role, or the
/// policies whose documents are not known (they may hold a Deny).
fn managed_denies(role: &ObservedRole) -> Result<Vec<&Statement>, String> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for arn in &role.attached_policies {
        match role.managed_documents.get(arn) {
            Some(ManagedDocument::Read(doc)) => found.extend(denies(doc)),
            Some(ManagedDocument::Unreadable(why)) => unknown.push(format!("{arn} ({why})")),
            None => unknown.push(format!("{arn} (not read)")),
        }
    }
    if unknown.is_empty() {
        Ok(found)
    } else {
        Err(unknown.join(", "))
    }
}

/// A managed policy read to hold Deny statements only: like such an inline
/// policy, it only narrows, so it stays and is not drift.
fn managed_guardrail(role: &ObservedRole, arn: &str) -> bool {
    matches!(role.managed_documents.get(arn),
        Some(ManagedDocument::Read(doc)) if !doc.statements.iter().any(|s| s.effect == Effect::Allow))
}

/// Why detaching managed policy `arn` from `role` could drop a Deny, if it
/// could. A managed policy cannot be rewritten (other roles may hold it), so
/// one that holds a Deny, or whose document is unknown, stays attached.
fn detach_risk(role: &ObservedRole, arn: &str) -> Option<String> {
    match role.managed_documents.get(arn) {
        Some(ManagedDocument::Read(doc)) if !holds_deny(doc) => None,
        Some(ManagedDocument::Read(_)) => {
            Some("it holds Deny statements, which detaching would drop (a minted role would carry them)".into())
        }
        Some(ManagedDocument::Unreadable(why)) => {
            Some(format!("its document could not be read ({why}), so it may hold a Deny"))
        }
        None => Some("its document was not read, so it may hold a Deny".into()),
    }
}

// ------------------------------------------------------------------ identity: the plan

fn identity(p: &Posture, id: &IdentityControl, acct: &AccountContext, o: &ObservedFunction, b: &mut Draft) {
    let aws = id.aws.clone().unwrap_or(AwsIdentity {
        permissions: None,
        baseline: true,
        managed_policies: Vec::new(),
        permissions_boundary: None,
    });
    let shared = !o.role_shared_with.is_empty();
    let standing = standing(p, id, o);
    let desired = aws.permissions.is_some().then(|| desired_policy(p, acct, o, &aws));
    let allow: BTreeSet<String> = aws.managed_policies.iter().cloned().collect();
    let drifts = match (&desired, &o.role) {
        (Some(d), Some(current)) => role_drift(&desired_on(d, current), &aws, &allow, current),
        _ => Vec::new(),
    };
    let move_wanted = (id.dedicated && shared) || (!standing.editable() && !drifts.is_empty());
    let (switch_to, blocker) = if move_wanted {
        destination(p, id, &aws, acct, o, b)
    } else {
        (None, None)
    };
    if id.dedicated && shared {
        shared_role_finding(o, switch_to.as_ref(), blocker.as_deref(), b);
    }
    if id.dedicated {
        trust_finding(o, b);
    }

    let Some(desired) = desired else { return };
    let Some(current) = &o.role else {
        b.plan.finding(
            Finding::builder(Control::Identity, "aws.identity.roleNotObserved", "Configuration.Role")
                .observed(&o.role_arn)
                .desired("a role of this account zerofn can read")
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "role {} is not a role of this account (or cannot be read), so its permissions cannot be checked",
                    o.role_arn
                )),
        );
        return;
    };

    // Findings describe the role the function runs as now; actions go to the
    // role it will run as.
    let why = drift_outcome(switch_to.as_ref(), &standing, blocker.as_deref(), current);
    for d in drifts {
        let remediable = switch_to.is_some() || (standing.editable() && d.in_place);
        b.plan.finding(d.finding(remediable, &why));
    }

    if let Some(target) = &switch_to {
        // Narrowing is allowed, widening is not: the minted role keeps every
        // Deny and the boundary that limited the function on the old role,
        // those of its managed policies included (`mint_target` refuses a
        // role whose managed policies could not all be read). The function
        // does not run as it yet, so what it must not hold goes before the
        // switch.
        let old_denies = inline_denies(current).chain(managed_denies(current).unwrap_or_default());
        let carried = with_denies(&desired_on(&desired, target), old_denies);
        let boundary = carried_boundary(&aws, o);
        converge(target, &carried, boundary.as_deref(), &allow, Phase::Grant, b);
    } else if standing.editable() {
        let desired = desired_on(&desired, current);
        let boundary = aws.permissions_boundary.as_deref();
        converge(current, &desired, boundary, &allow, Phase::Revoke, b);
    }
}

/// The role the function moves to (created first when zerofn has none
/// yet), or why it cannot move.
fn destination(
    p: &Posture,
    id: &IdentityControl,
    aws: &AwsIdentity,
    acct: &AccountContext,
    o: &ObservedFunction,
    b: &mut Draft,
) -> (Option<ObservedRole>, Option<String>) {
    let target = match mint_target(p, id, aws, acct, o) {
        Ok(Some(existing)) => existing,
        Ok(None) => {
            let (create, role) = mint(p, acct, o);
            b.plan.push(Phase::Create, create);
            role
        }
        Err(why) => return (None, Some(why)),
    };
    b.config.set(ConfigField::Role(target.arn.clone()));
    (Some(target), None)
}

/// The CreateRole of the function's dedicated role, and that role as it
/// will be: trusted by Lambda alone, holding nothing yet.
fn mint(p: &Posture, acct: &AccountContext, o: &ObservedFunction) -> (AwsAction, ObservedRole) {
    let (name, arn) = dedicated_role(acct, o);
    let create = AwsAction::CreateRole {
        role_name: name.clone(),
        path: names::ROLE_PATH.to_string(),
        trust_policy: super::policy::lambda_trust_policy().to_json(),
        description: format!("Dedicated execution role of {} (zerofn)", o.arn),
        tags: BTreeMap::from([
            (names::MANAGED_TAG.to_string(), names::MANAGED_VALUE.to_string()),
            (names::OWNER_TAG.to_string(), p.owner.clone()),
        ]),
    };
    let role = ObservedRole {
        arn,
        name,
        ..ObservedRole::default()
    };
    (create, role)
}

fn trust_finding(o: &ObservedFunction, b: &mut Draft) {
    let Some(role) = o.role.as_ref().filter(|r| !r.trust.trusts_only_lambda()) else {
        return;
    };
    b.plan.finding(
        Finding::builder(Control::Identity, "aws.identity.roleTrust", "Role.AssumeRolePolicyDocument")
            .observed(role.trust.to_json())
            .desired("trusted by lambda.amazonaws.com only")
            .severity(Severity::High)
            .remediable(false)
            .message(format!(
                "role {} can be assumed by more than Lambda, so others can act with the function's permissions; zerofn does not change trust policies it did not write",
                role.arn
            )),
    );
}

/// What happens about the role's drift, said after each drift finding.
fn drift_outcome(
    switch_to: Option<&ObservedRole>,
    standing: &Standing,
    blocker: Option<&str>,
    current: &ObservedRole,
) -> String {
    match (switch_to, standing.editable()) {
        (Some(r), _) => format!(
            "the function moves to {} (minted by zerofn), which holds only the declared permissions and keeps the old role's Deny statements and boundary; {} is not changed ({})",
            r.arn,
            current.name,
            standing.describe()
        ),
        (None, true) => format!("fixed in place: {}", standing.describe()),
        (None, false) => format!(
            "{} is not changed: {}{}",
            current.name,
            standing.describe(),
            blocker.map(|e| format!("; {e}")).unwrap_or_default()
        ),
    }
}

fn dedicated_role(acct: &AccountContext, o: &ObservedFunction) -> (String, String) {
    let name = names::dedicated_role_name(&o.name, &o.arn);
    let arn = names::role_arn(&acct.partition, &acct.account_id, names::ROLE_PATH, &name);
    (name, arn)
}

/// The role zerofn would switch the function to: `Ok(None)` to create it,
/// `Ok(Some)` when zerofn minted it already, `Err` with why it cannot.
fn mint_target(
    p: &Posture,
    id: &IdentityControl,
    aws: &AwsIdentity,
    acct: &AccountContext,
    o: &ObservedFunction,
) -> Result<Option<ObservedRole>, String> {
    let (name, _) = dedicated_role(acct, o);
    if !id.create_if_shared {
        return Err(
            "set identity.createIfShared to let zerofn mint a dedicated role and switch the function to it".into(),
        );
    }
    if aws.permissions.is_none() {
        return Err("a minted role holds exactly identity.aws.permissions, which are not declared".into());
    }
    let Some(current) = &o.role else {
        return Err(format!(
            "role {} cannot be read, so the Deny statements and boundary that limit the function could not be carried to a new role",
            o.role_arn
        ));
    };
    if let Err(unknown) = managed_denies(current) {
        return Err(format!(
            "the documents of managed policies {unknown} of role {} could not be read, so the Deny statements they may hold could not be carried to a new role",
            current.name
        ));
    }
    match &o.dedicated_role {
        None => Ok(None),
        // A role zerofn set out to create (its write-ahead record is kept)
        // whose RoleId went unrecorded: CreateRole proves it by the record's
        // nonce and its creation time, or refuses.
        Some(r) if !is_minted(p, r) && p.intents.iter().any(|i| i.principal == r.arn) => Ok(None),
        Some(r) if !is_minted(p, r) => Err(format!(
            "zerofn would mint {name}, but a role of that name exists that zerofn cannot prove it created (RoleId {} is not on record; a name or a tag proves nothing), so zerofn does not write to it; {NO_RECORD_HINT}",
            if r.role_id.is_empty() { "unknown" } else { &r.role_id }
        )),
        Some(r) if o.role.as_ref().is_some_and(|c| c.arn == r.arn) => Err(format!(
            "the function already runs as {name}, which zerofn minted, but others can use it"
        )),
        Some(r) if r.permissions_boundary.is_some() && r.permissions_boundary != carried_boundary(aws, o) => {
            Err(format!(
                "zerofn minted {name}, but it carries boundary {}, not {} that must limit the function; a boundary is never replaced",
                r.permissions_boundary.as_deref().unwrap_or("none"),
                carried_boundary(aws, o).as_deref().unwrap_or("none")
            ))
        }
        Some(r) => match role_bystanders(r) {
            // A managed policy that stays attached would give the function
            // its Allow statements on the new role.
            _ if let Some((arn, why)) = kept_managed(r, aws) => Err(format!(
                "zerofn minted {name}, but managed policy {arn} is attached to it and is not allowlisted, and it cannot be detached: {why}"
            )),
            others if others.is_empty() => Ok(Some(r.clone())),
            others => Err(format!(
                "zerofn minted {name} (RoleId {}), but {}",
                r.role_id,
                others.join("; ")
            )),
        },
    }
}

/// An attached, not allowlisted managed policy of `role` that allows
/// something and cannot be detached, and why.
fn kept_managed(role: &ObservedRole, aws: &AwsIdentity) -> Option<(String, String)> {
    role.attached_policies
        .iter()
        .filter(|a| !aws.managed_policies.contains(*a) && !managed_guardrail(role, a))
        .find_map(|a| detach_risk(role, a).map(|why| (a.clone(), why)))
}

/// The boundary a minted role must carry: the declared one, or the one that
/// limits the function now.
fn carried_boundary(aws: &AwsIdentity, o: &ObservedFunction) -> Option<String> {
    aws.permissions_boundary
        .clone()
        .or_else(|| o.role.as_ref().and_then(|r| r.permissions_boundary.clone()))
}

fn shared_role_finding(o: &ObservedFunction, switch_to: Option<&ObservedRole>, blocker: Option<&str>, b: &mut Draft) {
    let others = o.role_shared_with.join(", ");
    let message = match (switch_to, blocker) {
        (Some(r), _) => format!(
            "role {} is shared with {others}; the function moves to {}, minted by zerofn, which holds only the declared permissions (the old role is left as it is)",
            o.role_arn, r.arn
        ),
        (None, Some(why)) => format!(
            "role {} is shared with {others}: a compromise of either function has the other's permissions; {why}",
            o.role_arn
        ),
        (None, None) => format!("role {} is shared with {others}", o.role_arn),
    };
    b.plan.finding(
        Finding::builder(Control::Identity, "aws.identity.sharedRole", "Configuration.Role")
            .observed(format!("{} (also used by {others})", o.role_arn))
            .desired(match switch_to {
                Some(r) => r.arn.clone(),
                None => "a role no other function uses".into(),
            })
            .severity(Severity::High)
            .remediable(switch_to.is_some())
            .message(message),
    );
}

/// One way the role differs from the declared least privilege.
struct Drift {
    check: &'static str,
    field: String,
    observed: String,
    desired: String,
    severity: Severity,
    message: String,
    /// Whether changing the role itself can fix it (a boundary zerofn did not
    /// set can only be fixed by moving to a minted role).
    in_place: bool,
}

impl Drift {
    /// The finding, with what happens about it (`outcome`).
    fn finding(self, remediable: bool, outcome: &str) -> Finding {
        Finding::builder(Control::Identity, self.check, self.field)
            .observed(self.observed)
            .desired(self.desired)
            .severity(self.severity)
            .remediable(remediable)
            .message(format!("{}; {outcome}", self.message))
    }
}

fn role_drift(
    desired: &PolicyDocument,
    aws: &AwsIdentity,
    allow: &BTreeSet<String>,
    current: &ObservedRole,
) -> Vec<Drift> {
    let mut out: Vec<Drift> = own_policy_drift(desired, current).into_iter().collect();
    out.extend(extra_inline_drifts(current));
    out.extend(managed_policy_drifts(allow, current));
    out.extend(boundary_drift(aws, current));
    out
}

/// zerofn's own inline policy, when it does not hold exactly `desired`.
fn own_policy_drift(desired: &PolicyDocument, current: &ObservedRole) -> Option<Drift> {
    let observed = current.inline_policies.get(names::INLINE_POLICY_NAME);
    if observed.is_some_and(|doc| doc.same_as(desired)) {
        return None;
    }
    Some(Drift {
        check: "aws.identity.inlinePolicy",
        field: format!("Role.RolePolicyList[{}]", names::INLINE_POLICY_NAME),
        observed: observed.map(PolicyDocument::to_json).unwrap_or_else(|| "absent".into()),
        desired: desired.to_json(),
        severity: Severity::Medium,
        message: match observed {
            None => format!(
                "role {} has no inline policy {} holding the declared permissions and baseline",
                current.name,
                names::INLINE_POLICY_NAME
            ),
            Some(_) => format!(
                "inline policy {} of {} differs from the declared permissions and baseline",
                names::INLINE_POLICY_NAME,
                current.name
            ),
        },
        in_place: true,
    })
}

/// Inline policies other than zerofn's that allow something. A policy of
/// Deny statements only is a guardrail: it stays as it is.
fn extra_inline_policies(role: &ObservedRole) -> impl Iterator<Item = (&String, &PolicyDocument)> {
    role.inline_policies
        .iter()
        .filter(|(n, d)| *n != names::INLINE_POLICY_NAME && d.statements.iter().any(|s| s.effect == Effect::Allow))
}

fn extra_inline_drifts(current: &ObservedRole) -> Vec<Drift> {
    extra_inline_policies(current)
        .map(|(name, doc)| {
            let admin = doc.grants_everything();
            Drift {
                check: "aws.identity.extraInlinePolicy",
                field: format!("Role.RolePolicyList[{name}]"),
                observed: doc.to_json(),
                desired: if holds_deny(doc) {
                    "its Deny statements only".into()
                } else {
                    "absent".into()
                },
                severity: if admin { Severity::Critical } else { Severity::High },
                message: format!(
                    "inline policy {name} of {} is not declared{}{}",
                    current.name,
                    if admin {
                        " and allows every action on every resource"
                    } else {
                        ""
                    },
                    if holds_deny(doc) {
                        " (its Deny statements are kept: the policy is rewritten to hold only them)"
                    } else {
                        ""
                    }
                ),
                in_place: true,
            }
        })
        .collect()
}

fn managed_policy_drifts(allow: &BTreeSet<String>, current: &ObservedRole) -> Vec<Drift> {
    current
        .attached_policies
        .iter()
        .filter(|a| !allow.contains(*a) && !managed_guardrail(current, a))
        .map(|arn| {
            let admin = ADMIN_POLICIES.iter().any(|n| arn.ends_with(&format!(":policy/{n}")));
            let risk = detach_risk(current, arn);
            Drift {
                check: "aws.identity.unlistedManagedPolicy",
                field: format!("Role.AttachedManagedPolicies[{arn}]"),
                observed: arn.clone(),
                desired: "not attached (not in identity.aws.managedPolicies)".into(),
                severity: if admin { Severity::Critical } else { Severity::High },
                message: format!(
                    "managed policy {arn} is attached to {} but not allowlisted{}",
                    current.name,
                    risk.as_deref()
                        .map(|why| format!("; it is never detached from this role: {why}"))
                        .unwrap_or_default()
                ),
                in_place: risk.is_none(),
            }
        })
        .collect()
}

fn boundary_drift(aws: &AwsIdentity, current: &ObservedRole) -> Option<Drift> {
    let boundary = aws.permissions_boundary.as_ref()?;
    if current.permissions_boundary.as_ref() == Some(boundary) {
        return None;
    }
    let other = current.permissions_boundary.as_deref();
    Some(Drift {
        check: "aws.identity.permissionsBoundary",
        field: "Role.PermissionsBoundary".into(),
        observed: other.unwrap_or("none").into(),
        desired: boundary.clone(),
        severity: Severity::Medium,
        message: match other {
            None => format!("role {} does not carry the declared permissions boundary", current.name),
            Some(o) => format!(
                "role {} carries boundary {o}, not the declared one; a boundary zerofn did not set is never removed or replaced",
                current.name
            ),
        },
        in_place: other.is_none(),
    })
}

/// Bring `target` to the declared state: zerofn's inline policy, the
/// boundary (only where none is set), no undeclared Allow statements, no
/// managed policy outside the allowlist unless it may hold a Deny. Every
/// Deny statement stays. The boundary and policy are granted; what goes
/// goes in phase `removals`: after them, or, for a role the function does
/// not run as yet, before the function is switched to it.
fn converge(
    target: &ObservedRole,
    desired: &PolicyDocument,
    boundary: Option<&str>,
    allow: &BTreeSet<String>,
    removals: Phase,
    b: &mut Draft,
) {
    if let Some(boundary) = boundary
        && target.permissions_boundary.is_none()
    {
        // Before the policy: the role is never broader than the boundary allows.
        b.plan.push(
            Phase::Grant,
            AwsAction::PutRolePermissionsBoundary {
                role_name: target.name.clone(),
                boundary_arn: boundary.to_string(),
            },
        );
    }
    if !target
        .inline_policies
        .get(names::INLINE_POLICY_NAME)
        .is_some_and(|d| d.same_as(desired))
    {
        b.plan.push(
            Phase::Grant,
            AwsAction::PutRolePolicy {
                role_name: target.name.clone(),
                policy_name: names::INLINE_POLICY_NAME.to_string(),
                document: desired.to_json(),
            },
        );
    }
    for (name, doc) in extra_inline_policies(target) {
        let role_name = target.name.clone();
        let policy_name = name.clone();
        b.plan.push(
            removals,
            if holds_deny(doc) {
                let document = PolicyDocument::from_statements(denies(doc).cloned().collect()).to_json();
                AwsAction::PutRolePolicy {
                    role_name,
                    policy_name,
                    document,
                }
            } else {
                AwsAction::DeleteRolePolicy { role_name, policy_name }
            },
        );
    }
    for arn in target
        .attached_policies
        .iter()
        .filter(|a| !allow.contains(*a) && detach_risk(target, a).is_none())
    {
        b.plan.push(
            removals,
            AwsAction::DetachRolePolicy {
                role_name: target.name.clone(),
                policy_arn: arn.clone(),
            },
        );
    }
}

// ------------------------------------------------------------------ triggers

fn grants(t: &AwsTriggers, acct: &AccountContext) -> Vec<InvokeGrant> {
    let mut v: Vec<InvokeGrant> = t
        .invokers
        .iter()
        .map(|i| InvokeGrant {
            principal: Principal::from_declared(&i.principal, &acct.partition),
            principal_param: i.principal.clone(),
            action: i.action,
            source_arn: i.source_arn.clone(),
            source_account: i.source_account.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn grant_sid(g: &InvokeGrant) -> String {
    names::statement_id(&[
        &g.principal_param,
        g.action.as_str(),
        g.source_arn.as_deref().unwrap_or(""),
        g.source_account.as_deref().unwrap_or(""),
    ])
}

/// One way to invoke the function: the function itself (and `$LATEST`), or
/// one of its aliases or published versions. Each has its own resource
/// policy and function URL, judged alike.
struct InvokePath<'a> {
    qualifier: Option<&'a str>,
    /// Prefix of the finding fields: empty, `Alias[live].` or `Version[3].`.
    field: String,
    /// How messages name it.
    label: String,
    statements: &'a [ResourceStatement],
    url: Option<&'a FunctionUrl>,
}

fn invoke_paths(o: &ObservedFunction) -> Vec<InvokePath<'_>> {
    let mut paths = vec![InvokePath {
        qualifier: None,
        field: String::new(),
        label: "the function".into(),
        statements: o.resource_policy.as_deref().unwrap_or_default(),
        url: o.url.as_ref(),
    }];
    paths.extend(o.qualifiers.iter().map(|q| InvokePath {
        qualifier: Some(q.name.as_str()),
        field: format!("{}[{}].", q.kind.as_str(), q.name),
        label: format!("{} {} of the function", q.kind.as_str().to_ascii_lowercase(), q.name),
        statements: q.resource_policy.as_deref().unwrap_or_default(),
        url: q.url.as_ref(),
    }));
    paths
}

fn triggers(t: &TriggerControl, acct: &AccountContext, o: &ObservedFunction, b: &mut Draft) {
    let aws = t.aws.clone().unwrap_or_default();
    let grants = grants(&aws, acct);
    let paths = invoke_paths(o);
    let dormant: Vec<Vec<String>> = paths
        .iter()
        .map(|path| resource_policy(t, &grants, path, o, b))
        .collect();
    // Each URL change is pushed after every statement removal: requiring
    // IAM authentication must not wake, even for a moment, a grant that is
    // on its way out.
    for (path, dormant) in paths.iter().zip(&dormant) {
        function_url(t, &aws, path, dormant, o, b);
    }
    event_sources(t, &aws, o, b);
    if let Some(cfg) = &aws.api_gateway {
        let public = super::front_doors::plan(cfg, o.front_doors.as_ref(), &mut b.plan);
        if !public.is_empty() {
            // Public by declaration passes, and stays visible.
            b.notes.push(Note {
                control: Control::Triggers,
                reason: crate::reason::Reason::Compliant,
                message: format!(
                    "public by declaration (triggers.aws.apiGateway.publicMethods): {}",
                    public.join(", ")
                ),
            });
        }
    }
}

/// What becomes of one statement of a resource policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// It is declared grant `i`, scoped as declared.
    Holds(usize),
    /// It is a sloppy copy of declared grant `i`: a statement scoped as
    /// declared replaces it.
    Replaced(usize),
    Removed,
    /// It stays: a Deny, or an undeclared grant `removeUnlisted: false`
    /// keeps. `dormant`: it could admit a URL caller once the URL requires
    /// IAM authentication.
    Kept {
        dormant: bool,
    },
}

/// Judge every statement of one path's resource policy: keep Deny and the
/// declared grants, replace sloppy copies of declared grants, remove public
/// and unscoped statements, and undeclared ones when `removeUnlisted`.
/// Declared grants missing from the function itself are added before
/// anything is removed.
///
/// Returns the Sids of undeclared statements that stay (`removeUnlisted:
/// false`) and could admit a URL caller once the URL requires IAM
/// authentication: until then they are dormant.
fn resource_policy(
    t: &TriggerControl,
    grants: &[InvokeGrant],
    path: &InvokePath,
    o: &ObservedFunction,
    b: &mut Draft,
) -> Vec<String> {
    let mut satisfied = vec![false; grants.len()];
    let mut replaced = vec![false; grants.len()];
    let mut removals = Vec::new();
    let mut dormant = Vec::new();
    for st in path.statements {
        let sid = st.sid.clone().unwrap_or_default();
        match fate(t, grants, path, st, b) {
            Fate::Holds(i) => satisfied[i] = true,
            Fate::Replaced(i) => {
                replaced[i] = true;
                removals.push(sid);
            }
            Fate::Removed => removals.push(sid),
            Fate::Kept { dormant: true } => dormant.push(sid),
            Fate::Kept { dormant: false } => {}
        }
    }
    // Sids of the statements that stay: a new grant must not reuse one.
    let kept: BTreeSet<&str> = path
        .statements
        .iter()
        .filter_map(|st| st.sid.as_deref())
        .filter(|sid| !removals.iter().any(|r| r.as_str() == *sid))
        .collect();
    for (i, g) in grants.iter().enumerate() {
        // The function itself carries every declared grant; an alias or a
        // version gets one only in place of a sloppy copy it held.
        if satisfied[i] || (path.qualifier.is_some() && !replaced[i]) {
            continue;
        }
        let mut sid = grant_sid(g);
        if kept.contains(sid.as_str()) {
            // Someone else's statement holds our Sid; AddPermission would
            // be refused as a duplicate and the grant never added.
            sid = format!("{sid}-1");
        }
        if !replaced[i] {
            b.plan.finding(missing_invoker(g));
        }
        if let Some(pos) = removals.iter().position(|r| *r == sid) {
            // Our Sid is taken by a statement being removed: it goes right
            // before the grant that reuses its Sid.
            b.plan
                .push(Phase::Grant, remove_statement(o, path, removals.remove(pos)));
        }
        b.plan.push(Phase::Grant, add_grant(o, path, g, sid));
    }
    for sid in removals {
        b.plan.push(Phase::Revoke, remove_statement(o, path, sid));
    }
    dormant
}

fn remove_statement(o: &ObservedFunction, path: &InvokePath, statement_id: String) -> AwsAction {
    AwsAction::RemovePermission {
        function_arn: o.arn.clone(),
        qualifier: path.qualifier.map(str::to_string),
        statement_id,
    }
}

fn add_grant(o: &ObservedFunction, path: &InvokePath, g: &InvokeGrant, statement_id: String) -> AwsAction {
    AwsAction::AddPermission {
        function_arn: o.arn.clone(),
        qualifier: path.qualifier.map(str::to_string),
        statement_id,
        principal: g.principal_param.clone(),
        action: g.action.as_str().to_string(),
        source_arn: g.source_arn.clone(),
        source_account: g.source_account.clone(),
    }
}

fn missing_invoker(g: &InvokeGrant) -> Finding {
    Finding::builder(Control::Triggers, "aws.triggers.missingInvoker", "Policy.Statement")
        .observed("absent")
        .desired(format!(
            "{} {} from {}",
            g.principal_param,
            g.action.as_str(),
            g.source_arn.as_deref().unwrap_or("-")
        ))
        .severity(Severity::Low)
        .remediable(true)
        .message(format!(
            "declared invoker {} has no grant on the function",
            g.principal_param
        ))
}

/// One statement as its findings name it.
struct Seen<'a> {
    sid: String,
    /// Prefix of the finding fields, e.g. `Alias[live].Policy.Statement[s3]`.
    field: String,
    principal: String,
    /// How messages name the path.
    label: &'a str,
}

/// Judge one statement, reporting what is wrong with it.
fn fate(t: &TriggerControl, grants: &[InvokeGrant], path: &InvokePath, st: &ResourceStatement, b: &mut Draft) -> Fate {
    let verdict = judge(st);
    if verdict == Verdict::Deny {
        // A Deny only narrows: it stays, whatever the posture declares.
        return Fate::Kept { dormant: false };
    }
    let matches: Vec<GrantMatch> = grants.iter().map(|g| g.compare(st, &verdict)).collect();
    if let Some(i) = matches.iter().position(|m| *m == GrantMatch::Exact) {
        return Fate::Holds(i);
    }
    let sid = st.sid.clone().unwrap_or_default();
    let seen = Seen {
        field: format!("{}Policy.Statement[{sid}]", path.field),
        sid,
        principal: st
            .principal
            .clone()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        label: &path.label,
    };
    if let Some(i) = matches.iter().position(|m| *m == GrantMatch::Loose) {
        b.plan.finding(seen.loose_copy(&grants[i], &verdict));
        return Fate::Replaced(i);
    }
    match &verdict {
        Verdict::Public => {
            b.plan.finding(seen.public());
            Fate::Removed
        }
        Verdict::Unscoped { any_account, .. } => {
            b.plan.finding(seen.unscoped(&verdict, *any_account));
            Fate::Removed
        }
        Verdict::Scoped { .. } | Verdict::Deny => {
            b.plan.finding(seen.unlisted(t.remove_unlisted));
            if t.remove_unlisted {
                Fate::Removed
            } else {
                Fate::Kept {
                    dormant: st.covers_action(InvokeAction::InvokeFunctionUrl.as_str()),
                }
            }
        }
    }
}

impl Seen<'_> {
    /// A finding on the statement's `part` (`Principal`, `Condition`).
    fn on(&self, check: &str, part: &str) -> FindingBuilder {
        Finding::builder(Control::Triggers, check, format!("{}.{part}", self.field))
    }

    fn loose_copy(&self, g: &InvokeGrant, verdict: &Verdict) -> Finding {
        let how = match verdict {
            Verdict::Unscoped { .. } => verdict.gaps(),
            _ => "scoped otherwise than declared".into(),
        };
        let (sid, principal, label) = (&self.sid, &self.principal, self.label);
        self.on("aws.triggers.unscopedInvoker", "Condition")
            .observed(format!("{principal} {how}"))
            .desired(format!(
                "{principal} with AWS:SourceArn={} AWS:SourceAccount={}",
                g.source_arn.as_deref().unwrap_or("-"),
                g.source_account.as_deref().unwrap_or("-")
            ))
            .severity(verdict.severity().unwrap_or(Severity::Medium))
            .remediable(true)
            .message(format!(
                "statement {sid} lets {principal} invoke {label} {how}: it is replaced by a statement scoped as declared"
            ))
    }

    fn public(&self) -> Finding {
        self.on("aws.triggers.publicPrincipal", "Principal")
            .observed("*")
            .desired("declared invokers only")
            .severity(Severity::Critical)
            .remediable(true)
            .message(format!("statement {} lets anyone invoke {}", self.sid, self.label))
    }

    fn unscoped(&self, verdict: &Verdict, any_account: bool) -> Finding {
        let gaps = verdict.gaps();
        let (sid, principal, label) = (&self.sid, &self.principal, self.label);
        let reach = if any_account {
            "a resource of that service in any account can trigger it"
        } else {
            "other resources of that service can trigger it"
        };
        self.on("aws.triggers.unscopedInvoker", "Condition")
            .observed(format!("{principal} {gaps}"))
            .desired("declared invokers only, each with AWS:SourceArn and AWS:SourceAccount")
            .severity(verdict.severity().unwrap_or(Severity::High))
            .remediable(true)
            .message(format!(
                "statement {sid} lets {principal} invoke {label} {gaps}: {reach} (confused deputy)"
            ))
    }

    fn unlisted(&self, remove: bool) -> Finding {
        let (sid, principal, label) = (&self.sid, &self.principal, self.label);
        let kept = if remove {
            ""
        } else {
            " (kept: triggers.removeUnlisted is false)"
        };
        self.on("aws.triggers.unlistedInvoker", "Principal")
            .observed(principal)
            .desired("declared invokers only")
            .severity(Severity::High)
            .remediable(remove)
            .message(format!(
                "statement {sid} lets {principal} invoke {label}, which is not a declared invoker{kept}"
            ))
    }
}

/// A path's function URL: none under `Forbidden`, otherwise `AWS_IAM`.
/// `dormant`: kept undeclared statements a switch to `AWS_IAM` would wake.
fn function_url(
    t: &TriggerControl,
    aws: &AwsTriggers,
    path: &InvokePath,
    dormant: &[String],
    o: &ObservedFunction,
    b: &mut Draft,
) {
    let Some(url) = path.url else { return };
    let url_policy = aws.function_url.unwrap_or(match t.public_access {
        PublicAccess::Deny => FunctionUrlPolicy::Forbidden,
        PublicAccess::RequireAuth => FunctionUrlPolicy::Allowed,
    });
    let function_arn = o.arn.clone();
    let qualifier = path.qualifier.map(str::to_string);
    let public = url.auth_type != "AWS_IAM";
    if url_policy == FunctionUrlPolicy::Forbidden {
        b.plan.finding(forbidden_url(path, url, public));
        b.plan.push(
            Phase::Revoke,
            AwsAction::DeleteFunctionUrl {
                function_arn,
                qualifier,
            },
        );
    } else if public {
        // Without authentication a URL caller is anonymous, so grants to
        // named principals do not apply; with AWS_IAM they do. Waking an
        // undeclared grant would widen access: the user decides.
        b.plan.finding(public_url(path, url, dormant));
        if dormant.is_empty() {
            // Requiring authentication takes anonymous access away: a removal.
            b.plan.push(
                Phase::Revoke,
                AwsAction::UpdateFunctionUrlAuthType {
                    function_arn,
                    qualifier,
                    auth_type: "AWS_IAM".into(),
                },
            );
        }
    }
}

fn forbidden_url(path: &InvokePath, url: &FunctionUrl, public: bool) -> Finding {
    Finding::builder(
        Control::Triggers,
        "aws.triggers.functionUrl",
        format!("{}FunctionUrlConfig", path.field),
    )
    .observed(format!("{} (AuthType {})", url.url, url.auth_type))
    .desired("no function URL")
    .severity(if public { Severity::Critical } else { Severity::Medium })
    .remediable(true)
    .message(format!(
        "{} has a URL{} but the posture forbids one (publicAccess Deny or functionUrl Forbidden)",
        path.label,
        if public { " that anyone can call" } else { "" }
    ))
}

/// A URL without authentication; fixable unless requiring it would wake
/// the `dormant` statements.
fn public_url(path: &InvokePath, url: &FunctionUrl, dormant: &[String]) -> Finding {
    let fixable = dormant.is_empty();
    let label = &path.label;
    Finding::builder(
        Control::Triggers,
        "aws.triggers.publicUrl",
        format!("{}FunctionUrlConfig.AuthType", path.field),
    )
    .observed(&url.auth_type)
    .desired("AWS_IAM")
    .severity(Severity::Critical)
    .remediable(fixable)
    .message(if fixable {
        format!(
            "function URL {} of {label} can be called without authentication",
            url.url
        )
    } else {
        format!(
            "function URL {} of {label} can be called without authentication; requiring AWS_IAM would let the undeclared statements {} in, which triggers.removeUnlisted false keeps: remove them or set removeUnlisted",
            url.url,
            dormant.join(", ")
        )
    })
}

fn event_sources(t: &TriggerControl, aws: &AwsTriggers, o: &ObservedFunction, b: &mut Draft) {
    let allowed: BTreeSet<&str> = aws.event_sources.iter().map(String::as_str).collect();
    for m in o.event_source_mappings.iter().filter(|m| m.active()) {
        let source = m
            .event_source_arn
            .clone()
            .unwrap_or_else(|| "(self-managed source)".into());
        if allowed.contains(source.as_str()) {
            continue;
        }
        b.plan.finding(
            Finding::builder(Control::Triggers, "aws.triggers.unlistedEventSource", format!("EventSourceMapping[{}]", m.uuid))
                .observed(format!("{source} ({})", m.state))
                .desired("disabled (not in triggers.aws.eventSources)")
                .severity(Severity::High)
                .remediable(t.remove_unlisted)
                .message(if t.remove_unlisted {
                    format!("event source {source} invokes the function but is not declared; the mapping is disabled, not deleted")
                } else {
                    format!("event source {source} invokes the function but is not declared (kept: triggers.removeUnlisted is false)")
                }),
        );
        if t.remove_unlisted {
            b.plan.push(
                Phase::Revoke,
                AwsAction::DisableEventSourceMapping {
                    uuid: m.uuid.clone(),
                    event_source_arn: source,
                },
            );
        }
    }
}

// ------------------------------------------------------------------ network

fn network(p: &Posture, o: &ObservedFunction, b: &mut Draft) {
    let Some(n) = p.spec.network.as_ref().and_then(|n| n.aws.as_ref()) else {
        return;
    };
    if let Some(update) = super::network::plan(n, o, &mut b.plan) {
        b.config.set(ConfigField::Vpc(update));
    }
}

// ------------------------------------------------------------------ supply chain

fn supply_chain(p: &Posture, o: &ObservedFunction, b: &mut Draft) {
    let Some(sc) = p.spec.supply_chain.as_ref().and_then(|s| s.aws.as_ref()) else {
        return;
    };
    if let Some(csc) = &sc.code_signing_config_arn {
        code_signing(csc, o, b);
    }
    if let Some(allowed) = &sc.allowed_layers {
        for layer in &o.layers {
            if let Some(f) = layer_finding(layer, allowed) {
                b.plan.finding(f);
            }
        }
    }
}

/// The declared code signing config: attached, and enforcing. Its policy is
/// only reported: other functions may share the config.
fn code_signing(csc: &str, o: &ObservedFunction, b: &mut Draft) {
    let cs = o.code_signing.clone().unwrap_or_default();
    let attached = cs.attached_arn.as_deref();
    let finding = |remediable: bool, message: String| {
        Finding::builder(
            Control::SupplyChain,
            "aws.supplyChain.codeSigningConfig",
            "CodeSigningConfigArn",
        )
        .observed(attached.unwrap_or("none"))
        .desired(csc)
        .severity(Severity::High)
        .remediable(remediable)
        .message(message)
    };
    if !cs.declared_exists {
        b.plan.finding(finding(
            false,
            format!("the declared code signing config {csc} does not exist"),
        ));
        return;
    }
    if attached != Some(csc) {
        b.plan.finding(finding(
            true,
            "unsigned or untrusted code can be deployed to the function".into(),
        ));
        b.plan.push(
            Phase::Configure,
            AwsAction::PutFunctionCodeSigningConfig {
                function_arn: o.arn.clone(),
                code_signing_config_arn: csc.to_string(),
            },
        );
    }
    if cs.declared_policy.as_deref() != Some("Enforce") {
        b.plan.finding(
            Finding::builder(
                Control::SupplyChain,
                "aws.supplyChain.codeSigningPolicy",
                "CodeSigningConfig.CodeSigningPolicies.UntrustedArtifactOnDeployment",
            )
            .observed(cs.declared_policy.as_deref().unwrap_or("unknown"))
            .desired("Enforce")
            .severity(Severity::Medium)
            .remediable(false)
            .message(format!(
                "code signing config {csc} only warns on untrusted code; set its policy to Enforce (zerofn does not change a config other functions may share)"
            )),
        );
    }
}

/// What is wrong with one layer, if anything: layers are reported, never
/// removed.
fn layer_finding(layer: &str, allowed: &[String]) -> Option<Finding> {
    let (base, version) = split_layer(layer);
    let finding = |check: &str| {
        Finding::builder(Control::SupplyChain, check, format!("Layers[{layer}]"))
            .observed(layer)
            .remediable(false)
    };
    if version.is_none() {
        Some(
            finding("aws.supplyChain.unpinnedLayer")
                .desired("a layer version ARN")
                .severity(Severity::Medium)
                .message(format!(
                    "layer {layer} has no explicit version; layers are reported, never removed"
                )),
        )
    } else if !allowed.iter().any(|a| a == layer || *a == base) {
        Some(
            finding("aws.supplyChain.layerNotAllowed")
                .desired(format!("one of {}", allowed.join(", ")))
                .severity(Severity::High)
                .message(format!(
                    "layer {layer} is not in supplyChain.aws.allowedLayers; layers are reported, never removed"
                )),
        )
    } else {
        None
    }
}

// ------------------------------------------------------------------ observability

fn observability(p: &Posture, o: &ObservedFunction, b: &mut Draft) {
    let Some(obs) = &p.spec.observability else { return };
    if let Some(aws) = &obs.aws {
        let allowed = p
            .spec
            .supply_chain
            .as_ref()
            .and_then(|s| s.aws.as_ref())
            .and_then(|s| s.allowed_layers.as_deref());
        super::observability::plan(aws, allowed, o, &mut b.plan);
    }
    if let Some(mode) = obs.tracing {
        let want = match mode {
            TracingMode::Active => "Active",
            TracingMode::PassThrough => "PassThrough",
        };
        let have = o.tracing_mode.as_deref().unwrap_or("PassThrough");
        if have != want {
            b.plan.finding(
                Finding::builder(
                    Control::Observability,
                    "aws.observability.tracing",
                    "TracingConfig.Mode",
                )
                .observed(have)
                .desired(want)
                .severity(Severity::Medium)
                .remediable(true)
                .message("requests through the function are not traced end to end"),
            );
            b.config.set(ConfigField::TracingMode(want.to_string()));
        }
    }
    if obs.structured_logs == Some(true) {
        let have = o.logging.log_format.as_deref().unwrap_or("Text");
        if have != "JSON" {
            b.plan.finding(
                Finding::builder(
                    Control::Observability,
                    "aws.observability.logFormat",
                    "LoggingConfig.LogFormat",
                )
                .observed(have)
                .desired("JSON")
                .severity(Severity::Low)
                .remediable(true)
                .message("logs are plain text, so they cannot be queried or correlated by field"),
            );
            b.config.set(ConfigField::Logging(LoggingUpdate {
                log_format: "JSON".into(),
                log_group: o.logging.log_group.clone(),
                application_log_level: o.logging.application_log_level.clone(),
                system_log_level: o.logging.system_log_level.clone(),
            }));
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod triggers_tests;

#[cfg(test)]
#[path = "front_doors_tests.rs"]
mod front_doors_tests;
