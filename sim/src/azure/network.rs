//! Microsoft.Network, read-only, as much as a function app's VNet
//! integration needs: Subnets_Get, NetworkSecurityGroups_Get and
//! RouteTables_Get (the network resource provider's REST reference). The
//! resources are seeded by tests (`AzureWorld::network_resource`) with the
//! `properties` Azure would return; the envelope is built here.

use super::errors::{ArmError, ArmResult};
use super::server::{Reply, Req};
use super::world::State;
use serde_json::{Value, json};

pub const API_VERSIONS: &[&str] = &["2024-05-01", "2023-09-01"];

/// The type of a network resource id, from its provider path.
fn resource_type(id: &str) -> Option<&'static str> {
    let lower = id.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    match parts.as_slice() {
        [.., "providers", "microsoft.network", "virtualnetworks", _, "subnets", _] => {
            Some("Microsoft.Network/virtualNetworks/subnets")
        }
        [.., "providers", "microsoft.network", "networksecuritygroups", _] => {
            Some("Microsoft.Network/networkSecurityGroups")
        }
        [.., "providers", "microsoft.network", "routetables", _] => Some("Microsoft.Network/routeTables"),
        _ => None,
    }
}

pub(crate) fn route(state: &State, req: &Req) -> ArmResult<Reply> {
    let id = req.path();
    if resource_type(&id).is_none() {
        return Err(req.no_route());
    }
    if req.method != "GET" {
        return Err(req.not_allowed());
    }
    let Some(properties) = state.network.get(&id.to_ascii_lowercase()) else {
        return Err(ArmError::new(404, "NotFound", format!("Resource {id} not found.")));
    };
    Ok(Reply::ok(envelope(&id, properties)))
}

/// A network resource as GET answers it: id, name, type, etag, and its
/// properties with `provisioningState`.
pub fn envelope(id: &str, properties: &Value) -> Value {
    let mut properties = properties.clone();
    if let Some(p) = properties.as_object_mut() {
        p.entry("provisioningState").or_insert(json!("Succeeded"));
    }
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap_or_default(),
        "type": resource_type(id).unwrap_or_default(),
        "etag": format!("W/\"{:08x}\"", fastrand::u32(..)),
        "properties": properties
    })
}

pub fn is_network_resource(id: &str) -> bool {
    resource_type(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subnets_Get, NetworkSecurityGroups_Get and RouteTables_Get answer the
    /// resource's id, name, type, etag and properties, with the
    /// provisioning state ARM reports.
    #[test]
    fn a_network_resource_reads_as_its_get_answers_it() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/fn";
        let v = envelope(id, &json!({"addressPrefix": "10.0.1.0/24"}));
        assert_eq!(v["name"], "fn");
        assert_eq!(v["type"], "Microsoft.Network/virtualNetworks/subnets");
        assert_eq!(v["properties"]["provisioningState"], "Succeeded");
        assert_eq!(v["properties"]["addressPrefix"], "10.0.1.0/24");
        assert!(v["etag"].as_str().is_some_and(|e| e.starts_with("W/\"")));
        let nsg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n";
        assert_eq!(
            envelope(nsg, &json!({}))["type"],
            "Microsoft.Network/networkSecurityGroups"
        );
        let rt = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/r";
        assert_eq!(envelope(rt, &json!({}))["type"], "Microsoft.Network/routeTables");
        assert!(!is_network_resource(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
        ));
    }
}
