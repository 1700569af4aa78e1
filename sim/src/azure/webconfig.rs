//! config/web (SiteConfig): its defaults and the strict validation of the
//! properties a PATCH merges or a PUT replaces. Properties outside the table
//! below are ignored, as ARM ignores read-only and unknown ones, so a client
//! may PUT back what it read.

use super::errors::{ArmError, ArmResult};
use super::ids::is_subnet_id;
use serde_json::{Map, Value, json};
use std::net::IpAddr;

enum Kind {
    Bool,
    Int,
    Str,
    Enum(&'static [&'static str]),
    Restrictions,
}

const TLS: &[&str] = &["1.0", "1.1", "1.2", "1.3"];
const ALLOW_DENY: &[&str] = &["Allow", "Deny"];

const FIELDS: &[(&str, Kind)] = &[
    ("numberOfWorkers", Kind::Int),
    ("functionAppScaleLimit", Kind::Int),
    ("minimumElasticInstanceCount", Kind::Int),
    ("preWarmedInstanceCount", Kind::Int),
    ("linuxFxVersion", Kind::Str),
    ("netFrameworkVersion", Kind::Str),
    ("healthCheckPath", Kind::Str),
    ("alwaysOn", Kind::Bool),
    ("http20Enabled", Kind::Bool),
    ("webSocketsEnabled", Kind::Bool),
    ("remoteDebuggingEnabled", Kind::Bool),
    ("use32BitWorkerProcess", Kind::Bool),
    ("functionsRuntimeScaleMonitoringEnabled", Kind::Bool),
    ("vnetRouteAllEnabled", Kind::Bool),
    ("scmIpSecurityRestrictionsUseMain", Kind::Bool),
    ("minTlsVersion", Kind::Enum(TLS)),
    ("scmMinTlsVersion", Kind::Enum(TLS)),
    ("ftpsState", Kind::Enum(&["AllAllowed", "FtpsOnly", "Disabled"])),
    ("publicNetworkAccess", Kind::Enum(&["Enabled", "Disabled"])),
    ("ipSecurityRestrictionsDefaultAction", Kind::Enum(ALLOW_DENY)),
    ("scmIpSecurityRestrictionsDefaultAction", Kind::Enum(ALLOW_DENY)),
    ("ipSecurityRestrictions", Kind::Restrictions),
    ("scmIpSecurityRestrictions", Kind::Restrictions),
];

