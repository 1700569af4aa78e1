//! The permission ceiling: the most a FunctionPosture may declare through an
//! account. zerofn mints identities holding exactly what a posture declares,
//! so without a ceiling anyone who may write a posture could have zerofn mint
//! an administrator. Pure: the posture and the account in, field errors out.
//!
//! An account's `ceiling` replaces the default for each part it declares;
//! the parts it leaves out keep the default below.

use crate::api::validate::FieldError;
use crate::api::{
    AccountConfig, AwsAccount, AwsIdentity, AzureAccount, AzureIdentity, Effect, FunctionPostureSpec, GcpAccount,
    GcpIdentity,
};

/// IAM actions that let the holder raise its own (or another principal's)
/// permissions: create or change roles, users, policies, boundaries and keys,
/// or hand a role to a service. Refused by the default ceiling.
pub const ESCALATING_IAM_ACTIONS: &[&str] = &[
    "iam:AddUserToGroup",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateRole",
    "iam:CreateServiceLinkedRole",
    "iam:CreateUser",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PassRole",
    "iam:PutGroupPolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutUserPolicy",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateLoginProfile",
];

/// Role assumption: refused by the default ceiling on an unbounded resource.
const ASSUME_ROLE_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
];

/// AWS managed policies refused by the default ceiling, as a boundary or as
/// a managed policy a posture lets stay attached.
pub const DEFAULT_REFUSED_AWS_POLICIES: &[&str] = &["AdministratorAccess", "IAMFullAccess"];

/// GCP roles refused by the default ceiling (patterns).
pub const DEFAULT_REFUSED_GCP_ROLES: &[&str] = &[
    "roles/owner",
    "roles/editor",
    "roles/iam.*",
    "roles/resourcemanager.projectIamAdmin",
    "roles/resourcemanager.folderAdmin",
    "roles/resourcemanager.folderIamAdmin",
    "roles/resourcemanager.organizationAdmin",
];

/// Azure built-in roles refused by the default ceiling: (name, definition GUID).
/// Each can grant any role to anyone.
pub const DEFAULT_REFUSED_AZURE_ROLES: &[(&str, &str)] = &[
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"),
    (
        "Role Based Access Control Administrator",
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    ),
];

/// Whether every string `inner` matches is also matched by `outer`, for
/// patterns where `*` is any run of characters and `?` one character.
/// A concrete string is a pattern without wildcards.
pub fn covers(outer: &str, inner: &str) -> bool {
    let o: Vec<char> = outer.chars().collect();
    let i: Vec<char> = inner.chars().collect();
    // memo[a][b]: outer[a..] covers inner[b..]
    let mut memo = vec![vec![None; i.len() + 1]; o.len() + 1];
    covers_from(&o, &i, 0, 0, &mut memo)
}

fn covers_from(o: &[char], i: &[char], a: usize, b: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
    if let Some(v) = memo[a][b] {
        return v;
    }
    let v = if a == o.len() {
        b == i.len()
    } else if o[a] == '*' {
        covers_from(o, i, a + 1, b, memo) || (b < i.len() && covers_from(o, i, a, b + 1, memo))
    } else if b == i.len() || i[b] == '*' {
        // Only an outer `*` can take an inner `*`.
        false
    } else if o[a] == '?' {
        covers_from(o, i, a + 1, b + 1, memo)
    } else {
        i[b] != '?' && o[a] == i[b] && covers_from(o, i, a + 1, b + 1, memo)
    };
    memo[a][b] = Some(v);
    v
}

/// IAM action names are case-insensitive.
fn action_covers(outer: &str, inner: &str) -> bool {
    covers(&outer.to_ascii_lowercase(), &inner.to_ascii_lowercase())
}

/// Everything the posture declares that the account's ceiling does not allow.
pub fn check(spec: &FunctionPostureSpec, account: &AccountConfig) -> Vec<FieldError> {
    let mut out = Vec::new();
    let Some(identity) = &spec.identity else {
        return out;
    };
    match account {
        AccountConfig::Aws(a) => {
            if let Some(id) = &identity.aws {
                aws(id, a, &mut out);
            }
        }
        AccountConfig::Azure(a) => {
            if let Some(id) = &identity.azure {
                azure(id, a, &mut out);
            }
        }
        AccountConfig::Gcp(g) => {
            if let Some(id) = &identity.gcp {
                gcp(id, g, &mut out);
            }
        }
    }
    out
}

