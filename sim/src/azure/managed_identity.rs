//! Microsoft.ManagedIdentity: reading user-assigned identities.

use super::errors::{ArmError, ArmResult};
use super::ids::eq_ci;
use super::server::{Reply, Req};
use super::world::{State, Uai, key};
use serde_json::{Value, json};

const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

pub(crate) fn route(state: &mut State, req: &Req) -> ArmResult<Reply> {
    let lower: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (rg, name) = match l.as_slice() {
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.managedidentity",
            "userassignedidentities",
        ] => (None, None),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.managedidentity",
            "userassignedidentities",
        ] => (Some(req.segs[3]), None),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.managedidentity",
            "userassignedidentities",
            _,
        ] => (Some(req.segs[3]), Some(req.segs[7])),
        _ => return Err(req.no_route()),
    };
    if req.method != "GET" {
        return Err(req.not_allowed());
    }
    if let Some(rg) = rg
        && !state.resource_groups.contains_key(&rg.to_ascii_lowercase())
    {
        return Err(ArmError::resource_group_not_found(rg));
    }
    match (rg, name) {
        (Some(rg), Some(name)) => {
            let uai = state
                .uais
                .get(&key(rg, name))
                .ok_or_else(|| ArmError::resource_not_found(TYPE, name, rg))?;
            Ok(Reply::ok(uai_json(state, uai)))
        }
        _ => {
            let value: Vec<Value> = state
                .uais
                .values()
                .filter(|u| rg.is_none_or(|rg| eq_ci(rg, &u.rg)))
                .map(|u| uai_json(state, u))
                .collect();
            Ok(Reply::ok(json!({"value": value})))
        }
    }
}

fn uai_json(state: &State, uai: &Uai) -> Value {
    json!({
        "id": state.uai_id(uai),
        "name": uai.name,
        "type": TYPE,
        "location": uai.location,
        "tags": {},
        "properties": {
            "tenantId": state.tenant,
            "principalId": uai.principal_id,
            "clientId": uai.client_id,
            "isolationScope": "None"
        }
    })
}