/// config/web of a new Linux function app. Nullable settings that were never
/// set read back as null, as on Azure.
pub(crate) fn default_config() -> Map<String, Value> {
    let v = json!({
        "numberOfWorkers": 1,
        "functionAppScaleLimit": 200,
        "minimumElasticInstanceCount": 0,
        "preWarmedInstanceCount": 0,
        "linuxFxVersion": "Python|3.11",
        "netFrameworkVersion": "v4.0",
        "healthCheckPath": null,
        "alwaysOn": false,
        "http20Enabled": false,
        "webSocketsEnabled": false,
        "remoteDebuggingEnabled": false,
        "use32BitWorkerProcess": false,
        "functionsRuntimeScaleMonitoringEnabled": false,
        "vnetRouteAllEnabled": false,
        "scmIpSecurityRestrictionsUseMain": false,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "AllAllowed",
        "publicNetworkAccess": null,
        "ipSecurityRestrictionsDefaultAction": null,
        "scmIpSecurityRestrictionsDefaultAction": null,
        "ipSecurityRestrictions": [],
        "scmIpSecurityRestrictions": []
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Merges `patch` into `config`, all or nothing: nothing changes when one
/// property is refused. A null leaves the setting as it is.
pub(crate) fn apply(config: &mut Map<String, Value>, patch: &Map<String, Value>) -> ArmResult<()> {
    let mut next = config.clone();
    for (name, kind) in FIELDS {
        let Some(value) = patch.get(*name) else { continue };
        if value.is_null() {
            continue;
        }
        check(&format!("properties.{name}"), kind, value)?;
        let value = match (kind, value) {
            // A client that writes back what it read sends the implicit
            // rule too; it is the default action, not a rule to keep.
            (Kind::Restrictions, Value::Array(rules)) => {
                Value::Array(rules.iter().filter(|r| !is_implicit(r)).cloned().collect())
            }
            _ => value.clone(),
        };
        next.insert(name.to_string(), value);
    }
    *config = next;
    Ok(())
}

fn check(path: &str, kind: &Kind, value: &Value) -> ArmResult<()> {
    let ok = match kind {
        Kind::Bool => value.is_boolean(),
        Kind::Int => value.is_i64(),
        Kind::Str => value.is_string(),
        Kind::Enum(allowed) => {
            let Some(s) = value.as_str() else {
                return Err(ArmError::invalid_content(path, "expected a string"));
            };
            if !allowed.contains(&s) {
                return Err(ArmError::invalid_content(
                    path,
                    format!("'{s}' is not one of {}", allowed.join(", ")),
                ));
            }
            true
        }
        Kind::Restrictions => {
            let Some(items) = value.as_array() else {
                return Err(ArmError::invalid_content(path, "expected an array"));
            };
            for (i, item) in items.iter().enumerate() {
                check_restriction(&format!("{path}[{i}]"), item)?;
            }
            true
        }
    };
    if ok {
        Ok(())
    } else {
        let expected = match kind {
            Kind::Bool => "a boolean",
            Kind::Int => "an integer",
            _ => "a string",
        };
        Err(ArmError::invalid_content(
            path,
            format!("expected {expected}, got {value}"),
        ))
    }
}

/// One IpSecurityRestriction: name, priority, action, and exactly one of
/// an IP range, a subnet, or service tags (`tag: ServiceTag`).
fn check_restriction(path: &str, item: &Value) -> ArmResult<()> {
    let Some(obj) = item.as_object() else {
        return Err(ArmError::invalid_content(path, "expected an object"));
    };
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let err = |name: &str, detail: &str| ArmError::invalid_content(&format!("{path}.{name}"), detail);
    if !field("name").is_some_and(Value::is_string) {
        return Err(err("name", "a restriction needs a string name"));
    }
    let priority = field("priority").and_then(Value::as_i64);
    if !priority.is_some_and(|p| (1..=i64::from(i32::MAX)).contains(&p)) {
        return Err(err("priority", "expected an integer from 1 to 2147483647"));
    }
    match field("action").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        _ => return Err(err("action", "expected Allow or Deny")),
    }
    let tag = match field("tag") {
        None => "Default",
        Some(Value::String(t)) if ["Default", "XffProxy", "ServiceTag"].contains(&t.as_str()) => t.as_str(),
        Some(_) => return Err(err("tag", "expected Default, XffProxy or ServiceTag")),
    };
    for name in ["description", "ipAddress", "vnetSubnetResourceId"] {
        if field(name).is_some_and(|v| !v.is_string()) {
            return Err(err(name, "expected a string"));
        }
    }
    if let Some(headers) = field("headers") {
        check_headers(&format!("{path}.headers"), headers)?;
    }
    let ip = field("ipAddress").and_then(Value::as_str);
    let subnet = field("vnetSubnetResourceId").and_then(Value::as_str);
    match (ip, subnet) {
        (Some(_), Some(_)) | (None, None) => Err(ArmError::invalid_content(
            path,
            "exactly one of ipAddress and vnetSubnetResourceId must be set",
        )),
        (Some(tags), None) if tag == "ServiceTag" => {
            if tags.split(',').all(|t| !t.trim().is_empty()) {
                Ok(())
            } else {
                Err(err("ipAddress", "expected comma-separated service tag names"))
            }
        }
        (Some(cidr), None) => {
            // `Any` is a valid source (ARM templates write it); it is the
            // whole address space.
            if is_cidr(cidr) || cidr.eq_ignore_ascii_case("Any") {
                Ok(())
            } else {
                Err(err(
                    "ipAddress",
                    &format!("'{cidr}' is not an address range in CIDR notation"),
                ))
            }
        }
        (None, Some(id)) => {
            if tag == "ServiceTag" {
                Err(err("tag", "ServiceTag needs ipAddress"))
            } else if is_subnet_id(id) {
                Ok(())
            } else {
                Err(err(
                    "vnetSubnetResourceId",
                    &format!("'{id}' is not a subnet resource id"),
                ))
            }
        }
    }
}

/// The headers an access restriction can pin, as ARM documents them.
const HEADERS: &[&str] = &[
    "x-forwarded-host",
    "x-forwarded-for",
    "x-azure-fdid",
    "x-fd-healthprobe",
];

/// `headers`: header name → 1 to 8 string values, names from [`HEADERS`].
fn check_headers(path: &str, headers: &Value) -> ArmResult<()> {
    let Some(map) = headers.as_object() else {
        return Err(ArmError::invalid_content(path, "expected an object"));
    };
    for (name, values) in map {
        if !HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(ArmError::invalid_content(
                &format!("{path}.{name}"),
                format!("'{name}' is not one of {}", HEADERS.join(", ")),
            ));
        }
        let ok = values
            .as_array()
            .is_some_and(|v| (1..=8).contains(&v.len()) && v.iter().all(Value::is_string));
        if !ok {
            return Err(ArmError::invalid_content(
                &format!("{path}.{name}"),
                "expected 1 to 8 string values",
            ));
        }
    }
    Ok(())
}

/// The priority of the rule ARM shows for the default action.
pub(crate) const IMPLICIT_PRIORITY: i64 = 2147483647;

/// The rule ARM appends to a restriction list on read to show its default
/// action: `Any` at the last priority, named "Allow all" or "Deny all".
pub(crate) fn implicit_rule(default_action: &Value) -> Value {
    let deny = default_action.as_str() == Some("Deny");
    json!({
        "ipAddress": "Any",
        "action": if deny { "Deny" } else { "Allow" },
        "priority": IMPLICIT_PRIORITY,
        "name": if deny { "Deny all" } else { "Allow all" },
        "description": if deny { "Deny all access" } else { "Allow all access" },
    })
}

/// Whether a written rule is the implicit one read back: it is not stored.
fn is_implicit(rule: &Value) -> bool {
    rule["ipAddress"]
        .as_str()
        .is_some_and(|ip| ip.eq_ignore_ascii_case("Any"))
        && rule["priority"].as_i64() == Some(IMPLICIT_PRIORITY)
        && rule["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("Allow all") || n.eq_ignore_ascii_case("Deny all"))
        && rule.get("headers").is_none_or(Value::is_null)
}

/// config/web as GET shows it: each restriction list ends with the
/// implicit rule of its default action.
pub(crate) fn with_implicit_rules(config: &Map<String, Value>) -> Map<String, Value> {
    let mut out = config.clone();
    for (list, default) in [
        ("ipSecurityRestrictions", "ipSecurityRestrictionsDefaultAction"),
        ("scmIpSecurityRestrictions", "scmIpSecurityRestrictionsDefaultAction"),
    ] {
        let mut rules = config.get(list).and_then(Value::as_array).cloned().unwrap_or_default();
        rules.push(implicit_rule(config.get(default).unwrap_or(&Value::Null)));
        out.insert(list.to_string(), Value::Array(rules));
    }
    out
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u8>()) else {
        return false;
    };
    len <= if addr.is_ipv4() { 32 } else { 128 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictions_are_strict() {
        let ok = json!({"name": "office", "priority": 100, "action": "Allow", "ipAddress": "10.0.0.0/8"});
        assert!(check_restriction("r", &ok).is_ok());
        let both = json!({"name": "x", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.0/8",
            "vnetSubnetResourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/n"});
        assert!(check_restriction("r", &both).is_err());
        let tag = json!({"name": "fd", "priority": 2, "action": "Allow", "ipAddress": "AzureFrontDoor.Backend", "tag": "ServiceTag"});
        assert!(check_restriction("r", &tag).is_ok());
        let bare = json!({"name": "x", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.1"});
        assert!(check_restriction("r", &bare).is_err());
    }
}
