//! Applying one Azure action. Documents ARM replaces wholesale (the tag map,
//! the identity, authsettingsV2) are read right before the write and only
//! zerofn's fields change, so a concurrent change elsewhere in them is kept.

use super::action::{AzureAction, WebField};
use super::arm::{AUTHZ_API, Arm, ArmError, RESOURCES_API, WEB_API};
use super::model::any_identity_provider;
use super::plan::with_current_denies;
use crate::providers::ProviderError;
use crate::providers::patch::{Field, Patch};
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
        let path = format!(
            "{}/providers/Microsoft.Resources/tags/default",
            site.trim_end_matches('/')
        );
        self.write("PatchTags", Method::Patch, &path, RESOURCES_API, &body)
            .await
    }

    pub async fn apply(&self, action: &AzureAction) -> Result<(), ProviderError> {
        let op = action.op();
        match action {
            AzureAction::EnableSystemIdentity { site, .. } => self.enable_system_identity(op, site).await,
            AzureAction::SetTag { site, key, value } => match value {
                Some(v) => self.set_tag(site, key, v, false).await,
                None => self.remove_tag(site, key).await,
            },
            AzureAction::PatchSite { site, patch } => {
                let props: Map<String, Value> = patch
                    .fields()
                    .iter()
                    .map(|f| (f.path().to_string(), f.value()))
                    .collect();
                self.write(op, Method::Patch, site, WEB_API, &json!({"properties": props}))
                    .await
            }
            AzureAction::PatchWebConfig { site, patch } => {
                let props = self.web_config(site, patch).await?;
                let path = format!("{site}/config/web");
                self.write(op, Method::Patch, &path, WEB_API, &json!({"properties": props}))
                    .await
            }
            AzureAction::RequireAuthentication { site } => self.require_authentication(op, site).await,
            AzureAction::DisableBasicPublishing { site, kind } => {
                let path = format!("{site}/basicPublishingCredentialsPolicies/{kind}");
                self.write(
                    op,
                    Method::Put,
                    &path,
                    WEB_API,
                    &json!({"properties": {"allow": false}}),
                )
                .await
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
                    None => self.principal(site).await?,
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
                self.create_role_assignment(op, &path, &body).await
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

    async fn write(&self, op: &str, method: Method, path: &str, api: &str, body: &Value) -> Result<(), ProviderError> {
        self.arm
            .write(op, method, path, api, Some(body))
            .await
            .map(drop)
            .map_err(prov)
    }

    /// Add the system-assigned identity; every user-assigned identity
    /// attached now stays attached.
    async fn enable_system_identity(&self, op: &str, site: &str) -> Result<(), ProviderError> {
        let current = self.site(site).await?;
        let identity = &current["identity"];
        let kind = identity["type"].as_str().unwrap_or_default();
        if kind.contains("SystemAssigned") {
            return Ok(());
        }
        let attached: Map<String, Value> = identity["userAssignedIdentities"]
            .as_object()
            .map(|m| m.keys().map(|k| (k.clone(), json!({}))).collect())
            .unwrap_or_default();
        let body = if attached.is_empty() {
            json!({"identity": {"type": "SystemAssigned"}})
        } else {
            json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": attached}})
        };
        self.write(op, Method::Patch, site, WEB_API, &body).await
    }

    /// Remove a tag, only while it holds the value read now.
    async fn remove_tag(&self, site: &str, key: &str) -> Result<(), ProviderError> {
        let current = self.site(site).await?;
        match current["tags"][key].as_str() {
            Some(v) => self.set_tag(site, key, v, true).await,
            None => Ok(()),
        }
    }

    /// The properties of a config/web PATCH, from its fields. ARM replaces
    /// each access restriction list: Deny rules added since the plan was
    /// made are carried over, never dropped.
    async fn web_config(&self, site: &str, patch: &Patch<WebField>) -> Result<Map<String, Value>, ProviderError> {
        let current = if patch.fields().iter().any(|f| f.rules().is_some()) {
            self.arm
                .get("GetWebConfig", &format!("{site}/config/web"), WEB_API, &[])
                .await
                .map_err(prov)?
        } else {
            Value::Null
        };
        let mut props = Map::new();
        for field in patch.fields() {
            let value = match field.rules() {
                Some(rules) => {
                    let now = current["properties"][field.path()]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    json!(with_current_denies(rules, &now))
                }
                None => field.value(),
            };
            props.insert(field.path().into(), value);
            if let Some(default_action) = field.default_action_path() {
                props.insert(default_action.into(), json!("Deny"));
            }
        }
        Ok(props)
    }

    /// Read-modify-write of authsettingsV2: only the fields that require
    /// authentication change; the identity providers and everything else
    /// are kept as read.
    async fn require_authentication(&self, op: &str, site: &str) -> Result<(), ProviderError> {
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
        self.write(op, Method::Put, &path, WEB_API, &json!({"properties": props}))
            .await
    }

    /// The site's system-assigned principal, as ARM shows it now.
    async fn principal(&self, site: &str) -> Result<String, ProviderError> {
        self.site(site).await?["identity"]["principalId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ProviderError::Conflict(format!("{site} has no system-assigned identity yet")))
    }

    /// PUT a role assignment. A principal created moments ago is unknown to
    /// role assignments until Entra ID replicates it.
    async fn create_role_assignment(&self, op: &str, path: &str, body: &Value) -> Result<(), ProviderError> {
        // A principal created moments ago is unknown to role assignments
        // until Entra ID replicates it.
        let replicating = Policy {
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10)),
            ..self.arm.tuning.propagation("azure", self.arm.metrics())
        };
        let put = || self.arm.write(op, Method::Put, path, AUTHZ_API, Some(body));
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
}
