//! The seed ([`AzureWorld`], [`SiteSeed`]) and the state the stand-in serves
//! from. Site config is kept as the JSON map config/web answers with, so
//! PATCH can merge into it and PUT can replace it without a schema per field.

use super::errors::ArmError;
use super::ids::{eq_ci, guid, is_guid, now, scope_contains};
use super::queue::{self, Queue};
use super::roles;
use super::token::Audience;
use super::webconfig;
use crate::scaffold::Faults;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A function app as it exists before zerofn looks at it.
#[derive(Clone, Debug)]
pub struct SiteSeed {
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub https_only: bool,
    pub public_network_access: Option<String>,
    pub min_tls_version: String,
    pub ftps_state: String,
    pub ip_security_restrictions: Vec<Value>,
    pub ip_security_restrictions_default_action: Option<String>,
    /// The SCM (Kudu) site's own access restrictions.
    pub scm_ip_security_restrictions: Vec<Value>,
    pub scm_ip_security_restrictions_default_action: Option<String>,
    pub scm_ip_security_restrictions_use_main: bool,
    pub virtual_network_subnet_id: Option<String>,
    pub vnet_route_all_enabled: bool,
    pub system_assigned: bool,
    /// Resource ids of user-assigned identities seeded with
    /// [`AzureWorld::user_assigned_identity`].
    pub user_assigned: Vec<String>,
    pub ftp_allowed: bool,
    pub scm_allowed: bool,
    pub auth_enabled: bool,
    pub require_authentication: bool,
    pub app_settings: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

impl SiteSeed {
    /// What Azure gives a new function app: reachable from anywhere, FTP and
    /// basic-auth publishing on, plain HTTP allowed, no identity, no auth.
    pub fn new(resource_group: &str, name: &str) -> SiteSeed {
        SiteSeed {
            resource_group: resource_group.to_string(),
            name: name.to_string(),
            location: "westeurope".to_string(),
            https_only: false,
            public_network_access: None,
            min_tls_version: "1.2".to_string(),
            ftps_state: "AllAllowed".to_string(),
            ip_security_restrictions: Vec::new(),
            ip_security_restrictions_default_action: None,
            scm_ip_security_restrictions: Vec::new(),
            scm_ip_security_restrictions_default_action: None,
            scm_ip_security_restrictions_use_main: false,
            virtual_network_subnet_id: None,
            vnet_route_all_enabled: false,
            system_assigned: false,
            user_assigned: Vec::new(),
            ftp_allowed: true,
            scm_allowed: true,
            auth_enabled: false,
            require_authentication: false,
            app_settings: BTreeMap::from([
                ("FUNCTIONS_EXTENSION_VERSION".to_string(), "~4".to_string()),
                ("FUNCTIONS_WORKER_RUNTIME".to_string(), "python".to_string()),
            ]),
            tags: BTreeMap::new(),
        }
    }
}

/// Which identities a site carries. The system principal id is kept; the
/// user-assigned ones are resolved against the identities at render time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub system: Option<String>,
    /// Canonical resource ids, sorted.
    pub user: BTreeSet<String>,
}

impl Identity {
    pub fn type_name(&self) -> &'static str {
        match (self.system.is_some(), !self.user.is_empty()) {
            (true, true) => "SystemAssigned, UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => "None",
        }
    }
}

pub(crate) struct Site {
    pub rg: String,
    pub name: String,
    /// For a deployment slot, the app it belongs to (`name` is then the
    /// slot's own name); stored under the key `(rg, "app/slot")`.
    pub slot_of: Option<String>,
    pub location: String,
    pub tags: Map<String, Value>,
    pub https_only: bool,
    pub subnet: Option<String>,
    /// config/web `properties`; publicNetworkAccess and vnetRouteAllEnabled
    /// live here and are mirrored into the site's properties.
    pub config: Map<String, Value>,
    pub identity: Identity,
    /// authsettingsV2 `properties`.
    pub auth: Value,
    pub app_settings: BTreeMap<String, String>,
    pub ftp_allowed: bool,
    pub scm_allowed: bool,
    /// The identity operation still running, if any.
    pub pending_op: Option<String>,
}

pub(crate) struct Uai {
    pub rg: String,
    pub name: String,
    pub location: String,
    pub principal_id: String,
    pub client_id: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_guid: String,
    pub principal_id: String,
    pub principal_type: String,
    pub created_on: String,
}

pub(crate) struct Principal {
    pub kind: &'static str,
    /// Entra ID replication: role assignments refuse the principal before.
    pub visible_at: Instant,
}

