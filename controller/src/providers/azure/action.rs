//! The writes the Azure provider makes. Each narrows access or adds exactly
//! what the posture declares; documents ARM replaces wholesale (tags,
//! authsettingsV2) are read again right before the write and only the
//! fields zerofn owns are changed.

use crate::providers::ActionSummary;
use crate::providers::patch::{Field, Patch};
use serde::Serialize;
use serde_json::{Value, json};

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
        patch: Patch<SiteField>,
    },
    /// PATCH config/web with the settings named here.
    PatchWebConfig {
        site: String,
        patch: Patch<WebField>,
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

/// One property of a site PATCH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SiteField {
    HttpsOnly(bool),
    PublicNetworkAccess(String),
    VirtualNetworkSubnetId(String),
    VnetRouteAllEnabled(bool),
}

impl SiteField {
    /// The property's value in the request body.
    pub fn value(&self) -> Value {
        match self {
            SiteField::HttpsOnly(v) | SiteField::VnetRouteAllEnabled(v) => json!(v),
            SiteField::PublicNetworkAccess(v) | SiteField::VirtualNetworkSubnetId(v) => json!(v),
        }
    }
}

impl Field for SiteField {
    fn path(&self) -> &'static str {
        match self {
            SiteField::HttpsOnly(_) => "httpsOnly",
            SiteField::PublicNetworkAccess(_) => "publicNetworkAccess",
            SiteField::VirtualNetworkSubnetId(_) => "virtualNetworkSubnetId",
            SiteField::VnetRouteAllEnabled(_) => "vnetRouteAllEnabled",
        }
    }

    fn describe(&self) -> String {
        format!("{}={}", self.path(), plain(&self.value()))
    }
}

/// One setting of a config/web PATCH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebField {
    MinTlsVersion(String),
    FtpsState(String),
    /// The whole list (ARM replaces it), with default action Deny.
    IpSecurityRestrictions(Vec<Value>),
    /// The SCM site's whole list, with its default action Deny.
    ScmIpSecurityRestrictions(Vec<Value>),
}

impl WebField {
    /// The access restrictions a list field writes, if it is one.
    pub fn rules(&self) -> Option<&[Value]> {
        match self {
            WebField::IpSecurityRestrictions(r) | WebField::ScmIpSecurityRestrictions(r) => Some(r),
            WebField::MinTlsVersion(_) | WebField::FtpsState(_) => None,
        }
    }

    /// The setting a list field's default action (always Deny) goes in.
    pub fn default_action_path(&self) -> Option<&'static str> {
        match self {
            WebField::IpSecurityRestrictions(_) => Some("ipSecurityRestrictionsDefaultAction"),
            WebField::ScmIpSecurityRestrictions(_) => Some("scmIpSecurityRestrictionsDefaultAction"),
            WebField::MinTlsVersion(_) | WebField::FtpsState(_) => None,
        }
    }

    /// The setting's value in the request body, as planned.
    pub fn value(&self) -> Value {
        match self {
            WebField::MinTlsVersion(v) | WebField::FtpsState(v) => json!(v),
            WebField::IpSecurityRestrictions(r) | WebField::ScmIpSecurityRestrictions(r) => json!(r),
        }
    }
}

impl Field for WebField {
    fn path(&self) -> &'static str {
        match self {
            WebField::MinTlsVersion(_) => "minTlsVersion",
            WebField::FtpsState(_) => "ftpsState",
            WebField::IpSecurityRestrictions(_) => "ipSecurityRestrictions",
            WebField::ScmIpSecurityRestrictions(_) => "scmIpSecurityRestrictions",
        }
    }

    fn describe(&self) -> String {
        match self {
            WebField::MinTlsVersion(v) | WebField::FtpsState(v) => format!("{}={v}", self.path()),
            WebField::IpSecurityRestrictions(r) | WebField::ScmIpSecurityRestrictions(r) => format!(
                "{}=[{}], default action Deny",
                self.path(),
                r.iter()
                    .map(|x| x["name"].as_str().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A value as a person reads it: a string without its quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A patch's changes as a person reads them, comma separated.
fn described<F: Field>(patch: &Patch<F>) -> String {
    patch
        .fields()
        .iter()
        .map(Field::describe)
        .collect::<Vec<_>>()
        .join(", ")
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
            AzureAction::PatchSite { site, patch } => (site_label(site), described(patch)),
            AzureAction::PatchWebConfig { site, patch } => {
                (format!("{}/config/web", site_label(site)), described(patch))
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