fn refuse(out: &mut Vec<FieldError>, path: String, message: String) {
    out.push(FieldError { path, message });
}

fn aws(id: &AwsIdentity, account: &AwsAccount, out: &mut Vec<FieldError>) {
    let ceiling = account.ceiling.clone().unwrap_or_default();
    for (s, st) in id.permissions.iter().flatten().enumerate() {
        // A Deny only takes access away.
        if st.effect == Effect::Deny {
            continue;
        }
        let at = format!("spec.identity.aws.permissions[{s}]");
        for (k, action) in st.actions.iter().enumerate() {
            let why = match &ceiling.actions {
                Some(allowed) => (!allowed.iter().any(|p| action_covers(p, action)))
                    .then(|| format!("action {action} is not inside the account's ceiling.actions")),
                None => default_action_refusal(action, &st.resources),
            };
            if let Some(why) = why {
                refuse(out, format!("{at}.actions[{k}]"), why);
            }
        }
        if let Some(allowed) = &ceiling.resources {
            for (k, resource) in st.resources.iter().enumerate() {
                if !allowed.iter().any(|p| covers(p, resource)) {
                    refuse(
                        out,
                        format!("{at}.resources[{k}]"),
                        format!("resource {resource} is not inside the account's ceiling.resources"),
                    );
                }
            }
        }
    }
    if let Some(boundary) = &id.permissions_boundary
        && let Some(why) = policy_refusal(
            boundary,
            ceiling.permissions_boundaries.as_deref(),
            "permissionsBoundaries",
        )
    {
        refuse(out, "spec.identity.aws.permissionsBoundary".into(), why);
    }
    for (k, policy) in id.managed_policies.iter().enumerate() {
        if let Some(why) = policy_refusal(policy, ceiling.managed_policies.as_deref(), "managedPolicies") {
            refuse(out, format!("spec.identity.aws.managedPolicies[{k}]"), why);
        }
    }
}

/// The default ceiling for one action of an Allow statement.
fn default_action_refusal(action: &str, resources: &[String]) -> Option<String> {
    let lower = action.to_ascii_lowercase();
    if lower == "*" || lower.starts_with("*:") {
        return Some(format!("{action} grants every action of every service"));
    }
    if action_covers(action, "iam:*") {
        return Some(format!(
            "{action} grants every IAM action, including granting the function more"
        ));
    }
    if let Some(e) = ESCALATING_IAM_ACTIONS.iter().find(|e| action_covers(action, e)) {
        return Some(format!(
            "{action} grants {e}, which lets the function raise its own permissions (declare a ceiling on the account to allow it)"
        ));
    }
    if let Some(e) = ASSUME_ROLE_ACTIONS.iter().find(|e| action_covers(action, e))
        && let Some(r) = resources.iter().find(|r| unbounded_role(r))
    {
        return Some(format!(
            "{action} grants {e} on {r}, i.e. on any role of any account: name the roles"
        ));
    }
    None
}

/// A resource that names no particular account's roles.
fn unbounded_role(resource: &str) -> bool {
    resource == "*"
        || resource
            .split(':')
            .nth(4)
            .is_none_or(|account| account.contains(['*', '?']))
}

fn policy_refusal(policy: &str, allowed: Option<&[String]>, field: &str) -> Option<String> {
    match allowed {
        Some(allowed) => (!allowed.iter().any(|p| covers(p, policy)))
            .then(|| format!("{policy} is not inside the account's ceiling.{field}")),
        None => {
            let aws_managed = policy.split(':').nth(4) == Some("aws");
            let name = policy.rsplit('/').next().unwrap_or_default();
            (aws_managed && DEFAULT_REFUSED_AWS_POLICIES.contains(&name))
                .then(|| format!("{policy} puts no bound on the role (declare a ceiling on the account to allow it)"))
        }
    }
}

fn gcp(id: &GcpIdentity, account: &GcpAccount, out: &mut Vec<FieldError>) {
    let allowed = account.ceiling.as_ref().and_then(|c| c.roles.as_ref());
    for (k, role) in id.roles.iter().flatten().enumerate() {
        let why = match allowed {
            Some(allowed) => (!allowed.iter().any(|p| covers(p, role)))
                .then(|| format!("{role} is not inside the account's ceiling.roles")),
            None => DEFAULT_REFUSED_GCP_ROLES.iter().any(|p| covers(p, role)).then(|| {
                format!("{role} can grant access or change IAM (declare a ceiling on the account to allow it)")
            }),
        };
        if let Some(why) = why {
            refuse(out, format!("spec.identity.gcp.roles[{k}]"), why);
        }
    }
}

