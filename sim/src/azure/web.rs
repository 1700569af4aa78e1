//! Microsoft.Web: function apps (sites), their config/web, authsettingsV2,
//! app settings and basic-publishing policies, and the async operation an
//! identity change runs as.

use super::errors::{ArmError, ArmResult};
use super::ids::{eq_ci, guid, is_subnet_id, now};
use super::server::{Reply, Req};
use super::webconfig;
use super::world::{Identity, Operation, Site, State, key};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const SITE_TYPE: &str = "Microsoft.Web/sites";
const SLOT_TYPE: &str = "Microsoft.Web/sites/slots";
const CONFIG_TYPE: &str = "Microsoft.Web/sites/config";

pub(crate) fn route(state: &mut State, req: &Req) -> ArmResult<Reply> {
    let lower: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let get_only = |r: ArmResult<Reply>| if req.method == "GET" { r } else { Err(req.not_allowed()) };
    match l.as_slice() {
        ["subscriptions", _, "providers", "microsoft.web", "sites"] => get_only(list(state, req, None)),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.web",
            "sites",
        ] => get_only(list(state, req, Some(req.segs[3]))),
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.web",
            "locations",
            _,
            "operationresults",
            _,
        ] => get_only(poll(state, req, req.segs[7])),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.web",
            "sites",
            _,
            rest @ ..,
        ] => {
            let (rg, name) = (req.segs[3], req.segs[7]);
            if !state.resource_groups.contains_key(&rg.to_ascii_lowercase()) {
                return Err(ArmError::resource_group_not_found(rg));
            }
            let k = key(rg, name);
            if !state.sites.contains_key(&k) {
                return Err(ArmError::resource_not_found(SITE_TYPE, name, rg));
            }
            match rest {
                ["slots"] => get_only(list_slots(state, req, &k)),
                ["slots", slot, rest @ ..] => {
                    let sk = key(rg, &format!("{name}/{slot}"));
                    if !state.sites.contains_key(&sk) {
                        return Err(ArmError::resource_not_found(
                            SLOT_TYPE,
                            &format!("{name}/{}", req.segs[9]),
                            rg,
                        ));
                    }
                    site_route(state, req, &sk, rest)
                }
                _ => site_route(state, req, &k, rest),
            }
        }
        _ => Err(req.no_route()),
    }
}

