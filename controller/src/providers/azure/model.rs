//! What zerofn observes of one function app (Microsoft.Web/sites), as plain
//! data: the pure planner works on this alone.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedApp {
    /// The site's ARM id, as ARM spells it.
    pub id: String,
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// principalId of the system-assigned identity, when it has one.
    pub system_principal: Option<String>,
    /// Attached user-assigned identities (resource id → principal id).
    pub user_assigned: BTreeMap<String, String>,
    /// Attached user-assigned identities also attached to other sites of the
    /// subscription (resource id → those sites' names).
    pub shared_user_assigned: BTreeMap<String, Vec<String>>,
    pub https_only: bool,
    /// `Enabled` when ARM leaves it unset (its default).
    pub public_network_access: String,
    pub virtual_network_subnet_id: Option<String>,
    pub vnet_route_all: bool,
    /// From config/web; read when triggers are declared.
    pub web: Option<WebConfig>,
    /// From config/authsettingsV2; read when authentication is required.
    pub auth: Option<AuthSettings>,
    /// Basic publishing credentials allowed (ftp, scm); read when transport
    /// hardening is declared.
    pub publishing: Option<(bool, bool)>,
    /// App setting names (values are secrets and never kept); read when
    /// observability or supply chain is declared.
    pub app_settings: Option<BTreeMap<String, bool>>,
    /// Role assignments of the system-assigned principal; read when roles
    /// are declared.
    pub assignments: Option<Vec<Assignment>>,
    /// Declared roles resolved to role definition GUIDs (role as written →
    /// GUID, None when no such role exists).
    pub roles: BTreeMap<String, Option<String>>,
    /// Definitions of the roles the identity holds (GUID → definition),
    /// read so a role's severity comes from what it allows, custom roles
    /// included; a role missing here is judged by the well-known ids alone.
    pub role_definitions: BTreeMap<String, RoleDefinition>,
    /// The app's deployment slots, each its own site with its own public
    /// endpoint; read when triggers are declared.
    pub slots: Vec<ObservedSlot>,
    /// What controls the integration subnet's way out; read when the
    /// posture requires egress control.
    pub egress_control: Option<EgressControl>,
    /// Where the app's diagnostic settings send FunctionAppLogs: observed
    /// only when a Log Analytics workspace is declared.
    pub log_destinations: Option<Result<Vec<String>, crate::providers::ProviderError>>,
}

/// The integration subnet's outbound controls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressControl {
    Observed {
        subnet: String,
        /// The subnet's network security group and its outbound rules
        /// (custom and default), None when it has none.
        nsg: Option<(String, Vec<OutboundRule>)>,
        /// The route table's routes: (address prefix, next hop type).
        routes: Vec<(String, String)>,
    },
    /// Why the subnet, its group or its route table could not be read.
    NotObserved(String),
}

/// An outbound security rule, as far as the internet is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRule {
    pub name: String,
    pub priority: i64,
    pub allow: bool,
    /// Destination prefixes (`Internet`, `*`, CIDRs, service tags).
    pub destinations: Vec<String>,
    /// Every protocol and every port.
    pub all_traffic: bool,
}

/// One deployment slot (`sites/{app}/slots/{slot}`): what can reach it is
/// judged like the app.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedSlot {
    /// The slot's ARM id.
    pub id: String,
    /// The slot's own name (`staging`), without the app's.
    pub name: String,
    pub https_only: bool,
    pub public_network_access: String,
    pub web: Option<WebConfig>,
    pub auth: Option<AuthSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleDefinition {
    pub name: String,
    /// Control-plane actions granted and excluded, over all permission blocks.
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebConfig {
    pub min_tls_version: String,
    pub ftps_state: String,
    /// The access restrictions as ARM returns them.
    pub ip_security_restrictions: Vec<serde_json::Value>,
    pub default_action: Option<String>,
    /// The SCM (Kudu) site's own access restrictions, as ARM returns them.
    pub scm_ip_security_restrictions: Vec<serde_json::Value>,
    /// The SCM site uses the main site's restrictions instead of its own.
    pub scm_use_main: bool,
    pub scm_default_action: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthSettings {
    pub enabled: bool,
    pub require_authentication: bool,
    pub unauthenticated_client_action: Option<String>,
    /// An identity provider is configured and enabled: authentication can
    /// be required without locking every caller out.
    pub has_identity_provider: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    /// The assignment's ARM id.
    pub id: String,
    /// Lowercase role definition GUID.
    pub role: String,
    pub scope: String,
}

/// Whether authsettingsV2's `identityProviders` has one enabled and
/// registered: only then can authentication be required without locking
/// every caller out.
pub fn any_identity_provider(identity_providers: &serde_json::Value) -> bool {
    identity_providers.as_object().is_some_and(|m| {
        m.values().any(|p| {
            p["enabled"].as_bool() != Some(false) && p["registration"].as_object().is_some_and(|r| !r.is_empty())
        })
    })
}

impl ObservedApp {
    pub fn app_setting(&self, name: &str) -> Option<bool> {
        self.app_settings
            .as_ref()
            .map(|s| s.get(name).copied().unwrap_or(false))
    }
}
