//! The built-in role definitions the stand-in knows: their names and the
//! GUIDs every Azure tenant shares, and a trimmed permission set for each.

use serde_json::{Value, json};

/// Built-in roles by name and by the GUID that is the same in every tenant,
/// as Azure's published built-in role list gives them.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    ("User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"),
    (
        "Role Based Access Control Administrator",
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    ),
    ("Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772"),
    ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),
    ("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
    ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    ("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
    ("Storage Queue Data Reader", "19e7f393-937e-4f77-808e-94535e297925"),
    ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
    ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    ("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb"),
];

pub(crate) fn by_name(name: &str) -> Option<(&'static str, &'static str)> {
    BUILTIN_ROLES
        .iter()
        .copied()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
}

pub(crate) fn by_guid(guid: &str) -> Option<(&'static str, &'static str)> {
    BUILTIN_ROLES
        .iter()
        .copied()
        .find(|(_, g)| g.eq_ignore_ascii_case(guid))
}

/// `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`
pub(crate) fn definition_id(sub: &str, guid: &str) -> String {
    format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

/// The guid at the end of a role definition id, subscription-scoped or
/// tenant-scoped (`/providers/Microsoft.Authorization/roleDefinitions/{g}`).
pub(crate) fn guid_of_definition_id(id: &str) -> Option<&str> {
    let lower = id.to_ascii_lowercase();
    let marker = "/providers/microsoft.authorization/roledefinitions/";
    let at = lower.find(marker)?;
    let before = &lower[..at];
    let prefix_ok = before.is_empty() || (before.starts_with("/subscriptions/") && before.matches('/').count() == 2);
    let guid = &id[at + marker.len()..];
    (prefix_ok && !guid.contains('/')).then_some(guid)
}

/// A role definition as GET roleDefinitions answers it.
pub(crate) fn definition_json(sub: &str, (name, guid): (&str, &str)) -> Value {
    let (actions, not_actions, data_actions): (Vec<&str>, Vec<&str>, Vec<&str>) = match name {
        "Owner" => (vec!["*"], vec![], vec![]),
        "Contributor" => (
            vec!["*"],
            vec![
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ],
            vec![],
        ),
        "Reader" => (vec!["*/read"], vec![], vec![]),
        "User Access Administrator" => (vec!["*/read", "Microsoft.Authorization/*"], vec![], vec![]),
        "Role Based Access Control Administrator" => (
            vec![
                "Microsoft.Authorization/roleAssignments/write",
                "Microsoft.Authorization/roleAssignments/delete",
                "*/read",
            ],
            vec![],
            vec![],
        ),
        "Website Contributor" => (
            vec!["Microsoft.Web/sites/*", "Microsoft.Web/serverFarms/join/action"],
            vec![],
            vec![],
        ),
        "Monitoring Metrics Publisher" => (vec![], vec![], vec!["Microsoft.Insights/Metrics/Write"]),
        n if n.starts_with("Storage Blob") => (
            vec!["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
            vec![],
            vec!["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
        ),
        n if n.starts_with("Storage Queue") => (
            vec!["Microsoft.Storage/storageAccounts/queueServices/queues/read"],
            vec![],
            vec!["Microsoft.Storage/storageAccounts/queueServices/queues/messages/read"],
        ),
        _ => (
            vec![],
            vec![],
            vec!["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
        ),
    };
    json!({
        "id": definition_id(sub, guid),
        "name": guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name,
            "type": "BuiltInRole",
            "description": format!("{name} (built-in role, as served by the zerofn Azure stand-in)"),
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": actions,
                "notActions": not_actions,
                "dataActions": data_actions,
                "notDataActions": []
            }],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": null,
            "updatedBy": null
        }
    })
}