fn site_route(state: &mut State, req: &Req, k: &(String, String), rest: &[&str]) -> ArmResult<Reply> {
    let m = req.method;
    fn site<'s>(state: &'s State, k: &(String, String)) -> ArmResult<&'s Site> {
        state
            .sites
            .get(k)
            .ok_or_else(|| ArmError::new(404, "NotFound", "The site is gone."))
    }
    match (rest, m) {
        ([], "GET") => Ok(Reply::ok(site_json(state, site(state, k)?))),
        ([], "PATCH") => patch_site(state, req, k),
        (["config", "web"], "GET") => Ok(Reply::ok(config_json(state, site(state, k)?))),
        (["config", "web"], "PUT" | "PATCH") => {
            let body = req.json()?;
            let props = object_at(&body, "properties")?.unwrap_or_default();
            let s = state.sites.get_mut(k).ok_or_else(|| req.no_route())?;
            if m == "PUT" {
                // PUT is the whole document: what it leaves out reverts.
                let mut fresh = webconfig::default_config();
                webconfig::apply(&mut fresh, &props)?;
                s.config = fresh;
            } else {
                webconfig::apply(&mut s.config, &props)?;
            }
            Ok(Reply::ok(config_json(state, site(state, k)?)))
        }
        (["config", "authsettingsv2"], "GET") => Ok(Reply::ok(auth_json(state, site(state, k)?))),
        (["config", "authsettingsv2"], "PUT") => {
            let body = req.json()?;
            let props = object_at(&body, "properties")?.unwrap_or_default();
            check_auth(&props)?;
            let s = state.sites.get_mut(k).ok_or_else(|| req.no_route())?;
            s.auth = Value::Object(props);
            Ok(Reply::ok(auth_json(state, site(state, k)?)))
        }
        (["config", "appsettings", "list"], "POST") => {
            let s = site(state, k)?;
            Ok(Reply::ok(json!({
                "id": format!("{}/config/appsettings", state.site_id(s)),
                "name": "appsettings",
                "type": CONFIG_TYPE,
                "location": s.location,
                "properties": s.app_settings,
            })))
        }
        (["basicpublishingcredentialspolicies", kind @ ("ftp" | "scm")], "GET" | "PUT") => {
            if m == "PUT" {
                let body = req.json()?;
                let props = object_at(&body, "properties")?.unwrap_or_default();
                let Some(allow) = props.get("allow").and_then(Value::as_bool) else {
                    return Err(ArmError::invalid_content("properties.allow", "expected a boolean"));
                };
                let s = state.sites.get_mut(k).ok_or_else(|| req.no_route())?;
                if *kind == "ftp" {
                    s.ftp_allowed = allow;
                } else {
                    s.scm_allowed = allow;
                }
            }
            let s = site(state, k)?;
            let allow = if *kind == "ftp" { s.ftp_allowed } else { s.scm_allowed };
            Ok(Reply::ok(json!({
                "id": format!("{}/basicPublishingCredentialsPolicies/{kind}", state.site_id(s)),
                "name": kind,
                "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
                "location": s.location,
                "properties": {"allow": allow},
            })))
        }
        ([] | ["config", "web" | "authsettingsv2"] | ["basicpublishingcredentialspolicies", "ftp" | "scm"], _)
        | (["config", "appsettings", "list"], _) => Err(req.not_allowed()),
        _ => Err(req.no_route()),
    }
}

/// `body[name]` as an object; absent or null is `None`, anything else 400.
fn object_at(body: &Map<String, Value>, name: &str) -> ArmResult<Option<Map<String, Value>>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(ArmError::invalid_content(
            name,
            format!("expected an object, got {other}"),
        )),
    }
}

fn list(state: &State, req: &Req, rg: Option<&str>) -> ArmResult<Reply> {
    if let Some(rg) = rg
        && !state.resource_groups.contains_key(&rg.to_ascii_lowercase())
    {
        return Err(ArmError::resource_group_not_found(rg));
    }
    let all: Vec<&Site> = state
        .sites
        .values()
        .filter(|s| s.slot_of.is_none() && rg.is_none_or(|rg| eq_ci(rg, &s.rg)))
        .collect();
    let skip = match req.query.get("$skipToken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= all.len())
            .ok_or_else(|| ArmError::bad_request(format!("The skip token '{t}' is not valid.")))?,
    };
    let end = (skip + state.page_size).min(all.len());
    let value: Vec<Value> = all[skip..end].iter().map(|s| site_json(state, s)).collect();
    let mut out = json!({"value": value});
    if end < all.len() {
        let version = req.query.get("api-version").cloned().unwrap_or_default();
        out["nextLink"] = json!(format!(
            "{}{}?api-version={version}&$skipToken={end}",
            state.base_url,
            req.path()
        ));
    }
    Ok(Reply::ok(out))
}

/// Every slot of an app (WebApps_ListSlots), in one page.
fn list_slots(state: &State, req: &Req, app: &(String, String)) -> ArmResult<Reply> {
    let Some(parent) = state.sites.get(app) else {
        return Err(req.no_route());
    };
    let value: Vec<Value> = state
        .sites
        .values()
        .filter(|s| s.slot_of.as_deref().is_some_and(|a| eq_ci(a, &parent.name)) && eq_ci(&s.rg, &parent.rg))
        .map(|s| site_json(state, s))
        .collect();
    Ok(Reply::ok(json!({"value": value})))
}

/// A slot's host name is `{app}-{slot}`, as App Service names it.
fn host_label(site: &Site) -> String {
    match &site.slot_of {
        Some(app) => format!("{app}-{}", site.name).to_ascii_lowercase(),
        None => site.name.to_ascii_lowercase(),
    }
}

