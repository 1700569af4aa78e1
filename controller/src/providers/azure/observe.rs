//! Reading one function app's state from ARM. The subscription's sites
//! (one paginated list carrying identity, tags and network settings) are
//! cached and shared by every posture of the account; the per-app reads —
//! config/web, authsettingsV2, publishing policies, app settings, role
//! assignments — are made only for the controls the posture declares.

use super::arm::{AUTHZ_API, Arm, ArmError, WEB_API};

/// Microsoft.Insights diagnostic settings.
const INSIGHTS_API: &str = "2021-05-01-preview";
use super::model::{
    Assignment, AuthSettings, ObservedApp, ObservedSlot, RoleDefinition, WebConfig, any_identity_provider,
};
use super::names;
use crate::api::{AzureTriggers, TracingMode};
use crate::providers::cache::Cached;
use crate::providers::pace::Pacer;
use crate::providers::{Posture, ProviderError};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// One site of the subscription as the planners read it. The inventory
/// holds one per site, so it keeps these fields and not ARM's whole object
/// (site config, host names, SKU, state, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteRecord {
    /// ARM id, as ARM spells it.
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// principalId of the system-assigned identity, when it has one.
    pub system_principal: Option<String>,
    /// Attached user-assigned identities (resource id → principal id).
    pub user_assigned: BTreeMap<String, String>,
    pub https_only: bool,
    pub public_network_access: String,
    pub virtual_network_subnet_id: Option<String>,
    pub vnet_route_all: bool,
    /// A function app (`kind` names `functionapp`), not a web app.
    pub function_app: bool,
}