/// A role as written (name, GUID, or a full role definition id) names the
/// built-in role `(name, guid)`.
fn names_role(role: &str, (name, guid): (&str, &str)) -> bool {
    let last = role.rsplit('/').next().unwrap_or(role);
    role.eq_ignore_ascii_case(name) || last.eq_ignore_ascii_case(guid)
}

/// `scope` is `outer` or lies under it.
fn within(outer: &str, scope: &str) -> bool {
    let (o, s) = (
        outer.trim_end_matches('/').to_ascii_lowercase(),
        scope.trim_end_matches('/').to_ascii_lowercase(),
    );
    s == o || s.starts_with(&format!("{o}/"))
}

fn azure(id: &AzureIdentity, account: &AzureAccount, out: &mut Vec<FieldError>) {
    let ceiling = account.ceiling.clone().unwrap_or_default();
    let subscription = format!("/subscriptions/{}", account.subscription_id);
    for (k, ra) in id.role_assignments.iter().flatten().enumerate() {
        let at = format!("spec.identity.azure.roleAssignments[{k}]");
        let role_refusal = match &ceiling.role_definitions {
            Some(allowed) => (!allowed.iter().any(|r| {
                r.eq_ignore_ascii_case(&ra.role)
                    || r.rsplit('/')
                        .next()
                        .unwrap_or(r)
                        .eq_ignore_ascii_case(ra.role.rsplit('/').next().unwrap_or(&ra.role))
            }))
            .then(|| format!("role {} is not inside the account's ceiling.roleDefinitions", ra.role)),
            None => DEFAULT_REFUSED_AZURE_ROLES
                .iter()
                .find(|r| names_role(&ra.role, **r))
                .map(|(name, _)| {
                    format!("{name} can grant any role to anyone (declare a ceiling on the account to allow it)")
                }),
        };
        if let Some(why) = role_refusal {
            refuse(out, format!("{at}.role"), why);
        }
        let scope_ok = match &ceiling.scopes {
            Some(allowed) => allowed.iter().any(|o| within(o, &ra.scope)),
            None => within(&subscription, &ra.scope),
        };
        if !scope_ok {
            let bound = if ceiling.scopes.is_some() {
                "the account's ceiling.scopes".to_string()
            } else {
                format!("the account's subscription {subscription}")
            };
            refuse(
                out,
                format!("{at}.scope"),
                format!("scope {} is outside {bound}", ra.scope),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AwsCeiling, AzureCeiling, GcpCeiling};

    fn posture(identity: &str) -> FunctionPostureSpec {
        serde_saphyr::from_str(&format!(
            "accountRef: {{name: a}}\nfunction: {{aws: {{name: f}}}}\nidentity:\n{identity}"
        ))
        .expect("test posture parses")
    }

    fn aws_account(ceiling: Option<AwsCeiling>) -> AccountConfig {
        AccountConfig::Aws(AwsAccount {
            region: "eu-west-1".into(),
            ceiling,
            ..AwsAccount::default()
        })
    }

    fn paths(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn pattern_cover_is_containment() {
        for (outer, inner, expected) in [
            ("s3:*", "s3:GetObject", true),
            ("s3:*", "s3:Get*", true),
            ("s3:Get*", "s3:*", false),
            ("s3:Get*", "s3:GetObject", true),
            ("s3:Get*", "s3:Put*", false),
            ("*", "anything:*", true),
            ("iam:Get*", "iam:G*", false),
            ("iam:*Policy", "iam:Put*Policy", true),
            ("iam:Put*Policy", "iam:*Policy", false),
            ("s3:?etObject", "s3:GetObject", true),
            ("s3:GetObject", "s3:?etObject", false),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/*", true),
            ("arn:aws:s3:::b/x/*", "arn:aws:s3:::b/*", false),
        ] {
            assert_eq!(covers(outer, inner), expected, "{outer} covers {inner}");
        }
    }

    /// (case, identity block, refused field paths) under the default ceiling.
    const AWS_DEFAULT: &[(&str, &str, &[&str])] = &[
        (
            "least privilege passes",
            "  aws:\n    permissions: [{actions: ['dynamodb:GetItem', 's3:Get*'], resources: ['arn:aws:dynamodb:eu-west-1:123456789012:table/t']}]\n",
            &[],
        ),
        (
            "iam:*",
            "  aws:\n    permissions: [{actions: ['s3:GetObject', 'iam:*'], resources: ['*']}]\n",
            &["spec.identity.aws.permissions[0].actions[1]"],
        ),
        (
            "a wildcard that reaches PassRole",
            "  aws:\n    permissions: [{actions: ['iam:Pass*'], resources: ['*']}]\n",
            &["spec.identity.aws.permissions[0].actions[0]"],
        ),
        (
            "Put*Policy, in another case",
            "  aws:\n    permissions: [{actions: ['IAM:put*policy'], resources: ['*']}]\n",
            &["spec.identity.aws.permissions[0].actions[0]"],
        ),
        (
            "iam reads pass",
            "  aws:\n    permissions: [{actions: ['iam:GetRole', 'iam:List*'], resources: ['*']}]\n",
            &[],
        ),
        (
            "AssumeRole on *",
            "  aws:\n    permissions: [{actions: ['sts:AssumeRole'], resources: ['*']}]\n",
            &["spec.identity.aws.permissions[0].actions[0]"],
        ),
        (
            "sts:Assume* on any account's roles",
            "  aws:\n    permissions: [{actions: ['sts:Assume*'], resources: ['arn:aws:iam::*:role/x']}]\n",
            &["spec.identity.aws.permissions[0].actions[0]"],
        ),
        (
            "AssumeRole on a named role passes",
            "  aws:\n    permissions: [{actions: ['sts:AssumeRole'], resources: ['arn:aws:iam::123456789012:role/reader']}]\n",
            &[],
        ),
        (
            "a Deny may say anything",
            "  aws:\n    permissions: [{effect: Deny, actions: ['iam:*'], resources: ['*']}]\n",
            &[],
        ),
        (
            "an AdministratorAccess boundary",
            "  aws:\n    permissionsBoundary: arn:aws:iam::aws:policy/AdministratorAccess\n",
            &["spec.identity.aws.permissionsBoundary"],
        ),
        (
            "a narrow boundary passes",
            "  aws:\n    permissionsBoundary: arn:aws:iam::123456789012:policy/lambda-boundary\n",
            &[],
        ),
        (
            "AdministratorAccess may not stay attached",
            "  aws:\n    managedPolicies: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole, arn:aws:iam::aws:policy/AdministratorAccess]\n",
            &["spec.identity.aws.managedPolicies[1]"],
        ),
    ];

    #[test]
    fn aws_default_ceiling() {
        for (case, identity, expected) in AWS_DEFAULT {
            let got = paths(check(&posture(identity), &aws_account(None)));
            assert_eq!(got, *expected, "{case}");
        }
    }

    #[test]
    fn every_escalating_action_is_refused_by_default() {
        for action in ESCALATING_IAM_ACTIONS {
            assert!(default_action_refusal(action, &["*".into()]).is_some(), "{action}");
        }
    }

    #[test]
    fn a_declared_aws_ceiling_replaces_the_default_part_by_part() {
        let ceiling = AwsCeiling {
            actions: Some(vec!["s3:*".into(), "iam:PassRole".into()]),
            resources: Some(vec![
                "arn:aws:s3:::team-*".into(),
                "arn:aws:iam::123456789012:role/team/*".into(),
            ]),
            permissions_boundaries: None,
            managed_policies: None,
        };
        let within = posture(
            "  aws:\n    permissions: [{actions: ['s3:Get*', 'iam:PassRole'], resources: ['arn:aws:s3:::team-a/*', 'arn:aws:iam::123456789012:role/team/x']}]\n",
        );
        assert_eq!(
            paths(check(&within, &aws_account(Some(ceiling.clone())))),
            Vec::<String>::new()
        );
        let above = posture(
            "  aws:\n    permissions: [{actions: ['s3:*', 'dynamodb:GetItem'], resources: ['arn:aws:s3:::other']}]\n    permissionsBoundary: arn:aws:iam::aws:policy/AdministratorAccess\n",
        );
        assert_eq!(
            paths(check(&above, &aws_account(Some(ceiling)))),
            vec![
                "spec.identity.aws.permissions[0].actions[1]",
                "spec.identity.aws.permissions[0].resources[0]",
                // boundaries were not declared: the default still refuses this one
                "spec.identity.aws.permissionsBoundary",
            ]
        );
    }

    fn gcp_posture(roles: &str) -> (FunctionPostureSpec, GcpAccount) {
        let spec: FunctionPostureSpec = serde_saphyr::from_str(&format!(
            "accountRef: {{name: a}}\nfunction: {{gcp: {{location: europe-west1, name: f}}}}\nidentity: {{gcp: {{roles: {roles}}}}}\n"
        ))
        .expect("test posture parses");
        (
            spec,
            GcpAccount {
                project_id: "my-project".into(),
                ..GcpAccount::default()
            },
        )
    }

    #[test]
    fn gcp_default_and_declared_ceiling() {
        let (spec, account) = gcp_posture(
            "[roles/pubsub.publisher, roles/owner, roles/editor, roles/iam.serviceAccountTokenCreator, roles/resourcemanager.projectIamAdmin]",
        );
        assert_eq!(
            paths(check(&spec, &AccountConfig::Gcp(account.clone()))),
            vec![
                "spec.identity.gcp.roles[1]",
                "spec.identity.gcp.roles[2]",
                "spec.identity.gcp.roles[3]",
                "spec.identity.gcp.roles[4]",
            ]
        );
        let declared = GcpAccount {
            ceiling: Some(GcpCeiling {
                roles: Some(vec![
                    "roles/pubsub.*".into(),
                    "roles/iam.serviceAccountTokenCreator".into(),
                ]),
            }),
            ..account
        };
        assert_eq!(
            paths(check(&spec, &AccountConfig::Gcp(declared))),
            vec![
                "spec.identity.gcp.roles[1]",
                "spec.identity.gcp.roles[2]",
                "spec.identity.gcp.roles[4]",
            ]
        );
    }

    const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";

    fn azure_case(assignments: &str, ceiling: Option<AzureCeiling>) -> Vec<String> {
        let spec: FunctionPostureSpec = serde_saphyr::from_str(&format!(
            "accountRef: {{name: a}}\nfunction: {{azure: {{resourceGroup: rg, name: f}}}}\nidentity: {{azure: {{roleAssignments: {assignments}}}}}\n"
        ))
        .expect("test posture parses");
        let account = AzureAccount {
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            subscription_id: SUB.into(),
            ceiling,
            ..AzureAccount::default()
        };
        paths(check(&spec, &AccountConfig::Azure(account)))
    }

    #[test]
    fn azure_default_ceiling_refuses_role_granting_roles_and_foreign_scopes() {
        let rg = format!("/subscriptions/{SUB}/resourceGroups/rg");
        let got = azure_case(
            &format!(
                "[{{role: Storage Blob Data Reader, scope: {rg}}}, {{role: owner, scope: {rg}}}, {{role: 18D7D88D-D35E-4FB5-A5C3-7773C20A72D9, scope: {rg}}}, {{role: /subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635, scope: {rg}}}, {{role: Reader, scope: /subscriptions/00000000-0000-0000-0000-000000000000}}, {{role: Reader, scope: /subscriptions/{SUB}-x}}]"
            ),
            None,
        );
        assert_eq!(
            got,
            vec![
                "spec.identity.azure.roleAssignments[1].role",
                "spec.identity.azure.roleAssignments[2].role",
                "spec.identity.azure.roleAssignments[3].role",
                "spec.identity.azure.roleAssignments[4].scope",
                "spec.identity.azure.roleAssignments[5].scope",
            ]
        );
    }

    #[test]
    fn a_declared_azure_ceiling_bounds_roles_and_scopes() {
        let rg = format!("/subscriptions/{SUB}/resourceGroups/rg");
        let ceiling = AzureCeiling {
            role_definitions: Some(vec!["Storage Blob Data Reader".into(), "Owner".into()]),
            scopes: Some(vec![rg.clone()]),
        };
        let got = azure_case(
            &format!(
                "[{{role: storage blob data reader, scope: {rg}/providers/Microsoft.Storage/storageAccounts/s}}, {{role: Owner, scope: {rg}}}, {{role: Reader, scope: {rg}}}, {{role: Owner, scope: /subscriptions/{SUB}}}]"
            ),
            Some(ceiling),
        );
        assert_eq!(
            got,
            vec![
                "spec.identity.azure.roleAssignments[2].role",
                "spec.identity.azure.roleAssignments[3].scope",
            ]
        );
    }
}