fn host(site: &Site) -> String {
    format!("{}.azurewebsites.net", host_label(site))
}

/// A site as GET answers it: like ARM, the embedded siteConfig carries
/// nulls for the settings only config/web reports.
pub(crate) fn site_json(state: &State, site: &Site) -> Value {
    let mut brief: Map<String, Value> = site.config.keys().map(|k| (k.clone(), Value::Null)).collect();
    for k in [
        "numberOfWorkers",
        "linuxFxVersion",
        "functionAppScaleLimit",
        "minimumElasticInstanceCount",
    ] {
        if let Some(v) = site.config.get(k) {
            brief.insert(k.to_string(), v.clone());
        }
    }
    site_view(state, site, Value::Object(brief))
}

fn site_view(state: &State, site: &Site, site_config: Value) -> Value {
    let host = host(site);
    // ARM names a slot `app/slot`.
    let (name, kind) = match &site.slot_of {
        Some(app) => (format!("{app}/{}", site.name), SLOT_TYPE),
        None => (site.name.clone(), SITE_TYPE),
    };
    let mut out = json!({
        "id": state.site_id(site),
        "name": name,
        "type": kind,
        "kind": "functionapp,linux",
        "location": site.location,
        "tags": site.tags,
        "properties": {
            "name": site.name,
            "state": "Running",
            "enabled": true,
            "hostNames": [host],
            "enabledHostNames": [host, format!("{}.scm.azurewebsites.net", host_label(site))],
            "defaultHostName": host,
            "resourceGroup": site.rg,
            "serverFarmId": format!("{}/providers/Microsoft.Web/serverfarms/ASP-{}", state.rg_prefix(&site.rg), site.rg),
            "reserved": true,
            "httpsOnly": site.https_only,
            "clientCertEnabled": false,
            "clientCertMode": "Required",
            "publicNetworkAccess": site.config.get("publicNetworkAccess").cloned().unwrap_or(Value::Null),
            "virtualNetworkSubnetId": site.subnet,
            "vnetRouteAllEnabled": site.config.get("vnetRouteAllEnabled").cloned().unwrap_or(json!(false)),
            "keyVaultReferenceIdentity": "SystemAssigned",
            "siteConfig": site_config,
        }
    });
    if let Some(identity) = state.identity_json(&site.identity) {
        out["identity"] = identity;
    }
    out
}

pub(crate) fn config_json(state: &State, site: &Site) -> Value {
    json!({
        "id": format!("{}/config/web", state.site_id(site)),
        "name": "web",
        "type": CONFIG_TYPE,
        "location": site.location,
        "properties": webconfig::with_implicit_rules(&site.config),
    })
}

pub(crate) fn auth_json(state: &State, site: &Site) -> Value {
    json!({
        "id": format!("{}/config/authsettingsV2", state.site_id(site)),
        "name": "authsettingsV2",
        "type": CONFIG_TYPE,
        "location": site.location,
        "properties": site.auth,
    })
}

/// The few authsettingsV2 properties zerofn reads get their types checked.
fn check_auth(props: &Map<String, Value>) -> ArmResult<()> {
    let at = |path: &[&str]| {
        let mut v = props.get(path[0]);
        for p in &path[1..] {
            v = v.and_then(|v| v.get(p));
        }
        v.filter(|v| !v.is_null())
    };
    for obj in [
        "platform",
        "globalValidation",
        "identityProviders",
        "login",
        "httpSettings",
    ] {
        if at(&[obj]).is_some_and(|v| !v.is_object()) {
            return Err(ArmError::invalid_content(
                &format!("properties.{obj}"),
                "expected an object",
            ));
        }
    }
    for path in [
        &["platform", "enabled"][..],
        &["globalValidation", "requireAuthentication"],
        &["httpSettings", "requireHttps"],
    ] {
        if at(path).is_some_and(|v| !v.is_boolean()) {
            return Err(ArmError::invalid_content(
                &format!("properties.{}", path.join(".")),
                "expected a boolean",
            ));
        }
    }
    const ACTIONS: &[&str] = &[
        "RedirectToLoginPage",
        "AllowAnonymous",
        "Return401",
        "Return403",
        "Return404",
    ];
    if let Some(a) = at(&["globalValidation", "unauthenticatedClientAction"])
        && !a.as_str().is_some_and(|a| ACTIONS.contains(&a))
    {
        return Err(ArmError::invalid_content(
            "properties.globalValidation.unauthenticatedClientAction",
            format!("{a} is not one of {}", ACTIONS.join(", ")),
        ));
    }
    Ok(())
}