impl SiteRecord {
    /// `name` stands in for a site whose answer carries none.
    pub fn of(site: &Value, name: &str) -> Self {
        let props = &site["properties"];
        let identity_type = site["identity"]["type"].as_str().unwrap_or_default();
        SiteRecord {
            id: site["id"].as_str().unwrap_or_default().to_string(),
            name: site["name"].as_str().unwrap_or(name).to_string(),
            tags: site["tags"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            system_principal: identity_type
                .contains("SystemAssigned")
                .then(|| site["identity"]["principalId"].as_str().map(str::to_string))
                .flatten(),
            user_assigned: user_assigned(site),
            https_only: props["httpsOnly"].as_bool().unwrap_or(false),
            public_network_access: public_network_access(props),
            virtual_network_subnet_id: props["virtualNetworkSubnetId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            vnet_route_all: props["vnetRouteAllEnabled"].as_bool().unwrap_or(false),
            function_app: site["kind"]
                .as_str()
                .is_some_and(|k| k.to_ascii_lowercase().split(',').any(|p| p.trim() == "functionapp")),
        }
    }

    /// The function app as a policy selects it: its resource group (from
    /// its id) and name, and its tags. None for a web app or an id that
    /// names no resource group.
    pub fn listed(&self) -> Option<crate::fleet::Listed> {
        if !self.function_app {
            return None;
        }
        let mut segments = self.id.split('/');
        segments.find(|s| s.eq_ignore_ascii_case("resourceGroups"))?;
        let resource_group = segments.next().filter(|g| !g.is_empty())?;
        Some(crate::fleet::Listed {
            target: crate::api::FunctionTarget {
                aws: None,
                azure: Some(crate::api::AzureFunctionRef {
                    resource_group: resource_group.to_string(),
                    name: self.name.clone(),
                }),
                gcp: None,
            },
            owner: self.tags.get(super::names::OWNER_TAG).cloned(),
            // Azure's change events name a principal by object id only.
            identity: None,
            tags: self.tags.clone(),
        })
    }
}

#[derive(Default)]
pub struct Inventory {
    /// Every site of the subscription.
    pub sites: Cached<Vec<SiteRecord>>,
    /// Role name (lowercase) → role definition GUID; None: no such role.
    /// Role definitions practically never change, so this is not expired.
    pub roles: Mutex<HashMap<String, Option<String>>>,
    /// Role definition GUID → what it allows; None: no such definition.
    /// Built-in definitions change rarely and custom ones seldom, so like
    /// the names this is not expired.
    pub definitions: Mutex<HashMap<String, Option<RoleDefinition>>>,
}

impl Inventory {
    pub fn invalidate(&self) {
        self.sites.invalidate();
    }
}

pub struct Observer<'a> {
    pub arm: &'a Arm,
    pub inventory: &'a Inventory,
    pub pacer: &'a Pacer,
    pub ttl: Duration,
    pub subscription: &'a str,
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn prov(e: ArmError) -> ProviderError {
    e.provider()
}

pub fn site_path(subscription: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}")
}

/// The user-assigned identities attached to a site (lowercased id → principal).
fn user_assigned(site: &Value) -> BTreeMap<String, String> {
    site["identity"]["userAssignedIdentities"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, v)| {
                    (
                        id.to_string(),
                        v["principalId"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// config/web's `properties` as the planner reads them.
fn web_config(w: &Value) -> WebConfig {
    let list = |field: &str| w[field].as_array().cloned().unwrap_or_default();
    WebConfig {
        min_tls_version: w["minTlsVersion"].as_str().unwrap_or_default().to_string(),
        ftps_state: w["ftpsState"].as_str().unwrap_or_default().to_string(),
        ip_security_restrictions: list("ipSecurityRestrictions"),
        default_action: w["ipSecurityRestrictionsDefaultAction"].as_str().map(str::to_string),
        scm_ip_security_restrictions: list("scmIpSecurityRestrictions"),
        scm_use_main: w["scmIpSecurityRestrictionsUseMain"].as_bool().unwrap_or(false),
        scm_default_action: w["scmIpSecurityRestrictionsDefaultAction"].as_str().map(str::to_string),
    }
}

/// A role definition's name and control-plane actions over all its
/// permission blocks.
fn role_definition(d: &Value) -> RoleDefinition {
    let p = &d["properties"];
    let collect = |field: &str| -> Vec<String> {
        p["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|b| b[field].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    };
    RoleDefinition {
        name: p["roleName"].as_str().unwrap_or_default().to_string(),
        actions: collect("actions"),
        not_actions: collect("notActions"),
    }
}

/// A site's or slot's `publicNetworkAccess`; unset means `Enabled`.
fn public_network_access(props: &Value) -> String {
    props["publicNetworkAccess"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("Enabled")
        .to_string()
}

/// Whether an app setting's value turns its feature on (`0`, `false` and
/// empty values do not).
fn truthy(v: &Value) -> bool {
    match v {
        Value::String(s) => !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        Value::Bool(b) => *b,
        Value::Null => false,
        _ => true,
    }
}

/// The app as the subscription's list (or a direct read) shows it, with
/// the other apps sharing its user-assigned identities.
fn observed_app(site: &SiteRecord, sites: &[SiteRecord], subscription: &str, rg: &str) -> ObservedApp {
    let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for other in sites.iter().filter(|s| !s.id.is_empty() && !same(&s.id, &site.id)) {
        for uai in other.user_assigned.keys() {
            if let Some(k) = site.user_assigned.keys().find(|m| same(m, uai)) {
                shared.entry(k.clone()).or_default().push(other.name.clone());
            }
        }
    }
    ObservedApp {
        id: site.id.clone(),
        subscription: subscription.to_string(),
        resource_group: rg.to_string(),
        name: site.name.clone(),
        tags: site.tags.clone(),
        system_principal: site.system_principal.clone(),
        user_assigned: site.user_assigned.clone(),
        shared_user_assigned: shared,
        https_only: site.https_only,
        public_network_access: site.public_network_access.clone(),
        virtual_network_subnet_id: site.virtual_network_subnet_id.clone(),
        vnet_route_all: site.vnet_route_all,
        ..Default::default()
    }
}

impl Observer<'_> {
    /// Every function app of the subscription, from the shared site list.
    pub async fn listed(&self) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
        Ok(self.sites().await?.iter().filter_map(SiteRecord::listed).collect())
    }

    async fn sites(&self) -> Result<std::sync::Arc<Vec<SiteRecord>>, ProviderError> {
        let path = format!("/subscriptions/{}/providers/Microsoft.Web/sites", self.subscription);
        self.inventory
            .sites
            .get_or_load(self.ttl, || async {
                let listed = self.arm.list("ListSites", &path, WEB_API, &[]).await.map_err(prov)?;
                Ok(listed.iter().map(|s| SiteRecord::of(s, "")).collect())
            })
            .await
    }

    /// Role definition GUID of a declared role (a GUID, or a role name looked
    /// up once per account).
    pub async fn resolve_role(&self, role: &str) -> Result<Option<String>, ProviderError> {
        if names::is_guid(role) {
            return Ok(Some(role.to_ascii_lowercase()));
        }
        let key = role.to_ascii_lowercase();
        if let Some(hit) = self.inventory.roles.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions",
            self.subscription
        );
        let filter = format!("roleName eq '{}'", role.replace('\'', "''"));
        let found = self
            .arm
            .list("ListRoleDefinitions", &path, AUTHZ_API, &[("$filter", &filter)])
            .await
            .map_err(prov)?;
        let guid = found
            .iter()
            .find(|d| d["properties"]["roleName"].as_str().is_some_and(|n| same(n, role)))
            .and_then(|d| d["name"].as_str())
            .map(str::to_ascii_lowercase);
        self.inventory
            .roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, guid.clone());
        Ok(guid)
    }

    pub async fn observe(&self, p: &Posture, rg: &str, name: &str) -> Result<ObservedApp, ProviderError> {
        let sites = self.sites().await?;
        let site = self.site(&sites, rg, name).await?;
        let mut o = observed_app(&site, &sites, self.subscription, rg);
        let spec = &p.spec;
        if let Some(t) = spec.triggers.as_ref().map(|t| t.azure.clone().unwrap_or_default()) {
            self.observe_triggers(&mut o, &t).await?;
        }
        let wants_insights = spec
            .observability
            .as_ref()
            .is_some_and(|ob| ob.tracing == Some(TracingMode::Active));
        let wants_package = spec
            .supply_chain
            .as_ref()
            .and_then(|s| s.azure.as_ref())
            .is_some_and(|a| a.require_run_from_package);
        if wants_insights || wants_package {
            o.app_settings = Some(self.app_settings(&o.id).await?);
        }
        if let Some(declared) = spec
            .identity
            .as_ref()
            .and_then(|i| i.azure.as_ref())
            .and_then(|a| a.role_assignments.as_ref())
        {
            self.observe_roles(&mut o, declared).await?;
        }
        let wants_egress = spec
            .network
            .as_ref()
            .and_then(|n| n.azure.as_ref())
            .is_some_and(|n| n.require_egress_control);
        if wants_egress && let Some(subnet) = o.virtual_network_subnet_id.clone() {
            o.egress_control = Some(super::egress::observe(self.arm, &subnet).await);
        }
        let wants_workspace = spec
            .observability
            .as_ref()
            .and_then(|ob| ob.azure.as_ref())
            .is_some_and(|a| a.log_analytics_workspace.is_some());
        if wants_workspace {
            o.log_destinations = Some(self.log_destinations(&o.id).await);
        }
        Ok(o)
    }

    /// The app from the subscription's list, or read directly when it was
    /// created after the list was taken.
    async fn site<'s>(
        &self,
        sites: &'s [SiteRecord],
        rg: &str,
        name: &str,
    ) -> Result<Cow<'s, SiteRecord>, ProviderError> {
        let path = site_path(self.subscription, rg, name);
        if let Some(s) = sites.iter().find(|s| same(&s.name, name) && same(&s.id, &path)) {
            return Ok(Cow::Borrowed(s));
        }
        self.pacer.ready().await;
        self.arm
            .get("GetSite", &path, WEB_API, &[])
            .await
            .map(|site| Cow::Owned(SiteRecord::of(&site, name)))
            .map_err(|e| match e.status {
                404 => ProviderError::NotFound(format!(
                    "function app {rg}/{name} in subscription {}",
                    self.subscription
                )),
                _ => e.provider(),
            })
    }

    /// config/web, authentication, publishing credentials and slots: what
    /// decides who can reach the app.
    async fn observe_triggers(&self, o: &mut ObservedApp, t: &AzureTriggers) -> Result<(), ProviderError> {
        self.pacer.ready().await;
        let web = self
            .arm
            .get("GetWebConfig", &format!("{}/config/web", o.id), WEB_API, &[])
            .await
            .map_err(prov)?;
        let w = &web["properties"];
        o.web = Some(web_config(w));
        // config/web holds the route-all switch too; it is the one ARM
        // documents for the setting, so it wins over the site property.
        if let Some(v) = w["vnetRouteAllEnabled"].as_bool() {
            o.vnet_route_all = v;
        }
        if t.require_authentication {
            o.auth = Some(self.auth_settings(&o.id).await?);
        }
        if t.harden_transport {
            let mut allowed = [true, true];
            for (i, kind) in ["ftp", "scm"].iter().enumerate() {
                self.pacer.ready().await;
                let v = self
                    .arm
                    .get(
                        "GetBasicPublishingCredentialsPolicy",
                        &format!("{}/basicPublishingCredentialsPolicies/{kind}", o.id),
                        WEB_API,
                        &[],
                    )
                    .await
                    .map_err(prov)?;
                allowed[i] = v["properties"]["allow"].as_bool().unwrap_or(true);
            }
            o.publishing = Some((allowed[0], allowed[1]));
        }
        o.slots = self.slots(&o.id, t.require_authentication).await?;
        Ok(())
    }

    /// Whether each app setting is on; only that: the values are secrets.
    /// The Log Analytics workspaces the app's diagnostic settings send its
    /// `FunctionAppLogs` to (the category, or the `allLogs` group, enabled),
    /// or why they could not be read: never a guess.
    async fn log_destinations(&self, id: &str) -> Result<Vec<String>, ProviderError> {
        self.pacer.ready().await;
        let settings = self
            .arm
            .list(
                "ListDiagnosticSettings",
                &format!("{id}/providers/Microsoft.Insights/diagnosticSettings"),
                INSIGHTS_API,
                &[],
            )
            .await
            .map_err(prov)?;
        Ok(settings
            .iter()
            .filter(|s| {
                s["properties"]["logs"].as_array().is_some_and(|logs| {
                    logs.iter().any(|l| {
                        l["enabled"] == true
                            && (l["category"]
                                .as_str()
                                .is_some_and(|c| c.eq_ignore_ascii_case("FunctionAppLogs"))
                                || l["categoryGroup"]
                                    .as_str()
                                    .is_some_and(|g| g.eq_ignore_ascii_case("allLogs")))
                    })
                })
            })
            .filter_map(|s| s["properties"]["workspaceId"].as_str().map(str::to_string))
            .collect())
    }

    async fn app_settings(&self, id: &str) -> Result<BTreeMap<String, bool>, ProviderError> {
        self.pacer.ready().await;
        let url = self
            .arm
            .url(&format!("{id}/config/appsettings/list"), WEB_API, &[])
            .map_err(prov)?;
        let settings = self
            .arm
            .send("ListAppSettings", azure_core::http::Method::Post, url, None)
            .await
            .map_err(prov)?
            .body;
        Ok(settings["properties"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), truthy(v))).collect())
            .unwrap_or_default())
    }

    /// The declared roles resolved, and what the system identity holds.
    async fn observe_roles(
        &self,
        o: &mut ObservedApp,
        declared: &[crate::api::AzureRoleAssignment],
    ) -> Result<(), ProviderError> {
        for d in declared {
            let guid = self.resolve_role(&d.role).await?;
            o.roles.insert(d.role.clone(), guid);
        }
        if let Some(principal) = &o.system_principal {
            let held = self.assignments(principal).await?;
            for a in &held {
                if !o.role_definitions.contains_key(&a.role)
                    && let Some(d) = self.definition(&a.role).await?
                {
                    o.role_definitions.insert(a.role.clone(), d);
                }
            }
            o.assignments = Some(held);
        }
        Ok(())
    }

    async fn auth_settings(&self, site: &str) -> Result<AuthSettings, ProviderError> {
        self.pacer.ready().await;
        let a = self
            .arm
            .get(
                "GetAuthSettingsV2",
                &format!("{site}/config/authsettingsV2"),
                WEB_API,
                &[],
            )
            .await
            .map_err(prov)?;
        let a = &a["properties"];
        Ok(AuthSettings {
            enabled: a["platform"]["enabled"].as_bool().unwrap_or(false),
            require_authentication: a["globalValidation"]["requireAuthentication"]
                .as_bool()
                .unwrap_or(false),
            unauthenticated_client_action: a["globalValidation"]["unauthenticatedClientAction"]
                .as_str()
                .map(str::to_string),
            has_identity_provider: any_identity_provider(&a["identityProviders"]),
        })
    }

    /// Every deployment slot of the app, with what can reach it: each is
    /// its own site with its own public endpoint, access restrictions and
    /// authentication.
    async fn slots(&self, site: &str, with_auth: bool) -> Result<Vec<ObservedSlot>, ProviderError> {
        self.pacer.ready().await;
        let listed = self
            .arm
            .list("ListSlots", &format!("{site}/slots"), WEB_API, &[])
            .await
            .map_err(prov)?;
        let mut out = Vec::new();
        for s in &listed {
            let Some(id) = s["id"].as_str() else { continue };
            let props = &s["properties"];
            self.pacer.ready().await;
            let web = self
                .arm
                .get("GetWebConfig", &format!("{id}/config/web"), WEB_API, &[])
                .await
                .map_err(prov)?;
            out.push(ObservedSlot {
                id: id.to_string(),
                // ARM names a slot `app/slot`.
                name: s["name"]
                    .as_str()
                    .unwrap_or(id)
                    .rsplit('/')
                    .next()
                    .unwrap_or(id)
                    .to_string(),
                https_only: props["httpsOnly"].as_bool().unwrap_or(false),
                public_network_access: public_network_access(props),
                web: Some(web_config(&web["properties"])),
                auth: if with_auth {
                    Some(self.auth_settings(id).await?)
                } else {
                    None
                },
            });
        }
        Ok(out)
    }

    /// What a role allows, read once per account.
    async fn definition(&self, guid: &str) -> Result<Option<RoleDefinition>, ProviderError> {
        if let Some(hit) = self
            .inventory
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(guid)
        {
            return Ok(hit.clone());
        }
        self.pacer.ready().await;
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            self.subscription
        );
        let found = match self.arm.get("GetRoleDefinition", &path, AUTHZ_API, &[]).await {
            Ok(d) => Some(role_definition(&d)),
            Err(e) if e.status == 404 || e.code == "RoleDefinitionDoesNotExist" => None,
            Err(e) => return Err(prov(e)),
        };
        self.inventory
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(guid.to_string(), found.clone());
        Ok(found)
    }

    /// Role assignments of a principal anywhere in the subscription (ARM
    /// returns those at, above and below the subscription scope).
    pub async fn assignments(&self, principal: &str) -> Result<Vec<Assignment>, ProviderError> {
        self.pacer.ready().await;
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments",
            self.subscription
        );
        let filter = format!("principalId eq '{principal}'");
        let list = self
            .arm
            .list("ListRoleAssignments", &path, AUTHZ_API, &[("$filter", &filter)])
            .await
            .map_err(prov)?;
        let mut out: Vec<Assignment> = list
            .iter()
            .filter(|a| {
                a["properties"]["principalId"]
                    .as_str()
                    .is_some_and(|p| same(p, principal))
            })
            .map(|a| Assignment {
                id: a["id"].as_str().unwrap_or_default().to_string(),
                role: names::role_guid(a["properties"]["roleDefinitionId"].as_str().unwrap_or_default()),
                scope: a["properties"]["scope"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_function_app_is_listed_by_resource_group_name_and_tags_and_a_web_app_is_not() {
        let app = json!({
            "id": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-shop/providers/Microsoft.Web/sites/orders",
            "name": "orders",
            "kind": "functionapp,linux",
            "tags": {"zerofn": "governed"}
        });
        let listed = SiteRecord::of(&app, "").listed().expect("a function app is listed");
        let f = listed.target.azure.expect("on Azure");
        assert_eq!((f.resource_group.as_str(), f.name.as_str()), ("rg-shop", "orders"));
        assert_eq!(listed.tags.get("zerofn").map(String::as_str), Some("governed"));

        let mut web = app.clone();
        web["kind"] = json!("app,linux");
        assert!(
            SiteRecord::of(&web, "").listed().is_none(),
            "a web app is not a function"
        );
    }
}
