//! Applying one Azure action. Documents ARM replaces wholesale (the tag map,
//! the identity, authsettingsV2) are read right before the write and only
//! zerofn's fields change, so a concurrent change elsewhere in them is kept.

use super::action::AzureAction;
use super::arm::{AUTHZ_API, Arm, ArmError, RESOURCES_API, WEB_API};
use super::model::any_identity_provider;
use crate::providers::ProviderError;
use crate::providers::retry::{Backoff, Cause, GaveUp, Policy, Verdict};
use azure_core::http::Method;
use serde_json::{Map, Value, json};
use std::time::Duration;

pub struct Applier<'a> {
    pub arm: &'a Arm,
}

fn prov(e: ArmError) -> ProviderError {
    e.provider()
}

impl Applier<'_> {
    async fn site(&self, site: &str) -> Result<Value, ProviderError> {
        self.arm.get("GetSite", site, WEB_API, &[]).await.map_err(prov)
    }

    /// Set (Some) or remove (None) one tag of `site` through the Resources
    /// tags API: the site PATCH contract (SitePatchResource) carries no
    /// tags, so a `tags` field there would not land. `Merge` adds or updates
    /// only this tag; `Delete` with name and value removes it only while it
    /// still holds that value, so a release never takes a tag another owner
    /// wrote since.
    pub async fn set_tag(&self, site: &str, key: &str, value: &str, remove: bool) -> Result<(), ProviderError> {
        let body = json!({
            "operation": if remove { "Delete" } else { "Merge" },
            "properties": {"tags": {key: value}},
        });
        self.arm
            .write(
                "PatchTags",
                Method::Patch,
                &format!(
                    "{}/providers/Microsoft.Resources/tags/default",
                    site.trim_end_matches('/')
                ),
                RESOURCES_API,
                Some(&body),
            )
            .await
            .map_err(prov)?;
        Ok(())
    }

    pub async fn apply(&self, action: &AzureAction) -> Result<(), ProviderError> {
        let op = action.op();
        match action {
            AzureAction::EnableSystemIdentity { site, .. } => {
                let current = self.site(site).await?;
                let identity = &current["identity"];
                let kind = identity["type"].as_str().unwrap_or_default();
                if kind.contains("SystemAssigned") {
                    return Ok(());
                }
                // Every user-assigned identity attached now stays attached.
                let attached: Map<String, Value> = identity["userAssignedIdentities"]
                    .as_object()
                    .map(|m| m.keys().map(|k| (k.clone(), json!({}))).collect())
                    .unwrap_or_default();
                let body = if attached.is_empty() {
                    json!({"identity": {"type": "SystemAssigned"}})
                } else {
                    json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": attached}})
                };
                self.arm
                    .write(op, Method::Patch, site, WEB_API, Some(&body))
                    .await
                    .map_err(prov)?;
                Ok(())
            }
            AzureAction::SetTag { site, key, value } => match value {
                Some(v) => self.set_tag(site, key, v, false).await,
                None => {
                    let current = self.site(site).await?;
                    match current["tags"][key.as_str()].as_str() {
                        Some(v) => self.set_tag(site, key, v, true).await,
                        None => Ok(()),
                    }
                }
            },
            AzureAction::PatchSite {
                site,
                https_only,
                public_network_access,
                virtual_network_subnet_id,
                vnet_route_all_enabled,
            } => {
                let mut props = Map::new();
                if let Some(v) = https_only {
                    props.insert("httpsOnly".into(), json!(v));
                }
                if let Some(v) = public_network_access {
                    props.insert("publicNetworkAccess".into(), json!(v));
                }
                if let Some(v) = virtual_network_subnet_id {
                    props.insert("virtualNetworkSubnetId".into(), json!(v));
                }
                if let Some(v) = vnet_route_all_enabled {
                    props.insert("vnetRouteAllEnabled".into(), json!(v));
                }
                self.arm
                    .write(op, Method::Patch, site, WEB_API, Some(&json!({"properties": props})))
                    .await
                    .map_err(prov)?;
                Ok(())
            }
            AzureAction::PatchWebConfig {
                site,
                min_tls_version,
                ftps_state,
                ip_security_restrictions,
                scm_ip_security_restrictions,
            } => {
                let mut props = Map::new();
                if let Some(v) = min_tls_version {
                    props.insert("minTlsVersion".into(), json!(v));
                }
                if let Some(v) = ftps_state {
                    props.insert("ftpsState".into(), json!(v));
                }
                if ip_security_restrictions.is_some() || scm_ip_security_restrictions.is_some() {
                    // ARM replaces each list: Deny rules added since the
                    // plan was made are carried over, never dropped.
                    let current = self
                        .arm
                        .get("GetWebConfig", &format!("{site}/config/web"), WEB_API, &[])
                        .await
                        .map_err(prov)?;
                    let now = |field: &str| current["properties"][field].as_array().cloned().unwrap_or_default();
                    if let Some(rules) = ip_security_restrictions {
                        let rules = super::plan::with_current_denies(rules, &now("ipSecurityRestrictions"));
                        props.insert("ipSecurityRestrictions".into(), json!(rules));
                        props.insert("ipSecurityRestrictionsDefaultAction".into(), json!("Deny"));
                    }
                    if let Some(rules) = scm_ip_security_restrictions {
                        let rules = super::plan::with_current_denies(rules, &now("scmIpSecurityRestrictions"));
                        props.insert("scmIpSecurityRestrictions".into(), json!(rules));
                        props.insert("scmIpSecurityRestrictionsDefaultAction".into(), json!("Deny"));
                    }
                }
                self.arm
                    .write(
                        op,
                        Method::Patch,
                        &format!("{site}/config/web"),
                        WEB_API,
                        Some(&json!({"properties": props})),
                    )
                    .await
                    .map_err(prov)?;
                Ok(())
            }
            AzureAction::RequireAuthentication { site } => {
                let path = format!("{site}/config/authsettingsV2");
                let current = self
                    .arm
                    .get("GetAuthSettingsV2", &path, WEB_API, &[])
                    .await
                    .map_err(prov)?;
                let mut props = current["properties"].as_object().cloned().unwrap_or_default();
                if !any_identity_provider(props.get("identityProviders").unwrap_or(&Value::Null)) {
                    return Err(ProviderError::Refused(format!(
                        "{path}: no identity provider is configured any more; requiring authentication would lock every caller out"
                    )));
                }
                let section = |props: &mut Map<String, Value>, name: &str| {
                    let v = props.entry(name.to_string()).or_insert_with(|| json!({}));
                    if !v.is_object() {
                        *v = json!({});
                    }
                };
                section(&mut props, "platform");
                section(&mut props, "globalValidation");
                props["platform"]["enabled"] = json!(true);
                props["globalValidation"]["requireAuthentication"] = json!(true);
                props["globalValidation"]["unauthenticatedClientAction"] = json!("Return401");
                self.arm
                    .write(op, Method::Put, &path, WEB_API, Some(&json!({"properties": props})))
                    .await
                    .map_err(prov)?;
                Ok(())
            }
            AzureAction::DisableBasicPublishing { site, kind } => {
                self.arm
                    .write(
                        op,
                        Method::Put,
                        &format!("{site}/basicPublishingCredentialsPolicies/{kind}"),
                        WEB_API,
                        Some(&json!({"properties": {"allow": false}})),
                    )
                    .await
                    .map_err(prov)?;
                Ok(())
            }
            AzureAction::CreateRoleAssignment {
                site,
                scope,
                name,
                role_definition_id,
                principal_id,
            } => {
                let principal = match principal_id {
                    Some(p) => p.clone(),
                    None => self.site(site).await?["identity"]["principalId"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| {
                            ProviderError::Conflict(format!("{site} has no system-assigned identity yet"))
                        })?,
                };
                let path = format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
                    scope.trim_end_matches('/')
                );
                let body = json!({"properties": {
                    "roleDefinitionId": role_definition_id,
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                }});
                // A principal created moments ago is unknown to role
                // assignments until Entra ID replicates it.
                let replicating = Policy {
                    backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10)),
                    ..self.arm.tuning.propagation("azure", self.arm.metrics())
                };
                let put = || self.arm.write(op, Method::Put, &path, AUTHZ_API, Some(&body));
                let unknown = |e: &ArmError| match e.code.as_str() {
                    "PrincipalNotFound" => Verdict::Retry(Cause::propagation),
                    _ => Verdict::Fail,
                };
                match replicating.run(put, unknown).await.map_err(GaveUp::into_error) {
                    Ok(_) => Ok(()),
                    // The same grant under another name: what was asked for holds.
                    Err(e) if e.status == 409 && e.code == "RoleAssignmentExists" => Ok(()),
                    Err(e) => Err(prov(e)),
                }
            }
            AzureAction::DeleteRoleAssignment { id, .. } => {
                match self.arm.write(op, Method::Delete, id, AUTHZ_API, None).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.status == 404 => Ok(()),
                    Err(e) => Err(prov(e)),
                }
            }
        }
    }
}