/// A site PATCH (SitePatchResource): properties merge, tags replace, and an
/// identity change is accepted as an async operation applied when done.
fn patch_site(state: &mut State, req: &Req, k: &(String, String)) -> ArmResult<Reply> {
    let body = req.json()?;
    let props = object_at(&body, "properties")?.unwrap_or_default();
    let site = state.sites.get(k).ok_or_else(|| req.no_route())?;
    let mut config = site.config.clone();
    let mut https_only = site.https_only;
    let mut subnet = site.subnet.clone();
    if let Some(sc) = object_at(&props, "siteConfig")? {
        webconfig::apply(&mut config, &sc)?;
    }
    // The site-level mirrors of config/web settings win over siteConfig.
    let mirrored: Map<String, Value> = ["publicNetworkAccess", "vnetRouteAllEnabled"]
        .iter()
        .filter_map(|n| props.get(*n).map(|v| (n.to_string(), v.clone())))
        .collect();
    webconfig::apply(&mut config, &mirrored)?;
    match props.get("httpsOnly") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => https_only = *b,
        Some(v) => {
            return Err(ArmError::invalid_content(
                "properties.httpsOnly",
                format!("expected a boolean, got {v}"),
            ));
        }
    }
    match props.get("virtualNetworkSubnetId") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => subnet = None,
        Some(Value::String(s)) if is_subnet_id(s) => subnet = Some(s.clone()),
        Some(v) => {
            return Err(ArmError::invalid_content(
                "properties.virtualNetworkSubnetId",
                format!(
                    "{v} is not /subscriptions/{{s}}/resourceGroups/{{rg}}/providers/Microsoft.Network/virtualNetworks/{{v}}/subnets/{{n}}"
                ),
            ));
        }
    }
    // SitePatchResource (the PATCH body's contract) has no `tags`: like
    // any property outside the contract it is ignored, so tags written
    // this way do not land. Tags go through Microsoft.Resources/tags.
    let identity = object_at(&body, "identity")?;
    let change = match &identity {
        None => None,
        Some(identity) => parse_identity(state, &site.identity, identity)?,
    };
    // Any identity in a PATCH while an identity operation runs conflicts.
    if identity.is_some() && site.pending_op.is_some() {
        return Err(ArmError::new(
            409,
            "Conflict",
            "Cannot modify this site because another operation is in progress.",
        ));
    }
    let location = site.location.clone();
    let polls = state.identity_polls;
    let site = state.sites.get_mut(k).ok_or_else(|| req.no_route())?;
    site.config = config;
    site.https_only = https_only;
    site.subnet = subnet;
    let Some((system, user)) = change else {
        let s = state.sites.get(k).ok_or_else(|| req.no_route())?;
        return Ok(Reply::ok(site_json(state, s)));
    };
    let op_id = guid();
    site.pending_op = Some(op_id.clone());
    state.operations.insert(
        op_id.clone(),
        Operation {
            site: k.clone(),
            system,
            user,
            location: location.clone(),
            remaining: polls,
            done: false,
            started: now(),
        },
    );
    let version = req.query.get("api-version").cloned().unwrap_or_default();
    let url = operation_url(state, &location, &op_id, &version);
    Ok(Reply {
        status: 202,
        body: None,
        headers: Vec::new(),
    }
    .header("azure-asyncoperation", url.clone())
    .header("location", format!("{url}&mode=location"))
    .header("retry-after", "0".to_string()))
}