/// An identity change on a site, accepted and not yet applied.
pub(crate) struct Operation {
    pub site: (String, String),
    pub system: bool,
    pub user: BTreeSet<String>,
    pub location: String,
    pub remaining: u32,
    pub done: bool,
    pub started: String,
}

pub(crate) struct State {
    pub tenant: String,
    pub sub: String,
    /// `https://127.0.0.1:PORT`, set at start, for nextLink and operation URLs.
    pub base_url: String,
    pub resource_groups: BTreeMap<String, String>,
    pub sites: BTreeMap<(String, String), Site>,
    pub uais: BTreeMap<(String, String), Uai>,
    pub assignments: Vec<Assignment>,
    /// client id → (secret, object id of its service principal).
    pub clients: BTreeMap<String, (String, String)>,
    /// Every token issued, with its audience. Tokens never expire.
    pub tokens: HashMap<String, Audience>,
    /// Storage queues by (account, queue).
    pub queues: BTreeMap<(String, String), Queue>,
    /// Microsoft.Network subnets, security groups and route tables: their
    /// `properties`, by lowercased resource id.
    pub network: BTreeMap<String, serde_json::Value>,
    pub principals: HashMap<String, Principal>,
    pub operations: HashMap<String, Operation>,
    pub page_size: usize,
    pub identity_polls: u32,
    pub principal_delay: Duration,
    /// Errors armed by tests, answered before anything is read or changed.
    pub faults: Faults<ArmError>,
    /// Diagnostic settings (Microsoft.Insights) by site key, as ARM lists them.
    pub diagnostic_settings: BTreeMap<(String, String), Vec<Value>>,
}

impl State {
    /// Creates a queue, with Azure's naming rules; a second one of the same
    /// name is refused (QueueAlreadyExists).
    pub fn add_queue(&mut self, account: &str, name: &str) -> Result<(), String> {
        queue::check_account(account)?;
        queue::check_queue(name)?;
        let k = (account.to_string(), name.to_string());
        if self.queues.contains_key(&k) {
            return Err(format!("queue {account}/{name} already exists"));
        }
        self.queues.insert(k, Queue::default());
        Ok(())
    }
}

pub(crate) fn key(rg: &str, name: &str) -> (String, String) {
    (rg.to_ascii_lowercase(), name.to_ascii_lowercase())
}

impl State {
    pub fn rg_prefix(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.sub)
    }

    pub fn site_id(&self, site: &Site) -> String {
        match &site.slot_of {
            Some(app) => format!(
                "{}/providers/Microsoft.Web/sites/{app}/slots/{}",
                self.rg_prefix(&site.rg),
                site.name
            ),
            None => format!(
                "{}/providers/Microsoft.Web/sites/{}",
                self.rg_prefix(&site.rg),
                site.name
            ),
        }
    }

    pub fn uai_id(&self, uai: &Uai) -> String {
        format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            self.rg_prefix(&uai.rg),
            uai.name
        )
    }

    /// The identity a resource id names, matched case-insensitively.
    pub fn uai_by_id(&self, id: &str) -> Option<&Uai> {
        let segs: Vec<&str> = id.split('/').collect();
        match segs.as_slice() {
            ["", s, sub, r, rg, p, ns, t, name]
                if eq_ci(s, "subscriptions")
                    && eq_ci(sub, &self.sub)
                    && eq_ci(r, "resourceGroups")
                    && eq_ci(p, "providers")
                    && eq_ci(ns, "Microsoft.ManagedIdentity")
                    && eq_ci(t, "userAssignedIdentities") =>
            {
                self.uais.get(&key(rg, name))
            }
            _ => None,
        }
    }

    pub fn identity_json(&self, identity: &Identity) -> Option<Value> {
        if identity.system.is_none() && identity.user.is_empty() {
            return None;
        }
        let mut out = json!({"type": identity.type_name()});
        if let Some(p) = &identity.system {
            out["principalId"] = json!(p);
            out["tenantId"] = json!(self.tenant);
        }
        if !identity.user.is_empty() {
            let users: Map<String, Value> = identity
                .user
                .iter()
                .filter_map(|id| {
                    let u = self.uai_by_id(id)?;
                    Some((
                        id.clone(),
                        json!({"principalId": u.principal_id, "clientId": u.client_id}),
                    ))
                })
                .collect();
            out["userAssignedIdentities"] = Value::Object(users);
        }
        Some(out)
    }

    pub fn add_principal(&mut self, id: &str, kind: &'static str, delay: Duration) {
        let visible_at = Instant::now() + delay;
        self.principals
            .insert(id.to_ascii_lowercase(), Principal { kind, visible_at });
    }

    pub fn principal(&self, id: &str) -> Option<&Principal> {
        self.principals.get(&id.to_ascii_lowercase())
    }

    /// Scopes must sit in the one subscription; a resource group named in
    /// one must exist. Resources beneath are not checked.
    pub fn check_scope(&self, scope: &str) -> Result<(), super::errors::ArmError> {
        use super::errors::ArmError;
        let segs: Vec<&str> = scope.split('/').collect();
        match segs.as_slice() {
            ["", s, sub, ..] if eq_ci(s, "subscriptions") => {
                if !eq_ci(sub, &self.sub) {
                    return Err(ArmError::subscription_not_found(sub));
                }
            }
            _ => {
                return Err(ArmError::bad_request(format!(
                    "The scope '{scope}' is not a valid scope."
                )));
            }
        }
        if let ["", _, _, r, rg, ..] = segs.as_slice()
            && eq_ci(r, "resourceGroups")
            && !self.resource_groups.contains_key(&rg.to_ascii_lowercase())
        {
            return Err(ArmError::resource_group_not_found(rg));
        }
        Ok(())
    }
}

