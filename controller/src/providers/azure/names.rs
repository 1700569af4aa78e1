//! Names zerofn gives to what it creates on Azure, and the ownership tag.

use sha2::{Digest, Sha256};

/// Tag name of the ownership marker: `zerofn.dev/owner` with the `/` that
/// Azure tag names may not contain replaced by `-`. The value (the owner,
/// `<cluster>/<namespace>/<name>`) may hold `/`.
pub const OWNER_TAG: &str = "zerofn.dev-owner";

/// App settings that connect a function app to Application Insights.
pub const APP_INSIGHTS_SETTINGS: [&str; 2] = [
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
];

/// The app setting that makes an app run from a deployment package.
pub const RUN_FROM_PACKAGE: &str = "WEBSITE_RUN_FROM_PACKAGE";

/// Built-in role definition GUIDs, the same in every tenant, as Azure's
/// published built-in role list gives them. Only the well-known ids live
/// here; what any other role may do is read from its definition.
pub mod builtin {
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
    pub const RBAC_ADMINISTRATOR: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";

    /// Roles that can change anything, or who may: an undeclared one is
    /// critical even before its definition is read.
    pub const BROAD: [&str; 4] = [OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR];
}

/// A deterministic role assignment name (ARM wants a GUID): the same site,
/// role and scope always give the same name, so a rerun — or a second
/// replica — finds the assignment it made instead of making another.
/// Formatted as a version-5-style GUID from SHA-256.
pub fn assignment_name(site_id: &str, role_definition_guid: &str, scope: &str) -> String {
    let input = format!(
        "zerofn|{}|{}|{}",
        site_id.to_ascii_lowercase(),
        role_definition_guid.to_ascii_lowercase(),
        normalize_scope(scope)
    );
    let d = Sha256::digest(input.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// ARM ids and scopes compare case-insensitively and without a trailing `/`.
pub fn normalize_scope(scope: &str) -> String {
    scope.trim_end_matches('/').to_ascii_lowercase()
}

/// The GUID at the end of a role definition id (or the GUID itself).
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether `s` looks like a GUID (8-4-4-4-12 hex digits).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_names_are_stable_guids_that_ignore_case() {
        let a = assignment_name(
            "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Web/sites/fn",
            "ABC",
            "/subscriptions/S/",
        );
        let b = assignment_name(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.web/sites/FN",
            "abc",
            "/subscriptions/s",
        );
        assert_eq!(a, b);
        assert!(is_guid(&a), "{a}");
        assert_eq!(&a[14..15], "5");
        assert_ne!(
            a,
            assignment_name(
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.web/sites/fn",
                "abd",
                "/subscriptions/s"
            )
        );
    }

    /// Written from Azure's published built-in role list, not from the
    /// fixtures, so a typo shared by code and fixtures cannot pass.
    #[test]
    fn well_known_role_ids_are_the_published_ones() {
        let published = [
            ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
            ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
            ("User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"),
            (
                "Role Based Access Control Administrator",
                "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
            ),
        ];
        let ours = [
            builtin::OWNER,
            builtin::CONTRIBUTOR,
            builtin::USER_ACCESS_ADMINISTRATOR,
            builtin::RBAC_ADMINISTRATOR,
        ];
        for ((name, id), mine) in published.iter().zip(ours) {
            assert_eq!(*id, mine, "{name}");
            assert!(is_guid(mine), "{name}");
        }
        assert_eq!(builtin::BROAD, ours);
    }

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid("b24988ac-6180-42a0-ab88-20f7382dd24c"));
        assert!(!is_guid("Contributor"));
        assert!(!is_guid("b24988ac-6180-42a0-ab88-20f7382d0c2"));
        assert_eq!(
            role_guid(
                "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/B24988AC-6180-42a0-ab88-20f7382dd24c"
            ),
            "b24988ac-6180-42a0-ab88-20f7382dd24c"
        );
    }
}