fn operation_url(state: &State, location: &str, op_id: &str, version: &str) -> String {
    format!(
        "{}/subscriptions/{}/providers/Microsoft.Web/locations/{}/operationResults/{op_id}?api-version={version}",
        state.base_url,
        state.sub,
        location.to_ascii_lowercase().replace(' ', "")
    )
}

/// The identity a PATCH asks for, or `None` when it is what the site has.
/// The `identity` object replaces the site's: its type decides which kinds
/// stay, and its userAssignedIdentities (when given) are the new set.
fn parse_identity(
    state: &State,
    current: &Identity,
    identity: &Map<String, Value>,
) -> ArmResult<Option<(bool, BTreeSet<String>)>> {
    let Some(kind) = identity.get("type").and_then(Value::as_str) else {
        return Err(ArmError::invalid_content("identity.type", "expected a string"));
    };
    let parts: BTreeSet<String> = kind.split(',').map(|p| p.trim().to_ascii_lowercase()).collect();
    let valid = parts == BTreeSet::from(["none".to_string()])
        || (!parts.is_empty() && parts.iter().all(|p| p == "systemassigned" || p == "userassigned"));
    if !valid {
        return Err(ArmError::invalid_content(
            "identity.type",
            format!("'{kind}' is not one of None, SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned'"),
        ));
    }
    let system = parts.contains("systemassigned");
    let wants_user = parts.contains("userassigned");
    let given = match identity.get("userAssignedIdentities") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(ArmError::invalid_content(
                "identity.userAssignedIdentities",
                "expected an object",
            ));
        }
    };
    let mut user = BTreeSet::new();
    if let Some(m) = given {
        for (id, v) in m {
            if v.is_null() {
                continue;
            }
            if !v.is_object() {
                return Err(ArmError::invalid_content(
                    &format!("identity.userAssignedIdentities['{id}']"),
                    "expected an object or null",
                ));
            }
            let Some(uai) = state.uai_by_id(id) else {
                return Err(ArmError::new(
                    400,
                    "FailedIdentityOperation",
                    format!("Identity operation failed: the user-assigned identity '{id}' was not found."),
                ));
            };
            user.insert(state.uai_id(uai));
        }
    }
    if wants_user {
        if given.is_none() {
            user = current.user.clone();
        }
        if user.is_empty() {
            return Err(ArmError::invalid_content(
                "identity.userAssignedIdentities",
                "type UserAssigned needs at least one user-assigned identity",
            ));
        }
    } else if !user.is_empty() {
        return Err(ArmError::invalid_content(
            "identity.userAssignedIdentities",
            format!("user-assigned identities given with type '{kind}'"),
        ));
    }
    if system == current.system.is_some() && user == current.user {
        Ok(None)
    } else {
        Ok(Some((system, user)))
    }
}

/// One poll of an identity operation: InProgress for as many polls as
/// configured, then the change is applied and it reports Succeeded. With
/// `mode=location` it answers as the Location URL: 202, then the site.
fn poll(state: &mut State, req: &Req, op_id: &str) -> ArmResult<Reply> {
    let id = op_id.to_ascii_lowercase();
    let not_found = || ArmError::new(404, "NotFound", format!("Operation '{op_id}' was not found."));
    let op = state.operations.get_mut(&id).ok_or_else(not_found)?;
    if !op.done {
        if op.remaining > 0 {
            op.remaining -= 1;
        } else {
            op.done = true;
            complete(state, &id);
        }
    }
    let op = state.operations.get(&id).ok_or_else(not_found)?;
    let version = req.query.get("api-version").cloned().unwrap_or_default();
    let url = operation_url(state, &op.location, &id, &version);
    if req.query.get("mode").is_some_and(|m| m == "location") {
        if !op.done {
            return Ok(Reply {
                status: 202,
                body: None,
                headers: Vec::new(),
            }
            .header("location", format!("{url}&mode=location"))
            .header("retry-after", "0".to_string()));
        }
        let site = state.sites.get(&op.site).ok_or_else(not_found)?;
        return Ok(Reply::ok(site_json(state, site)));
    }
    let status = if op.done { "Succeeded" } else { "InProgress" };
    let mut body = json!({
        "id": url.trim_start_matches(&state.base_url).split('?').next().unwrap_or_default(),
        "name": id,
        "status": status,
        "startTime": op.started,
    });
    if op.done {
        body["endTime"] = json!(now());
    }
    let mut reply = Reply::ok(body);
    if !op.done {
        reply = reply.header("retry-after", "0".to_string());
    }
    Ok(reply)
}