/// What a test seeds: one tenant and one subscription with its sites,
/// identities, role assignments and the service principals that may sign in.
pub struct AzureWorld {
    state: State,
    problems: Vec<String>,
}

impl AzureWorld {
    pub fn new(tenant_id: &str, subscription_id: &str) -> Self {
        AzureWorld {
            state: State {
                tenant: tenant_id.to_string(),
                sub: subscription_id.to_string(),
                base_url: String::new(),
                resource_groups: BTreeMap::new(),
                sites: BTreeMap::new(),
                uais: BTreeMap::new(),
                assignments: Vec::new(),
                clients: BTreeMap::new(),
                tokens: HashMap::new(),
                queues: BTreeMap::new(),
                network: BTreeMap::new(),
                principals: HashMap::new(),
                operations: HashMap::new(),
                page_size: 100,
                identity_polls: 1,
                principal_delay: Duration::ZERO,
                faults: Faults::default(),
                diagnostic_settings: BTreeMap::new(),
            },
            problems: Vec::new(),
        }
    }

    /// A diagnostic setting of the app `app` (seeded before it) sending
    /// the log `category` (or, for `allLogs`, that category group) to the
    /// Log Analytics workspace `workspace_id`.
    pub fn diagnostic_setting(mut self, rg: &str, app: &str, name: &str, workspace_id: &str, category: &str) -> Self {
        let site = key(rg, app);
        if !self.state.sites.contains_key(&site) {
            self.problems
                .push(format!("diagnostic setting {name}: no app {app} seeded before it"));
        }
        let id = format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{app}/providers/microsoft.insights/diagnosticSettings/{name}",
            self.state.sub
        );
        let log = if category == "allLogs" {
            serde_json::json!({"categoryGroup": "allLogs", "enabled": true})
        } else {
            serde_json::json!({"category": category, "enabled": true})
        };
        self.state
            .diagnostic_settings
            .entry(site)
            .or_default()
            .push(serde_json::json!({
                "id": id,
                "name": name,
                "type": "Microsoft.Insights/diagnosticSettings",
                "properties": {
                    "workspaceId": workspace_id,
                    "logs": [log],
                    "metrics": [],
                    "logAnalyticsDestinationType": null,
                },
            }));
        self
    }

    /// An empty resource group (sites and identities create theirs).
    pub fn resource_group(mut self, name: &str) -> Self {
        self.state
            .resource_groups
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| name.to_string());
        self
    }

    pub fn site(self, seed: SiteSeed) -> Self {
        self.site_or_slot(seed, None)
    }

    /// A deployment slot `seed.name` of the app `app` (seeded with
    /// [`AzureWorld::site`] in `seed.resource_group`): its own site, with
    /// its own settings, identity and tags.
    pub fn slot(mut self, app: &str, seed: SiteSeed) -> Self {
        if !self.state.sites.contains_key(&key(&seed.resource_group, app)) {
            self.problems
                .push(format!("slot {}: no app {app} seeded before it", seed.name));
        }
        self.site_or_slot(seed, Some(app.to_string()))
    }

    fn site_or_slot(mut self, seed: SiteSeed, slot_of: Option<String>) -> Self {
        self = self.resource_group(&seed.resource_group);
        if let Some(subnet) = &seed.virtual_network_subnet_id
            && !super::ids::is_subnet_id(subnet)
        {
            self.problems
                .push(format!("site {}: '{subnet}' is no subnet id", seed.name));
        }
        let mut config = webconfig::default_config();
        config.insert("minTlsVersion".into(), json!(seed.min_tls_version));
        config.insert("ftpsState".into(), json!(seed.ftps_state));
        config.insert("ipSecurityRestrictions".into(), json!(seed.ip_security_restrictions));
        config.insert(
            "ipSecurityRestrictionsDefaultAction".into(),
            json!(seed.ip_security_restrictions_default_action),
        );
        config.insert(
            "scmIpSecurityRestrictions".into(),
            json!(seed.scm_ip_security_restrictions),
        );
        config.insert(
            "scmIpSecurityRestrictionsDefaultAction".into(),
            json!(seed.scm_ip_security_restrictions_default_action),
        );
        config.insert(
            "scmIpSecurityRestrictionsUseMain".into(),
            json!(seed.scm_ip_security_restrictions_use_main),
        );
        config.insert("publicNetworkAccess".into(), json!(seed.public_network_access));
        config.insert("vnetRouteAllEnabled".into(), json!(seed.vnet_route_all_enabled));
        // The seed goes through the same validation a PUT would.
        if let Err(e) = webconfig::apply(&mut webconfig::default_config(), &config) {
            self.problems.push(format!("site {}: {}", seed.name, e.message));
        }
        let system = seed.system_assigned.then(guid);
        if let Some(p) = &system {
            self.state.add_principal(p, "ServicePrincipal", Duration::ZERO);
        }
        let site = Site {
            rg: seed.resource_group.clone(),
            name: seed.name.clone(),
            slot_of: slot_of.clone(),
            location: seed.location.clone(),
            tags: seed.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect(),
            https_only: seed.https_only,
            subnet: seed.virtual_network_subnet_id.clone(),
            config,
            identity: Identity {
                system,
                user: seed.user_assigned.iter().cloned().collect(),
            },
            auth: seed_auth(&self.state.tenant, &seed),
            app_settings: seed.app_settings.clone(),
            ftp_allowed: seed.ftp_allowed,
            scm_allowed: seed.scm_allowed,
            pending_op: None,
        };
        let name = match &slot_of {
            Some(app) => format!("{app}/{}", seed.name),
            None => seed.name.clone(),
        };
        self.state.sites.insert(key(&seed.resource_group, &name), site);
        self
    }

    /// A user-assigned managed identity in `location` westeurope, with fresh
    /// principal and client ids.
    pub fn user_assigned_identity(mut self, rg: &str, name: &str) -> Self {
        self = self.resource_group(rg);
        let uai = Uai {
            rg: rg.to_string(),
            name: name.to_string(),
            location: "westeurope".to_string(),
            principal_id: guid(),
            client_id: guid(),
        };
        self.state
            .add_principal(&uai.principal_id, "ServicePrincipal", Duration::ZERO);
        self.state.uais.insert(key(rg, name), uai);
        self
    }

    /// A built-in role (by name, see [`BUILTIN_ROLES`](super::BUILTIN_ROLES))
    /// granted to `principal_id` at `scope`. Unknown principals are taken to
    /// be users.
    pub fn role_assignment(mut self, principal_id: &str, role_name: &str, scope: &str) -> Self {
        let Some(role) = roles::by_name(role_name) else {
            self.problems.push(format!("no built-in role '{role_name}'"));
            return self;
        };
        if self.state.principal(principal_id).is_none() {
            self.state.add_principal(principal_id, "User", Duration::ZERO);
        }
        let principal_type = self.state.principal(principal_id).map_or("User", |p| p.kind);
        self.state.assignments.push(Assignment {
            name: guid(),
            scope: scope.trim_end_matches('/').to_string(),
            role_guid: role.1.to_string(),
            principal_id: principal_id.to_string(),
            principal_type: principal_type.to_string(),
            created_on: now(),
        });
        self
    }

    /// An empty storage queue, served at `{url}/{account}/{queue}`.
    /// A subnet, network security group or route table, with the
    /// `properties` its GET answers (e.g. `{"networkSecurityGroup": {"id":
    /// ...}}` for a subnet, `{"securityRules": [...],
    /// "defaultSecurityRules": [...]}` for a group, `{"routes": [...]}` for a
    /// route table).
    pub fn network_resource(mut self, id: &str, properties: serde_json::Value) -> Self {
        if !super::network::is_network_resource(id) {
            self.problems
                .push(format!("'{id}' is no subnet, security group or route table id"));
        }
        self.state.network.insert(id.to_ascii_lowercase(), properties);
        self
    }

    pub fn queue(mut self, account: &str, queue: &str) -> Self {
        if let Err(e) = self.state.add_queue(account, queue) {
            self.problems.push(e);
        }
        self
    }

    /// A service principal that may get tokens with this secret (or with a
    /// client assertion).
    pub fn client(mut self, client_id: &str, client_secret: &str) -> Self {
        let object_id = guid();
        self.state.add_principal(&object_id, "ServicePrincipal", Duration::ZERO);
        self.state
            .clients
            .insert(client_id.to_string(), (client_secret.to_string(), object_id));
        self
    }

    pub fn page_size(mut self, n: usize) -> Self {
        self.state.page_size = n.max(1);
        self
    }

    pub fn identity_operation_polls(mut self, n: u32) -> Self {
        self.state.identity_polls = n;
        self
    }

    /// How long a system-assigned principal created by an identity change is
    /// unknown to role assignments (Entra ID replication); default zero.
    pub fn principal_propagation_delay(mut self, delay: Duration) -> Self {
        self.state.principal_delay = delay;
        self
    }

    /// The system-assigned principal of a seeded site, to seed assignments for.
    pub fn site_principal_id(&self, rg: &str, name: &str) -> Option<String> {
        self.state.sites.get(&key(rg, name))?.identity.system.clone()
    }

    pub fn uai_principal_id(&self, rg: &str, name: &str) -> Option<String> {
        Some(self.state.uais.get(&key(rg, name))?.principal_id.clone())
    }

    pub fn uai_client_id(&self, rg: &str, name: &str) -> Option<String> {
        Some(self.state.uais.get(&key(rg, name))?.client_id.clone())
    }

    /// The canonical resource id of a user-assigned identity, for
    /// [`SiteSeed::user_assigned`].
    pub fn uai_id(&self, rg: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            self.state.sub
        )
    }

    pub(crate) fn build(mut self) -> Result<State, String> {
        if !is_guid(&self.state.tenant) || !is_guid(&self.state.sub) {
            self.problems
                .push("tenant and subscription ids must be GUIDs".to_string());
        }
        // User-assigned ids are canonicalised now that every identity is known.
        let mut canon = Vec::new();
        for (k, site) in &self.state.sites {
            let mut ids = BTreeSet::new();
            for id in &site.identity.user {
                match self.state.uai_by_id(id) {
                    Some(u) => {
                        ids.insert(self.state.uai_id(u));
                    }
                    None => self.problems.push(format!("site {}: no identity {id}", site.name)),
                }
            }
            canon.push((k.clone(), ids));
        }
        for (k, ids) in canon {
            if let Some(site) = self.state.sites.get_mut(&k) {
                site.identity.user = ids;
            }
        }
        for a in &self.state.assignments {
            if a.scope != "/" && !scope_contains(&format!("/subscriptions/{}", self.state.sub), &a.scope) {
                self.problems
                    .push(format!("role assignment scope {} is outside the subscription", a.scope));
            }
        }
        if self.problems.is_empty() {
            Ok(self.state)
        } else {
            Err(self.problems.join("; "))
        }
    }
}

/// authsettingsV2 as the portal leaves it. With auth on, an Entra ID
/// provider registration is seeded so a careless whole-document PUT visibly
/// loses it.
fn seed_auth(tenant: &str, seed: &SiteSeed) -> Value {
    let providers = if seed.auth_enabled {
        json!({"azureActiveDirectory": {
            "enabled": true,
            "registration": {
                "openIdIssuer": format!("https://sts.windows.net/{tenant}/v2.0"),
                "clientId": "00000000-0000-0000-0000-00000000a11c",
                "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
            },
            "validation": {"allowedAudiences": [format!("api://{}", seed.name)]}
        }})
    } else {
        json!({})
    };
    json!({
        "platform": {"enabled": seed.auth_enabled, "runtimeVersion": "~1"},
        "globalValidation": {
            "requireAuthentication": seed.require_authentication,
            "unauthenticatedClientAction": if seed.require_authentication { "Return401" } else { "AllowAnonymous" }
        },
        "identityProviders": providers,
        "login": {"tokenStore": {"enabled": false}, "preserveUrlFragmentsForLogins": false},
        "httpSettings": {
            "requireHttps": true,
            "routes": {"apiPrefix": "/.auth"},
            "forwardProxy": {"convention": "NoProxy"}
        }
    })
}
