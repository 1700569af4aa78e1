//! The writes the Azure provider makes. Each narrows access or adds exactly
//! what the posture declares; documents ARM replaces wholesale (tags,
//! authsettingsV2) are read again right before the write and only the
//! fields zerofn owns are changed.

use crate::providers::ActionSummary;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op")]
pub enum AzureAction {
    /// Add the system-assigned identity, keeping every user-assigned one
    /// (a long-running operation when ARM answers 202).
    EnableSystemIdentity {
        site: String,
        user_assigned: Vec<String>,
    },
    /// Set (Some) or remove (None) one tag through the Resources tags API
    /// (`Merge` / `Delete`: the site's other tags are never sent, so a
    /// concurrent change to them is kept).
    SetTag {
        site: String,
        key: String,
        value: Option<String>,
    },
    /// PATCH the site's properties named here.
    PatchSite {
        site: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        https_only: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        public_network_access: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        virtual_network_subnet_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        vnet_route_all_enabled: Option<bool>,
    },
    /// PATCH config/web with the settings named here.
    PatchWebConfig {
        site: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        min_tls_version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ftps_state: Option<String>,
        /// The whole list (ARM replaces it), with default action Deny.
        #[serde(skip_serializing_if = "Option::is_none")]
        ip_security_restrictions: Option<Vec<Value>>,
        /// The SCM site's whole list, with its default action Deny.
        #[serde(skip_serializing_if = "Option::is_none")]
        scm_ip_security_restrictions: Option<Vec<Value>>,
    },
    /// Read-modify-write of authsettingsV2: platform enabled,
    /// requireAuthentication true, unauthenticated callers refused; the
    /// identity providers and everything else are kept as read.
    RequireAuthentication {
        site: String,
    },
    /// basicPublishingCredentialsPolicies/{ftp|scm}: allow false.
    DisableBasicPublishing {
        site: String,
        kind: String,
    },
    /// A role assignment for the site's system-assigned principal (looked up
    /// at write time when the identity is enabled by the same plan).
    CreateRoleAssignment {
        site: String,
        scope: String,
        name: String,
        role_definition_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        principal_id: Option<String>,
    },
    DeleteRoleAssignment {
        id: String,
        role: String,
        scope: String,
    },
}

fn short(site: &str) -> &str {
    site.rsplit('/').next().unwrap_or(site)
}

/// `app` for a site, `app/slots/staging` for a slot.
fn site_label(site: &str) -> String {
    let parts: Vec<&str> = site.rsplit('/').take(3).collect();
    match parts.as_slice() {
        [slot, kind, app] if kind.eq_ignore_ascii_case("slots") => format!("{app}/slots/{slot}"),
        _ => short(site).to_string(),
    }
}

impl AzureAction {
    pub fn op(&self) -> &'static str {
        match self {
            AzureAction::EnableSystemIdentity { .. } => "PatchSite(identity)",
            AzureAction::SetTag { .. } => "PatchTags",
            AzureAction::PatchSite { .. } => "PatchSite",
            AzureAction::PatchWebConfig { .. } => "PatchWebConfig",
            AzureAction::RequireAuthentication { .. } => "PutAuthSettingsV2",
            AzureAction::DisableBasicPublishing { .. } => "PutBasicPublishingCredentialsPolicy",
            AzureAction::CreateRoleAssignment { .. } => "CreateRoleAssignment",
            AzureAction::DeleteRoleAssignment { .. } => "DeleteRoleAssignment",
        }
    }

    pub fn summary(&self) -> ActionSummary {
        let (target, detail) = match self {
            AzureAction::EnableSystemIdentity { site, user_assigned } => (
                short(site).to_string(),
                if user_assigned.is_empty() {
                    "enable the system-assigned identity".to_string()
                } else {
                    format!(
                        "enable the system-assigned identity (keeping {} user-assigned)",
                        user_assigned.len()
                    )
                },
            ),
            AzureAction::SetTag { site, key, value } => (
                site_label(site),
                match value {
                    Some(v) => format!("tag {key}={v}"),
                    None => format!("remove tag {key}"),
                },
            ),
            AzureAction::PatchSite {
                site,
                https_only,
                public_network_access,
                virtual_network_subnet_id,
                vnet_route_all_enabled,
            } => {
                let mut d = Vec::new();
                if let Some(v) = https_only {
                    d.push(format!("httpsOnly={v}"));
                }
                if let Some(v) = public_network_access {
                    d.push(format!("publicNetworkAccess={v}"));
                }
                if let Some(v) = virtual_network_subnet_id {
                    d.push(format!("virtualNetworkSubnetId={v}"));
                }
                if let Some(v) = vnet_route_all_enabled {
                    d.push(format!("vnetRouteAllEnabled={v}"));
                }
                (site_label(site), d.join(", "))
            }
            AzureAction::PatchWebConfig {
                site,
                min_tls_version,
                ftps_state,
                ip_security_restrictions,
                scm_ip_security_restrictions,
            } => {
                let mut d = Vec::new();
                if let Some(v) = min_tls_version {
                    d.push(format!("minTlsVersion={v}"));
                }
                if let Some(v) = ftps_state {
                    d.push(format!("ftpsState={v}"));
                }
                if let Some(r) = ip_security_restrictions {
                    d.push(format!(
                        "ipSecurityRestrictions=[{}], default action Deny",
                        r.iter()
                            .map(|x| x["name"].as_str().unwrap_or("?").to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if let Some(r) = scm_ip_security_restrictions {
                    d.push(format!(
                        "scmIpSecurityRestrictions=[{}], default action Deny",
                        r.iter()
                            .map(|x| x["name"].as_str().unwrap_or("?").to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                (format!("{}/config/web", site_label(site)), d.join(", "))
            }
            AzureAction::RequireAuthentication { site } => (
                format!("{}/config/authsettingsV2", site_label(site)),
                "require authentication (unauthenticated callers get 401)".to_string(),
            ),
            AzureAction::DisableBasicPublishing { site, kind } => (
                format!("{}/basicPublishingCredentialsPolicies/{kind}", site_label(site)),
                "allow=false".to_string(),
            ),
            AzureAction::CreateRoleAssignment {
                site,
                scope,
                role_definition_id,
                ..
            } => (
                short(site).to_string(),
                format!("assign role {} at {scope}", short(role_definition_id)),
            ),
            AzureAction::DeleteRoleAssignment { id, role, scope } => {
                (short(id).to_string(), format!("remove role {role} at {scope}"))
            }
        };
        ActionSummary {
            op: self.op().to_string(),
            target,
            detail,
        }
    }
}