fn complete(state: &mut State, op_id: &str) {
    let Some(op) = state.operations.get(op_id) else { return };
    let (k, system, user) = (op.site.clone(), op.system, op.user.clone());
    let delay = state.principal_delay;
    let Some(site) = state.sites.get_mut(&k) else { return };
    let mut created = None;
    site.identity.system = match (system, site.identity.system.take()) {
        (true, Some(p)) => Some(p),
        (true, None) => {
            let p = guid();
            created = Some(p.clone());
            Some(p)
        }
        (false, _) => None,
    };
    site.identity.user = user;
    site.pending_op = None;
    if let Some(p) = created {
        state.add_principal(&p, "ServicePrincipal", delay);
    }
}

/// Applies a behind-the-back change: `f` gets the site with the full
/// siteConfig; back are read tags, httpsOnly, virtualNetworkSubnetId, the
/// siteConfig settings (the site-level publicNetworkAccess and
/// vnetRouteAllEnabled win when changed) and identity (applied at once).
/// Values of the wrong type are ignored.
pub(crate) fn apply_mutation(state: &mut State, k: &(String, String), f: impl FnOnce(&mut Value)) {
    let Some(site) = state.sites.get(k) else { return };
    let before = site_view(state, site, Value::Object(site.config.clone()));
    let mut after = before.clone();
    f(&mut after);
    let p = &after["properties"];
    let mut config = site.config.clone();
    if let Some(sc) = p["siteConfig"].as_object() {
        for (name, v) in sc {
            config.insert(name.clone(), v.clone());
        }
    }
    for name in ["publicNetworkAccess", "vnetRouteAllEnabled"] {
        if p[name] != before["properties"][name] {
            config.insert(name.to_string(), p[name].clone());
        }
    }
    let identity = (after["identity"] != before["identity"]).then(|| {
        let kind = after["identity"]["type"]
            .as_str()
            .unwrap_or("None")
            .to_ascii_lowercase();
        let system = kind.contains("systemassigned").then(|| {
            after["identity"]["principalId"]
                .as_str()
                .map(str::to_string)
                .or_else(|| site.identity.system.clone())
                .unwrap_or_else(guid)
        });
        let user: BTreeSet<String> = if kind.contains("userassigned") {
            after["identity"]["userAssignedIdentities"]
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter_map(|id| state.uai_by_id(id).map(|u| state.uai_id(u)))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            BTreeSet::new()
        };
        Identity { system, user }
    });
    let Some(site) = state.sites.get_mut(k) else { return };
    site.config = config;
    if let Some(t) = after["tags"].as_object() {
        site.tags = t.clone();
    }
    if let Some(b) = p["httpsOnly"].as_bool() {
        site.https_only = b;
    }
    match &p["virtualNetworkSubnetId"] {
        Value::Null => site.subnet = None,
        Value::String(s) => site.subnet = Some(s.clone()),
        _ => {}
    }
    if let Some(identity) = identity {
        if let Some(p) = identity.system.clone() {
            state.add_principal(&p, "ServicePrincipal", std::time::Duration::ZERO);
        }
        if let Some(site) = state.sites.get_mut(k) {
            site.identity = identity;
        }
    }
}
