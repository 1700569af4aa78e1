//! Which IAM roles let their members invoke a 2nd gen function: any role on
//! the function's Cloud Run service that carries `run.routes.invoke`.
//!
//! Predefined roles whose permissions Google publishes are classified here
//! (checked against Google's predefined-roles reference: the Cloud Run,
//! Cloud Run functions and basic roles pages); every other role — custom
//! roles (`projects/*/roles/*`, `organizations/*/roles/*`) and predefined
//! roles this table does not name — is read through `iam.roles.get` and
//! judged by its `includedPermissions`.

/// The permission that lets a caller invoke a Cloud Run service.
pub const INVOKE_PERMISSION: &str = "run.routes.invoke";

/// Predefined roles that carry `run.routes.invoke`.
pub const PREDEFINED_INVOKE_ROLES: [&str; 7] = [
    // Cloud Run Invoker: run.routes.invoke (and run.jobs.run).
    "roles/run.invoker",
    // Cloud Run Service Invoker: run.routes.invoke.
    "roles/run.servicesInvoker",
    // Cloud Run Admin: run.*.
    "roles/run.admin",
    // Cloud Run Developer: run.routes.*.
    "roles/run.developer",
    // Cloud Functions Admin: run.*.
    "roles/cloudfunctions.admin",
    // Basic roles: owners and editors may invoke every service of the project.
    "roles/owner",
    "roles/editor",
];

/// Predefined roles that do not carry it, so they need no lookup.
pub const PREDEFINED_NON_INVOKE_ROLES: [&str; 4] = [
    // Cloud Run Viewer: get and list only.
    "roles/run.viewer",
    // Viewer: read-only.
    "roles/viewer",
    // Cloud Functions Invoker: cloudfunctions.functions.invoke only, which
    // 2nd gen functions do not honour (they need run.routes.invoke).
    "roles/cloudfunctions.invoker",
    // Cloud Functions Viewer: read-only.
    "roles/cloudfunctions.viewer",
];

/// What is known about a role without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Invokes,
    DoesNotInvoke,
    /// Must be read through `iam.roles.get`.
    Unknown,
}

pub fn classify(role: &str) -> Known {
    if PREDEFINED_INVOKE_ROLES.contains(&role) {
        Known::Invokes
    } else if PREDEFINED_NON_INVOKE_ROLES.contains(&role) {
        Known::DoesNotInvoke
    } else {
        Known::Unknown
    }
}

/// Whether a role holding these permissions lets its members invoke.
pub fn permissions_invoke(permissions: &[String]) -> bool {
    permissions.iter().any(|p| p == INVOKE_PERMISSION)
}

/// A role name `iam.roles.get` can read: predefined or custom.
pub fn readable_role_name(role: &str) -> bool {
    let parts: Vec<&str> = role.split('/').collect();
    match parts.as_slice() {
        ["roles", r] => !r.is_empty(),
        ["projects" | "organizations", p, "roles", r] => !p.is_empty() && !r.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_invoke_role_table_names_every_verified_role() {
        // The table as checked against Google's predefined-roles reference;
        // a change to it must be a deliberate change to this test.
        assert_eq!(
            PREDEFINED_INVOKE_ROLES,
            [
                "roles/run.invoker",
                "roles/run.servicesInvoker",
                "roles/run.admin",
                "roles/run.developer",
                "roles/cloudfunctions.admin",
                "roles/owner",
                "roles/editor",
            ]
        );
        for r in PREDEFINED_INVOKE_ROLES {
            assert_eq!(classify(r), Known::Invokes, "{r}");
            assert!(!PREDEFINED_NON_INVOKE_ROLES.contains(&r), "{r} in both tables");
        }
        assert_eq!(classify("roles/cloudfunctions.invoker"), Known::DoesNotInvoke);
        assert_eq!(classify("roles/cloudfunctions.developer"), Known::Unknown);
        assert_eq!(classify("projects/p/roles/caller"), Known::Unknown);
    }

    #[test]
    fn only_the_exact_invoke_permission_counts() {
        assert!(permissions_invoke(&[
            "run.routes.get".into(),
            "run.routes.invoke".into()
        ]));
        assert!(!permissions_invoke(&[
            "run.routes.get".into(),
            "run.services.get".into()
        ]));
        assert!(!permissions_invoke(&[]));
    }

    #[test]
    fn role_names_iam_can_read() {
        for ok in [
            "roles/run.invoker",
            "projects/p/roles/caller",
            "organizations/1/roles/caller",
        ] {
            assert!(readable_role_name(ok), "{ok}");
        }
        for bad in ["", "roles/", "projects/p/roles/", "folders/1/roles/x", "run.invoker"] {
            assert!(!readable_role_name(bad), "{bad}");
        }
    }
}
